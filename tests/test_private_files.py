"""The databases mailsift creates are closed to other local users whatever the creator's umask:
an administrator's shell (umask 022) made the Bayes store and the quarantine index, which hold
the words, senders and subjects of the site's mail, readable by everyone on the host."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, LearnItem, token_key
from mailsift.config import BayesConfig
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta


@pytest.fixture
def shell_umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def others_may(folder: Path) -> dict[str, str]:
    """Each file below `folder` that other users may access, with its mode."""
    return {path.name: stat.filemode(path.stat().st_mode) for path in folder.rglob("*")
            if path.is_file() and path.stat().st_mode & 0o007}


@pytest.mark.usefixtures("shell_umask")
def test_a_new_bayes_store_is_not_readable_by_other_users(tmp_path: Path) -> None:
    store = open_store(BayesConfig(store=f"sqlite://{tmp_path}/bayes.sqlite"))
    store.learn(LearnItem("a" * 40, [token_key("invoice")]), Label.SPAM, 1_700_000_000)
    assert (tmp_path / "bayes.sqlite-wal").exists()
    assert others_may(tmp_path) == {}
    assert stat.S_IMODE((tmp_path / "bayes.sqlite").stat().st_mode) == 0o640


@pytest.mark.usefixtures("shell_umask")
def test_a_new_quarantine_index_is_not_readable_by_other_users(tmp_path: Path) -> None:
    QuarantineStore(tmp_path / "quarantine").put(make_message(), make_meta())
    assert others_may(tmp_path) == {}
