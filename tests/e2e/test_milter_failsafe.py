"""What happens to mail when something breaks (issue Done-when 2), through a real Postfix.

The promise under test: no message is ever lost — each one sent is delivered at the sink,
quarantined, or refused with an SMTP error the client saw — and the outcome is the configured
one (`milter.on_error`, `milter_default_action`), with the error logged next to the queue id.

How each failure is provoked without any test hook in the milter:
- a worker dying mid-message: `kill -9` of the worker process that is burning CPU on our
  message (found through /proc: the milter's descendants, the one using a whole core);
- a rule misbehaving: a .cf rule cannot raise, so the equivalent is a catastrophically slow
  regex (E2E_SLOW in rules/e2e.cf), cut off by `scan.rule_budget` or, when the budget is larger
  than `milter.timeout`, by the milter's timeout;
- the Bayes store going away: a private redis-server, or the node of a private Redis Cluster
  that holds the store, stopped between two messages;
- the milter being down: nothing listening on the milter port.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import SUBJECT_TAG, Mta
from tests.e2e.messages import QUARANTINE_MARK, SLOW_MARK, TAG_MARK, make_message
from tests.support.milter_process import MilterProcess
from tests.support.postfix import PostfixInstance
from tests.support.procs import alive, busy_process, children
from tests.support.redis_server import RedisClusterServers, RedisServer
from tests.support.smtp_client import Sent

BOB = "bob@example.com"
StartMilter = Callable[..., MilterProcess]


def assert_accounted_for(mta: Mta, milter: MilterProcess | None,
                         sent: dict[str, Sent]) -> dict[str, str]:
    """Where each message went: "delivered", "quarantined" or "refused <code>"; never nowhere."""
    mta.settle()
    where: dict[str, str] = {}
    for message_id, reply in sent.items():
        if not reply.accepted:
            assert reply.code >= 400, f"{message_id}: neither accepted nor refused: {reply.reply}"
            assert not mta.sink.find(message_id), f"{message_id} refused ({reply.reply}) yet delivered"
            where[message_id] = f"refused {reply.code}"
        elif mta.sink.find(message_id):
            where[message_id] = "delivered"
        elif milter is not None and mta.quarantined(milter, message_id):
            where[message_id] = "quarantined"
        else:
            raise AssertionError(f"{message_id} was accepted ({reply.reply}) but is neither at the "
                                 f"sink nor in quarantine: lost\n{mta.postfix.log_tail()}")
    return where


def error_logged(milter: MilterProcess, queue_id: str) -> str:
    """The milter's error line naming this queue id."""
    pattern = re.compile(rf"\b{re.escape(queue_id)}\b.*error|error.*\b{re.escape(queue_id)}\b",
                         re.IGNORECASE)
    return milter.wait_for_log(pattern, timeout=10).string


def send_in_background(mta: Mta, raw: bytes, to: str) -> tuple[threading.Thread, list[Sent]]:
    result: list[Sent] = []
    thread = threading.Thread(target=lambda: result.append(mta.send(raw, to)), daemon=True)
    thread.start()
    return thread, result


def assert_scored_normally_after(mta: Mta) -> None:
    """The pool recovered: the next message is scored (tagged), not handled by on_error."""
    raw, message_id = make_message(TAG_MARK)
    sent = mta.send(raw, BOB)
    assert sent.accepted, sent.reply
    received = mta.delivered(message_id)
    assert received.header("Subject") == f"{SUBJECT_TAG} Meeting notes"
    assert "error" not in (received.header("X-Spam-Status") or "")


def assert_on_error_outcome(mta: Mta, milter: MilterProcess, on_error: str, sent: Sent,
                            message_id: str) -> None:
    """accept: delivered untagged with `X-Spam-Status: ... error`; tempfail: 451 at the client."""
    if on_error == "tempfail":
        assert sent.code == 451, sent.reply
        assert sent.text.startswith("4.")
        assert mta.not_delivered(message_id)
        queue_id = mta.queue_id(message_id)
    else:
        assert sent.accepted, sent.reply
        received = mta.delivered(message_id)
        status = received.headers("X-Spam-Status")
        assert len(status) == 1 and status[0].endswith("error"), status
        assert received.header("Subject") == "Meeting notes"  # no verdict, so no tag
        queue_id = sent.queue_id
    assert queue_id is not None
    error_logged(milter, queue_id)


@pytest.mark.parametrize("on_error", ["accept", "tempfail"])
def test_worker_killed_mid_message_applies_on_error(
        mta: Mta, start_milter: StartMilter, on_error: str) -> None:
    """kill -9 of the scoring worker: the message gets the configured outcome, the pool recovers."""
    # The slow rule keeps the worker busy for up to rule_budget seconds: time to find and kill it.
    milter = start_milter({"milter": {"workers": 1, "timeout": 30.0, "on_error": on_error},
                           "scan": {"rule_budget": 20.0}})
    raw, message_id = make_message(TAG_MARK, SLOW_MARK)
    thread, result = send_in_background(mta, raw, BOB)
    worker = busy_process(milter.workers(), timeout=15)
    os.kill(worker, signal.SIGKILL)
    thread.join(timeout=30)
    assert result, "the SMTP client got no reply within 30 s"
    assert_on_error_outcome(mta, milter, on_error, result[0], message_id)
    assert_scored_normally_after(mta)
    assert_accounted_for(mta, milter, {message_id: result[0]})


def test_worker_that_died_while_idle_is_replaced_without_failing_a_message(
        mta: Mta, start_milter: StartMilter) -> None:
    """A worker killed between messages (the OOM killer, say): the next message is scored
    normally by its replacement, not handled by on_error, and the death is logged."""
    milter = start_milter({"milter": {"workers": 1, "on_error": "tempfail"}})
    assert_scored_normally_after(mta)  # the worker is up and has scored once
    kill_the_idle_worker(milter)
    assert_scored_normally_after(mta)
    assert any("had died" in line for line in milter.lines), milter.log


def kill_the_idle_worker(milter: MilterProcess) -> None:
    """kill -9 the only scoring worker of a milter (milter.workers = 1) between messages, as
    the OOM killer would, and return once it is gone."""
    # Workers are forked by the fork server, the milter's child: they are its grandchildren.
    workers = [pid for child in children(milter.pid) for pid in children(child)]
    assert len(workers) == 1, f"expected one worker under the fork server, found {workers}"
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("on_error", ["accept", "tempfail"])
def test_scoring_slower_than_milter_timeout_applies_on_error(
        mta: Mta, start_milter: StartMilter, on_error: str) -> None:
    milter = start_milter({"milter": {"workers": 1, "timeout": 1.0, "on_error": on_error},
                           "scan": {"rule_budget": 20.0}})
    started_workers = milter.mark()
    # Forged in our name (Postfix's myhostname): mail accepted unscored loses it too
    forged = ("Authentication-Results", f"{mta.postfix.hostname}; dkim=pass header.d=bank.example")
    raw, message_id = make_message(TAG_MARK, SLOW_MARK, headers=[forged])
    started = time.monotonic()
    sent = mta.send(raw, BOB)
    assert time.monotonic() - started < 10, "milter.timeout (1 s) did not bound the scan"
    assert_on_error_outcome(mta, milter, on_error, sent, message_id)
    if on_error == "accept":
        assert mta.delivered(message_id).headers("Authentication-Results") == []
    # The replacement loads its rules first. On a loaded machine that took more than this
    # test's 1 s milter.timeout (20 s by default), and the next message met on_error waiting
    # for it: the pool had recovered, the message was early.
    milter.wait_for_log(r"^mailsift worker: .*score set 2:", start=started_workers)
    assert_scored_normally_after(mta)
    assert_accounted_for(mta, milter, {message_id: sent})


def test_slow_rule_is_cut_off_by_rule_budget_and_message_is_scored(
        mta: Mta, start_milter: StartMilter) -> None:
    """The slow rule counts as not hit, is logged by name, and the other rules still decide."""
    milter = start_milter({"scan": {"rule_budget": 0.3}, "milter": {"timeout": 20.0}})
    raw, message_id = make_message(TAG_MARK, SLOW_MARK)
    started = time.monotonic()
    sent = mta.send(raw, BOB)
    assert time.monotonic() - started < 10
    assert sent.accepted, sent.reply
    received = mta.delivered(message_id)
    assert received.header("Subject") == f"{SUBJECT_TAG} Meeting notes"
    status = received.header("X-Spam-Status") or ""
    assert "E2E_TAG" in status and "E2E_SLOW" not in status and "error" not in status
    milter.wait_for_log(re.compile(r"E2E_SLOW.*budget"), timeout=5)


@dataclass
class BayesRedis:
    """Where the milter's Bayes store lives, and the server that holds it, to be stopped."""

    settings: dict[str, object]
    holder: RedisServer


@pytest.fixture(params=["redis", "redis-cluster"])
def bayes_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BayesRedis]:
    """A private redis-server, or a private three-node Redis Cluster whose node holding the
    store (the slot of the default prefix) is the one the test stops."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_for_bayes")
        yield BayesRedis({"store": server.url}, server)
        return
    cluster = RedisClusterServers(tmp_path / "cluster")
    try:
        nodes = [f"{host}:{port}" for host, port in cluster.seeds]
        yield BayesRedis({"store": "redis://", "cluster_nodes": nodes},
                         cluster.owner("{mailsift:}totals"))
    finally:
        cluster.stop()


def test_redis_stopped_mid_run_mail_flows_scored_by_rules_with_one_warning(
        mta: Mta, start_milter: StartMilter, bayes_redis: BayesRedis) -> None:
    # Two workers: the "one warning" is for the pool, not one per worker.
    milter = start_milter({"bayes": {**bayes_redis.settings, "timeout": 0.5},
                           "milter": {"workers": 2}})
    sent: dict[str, Sent] = {}
    raw, first = make_message()
    sent[first] = mta.send(raw, BOB)
    assert sent[first].accepted, sent[first].reply
    mta.delivered(first)
    with bayes_redis.holder.client() as client:
        assert client.dbsize() > 0, "the store was not used while it was up"

    bayes_redis.holder.stop()
    mark = milter.mark()
    ham, ham_id = make_message()
    spam, spam_id = make_message(TAG_MARK)
    ham2, ham2_id = make_message()
    for raw, message_id in ((ham, ham_id), (spam, spam_id), (ham2, ham2_id)):
        started = time.monotonic()
        sent[message_id] = mta.send(raw, BOB)
        assert time.monotonic() - started < 5, "a dead store held the message up"
        assert sent[message_id].accepted, sent[message_id].reply
    assert mta.delivered(ham_id).header("X-Spam-Flag") == "NO"
    tagged = mta.delivered(spam_id)
    assert tagged.header("Subject") == f"{SUBJECT_TAG} Meeting notes"
    assert "error" not in (tagged.header("X-Spam-Status") or "")
    warnings = [line for line in milter.lines[mark:] if re.search(r"(?i)warn", line)]
    store_warnings = [line for line in warnings if re.search(r"(?i)store|redis", line)]
    assert len(store_warnings) == 1, warnings
    assert set(assert_accounted_for(mta, milter, sent).values()) == {"delivered"}


@pytest.mark.parametrize(("on_error", "index"), [("accept", "redis"), ("tempfail", "redis"),
                                                ("tempfail", "redis-cluster")])
def test_quarantine_index_stopped_mid_run_gives_on_error_quickly(
        mta: Mta, start_milter: StartMilter, tmp_path: Path, on_error: str, index: str) -> None:
    """The shared quarantine index (Redis, or the node of a Redis Cluster that holds it) dies: a
    message to be quarantined can be neither held nor dropped, so it gets milter.on_error,
    logged with its queue id, within seconds; mail below the quarantine band flows on."""
    servers: RedisServer | RedisClusterServers
    if index == "redis":
        servers = holder = RedisServer(tmp_path / "index")
        settings: dict[str, object] = {"index": holder.url}
    else:
        servers = RedisClusterServers(tmp_path / "cluster")
        holder = servers.owner("{mailsift:quarantine:}time")
        settings = {"index": "redis://", "cluster_nodes": [f"{h}:{p}" for h, p in servers.seeds]}
    try:
        milter = start_milter({"quarantine": settings, "milter": {"on_error": on_error}})
        raw, _ = make_message(QUARANTINE_MARK)
        assert mta.send(raw, BOB).accepted  # answered after the milter stored it
        with holder.client() as client:
            assert client.dbsize() > 0, "the index was not used while it was up"
        holder.stop()
        _quarantine_with_the_index_dead(mta, milter, on_error)
    finally:
        servers.stop()


def _quarantine_with_the_index_dead(mta: Mta, milter: MilterProcess, on_error: str) -> None:
    sent: dict[str, Sent] = {}
    spam, spam_id = make_message(QUARANTINE_MARK)
    started = time.monotonic()
    sent[spam_id] = mta.send(spam, BOB)
    assert time.monotonic() - started < 2, "a dead quarantine index held the message up"
    ham, ham_id = make_message()
    sent[ham_id] = mta.send(ham, BOB)
    assert sent[ham_id].accepted and mta.delivered(ham_id).header("X-Spam-Flag") == "NO"
    if on_error == "tempfail":
        assert sent[spam_id].code == 451, sent[spam_id].reply
    else:
        assert sent[spam_id].accepted, sent[spam_id].reply
        assert (mta.delivered(spam_id).header("X-Spam-Status") or "").endswith("error")
        milter.wait_for_log(re.compile(rf"{sent[spam_id].queue_id}: quarantine store unavailable"),
                            timeout=5)
    outcomes = assert_accounted_for(mta, milter, sent)
    assert outcomes[ham_id] == "delivered"


def test_dead_milter_with_default_action_tempfail_defers_mail(
        mta: Mta, postfix: PostfixInstance, milter_port: int) -> None:
    """Nothing listens on the milter port: Postfix answers 451, the client keeps the message."""
    postfix.set_milter(f"inet:127.0.0.1:{milter_port}", "tempfail")
    raw, message_id = make_message(TAG_MARK)
    sent = mta.send(raw, BOB)
    assert sent.code == 451 and sent.text.startswith("4.7.1"), sent.reply
    assert assert_accounted_for(mta, None, {message_id: sent}) == {message_id: "refused 451"}


def test_dead_milter_with_default_action_accept_delivers_unscanned(
        mta: Mta, postfix: PostfixInstance, milter_port: int) -> None:
    postfix.set_milter(f"inet:127.0.0.1:{milter_port}", "accept")
    try:
        offset = postfix.log_offset()
        raw, message_id = make_message(TAG_MARK)
        sent = mta.send(raw, BOB)
        assert sent.accepted, sent.reply
        assert mta.delivered(message_id).header("X-Spam-Flag") is None
        assert f"connect to Milter service inet:127.0.0.1:{milter_port}: Connection refused" \
            in postfix.log_text(since=offset)
    finally:
        postfix.set_milter(f"inet:127.0.0.1:{milter_port}", "tempfail")


def test_hung_redis_costs_only_the_first_message_a_timeout(
        mta: Mta, start_milter: StartMilter, redis_for_bayes: RedisServer) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP: a hung or overloaded host).

    The first message pays up to `bayes.timeout`; after that the store is not touched for a
    while, so the following messages go through at normal speed, scored by rules.
    """
    store_timeout = 1.0
    milter = start_milter({"bayes": {"store": redis_for_bayes.url, "timeout": store_timeout},
                           "milter": {"workers": 2}})
    raw, first = make_message()
    assert mta.send(raw, BOB).accepted
    mta.delivered(first)
    os.kill(redis_for_bayes.process.pid, signal.SIGSTOP)
    try:
        mark = milter.mark()
        took: list[float] = []
        sent: dict[str, Sent] = {}
        for marks in [(), (), (TAG_MARK,), ()]:
            raw, message_id = make_message(*marks)
            started = time.monotonic()
            sent[message_id] = mta.send(raw, BOB)
            took.append(time.monotonic() - started)
            assert sent[message_id].accepted, sent[message_id].reply
            mta.delivered(message_id)
        assert took[0] < store_timeout * 3 + 2, took
        assert max(took[1:]) < store_timeout * 0.8, f"later messages waited for the store: {took}"
        assert set(assert_accounted_for(mta, milter, sent).values()) == {"delivered"}
        store_warnings = [line for line in milter.lines[mark:]
                          if re.search(r"(?i)warn.*(store|redis)", line)]
        assert len(store_warnings) == 1, store_warnings
    finally:
        os.kill(redis_for_bayes.process.pid, signal.SIGCONT)



def test_hung_quarantine_index_costs_only_the_first_message_to_quarantine_a_wait(
        mta: Mta, start_milter: StartMilter, redis_for_bayes: RedisServer) -> None:
    """The shared quarantine index stops answering (SIGSTOP). Each message to quarantine waited
    out the index's timeouts, about 10 s, before milter.on_error; now only the first does, the
    next ones get on_error at once, and one warning names the index."""
    index = redis_for_bayes
    milter = start_milter({"quarantine": {"index": index.url}, "milter": {"on_error": "tempfail"}})
    raw, _ = make_message(QUARANTINE_MARK)
    assert mta.send(raw, BOB).accepted
    os.kill(index.process.pid, signal.SIGSTOP)
    try:
        mark = milter.mark()
        took: list[float] = []
        sent: dict[str, Sent] = {}
        for _ in range(3):
            raw, message_id = make_message(QUARANTINE_MARK)
            started = time.monotonic()
            sent[message_id] = mta.send(raw, BOB)
            took.append(time.monotonic() - started)
            assert sent[message_id].code == 451, sent[message_id].reply
        assert max(took[1:]) < 1, f"later messages waited for the index: {took}"
        assert set(assert_accounted_for(mta, milter, sent).values()) == {"refused 451"}
        warnings = [line for line in milter.lines[mark:] if re.search(r"(?i)warn.*quarantine", line)]
        assert len(warnings) == 1 and f"redis at 127.0.0.1:{index.port}" in warnings[0], warnings
    finally:
        os.kill(index.process.pid, signal.SIGCONT)


def test_sigterm_stops_the_milter_and_its_workers(mta: Mta, start_milter: StartMilter) -> None:
    """systemd's stop: exit status 0 within seconds, and no scoring process left behind."""
    milter = start_milter()
    raw, message_id = make_message()
    assert mta.send(raw, BOB).accepted
    mta.delivered(message_id)
    workers = milter.workers()
    assert workers, "no scoring processes found under the milter"
    started = time.monotonic()
    status = milter.stop()
    took = time.monotonic() - started
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [pid for pid in workers if alive(pid)]
    for pid in orphans:  # ours: started by this test's milter
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"scoring processes {orphans} outlived the milter"
    assert not milter.killed and took < 10, f"SIGTERM took {took:.1f} s"
    assert status == 0, f"exit status {status} (negative: killed by that signal)\n{milter.log}"
