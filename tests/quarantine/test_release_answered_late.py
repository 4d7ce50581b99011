"""A release whose writes the shared index (Redis) made but answered too late: a Redis that
stalls with a transaction read (a fork for a snapshot, a swapping host, a fail-over's pause)
runs its EXEC after the client gave up waiting. redis-py then runs the change's edit again on
the record that EXEC wrote, or the change raises IndexTimeout. The release recorded as begun
then refused itself ("may have been released", nothing sent) or raised NothingSent, leaving
the message "may have been released" until an admin's --again, and a recorded outcome was
written twice into the history, or reported as unrecorded.

The late answer is made without mocks: the index pauses writes (CLIENT PAUSE WRITE) until the
release's EXEC waits in it, then sleeps (DEBUG SLEEP) past the client's timeout, and on waking
lifts the pause, so the EXEC runs with nobody waiting for its answer."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailsift.config import parse_config
from mailsift.quarantine import redis_backend, review
from mailsift.quarantine.model import IndexTimeout, add_event
from mailsift.quarantine.redis_backend import RETRIES, RedisBackend
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.ports import LOOPBACK
from tests.support.redis_server import RedisServer, wait_until
from tests.support.sink import Received, SmtpSink

ANSWER_S = 0.3  # the index's socket timeout here (the backend's own is 5 s: ten times slower)
RECIPIENTS = ["jane@example.org", "bob@example.org"]
PAUSE_MS = 10_000  # longer than any test: the pause ends when the server wakes (answer_late)
# How late the EXEC's answer comes, in socket timeouts: before redis-py gives up reconnecting
# (it then runs the edit again), or after (the change raises IndexTimeout).
RETRIED, TIMED_OUT = 1.3, 2.5


@pytest.fixture(scope="module")
def stalling_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server a test may put to sleep (DEBUG SLEEP from loopback only)."""
    server = RedisServer(tmp_path_factory.mktemp("stalling-redis"), "--enable-debug-command",
                         "local")
    yield server
    server.stop()


def index_on(server: RedisServer, directory: Path, timeout: float = ANSWER_S) -> QuarantineStore:
    """A store on `server` whose client waits `timeout` for each answer, with the backend's
    retry."""
    with server.client() as client:
        client.flushall()
    backend = RedisBackend(functools.partial(redis.Redis, host=LOOPBACK, port=server.port,
                                             socket_timeout=timeout,
                                             retry=Retry(NoBackoff(), RETRIES)),
                           where=f"{LOOPBACK}:{server.port}")
    return QuarantineStore(directory, backend)


def answer_late(server: RedisServer, late_by: float | None) -> threading.Thread:
    """Hold the next write sent to `server` (a change's EXEC) and run it `late_by` socket
    timeouts after it came, answering a client that gave up; None: the server stops (SIGSTOP)
    with it held, as a hung host does, until `resume`. Returns the thread that does it."""
    client = server.client()
    client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")

    def stall() -> None:
        wait_until(lambda: client.info("clients")["blocked_clients"] > 0, "the EXEC to wait")
        if late_by is None:
            os.kill(server.process.pid, signal.SIGSTOP)
        else:  # one read of the server's: it sleeps, then lifts the pause and runs the EXEC
            pipe = client.pipeline(transaction=False)
            pipe.execute_command("DEBUG", "SLEEP", late_by * ANSWER_S)
            pipe.execute_command("CLIENT", "UNPAUSE")
            pipe.execute()
        client.close()

    stalling = threading.Thread(target=stall)
    stalling.start()
    return stalling


def resume(server: RedisServer) -> None:
    os.kill(server.process.pid, signal.SIGCONT)
    with server.client() as client:
        client.execute_command("CLIENT", "UNPAUSE")


@dataclass(frozen=True)
class Release:
    """What a release did: its return value or error, how long it took, the envelopes the
    release port got, and the message's record then."""

    outcome: Any
    took: float
    sent: list[tuple[str, ...]]
    record: dict[str, Any]

    @property
    def history(self) -> list[tuple[str, str]]:
        return [(e["action"], e["detail"]) for e in self.record["events"]]


def release_answered_late(server: RedisServer, directory: Path, late_by: float | None,
                          outcome_late: bool = False, timeout: float = ANSWER_S) -> Release:
    """Release a message held on `server` whose write is answered `late_by` (`answer_late`):
    the begun record's, or with `outcome_late` the one recording what was sent."""
    store = index_on(server, directory, timeout)
    held = store.put(make_message(), make_meta(RECIPIENTS))
    stalling: list[threading.Thread] = []

    def stall(_: Received | None = None) -> None:
        stalling.append(answer_late(server, late_by))

    with SmtpSink(on_receive=stall if outcome_late else None) as sink:
        config = parse_config({"quarantine": {"dir": str(directory),
                                              "release_via": f"{LOOPBACK}:{sink.port}"}}, "test")
        if not outcome_late:
            stall()
        began = time.monotonic()
        try:
            outcome: Any = review.release(config, store, held, "admin")
        except review.QuarantineError as exc:
            outcome = exc
        finally:
            took = time.monotonic() - began
            for thread in stalling:
                thread.join(10)
            if late_by is None:
                resume(server)
        sent = [m.recipients for m in sink.messages]
    return Release(outcome, took, sent, store.meta(held))


def test_a_release_whose_begun_record_was_answered_late_sends_once(
        stalling_redis: RedisServer, tmp_path: Path) -> None:
    """The edit ran again on the record its late EXEC wrote, read its own begun release as
    another's, and refused: "may have been released", nothing sent, until --again."""
    done = release_answered_late(stalling_redis, tmp_path / "q", RETRIED)
    assert done.took > ANSWER_S  # the answer was late
    assert (done.outcome, done.sent) == (RECIPIENTS, [tuple(RECIPIENTS)])
    assert (done.record["state"], done.record.get("releasing")) == ("released", None)
    assert done.history == [("released", "to jane@example.org, bob@example.org")]


def test_a_release_whose_begun_record_timed_out_leaves_the_message_held(
        stalling_redis: RedisServer, tmp_path: Path) -> None:
    """The change raised IndexTimeout (NothingSent, rightly: nothing went) with the record
    written: the message read "may have been released" of mail never sent."""
    done = release_answered_late(stalling_redis, tmp_path / "q", TIMED_OUT)
    assert isinstance(done.outcome, review.NothingSent), done.outcome
    assert str(done.outcome).endswith("TimeoutError: Timeout reading from socket")
    assert done.sent == []
    assert (done.record["state"], done.record.get("releasing"), done.history) == ("held", None, [])


def test_a_release_that_cannot_take_back_its_begun_record_says_so(
        stalling_redis: RedisServer, tmp_path: Path) -> None:
    """The index hangs with the begun record's EXEC read: whether it will run it is unknown,
    and taking it back fails too. The admin is told nothing went and what to do if the message
    reads "may have been released". (A shorter timeout: four waits of it.)"""
    done = release_answered_late(stalling_redis, tmp_path / "q", None, timeout=ANSWER_S / 2)
    assert isinstance(done.outcome, review.NothingSent), done.outcome
    assert str(done.outcome).endswith(
        "TimeoutError: Timeout reading from socket; nothing was sent, but the index may have "
        'recorded the release as begun: if the message reads "may have been released", send '
        f"it with `mailsift quarantine release {done.record['id']} --again`")
    assert done.sent == []


@pytest.mark.parametrize("late_by", [RETRIED, TIMED_OUT])
def test_a_release_recorded_late_is_recorded_once_and_not_called_unrecorded(
        stalling_redis: RedisServer, tmp_path: Path, late_by: float) -> None:
    """The record of a release sent, answered late: its edit ran again and wrote a second
    history line, or the release raised IndexTimeout ("the message shows as may have been
    released") of a release the index had recorded."""
    done = release_answered_late(stalling_redis, tmp_path / "q", late_by, outcome_late=True)
    assert done.took > ANSWER_S  # the answer was late
    assert (done.outcome, done.sent) == (RECIPIENTS, [tuple(RECIPIENTS)])
    assert (done.record["state"], done.record.get("releasing")) == ("released", None)
    assert done.history == [("released", "to jane@example.org, bob@example.org")]


def test_a_change_while_the_index_pauses_writes_gives_up_within_its_bound(
        stalling_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Redis that pauses writes (CLIENT PAUSE WRITE: a fail-over, or an admin) answers the
    WATCH and the read and holds each EXEC; redis-py took every EXEC that timed out for a lost
    watch and ran the change again, for as long as the pause lasted (a release or a delete
    waited as long, whatever the docstring's 15 s). It now raises IndexTimeout once CHANGE_S
    have gone by (here four socket timeouts), and the EXECs it gave up on are not run later."""
    monkeypatch.setattr(redis_backend, "CHANGE_S", 4 * ANSWER_S, raising=False)  # old code: none
    store = index_on(stalling_redis, tmp_path / "q")
    held = store.put(make_message(), make_meta(RECIPIENTS))
    tries: list[float] = []

    def edit(record: dict[str, Any]) -> None:
        tries.append(time.monotonic())
        add_event(record, "admin", "learned", "as ham")

    with stalling_redis.client() as admin:
        admin.execute_command("CLIENT", "PAUSE", 4_000, "WRITE")
        began = time.monotonic()
        try:
            with pytest.raises(IndexTimeout) as gave_up:
                store.change(held, edit)
        finally:
            took = time.monotonic() - began
            admin.execute_command("CLIENT", "UNPAUSE")
    assert took < 4 * ANSWER_S + 3 * ANSWER_S, took  # the bound and the try under way, not 4 s
    assert str(gave_up.value).endswith("the change was not taken within 1.2s (are writes "
                                       "paused, as in a fail-over?)"), gave_up.value
    assert 2 <= len(tries) <= 6, tries
    time.sleep(0.2)  # an EXEC it gave up on would run as the pause ends
    assert store.meta(held)["events"] == []
