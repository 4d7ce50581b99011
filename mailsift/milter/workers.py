"""The scoring processes behind the milter.

pymilter calls back in libmilter threads, and Python threads cannot score in parallel, so each
message is scored in one of a pool of worker processes that load the rules and open their store
connection once. The pool (pebble) kills a worker that overruns the per-message budget and
starts a fresh one, and reports a worker that died; the milter then applies `milter.on_error`.
Workers are forked from a clean fork server, never from the threaded milter process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pebble import ProcessExpired, ProcessPool

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


class ScoringError(Exception):
    """Scoring did not produce a verdict: overran its budget, the worker died, or it raised."""

    def __init__(self, reason: str, worker_lost: bool = False) -> None:
        super().__init__(reason)
        self.worker_lost = worker_lost


@dataclass
class Job:
    raw: bytes  # the headers and at most scan.max_bytes of body
    envelope: Envelope
    arrival: datetime


@dataclass
class Scored:
    result: Result
    autolearned: str
    store_down: bool


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
        _bayes = (BayesFilter(config.bayes, open_store(config.bayes), health)
                  if config.bayes.enabled else None)
    except StoreError as exc:
        log.warning("Bayes disabled in this worker: %s", exc)
        _bayes = None
    _scanner = Scanner(config, bayes=_bayes)


def score_job(job: Job) -> Scored:
    assert _scanner is not None, "worker used before its initializer ran"
    msg = _scanner.analyse(job.raw, job.envelope, job.arrival)
    result = _scanner.score(msg)
    learned = "no"
    if _bayes is not None:
        learned = autolearn(msg, result, _bayes, _scanner.config.autolearn)
    return Scored(result, learned, _bayes is not None and _bayes.store_down)


def start_process_helpers() -> None:
    """Start multiprocessing's fork server and resource tracker now, before stop signals are blocked.

    Starting the resource tracker unblocks SIGINT and SIGTERM in the calling thread (CPython does
    so on purpose); done later, it would undo the mask the milter's shutdown relies on.
    """
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    forkserver.ensure_running()


class WorkerPool:
    def __init__(self, config: Config) -> None:
        self.size = config.milter.workers or os.cpu_count() or 1
        self.timeout = config.milter.timeout
        context = multiprocessing.get_context("forkserver")
        # One store health for all workers: a dead Redis costs the pool one timeout, not one each.
        self.store_health = context.Value("d", 0.0)
        self.pool = ProcessPool(max_workers=self.size, initializer=_start_worker,
                                initargs=(config, self.store_health), context=context)

    def warm_up(self) -> None:
        """Start every worker now, so the first messages do not wait for rules to load."""
        futures = [self.pool.schedule(os.getpid) for _ in range(self.size)]
        for future in futures:
            future.result(timeout=120)

    def score(self, job: Job) -> Scored:
        future = self.pool.schedule(score_job, args=(job,), timeout=self.timeout)
        try:
            return future.result()
        except FutureTimeout:
            raise ScoringError(f"scoring took longer than {self.timeout:g}s; worker replaced",
                               worker_lost=True) from None
        except ProcessExpired as exc:
            raise ScoringError(f"worker died ({exc}); replaced", worker_lost=True) from None
        except Exception as exc:  # anything the scan raised: the message must still be handled
            log.exception("scoring failed")
            raise ScoringError(f"scoring failed: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.pool.close()
        self.pool.join(timeout=10)
