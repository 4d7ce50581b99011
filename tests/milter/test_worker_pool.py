"""The scoring pool with more messages at once than workers: none lost, none given another's verdict.

Every libmilter thread calls WorkerPool.score; with fewer workers than threads the callers queue
and are handed workers first come, first served. A mistake there (a verdict delivered to the wrong
caller, a waiter never woken after a worker was replaced) would only show under load, so these
tests use real worker processes and more concurrent callers than workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope
from mailsift.config import Config, parse_config
from mailsift.milter.workers import NO_WORKER, WORKER_DIED, Job, ScoringError, WorkerPool
from mailsift.scanner import Scanner
from tests.e2e.conftest import base_config
from tests.e2e.messages import QUARANTINE_MARK, REJECT_MARK, SLOW_MARK, TAG_MARK, make_message
from tests.support.redis_server import wait_until

CALLERS = 8
ENVELOPE = Envelope(client_ip="192.0.2.7", client_name="mx.example.net", helo="mx.example.net",
                    mail_from="alice@example.net", rcpt_to=["bob@example.com"], queue_id="Q1")
ARRIVAL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def pool_config(tmp_path: Path, rule_budget: float = 20.0, **milter: object) -> Config:
    data = base_config(tmp_path)
    data["milter"] = {**data["milter"], "workers": 1, **milter}
    data["bayes"]["enabled"] = False
    data["scan"]["rule_budget"] = rule_budget
    return parse_config(data, "test")


StartPool = Callable[[Config], WorkerPool]


@pytest.fixture
def make_pool() -> Iterator[StartPool]:
    """Started and warmed up (rules loaded in the workers); closed, workers and all, afterwards."""
    pools: list[WorkerPool] = []

    def start(config: Config) -> WorkerPool:
        pool = WorkerPool(config)
        pools.append(pool)
        pool.warm_up()
        return pool

    yield start
    for pool in pools:
        pool.close()


def job(raw: bytes) -> Job:
    return Job(raw, ENVELOPE, ARRIVAL)


def test_more_callers_than_workers_each_get_their_own_verdict(tmp_path: Path,
                                                             make_pool: StartPool) -> None:
    config = pool_config(tmp_path)
    kinds = [(), (TAG_MARK,), (QUARANTINE_MARK,), (REJECT_MARK,)]
    raws = [make_message(*kinds[i % len(kinds)], subject=f"Message {i}")[0] for i in range(24)]
    offline = Scanner(config)
    expected = [offline.scan(raw, ENVELOPE, ARRIVAL) for raw in raws]
    pool = make_pool(config)
    with ThreadPoolExecutor(CALLERS) as callers:
        scored = list(callers.map(lambda raw: pool.score(job(raw)), raws))
    assert [s.result.score for s in scored] == [e.score for e in expected]
    assert [s.result.rule_names for s in scored] == [e.rule_names for e in expected]
    assert len({e.score for e in expected}) == len(kinds), "the messages must score apart"


def test_worker_killed_with_messages_waiting_fails_only_its_own(tmp_path: Path,
                                                               make_pool: StartPool) -> None:
    """The message being scored gets ScoringError (the milter then applies on_error); the ones
    queued behind it are scored by the replacement worker, in time."""
    config = pool_config(tmp_path, timeout=30.0)
    pool = make_pool(config)
    slow = make_message(SLOW_MARK)[0]
    waiting = [make_message(TAG_MARK, subject=f"Waiting {i}")[0] for i in range(CALLERS - 1)]
    with ThreadPoolExecutor(CALLERS) as callers:
        busy: Future[object] = callers.submit(pool.score, job(slow))
        worker = _only_worker(pool)
        time.sleep(0.5)  # let the slow job reach the worker before the others queue
        queued = [callers.submit(pool.score, job(raw)) for raw in waiting]
        time.sleep(0.5)
        assert len(pool.waiting) == len(waiting)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(ScoringError) as lost:
            busy.result(timeout=30)
        assert lost.value.kind == WORKER_DIED
        results = [future.result(timeout=30) for future in queued]
    assert all("E2E_TAG" in r.result.rule_names for r in results)
    assert _only_worker(pool) != worker


def _only_worker(pool: WorkerPool) -> int:
    (worker,) = pool.workers
    assert worker.process.pid is not None
    return worker.process.pid


def test_message_that_waited_long_gives_up_instead_of_killing_a_healthy_worker(
        tmp_path: Path, make_pool: StartPool) -> None:
    """Overload: a message waits for a worker at most half of milter.timeout.

    The only worker is busy with a first message; a second, slow one (its rule takes the whole
    rule_budget, 2 s) queues behind it. Waiting until the worker is free, it would get it with
    too little of its 3 s timeout left, overrun, and have the healthy worker killed and replaced.
    It gives up after 1.5 s instead, on_error applies, and the worker lives on to score the first
    message and what comes next.

    The worker is kept busy by stopping it (SIGSTOP) while it holds the first message, not by a
    slow rule: the rule budget is CPU time, and a rule that spent 2 s of it took over 3 s on the
    clock with other processes on both cores, so the first message overran its own timeout and
    the worker was rightly replaced (4 failures in 4 runs beside two busy loops)."""
    config = pool_config(tmp_path, rule_budget=2.0, timeout=3.0)
    pool = make_pool(config)
    worker = _only_worker(pool)
    os.kill(worker, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(1) as caller:
            first = caller.submit(pool.score, job(make_message(TAG_MARK)[0]))
            wait_until(lambda: not pool.idle, "the first message to take the worker")
            started = time.monotonic()
            with pytest.raises(ScoringError) as gave_up:
                pool.score(job(make_message(SLOW_MARK)[0]))
            waited = time.monotonic() - started
            os.kill(worker, signal.SIGCONT)
            assert "E2E_TAG" in first.result(timeout=30).result.rule_names
    finally:
        with contextlib.suppress(ProcessLookupError):  # replaced (and reaped) if the test failed
            os.kill(worker, signal.SIGCONT)
    assert gave_up.value.kind == NO_WORKER
    assert "no scoring worker free within 1.5s" in str(gave_up.value)
    # Half the timeout, with a quarter of it to spare for a loaded machine: without the limit the
    # message would still be waiting at 3 s, when the first one's deadline replaces the worker.
    assert pool.patience <= waited < pool.timeout * 0.75, waited
    assert _only_worker(pool) == worker
    assert "E2E_TAG" in pool.score(job(make_message(TAG_MARK)[0])).result.rule_names
