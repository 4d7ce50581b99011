"""One message deleted by two processes at once (the web UI and `quarantine delete`)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from mailsift.quarantine.model import QuarantineError
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.test_concurrent_release import held_by_a_writing_process

DELETED, REFUSED = 0, 3  # how a deleting child ends: it deleted, or "already deleted" refused it


def test_two_processes_deleting_one_message_at_once_record_one_delete(tmp_path: Path) -> None:
    """Delete checked "not deleted yet" on a record read before its write: two processes both
    passed it and the history said "deleted" twice, by both. Two forked processes delete while
    another holds the index's write lock (as test_concurrent_release does for releases): the
    check and the record are one change now, so the second is refused."""
    directory = tmp_path / "q"
    with held_by_a_writing_process(directory) as held:
        children = [delete_in_a_child(directory, held) for _ in range(2)]
        time.sleep(0.5)  # each child goes as far as it can before a write
    ends = sorted(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children)
    assert ends == [DELETED, REFUSED]
    record = QuarantineStore(directory).meta(held)
    assert record["state"] == "deleted"
    assert [e["action"] for e in record["events"]] == ["deleted"]
    assert not (directory / f"{held}.msg").exists()


def delete_in_a_child(directory: Path, message_id: str) -> int:
    """Fork a process that deletes the message with a store of its own; its pid. It ends with
    DELETED or REFUSED, or 1 and the traceback on stderr for anything else."""
    child = os.fork()
    if child:
        return child
    end = 1  # pragma: no cover - runs in the child
    try:
        QuarantineStore(directory).delete(message_id, "admin")
        end = DELETED
    except BaseException as exc:
        if isinstance(exc, QuarantineError) and "already deleted" in str(exc):
            end = REFUSED
        else:
            traceback.print_exc(file=sys.stderr)
    finally:
        os._exit(end)
