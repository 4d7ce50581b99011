"""What root creates for mailsift takes the owner of its folder, so the milter's own user can use
it: an administrator's first `mailsift learn` or `mailsift quarantine` command, run as root before
the milter ever started, left a Bayes store the milter could not open ("attempt to write a
readonly database") and an index it could not write."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, LearnItem, token_key
from mailsift.config import BayesConfig
from mailsift.ownership import make_folders
from mailsift.quarantine.model import Query
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.open_together import failures_opening_together

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root creates files for another user")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def milter_home() -> Iterator[Path]:
    """A state folder owned by the milter's user (nobody here), as systemd's StateDirectory makes
    it; not below pytest's tmp_path, which only root may enter."""
    home = Path(tempfile.mkdtemp(prefix="mailsift-state-"))
    home.chmod(0o755)
    os.chown(home, NOBODY.pw_uid, NOBODY.pw_gid)
    yield home
    shutil.rmtree(home)


def failure_as_milter_user(work: Callable[[], object]) -> str:
    """Run `work` in a child that is the milter's user; what it raised, or ""."""
    def as_nobody(_: int) -> None:
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
        work()

    return "".join(failures_opening_together(as_nobody, rounds=1, processes=1))


def owners(folder: Path) -> set[tuple[str, int]]:
    return {(path.name, path.stat().st_uid) for path in folder.rglob("*")}


def test_a_bayes_store_root_creates_is_the_milter_users(milter_home: Path) -> None:
    config = BayesConfig(store=f"sqlite://{milter_home}/db/bayes.sqlite")
    open_store(config).learn(LearnItem("a" * 40, [token_key("viagra")]), Label.SPAM, 1_700_000_000)
    assert {uid for _, uid in owners(milter_home)} == {NOBODY.pw_uid}

    def autolearn() -> None:
        open_store(config).learn(LearnItem("b" * 40, [token_key("meeting")]), Label.HAM, 1_700_000_000)

    assert failure_as_milter_user(autolearn) == ""


def test_a_quarantine_root_creates_is_the_milter_users(milter_home: Path) -> None:
    store = QuarantineStore(milter_home / "quarantine")
    held = store.put(make_message(), make_meta())  # root first: the milter run by hand, say
    assert failure_as_milter_user(lambda: QuarantineStore(milter_home / "quarantine").put(
        make_message(), make_meta())) == ""
    assert failure_as_milter_user(lambda: QuarantineStore(milter_home / "quarantine").raw(held)) == ""
    assert store.search(Query(limit=None))[1] == 2
    assert {uid for _, uid in owners(milter_home)} == {NOBODY.pw_uid}


def test_make_folders_gives_each_new_folder_its_parents_owner(milter_home: Path) -> None:
    make_folders(milter_home / "a" / "b", 0o750)
    make_folders(milter_home / "a" / "b", 0o750)  # already there: nothing to do
    assert owners(milter_home) == {("a", NOBODY.pw_uid), ("b", NOBODY.pw_uid)}
    (milter_home / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        make_folders(milter_home / "file")


def test_a_store_the_milter_user_cannot_write_says_whose_it_is(milter_home: Path) -> None:
    """Stores created by root before files took their folder's owner: the error names both users."""
    path = milter_home / "bayes.sqlite"
    store = open_store(BayesConfig(store=f"sqlite://{path}"))
    store.totals()
    store.close()
    for made in milter_home.iterdir():
        os.chown(made, 0, 0)
    failure = failure_as_milter_user(lambda: open_store(BayesConfig(store=f"sqlite://{path}")).totals())
    assert failure == (f"StoreError: sqlite {path}: attempt to write a readonly database "
                       "(the file belongs to root; this process runs as nobody)")


def test_an_index_the_milter_user_cannot_write_says_whose_it_is(milter_home: Path) -> None:
    # Root wrote first (the milter run by hand as root once): a listing no longer makes an index.
    QuarantineStore(milter_home / "quarantine").put(make_message(), make_meta())
    for made in (milter_home / "quarantine").glob("index.sqlite*"):
        os.chown(made, 0, 0)
    failure = failure_as_milter_user(lambda: QuarantineStore(milter_home / "quarantine").put(
        make_message(), make_meta()))
    assert "(the file belongs to root; this process runs as nobody)" in failure


def test_a_message_file_the_milter_user_cannot_read_is_not_called_deleted(
        milter_home: Path) -> None:
    """A message file root held before files took their folder's owner is root's, mode 0600:
    the web UI and `quarantine show`, run as the milter's user, said it "was deleted"."""
    store = QuarantineStore(milter_home / "quarantine")
    held = store.put(make_message(), make_meta())
    path = milter_home / "quarantine" / f"{held}.msg"
    os.chown(path, 0, 0)
    failure = failure_as_milter_user(lambda: QuarantineStore(milter_home / "quarantine").raw(held))
    assert failure == f"ServerFailed: quarantine message file {path}: Permission denied"
