"""A writer killed between writing and renaming leaves nothing visible, and no half message."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailsift.quarantine.model import Query
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta

# Runs QuarantineStore.put in a child whose os.replace SIGKILLs the process just before the
# message file would be renamed into place: the worst moment for a crash.
WRITER = """
import os, signal, sys
real_replace = os.replace
def crash_before_message_rename(src, dst):
    if str(dst).endswith(".msg"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = crash_before_message_rename
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
QuarantineStore(sys.argv[1]).put(make_message(body="x" * 100000), make_meta())
"""


def test_writer_killed_before_rename_leaves_no_visible_message(tmp_path: Path) -> None:
    directory = tmp_path / "q"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", WRITER, str(directory)], cwd=root, timeout=60)
    assert done.returncode == -9  # it really died mid-write
    store = QuarantineStore(directory)
    assert store.ids() == [] and store.search(Query())[1] == 0
    assert list(directory.glob("*.msg")) == []
    assert list(directory.glob(".tmp-*")), "the unfinished message file is where the crash left it"

    old = time.time() - 7200
    for path in directory.iterdir():
        os.utime(path, (old, old))
    store.expire(datetime.now(UTC) - timedelta(days=30))  # the daily timer sweeps the leftovers
    assert [p.name for p in directory.iterdir() if not p.name.startswith("index.sqlite")] == []


def test_expire_rebuilds_an_index_row_lost_with_the_unsynced_commit(tmp_path: Path) -> None:
    """The index commits without a disk sync: after a power cut a complete message may lack its
    row. The daily expire indexes it again from its record line, and it is listed and releasable."""
    directory = tmp_path / "q"
    store = QuarantineStore(directory)
    kept = store.put(make_message(body="kept"), make_meta())
    lost = store.put(make_message(body="row lost"), make_meta())
    junk = directory / "0000junk.msg"  # no record line: not ours, removed
    junk.write_text("From nobody\n")
    with sqlite3.connect(directory / "index.sqlite") as db:
        db.execute("DELETE FROM messages WHERE id = ?", (lost,))
        db.execute("DELETE FROM recipients WHERE id = ?", (lost,))
    assert store.ids() == [kept]

    old = time.time() - 7200
    for path in directory.iterdir():
        os.utime(path, (old, old))
    store.expire(datetime.now(UTC) - timedelta(days=30))
    assert sorted(store.ids()) == sorted([kept, lost])
    assert store.raw(lost) == make_message(body="row lost")
    assert store.search(Query(to=make_meta()["recipients"]))[1] == 2
    assert not junk.exists()
