"""The scoring processes behind the milter.

pymilter calls back in libmilter threads, and Python threads cannot score in parallel, so each
message is scored in one of a pool of worker processes that load the rules and open their store
connection once. A worker that overruns the per-message budget is killed and replaced, one that
died is replaced; the milter then applies `milter.on_error`. Workers are forked from a clean
fork server, never from the threaded milter process.

Each worker has its own pipe, and the libmilter thread that has a message writes the job into
an idle worker's pipe and waits on the answer itself. This replaced a pebble ProcessPool, whose
hand-off goes through two helper threads in the milter and an acknowledgement per task: under
load every thread hop waits for a CPU, and bench/milter.py measured ~0.5 ms of CPU per message
in that machinery plus a longer tail.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any

from mailsift.analysis import charsets
from mailsift.analysis.model import Envelope
from mailsift.classifier.filter import BayesFilter, StoreHealth
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import StoreError
from mailsift.config import Config
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from mailsift.training.autolearn import autolearn

log = logging.getLogger(__name__)

# Signals that stop the milter: libmilter waits for them in a thread of its own (sigwait), which
# only works when every other thread has them blocked.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


# Why scoring gave no verdict. The first two cost the worker (see _Lost).
WORKER_DIED, SCORING_TIMEOUT, SCORING_FAILED, NO_WORKER = (
    "worker_died", "scoring_timeout", "scoring_failed", "no_worker_free")
LOST = (WORKER_DIED, SCORING_TIMEOUT)
SCORING_FAILURES = (*LOST, SCORING_FAILED, NO_WORKER)


class ScoringError(Exception):
    """Scoring did not produce a verdict: overran its budget, the worker died, or it raised.

    `kind` is one of SCORING_FAILURES, a fixed word for the metrics' `reason` label: the text
    carries numbers (exit codes, seconds) and a worker's exception, which a label must not.
    """

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class Job:
    raw: bytes  # the headers and at most scan.max_bytes of body
    envelope: Envelope
    arrival: datetime
    outbound: bool = False  # judged by [outbound]: autolearned only if autolearn.outbound
    body_cut: bool = False  # more than blank space followed scan.max_bytes: see analysis.parse


@dataclass
class Scored:
    """A worker's answer: the verdict, and what it saw on the way, for the milter's metrics."""

    result: Result
    autolearned: str  # what autolearn did: see mailsift.training.autolearn


_scanner: Scanner | None = None
_bayes: BayesFilter | None = None


def _start_worker(config: Config, store_health: Any) -> None:
    """Runs once in each new worker: load the rules and open the store connection."""
    global _scanner, _bayes
    # The milter blocks its stop signals for libmilter's signal thread; a worker must stay killable.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    logging.basicConfig(level=logging.INFO, format="mailsift worker: %(levelname)s %(message)s")
    try:
        health = StoreHealth(store_health)
        _bayes = (BayesFilter(config.bayes, open_store(config.bayes), health,
                              subaddressing=config.subaddressing)
                  if config.bayes.enabled else None)
    except StoreError as exc:
        log.warning("Bayes disabled in this worker: %s", exc)
        _bayes = None
    _scanner = Scanner(config, bayes=_bayes)
    charsets.warm_up()
    gc.freeze()  # the rules live as long as the worker: keep full collections from rescanning them


def score_job(job: Job) -> Scored:
    assert _scanner is not None, "worker used before its initializer ran"
    msg = _scanner.analyse(job.raw, job.envelope, job.arrival, job.body_cut)
    result = _scanner.score(msg)
    learned = "no"
    config = _scanner.config.autolearn
    if _bayes is not None and (config.outbound or not job.outbound):
        learned = autolearn(msg, result, _bayes, config)
    return Scored(result, learned)


def start_process_helpers() -> None:
    """Start multiprocessing's fork server and resource tracker now, before stop signals are blocked.

    Starting the resource tracker unblocks SIGINT and SIGTERM in the calling thread (CPython does
    so on purpose); done later, it would undo the mask the milter's shutdown relies on.
    """
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    forkserver.ensure_running()


READY = "ready"  # a worker's first message: rules loaded, store opened


def _serve(conn: Connection, config: Config, store_health: Any) -> None:
    """A worker's life: load, say ready, then score each job that arrives until the pipe closes."""
    _start_worker(config, store_health)
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the milter closed the pipe or is gone: stop
            return
        try:
            reply: tuple[bool, Any] = (True, score_job(job))
        except Exception as exc:  # the message still needs an answer; the worker lives on
            log.exception("scoring failed")
            reply = (False, f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class _Lost(Exception):
    """The worker is unusable (dead or overran the budget) and must be replaced."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class _Worker:
    def __init__(self, context: ForkServerContext, config: Config, store_health: Any) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, config, store_health),
                                       name="mailsift-worker", daemon=True)
        self.process.start()
        child.close()
        self.ready = False  # its READY is read before the first job

    def ask(self, job: Job | None, deadline: float, budget: float) -> Any:
        """Send `job` (None: only wait until ready) and return the answer, within the deadline."""
        try:
            if not self.ready:
                self._receive(deadline, budget)
                self.ready = True
            if job is None:
                return None
            self.conn.send(job)
            return self._receive(deadline, budget)
        except (EOFError, OSError):
            self.process.join(1)
            raise _Lost(f"worker died (exit code {self.process.exitcode}); replaced", WORKER_DIED) from None

    def _receive(self, deadline: float, budget: float) -> Any:
        if not self.conn.poll(max(0.0, deadline - time.monotonic())):
            raise _Lost(f"scoring took longer than {budget:g}s; worker replaced", SCORING_TIMEOUT)
        return self.conn.recv()

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


@dataclass(eq=False)
class _Waiter:
    """A message waiting for a worker; the pool hands workers to waiters oldest first."""

    arrived: threading.Event = field(default_factory=threading.Event)
    worker: _Worker | None = None


class WorkerPool:
    def __init__(self, config: Config, replaced: Callable[[], None] = lambda: None) -> None:
        """`replaced` is called for every worker replaced, whether it died or overran with a
        message or died while idle (the milter's mailsift_worker_restarts_total): counted where
        a message failed only, the OOM killer's usual victim, an idle worker, went uncounted."""
        self.replaced = replaced
        self.size = config.milter.workers or os.cpu_count() or 1
        self.timeout = config.milter.timeout
        self.patience = self.timeout / 2  # the longest a message waits for a worker: see score()
        self.config = config
        self.context = multiprocessing.get_context("forkserver")
        # One store health for all workers: a dead Redis costs the pool one timeout, not one each.
        self.store_health = self.context.Value("d", 0.0)
        self.lock = threading.Lock()  # guards workers, idle and waiting
        self.workers = [self._spawn() for _ in range(self.size)]
        self.idle = list(self.workers)
        # First come, first served: threads blocking on a shared queue are woken in no set
        # order, and under load some messages waited for a worker far longer than others.
        self.waiting: deque[_Waiter] = deque()

    def _spawn(self) -> _Worker:
        return _Worker(self.context, self.config, self.store_health)

    def warm_up(self) -> None:
        """Wait until every worker is ready, so the first messages do not wait for rules to load."""
        deadline = time.monotonic() + 120
        for worker in self.workers:
            worker.ask(None, deadline, 120)

    def score(self, job: Job, waited: Callable[[float], None] = lambda seconds: None) -> Scored:
        """Score in an idle worker, all within `milter.timeout` (waiting for a free one included).

        A message waits for a worker at most half its budget; the other half is its own to be
        scored in. Had it waited longer, a healthy worker would get too little time, overrun, and
        be killed and replaced (rules reloaded) as too slow, just when the pool is overloaded.
        `waited` is told how long it waited: the milter's measure of a pool too small.
        """
        started = time.monotonic()
        deadline = started + self.timeout
        wait_until = started + self.patience
        try:
            worker = self._acquire(wait_until)
            while not worker.process.is_alive():  # died while idle (OOM killer, kill -9): no job lost
                log.warning("scoring worker %s had died (exit code %s); replaced",
                            worker.process.pid, worker.process.exitcode)
                self._replace(worker)
                worker = self._acquire(wait_until)
        finally:  # a message that got no worker waited too, the longest of all
            waited(time.monotonic() - started)
        try:
            ok, payload = worker.ask(job, deadline, self.timeout)
        except _Lost as exc:
            self._replace(worker)
            raise ScoringError(str(exc), exc.kind) from None
        self._release(worker)
        if not ok:
            raise ScoringError(f"scoring failed: {payload}", SCORING_FAILED)
        return payload  # type: ignore[no-any-return]

    def _acquire(self, wait_until: float) -> _Worker:
        """An idle worker, or the first one released before the monotonic time `wait_until`."""
        with self.lock:
            if self.idle:
                return self.idle.pop()
            waiter = _Waiter()
            self.waiting.append(waiter)
        waiter.arrived.wait(max(0.0, wait_until - time.monotonic()))
        with self.lock:
            if waiter.worker is None:
                self.waiting.remove(waiter)
                raise ScoringError(f"no scoring worker free within {self.patience:g}s "
                                   f"(half of milter.timeout)", NO_WORKER)
        return waiter.worker

    def _release(self, worker: _Worker) -> None:
        with self.lock:
            if self.waiting:
                waiter = self.waiting.popleft()
                waiter.worker = worker
                waiter.arrived.set()
            else:
                self.idle.append(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.stop()
        self.replaced()
        fresh = self._spawn()
        with self.lock:
            self.workers = [fresh if w is worker else w for w in self.workers]
        self._release(fresh)

    def close(self) -> None:
        """Close every pipe (an idle worker then exits by itself), then kill what is left."""
        for worker in self.workers:
            worker.conn.close()
        deadline = time.monotonic() + 10
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
