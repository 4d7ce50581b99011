"""One message released, or deleted, by two processes at once: the web UI and `quarantine
release` (or `delete`), or two web UI processes, on one index."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from mailsift.config import Config, parse_config
from mailsift.quarantine import review
from mailsift.quarantine.model import QuarantineError
from mailsift.quarantine.store import QuarantineStore
from mailsift.quarantine.text import show_text
from tests.quarantine.conftest import make_message, make_meta
from tests.support.ports import LOOPBACK
from tests.support.sink import Received, SmtpSink

DONE, REFUSED = 0, 3  # how an acting child ends: it did it, or it was refused (already done)
# Children come from multiprocessing's fork server, a process of one thread: os.fork of this
# one copied whatever lock another of its threads (the SMTP sink's, pytest's) held at that
# moment into a child that could then wait on it for ever.
CHILDREN = multiprocessing.get_context("forkserver")


def test_two_processes_releasing_one_message_at_once_send_one_copy(tmp_path: Path) -> None:
    """Release chose its recipients from a record read before it recorded itself, and only the
    releases of one process took turns: two processes both read "held", both recorded their
    release and both sent, so every recipient got two copies. Here two forked processes
    release the same message while another process holds the index's write lock, so that each
    gets as far as it can before the other writes; the recipients are chosen in the release's
    own write transaction now, so one process sends and the other is refused (AlreadyReleased),
    as a second release in one process is."""
    directory = tmp_path / "q"
    with SmtpSink() as sink:
        config = parse_config({"quarantine": {"dir": str(directory),
                                              "release_via": f"{LOOPBACK}:{sink.port}"}}, "test")
        with held_by_a_writing_process(directory) as held:
            children = [act_in_a_child(_release, config, directory, held) for _ in range(2)]
            time.sleep(0.5)  # each child goes as far as it can before a write
        for child in children:
            child.join(30)
        ends = [child.exitcode for child in children]
        assert None not in ends, "a releasing process did not end in 30 s"
        assert sorted(ends) == [DONE, REFUSED]
        assert [m.recipients for m in sink.messages] == [("jane@example.org", "bob@example.org")]
    record = QuarantineStore(directory).meta(held)
    assert (record["state"], record["released_to"]) == ("released", ["bob@example.org",
                                                                     "jane@example.org"])
    assert [e["action"] for e in record["events"]] == ["released"]


@contextmanager
def held_by_a_writing_process(directory: Path) -> Iterator[str]:
    """A message quarantined by another process (the milter's), which then holds the index's
    write lock (readers go on, writers wait) until the block ends; the message's id."""
    here, there = CHILDREN.Pipe()
    writer = CHILDREN.Process(target=_hold_the_write_lock, args=(directory, there))
    writer.start()
    there.close()
    try:
        held = here.recv() if here.poll(30) else ""
        assert held, f"the writing process did not hold the lock (exit {writer.exitcode}; stderr)"
        yield held
    finally:
        with suppress(OSError):  # the writer may be gone already
            here.send("done")
        here.close()
        writer.join(30)


def _hold_the_write_lock(directory: Path, parent: Connection) -> None:
    """In the writing process: quarantine a message, hold the write lock until `parent` says
    (or is gone)."""
    held = QuarantineStore(directory).put(make_message(), make_meta(
        ["jane@example.org", "bob@example.org"]))
    with closing(sqlite3.connect(directory / "index.sqlite", isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        parent.send(held)
        with suppress(EOFError):
            parent.recv()
        db.execute("ROLLBACK")


def act_in_a_child(action: Callable[..., None], *args: object) -> BaseProcess:
    """A process that runs `action(*args)` (a module-level function: the fork server pickles
    it), once it is running: it ends with DONE, REFUSED (the action's sys.exit), or 1 and the
    traceback on stderr for anything else. It is waited for until it is about to act, so that
    the caller's wait starts from there, as it did with the quicker os.fork."""
    here, there = CHILDREN.Pipe()
    child = CHILDREN.Process(target=_act, args=(action, args, there))
    child.start()
    there.close()
    assert here.poll(30), f"the acting process did not start (exit {child.exitcode}; stderr)"
    here.close()
    return child


def _act(action: Callable[..., None], args: tuple[object, ...], parent: Connection) -> None:
    parent.send("acting")
    action(*args)


def _release(config: Config, directory: Path, message_id: str) -> None:
    try:
        review.release(config, QuarantineStore(directory), message_id, "admin")
    except review.AlreadyReleased:
        sys.exit(REFUSED)


def test_two_processes_deleting_one_message_at_once_record_one_delete(tmp_path: Path) -> None:
    """Delete checked "not deleted yet" on a record read before its write: two processes both
    passed it and the history said "deleted" twice, by both. Two processes delete while
    another holds the index's write lock, as for releases above: the check and the record are
    one change now, so the second is refused."""
    directory = tmp_path / "q"
    with held_by_a_writing_process(directory) as held:
        children = [act_in_a_child(_delete, directory, held) for _ in range(2)]
        time.sleep(0.5)  # each child goes as far as it can before a write
    for child in children:
        child.join(30)
    assert sorted(child.exitcode for child in children) == [DONE, REFUSED]
    record = QuarantineStore(directory).meta(held)
    assert record["state"] == "deleted"
    assert [e["action"] for e in record["events"]] == ["deleted"]
    assert not (directory / f"{held}.msg").exists()


def _delete(directory: Path, message_id: str) -> None:
    try:
        QuarantineStore(directory).delete(message_id, "admin")
    except QuarantineError as exc:
        if "already deleted" not in str(exc):
            raise
        sys.exit(REFUSED)


def test_a_release_still_being_sent_reads_so_elsewhere(tmp_path: Path) -> None:
    """While one process sends a release (the sink holds its DATA), another (`quarantine show`,
    the web UI's message page, a second release's refusal) reads the record it left, which
    said only that "the quarantine index failed or the release was stopped": an alarm about a
    release going as it should. The words now fit both."""
    directory = tmp_path / "q"
    held = QuarantineStore(directory).put(make_message(), make_meta(["jane@example.org"]))
    taken, done = threading.Event(), threading.Event()

    def hold_data(received: Received) -> None:
        taken.set()
        done.wait(10)

    with SmtpSink(on_receive=hold_data) as sink:
        config = parse_config({"quarantine": {"dir": str(directory),
                                              "release_via": f"{LOOPBACK}:{sink.port}"}}, "test")
        sending = threading.Thread(target=review.release,
                                   args=(config, QuarantineStore(directory), held, "admin"))
        sending.start()
        try:
            assert taken.wait(10), "the release never reached the sink"
            shown = show_text(QuarantineStore(directory).meta(held))
        finally:
            done.set()
            sending.join(10)
    assert re.search(r"^Released\?:   May have been released at .* \(by admin\): it began, and "
                     r"whether the mail was sent is not recorded: it is still being sent, or ",
                     shown, re.M), shown
    assert QuarantineStore(directory).meta(held)["state"] == "released"
