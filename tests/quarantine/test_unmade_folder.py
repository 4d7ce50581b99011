"""A quarantine whose folder does not exist: what only looks at it makes none and says where.

A mistyped quarantine.dir made `mailsift quarantine list` and `expire`, and the review UI, create
an empty quarantine there, which then showed nothing held, as if the path were right. The milter
makes the folder at its start (tests/milter/test_milter_start.py), so a new install's timers
meet one; configtest names a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.config import Config
from mailsift.configtest import quarantine_check
from mailsift.quarantine.model import Query
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.milter_process import to_toml


def said(folder: Path) -> str:
    return (f"no quarantine at {folder} yet (quarantine.dir): the milter makes it at its start; "
            "if the milter runs with this config, check the path")


def test_list_and_expire_of_a_quarantine_never_made_say_where_and_make_none(tmp_path: Path) -> None:
    folder = tmp_path / "quarantine-typo"
    config = tmp_path / "mailsift.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(folder)},
                               "bayes": {"store": f"sqlite:///{tmp_path / 'bayes.sqlite'}"}}))

    def quarantine(*args: str) -> tuple[int, str]:
        done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", *args])
        return done.exit_code, done.output

    assert quarantine("list") == (0, f"Nothing listed: {said(folder)}\n")
    assert quarantine("expire") == (0, f"Nothing expired: {said(folder)}\n")
    assert quarantine("show", "20240101T000000-abcdef") == (2, f"mailsift: quarantine: {said(folder)}\n")
    assert not folder.exists()


def test_searching_a_quarantine_never_made_finds_nothing_and_makes_none(tmp_path: Path) -> None:
    """What the review UI's list, expire and the digest ask; holding a message makes it."""
    store = QuarantineStore(tmp_path / "quarantine")
    assert store.search(Query()) == ([], 0)
    assert store.expire(datetime.now(UTC)).expired == 0
    assert store.backend.mark("digest") is None
    assert not (tmp_path / "quarantine").exists()
    store.put(make_message(), make_meta(["jane@example.org"], 12.0))
    assert store.search(Query())[1] == 1


def test_configtest_names_a_quarantine_folder_that_does_not_exist(tmp_path: Path) -> None:
    """A warning, not a failure: configtest runs before the milter's first start."""
    folder = tmp_path / "quarantine"
    check = quarantine_check(Config.model_validate({"quarantine": {"dir": str(folder)}}))
    assert (check.ok, check.detail) == (True, said(folder))
    folder.mkdir()
    assert quarantine_check(Config.model_validate({"quarantine": {"dir": str(folder)}})).detail == (
        f"{folder / 'index.sqlite'}: nothing quarantined yet (made on first use)")
