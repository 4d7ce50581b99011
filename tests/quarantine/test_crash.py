"""A writer killed between writing and renaming leaves nothing visible, and no half message."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailsift.quarantine.model import QuarantineError, Query
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


def _unindexed(store: QuarantineStore, directory: Path, body: str) -> Path:
    """A complete message file whose index row is gone (a power cut), aged past a writer's time."""
    message_id = store.put(make_message(body=body), make_meta())
    with sqlite3.connect(directory / "index.sqlite") as db:
        db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        db.execute("DELETE FROM recipients WHERE id = ?", (message_id,))
    path = directory / f"{message_id}.msg"
    old = time.time() - 7200
    os.utime(path, (old, old))
    return path


def _with_first_line(path: Path, line: bytes) -> bytes:
    """Replace the record line of a message file; returns the file's new bytes."""
    data = line + b"\n" + path.read_bytes().partition(b"\n")[2]
    path.write_bytes(data)
    old = time.time() - 7200
    os.utime(path, (old, old))
    return data


def _record(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_bytes().partition(b"\n")[0]))


@pytest.mark.parametrize("damage", ["garbled", "newer format", "other id", "wrong type", "bad time"])
def test_expire_sets_aside_a_message_file_whose_record_it_cannot_read(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    """A damaged record line, or one a newer mailsift wrote before a rollback, still fronts
    someone's mail: expire moves the file to unreadable/ with one warning, and never deletes it
    (it did: a file it could not index again was unlinked)."""
    directory = tmp_path / "q"
    store = QuarantineStore(directory)
    path = _unindexed(store, directory, "only copy")
    record = _record(path)
    line = {
        "garbled": b"\x00\x17{not json",
        "newer format": json.dumps({**{k: v for k, v in record.items() if k != "mail_from"},
                                    "envelope": {"from": record["mail_from"]}}).encode(),
        "other id": json.dumps({**record, "id": "someone-else"}).encode(),
        "wrong type": json.dumps({**record, "recipients": {"to": record["recipients"]}}).encode(),
        "bad time": json.dumps({**record, "time": 1764000000}).encode(),
    }[damage]
    data = _with_first_line(path, line)

    with caplog.at_level(logging.WARNING, logger="mailsift"):
        store.expire(datetime.now(UTC) - timedelta(days=30))
    kept = directory / "unreadable" / path.name
    assert not path.exists() and kept.read_bytes() == data
    (warning,) = [r.getMessage() for r in caplog.records]
    assert str(path) in warning and f"moved to {kept.parent}" in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mailsift"):
        store.expire(datetime.now(UTC) - timedelta(days=30))
    assert kept.read_bytes() == data and caplog.records == []  # once, not every day


def test_expire_keeps_a_message_file_when_the_index_fails_to_take_its_row(tmp_path: Path) -> None:
    """An index that refuses the row again (here a trigger aborting every insert, as a full
    disk or a lock would) is the index's trouble, not the file's: expire ends with the index's
    line and the message stays to be indexed on the next run (it was deleted)."""
    directory = tmp_path / "q"
    store = QuarantineStore(directory)
    path = _unindexed(store, directory, "index trouble")
    data = path.read_bytes()
    with sqlite3.connect(directory / "index.sqlite") as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages "
                   "BEGIN SELECT RAISE(ABORT, 'no room'); END")

    with pytest.raises(QuarantineError, match="no room"):
        store.expire(datetime.now(UTC) - timedelta(days=30))
    assert path.read_bytes() == data

    with sqlite3.connect(directory / "index.sqlite") as db:
        db.execute("DROP TRIGGER refuse")
    store.expire(datetime.now(UTC) - timedelta(days=30))
    assert store.raw(path.stem) == make_message(body="index trouble")
