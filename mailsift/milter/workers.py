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

import atexit
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
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
from mailsift.rules.model import RuleSet
from mailsift.rules.result import Result
from mailsift.scanner import Scanner, load_ruleset
from mailsift.training.autolearn import autolearn, learns_from

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


def _start_worker(config: Config, store_health: Any, ruleset: RuleSet) -> None:
    """Runs once in each new worker: compile the pool's rules and open the store connection."""
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
    _scanner = Scanner(config, bayes=_bayes, ruleset=ruleset)
    charsets.warm_up()
    gc.freeze()  # the rules live as long as the worker: keep full collections from rescanning them


def score_job(job: Job) -> Scored:
    assert _scanner is not None, "worker used before its initializer ran"
    msg = _scanner.analyse(job.raw, job.envelope, job.arrival, job.body_cut)
    result = _scanner.score(msg)
    learned = "no"
    config = _scanner.config.autolearn
    if _bayes is not None and learns_from(config, job.outbound):
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
NOT_STARTED = "not started"  # or (NOT_STARTED, why): it could not load


def _serve(conn: Connection, setup: Connection, store_health: Any) -> None:
    """A worker's life: take the config and rules from `setup`, load them, say ready, then score
    each job that arrives on `conn` until the pipe closes (see _Worker for why they come apart)."""
    try:
        config, ruleset = setup.recv()
    except (EOFError, OSError):  # the pool closed, or gave up on this start: nothing to say
        return
    finally:
        setup.close()
    try:
        _start_worker(config, store_health, ruleset)
    except Exception as exc:  # the pool logs why and tries again later (see WorkerPool._failed)
        _answer(conn, (NOT_STARTED, f"{type(exc).__name__}: {exc}"))
        return
    if not _answer(conn, READY):
        return
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
        if not _answer(conn, reply):
            return


def _answer(conn: Connection, what: Any) -> bool:
    """Send `what` to the pool; False if the pool closed the pipe (the milter stopping, or the
    pool closed after a reload): the worker then ends without a word. Raised, the BrokenPipeError
    reached the journal as a traceback, from a worker that had finished loading as the milter
    stopped, and an admin read it as a crash."""
    try:
        conn.send(what)
    except OSError:  # BrokenPipeError, or the pipe already gone
        return False
    return True


class _Lost(Exception):
    """The worker is unusable (dead or overran the budget) and must be replaced."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class PoolStartError(Exception):
    """The pool's workers could not all load the rules (warm_up): start-up or a reload fails."""


START_TIMEOUT_S = 120.0  # a worker still loading after this is killed: a start that hangs
# A worker that could not start is tried again after 1 s, then 2, 4 ... up to a minute: a cause
# that lasts (memory too short for the rules, the OOM killer picking each new worker) must not
# become a loop of processes loading rules, and a passing one costs seconds. The waits start
# again from 1 s once no start has failed for twice the longest.
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
RETRY_RESET_S = 2 * RETRY_MAX_S
LOADS_KEPT = 5  # the starts WorkerPool.load_s goes by
# At a stop, messages being scored get this long to finish, so their verdicts reach Postfix;
# what is still scoring then gets milter.on_error. Short beside systemd's TimeoutStopSec (15 s),
# of which libmilter takes up to ~5 s to notice the signal; most messages take milliseconds.
STOP_GRACE_S = 2.0
STOPPING = "not scored: the milter is stopping"


class _Worker:
    """One scoring process and the pool's end of its pipe.

    The config and rules reach it through a pipe of their own once it runs (set_up), not among
    the Process arguments: Process.start writes those into a pipe and returns only once the
    new process has read all but the pipe's 64 KiB, which it does as it imports mailsift, about
    half of its start; a ruleset of some size (SpamAssassin's is megabytes) is far more. A
    worker that hung there (its imports on a disk that stopped answering, memory so short the
    host thrashes) held Process.start for good, before the pool knew its pid or when it began:
    it was never killed at START_TIMEOUT_S nor tried again, and every message waited half its
    budget for it. Process.start now returns at once, and start_by bounds the whole start."""

    def __init__(self, context: ForkServerContext, store_health: Any, replacement: bool) -> None:
        self.launched = time.monotonic()  # when its start began: see WorkerPool.load_s
        self.conn, child = context.Pipe()
        setup, self._setup = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, args=(child, setup, store_health),
                                       name="mailsift-worker", daemon=True)
        self.process.start()
        child.close()
        setup.close()
        self.start_by = time.monotonic() + START_TIMEOUT_S
        self.replacement = replacement  # started in place of one that died or overran
        self.scored = False  # has answered a message

    def set_up(self, config: Config, ruleset: RuleSet) -> None:
        """Send what the worker loads, in the starting thread: this waits until the worker
        reads it. The pipe is this thread's alone, so stop() closes nothing under it; a worker
        killed meanwhile (hung, the pool closing) ends the wait with an error, and the watcher
        says why it did not start."""
        try:
            self._setup.send((config, ruleset))
        except OSError:
            pass
        finally:
            self._setup.close()

    def ask(self, job: Job, deadline: float, budget: float) -> Any:
        """Send `job` to this ready worker and return its answer, within the deadline."""
        try:
            self.conn.send(job)
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                raise _Lost(f"scoring took longer than {budget:g}s; worker replaced", SCORING_TIMEOUT)
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            raise _Lost(f"worker died (exit code {self.process.exitcode}); replaced", WORKER_DIED) from None

    def started(self) -> str | None:
        """Its first message, read once its pipe has something (or closed): None if it is ready,
        else what went wrong, as 'could not start: ...'."""
        try:
            first = self.conn.recv()
        except (EOFError, OSError):
            first = None
        if first == READY:
            return None
        self.process.join(1)
        if isinstance(first, tuple) and first[0] == NOT_STARTED:
            return f"could not start: {first[1]}"
        return f"could not start: it exited while loading ({_exit_text(self.process.exitcode)})"

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


def _exit_text(code: int | None) -> str:
    """How a process ended, in words: a kill -9 or the OOM killer shows as 'killed by signal 9'."""
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(eq=False)
class _Waiter:
    """A message waiting for a worker; the pool hands workers to waiters oldest first."""

    until: float  # the monotonic time it gives up
    arrived: threading.Event = field(default_factory=threading.Event)
    worker: _Worker | None = None
    refused: str | None = None  # woken without a worker: none can come (see _refuse_waiters)


class WorkerPool:
    """`size` workers, each idle (ready, free), busy with a message, starting (loading the rules)
    or due to be replaced. A thread of the pool's own watches the idle and starting ones: it
    replaces a worker that dies while idle as it dies (a replacement that never scored, after a
    wait: see _died_idle), and hands a new one to the messages only once it has said it is
    ready, so no message pays for a replacement's start."""

    def __init__(self, config: Config, replaced: Callable[[], None] = lambda: None,
                 ruleset: RuleSet | None = None) -> None:
        """`replaced` is called for every worker replaced, whether it died or overran with a
        message, died while idle or could not start (the milter's
        mailsift_worker_restarts_total).

        Every worker, the replacements too, scores with `ruleset` (else the rules as read now):
        a replacement that read the files again used an edit not yet reloaded, or a local.cf
        saved half-way, and scored unlike the rest of the pool."""
        self.replaced = replaced
        self.ruleset = load_ruleset(config) if ruleset is None else ruleset
        self.size = config.milter.workers or os.cpu_count() or 1
        self.timeout = config.milter.timeout
        self.patience = self.timeout / 2  # the longest a message waits for a worker: see score()
        self.config = config
        self.context = multiprocessing.get_context("forkserver")
        # One store health for all workers: a dead Redis costs the pool one timeout, not one each.
        self.store_health = self.context.Value("d", 0.0)
        self.lock = threading.Lock()  # guards every list below and the failure fields
        self.changed = threading.Condition(self.lock)  # a worker became ready or could not start
        self.workers: list[_Worker] = []  # each started and not yet replaced, in every state
        self.idle: list[_Worker] = []
        self.busy: set[_Worker] = set()  # each holding a message
        self.starting: list[_Worker] = []
        self.due: list[tuple[float, _Worker | None]] = []  # (monotonic time, worker) to replace then
        self.launching = 0  # starts in Process.start (see _start), not yet in `starting`
        self.loads: deque[float] = deque(maxlen=LOADS_KEPT)  # seconds from start to ready: load_s
        self.start_failure: str | None = None  # what befell the last worker to start, if it failed
        self.start_failures = 0  # in a row: each doubles the wait before the next try
        self.last_failure = -RETRY_RESET_S
        # First come, first served: threads blocking on a shared queue are woken in no set
        # order, and under load some messages waited for a worker far longer than others.
        self.waiting: deque[_Waiter] = deque()
        self.closed = False
        self.warm = False  # warm_up saw every worker ready: see _failed
        self.draining = False  # replaced by a reload: see drain
        self._wake_read, self._wake_write = os.pipe()  # tells the watcher the lists changed
        os.set_blocking(self._wake_write, False)
        self.watcher = threading.Thread(target=self._watch, name="mailsift-workers", daemon=True)
        self.watcher.start()
        # Closed at exit if nobody closed it (the pool a reload was starting when SIGTERM came),
        # before multiprocessing's own exit handler (registered earlier, so run later) kills
        # its workers: the watcher took those deaths for workers to replace, and started new
        # processes as the milter ended.
        atexit.register(self.close)
        for _ in range(self.size):
            self._start(None)

    def _start(self, worker: _Worker | None) -> None:
        """Start a worker, in place of `worker` if one, in a thread of its own: handing it the
        pool's rules waits until the new process has read them, about half of its start (0.5 s
        here; see _Worker). The watcher must not wait on that, nor the starts of several
        workers on each other."""
        with self.lock:
            self.launching += 1
        threading.Thread(target=self._renew, args=(worker,), name="mailsift-worker-start",
                         daemon=True).start()

    def warm_up(self) -> None:
        """Wait until every worker is ready, so the first messages do not wait for rules to load.
        PoolStartError if one could not start: start-up (or the reload) fails, saying why."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.idle) >= self.size
                                  or self.start_failure is not None, START_TIMEOUT_S)
            if len(self.idle) < self.size:
                if self.start_failure is not None:
                    raise PoolStartError(f"a scoring worker {self.start_failure}")
                raise PoolStartError(f"the scoring workers were not ready within "
                                     f"{START_TIMEOUT_S:g}s")
            self.warm = True

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
            while not worker.process.is_alive():  # died idle, just before the watcher saw it
                log.warning("scoring worker %s had died (%s); replaced",
                            worker.process.pid, _exit_text(worker.process.exitcode))
                self._replace(worker)
                worker = self._acquire(wait_until)
        finally:  # a message that got no worker waited too, the longest of all
            waited(time.monotonic() - started)
        try:
            ok, payload = worker.ask(job, deadline, self.timeout)
        except _Lost as exc:
            if self.closed:  # close() ended it after STOP_GRACE_S: nothing is replaced
                self._forget(worker)
                raise ScoringError(f"{STOPPING}, and scoring did not end within "
                                   f"{STOP_GRACE_S:g}s", exc.kind) from None
            self._replace(worker)
            raise ScoringError(str(exc), exc.kind) from None
        worker.scored = True
        self._release(worker)
        if not ok:
            raise ScoringError(f"scoring failed: {payload}", SCORING_FAILED)
        return payload  # type: ignore[no-any-return]

    def _acquire(self, wait_until: float) -> _Worker:
        """An idle worker, or the first one released before the monotonic time `wait_until`.

        A message waits, within its half of the budget (see score), for a worker that may reach
        it in that time: one scoring another message, one loading the rules, or a replacement
        or a retry due to start before it gives up. With none (the last start failed and the
        next try is further off, or a draining pool lost its workers) it gets on_error at once:
        waiting would only hold its SMTP session (and a libmilter thread) longer. Before, a
        retry in its first half second (Process.start, see _start) counted as a worker scoring
        a message and one loading after that as none, and a retry a second away as none too:
        of messages a moment apart one waited and was scored, the next got on_error."""
        with self.lock:
            if self.closed:
                raise ScoringError(STOPPING, NO_WORKER)
            if self.idle:
                worker = self.idle.pop()
                self.busy.add(worker)
                return worker
            why = self._none_coming(wait_until)
            if why is not None:
                raise ScoringError(why, NO_WORKER)
            waiter = _Waiter(wait_until)
            self.waiting.append(waiter)
        waiter.arrived.wait(max(0.0, wait_until - time.monotonic()))
        with self.lock:
            if waiter.worker is None:
                if waiter in self.waiting:
                    self.waiting.remove(waiter)
                raise ScoringError(waiter.refused or self._waited_for_nothing(), NO_WORKER)
        return waiter.worker

    def _waited_for_nothing(self) -> str:
        """Why a message waited half its budget and got no worker (call with the lock held):
        all were busy (the pool too small for the mail), or none was and one was still loading,
        far longer than a start takes here. That one has hung, and is killed at START_TIMEOUT_S
        (120 s); until then every message read the words of an overload, and an admin added
        workers."""
        waited = f"no scoring worker free within {self.patience:g}s (half of milter.timeout)"
        if self.busy or not self.starting:
            return waited
        loading = time.monotonic() - min(worker.launched for worker in self.starting)
        return (f"{waited}: none is scoring, one has been loading the rules for {loading:.0f}s "
                f"(a start takes {self.load_s():.1f}s here)")

    def load_s(self) -> float:
        """How long a start takes here, from Process.start to "ready", by the pool's own
        measure: the quickest of its last LOADS_KEPT starts (0 before the first). It grows with
        the ruleset (0.1 to 0.6 s with the shipped rules on two cores, seconds with
        SpamAssassin's, or where each worker compiles them) and with the host's load. The
        quickest, so that a message is refused only when even such a start cannot reach it: a
        refusal costs the message milter.on_error, a wait only time."""
        return min(self.loads, default=0.0)

    def _none_coming(self, until: float) -> str | None:
        """Why no worker can reach a message that waits until the monotonic time `until`, or
        None if one may (call with the lock held). See _acquire.

        A worker not yet started or loading counts if it can be ready by then (load_s): a
        retry due just before `until` counted as reaching the message, which then waited for a
        worker that needed ~0.6 s more to load and gave up at `until` all the same. One loading
        longer than load_s counts until it is killed as hung (START_TIMEOUT_S): it may be slow."""
        if self.idle or self.busy:
            return None
        load, now = self.load_s(), time.monotonic()
        if (any(w.launched + load <= until for w in self.starting)
                or (self.launching and now + load <= until)
                or any(at + load <= until for at, _ in self.due)):
            return None
        if self.draining:
            return "no scoring worker left in the pool a reload replaced (its workers died)"
        if self.start_failure is not None:
            return f"no scoring worker ready: one {self.start_failure}"
        if self.starting or self.launching or self.due:
            return (f"no scoring worker ready in time: the one starting cannot have loaded the "
                    f"rules within the half of milter.timeout a message may wait (a start takes "
                    f"{load:.1f}s here)")
        return None

    def _refuse_waiters(self) -> None:
        """Wake each waiting message that no worker can reach before it gives up (call with the
        lock held): one waiting for a start that then failed waited out half its budget for
        nothing, then read 'no scoring worker free', not why."""
        for waiter in list(self.waiting):
            waiter.refused = self._none_coming(waiter.until)
            if waiter.refused is not None:
                self.waiting.remove(waiter)
                waiter.arrived.set()

    def _release(self, worker: _Worker) -> None:
        with self.lock:
            if self.waiting:
                waiter = self.waiting.popleft()
                waiter.worker = worker
                self.busy.add(worker)
                waiter.arrived.set()
            else:
                self.busy.discard(worker)
                self.idle.append(worker)
                # warm_up counts the idle ones: woken before this append (as it was, by
                # _started), it could find one short, wait again, and time out with all ready.
                self.changed.notify_all()

    def _replace(self, worker: _Worker) -> None:
        """Kill a worker lost with a message; the watcher starts its replacement (none in a
        draining pool)."""
        worker.stop()
        with self.lock:
            self.busy.discard(worker)
            if self.draining:
                self._refuse_waiters()
            else:
                self._schedule(worker, 0.0)

    def _forget(self, worker: _Worker) -> None:
        """A worker lost with a message as the pool closes: killed, and close() may be waiting
        for it. One whose message ran out of its budget during the grace runs on with its rule
        unless killed, and close() waited up to 10 s more for it to end."""
        worker.process.kill()
        with self.changed:
            self.busy.discard(worker)
            self.changed.notify_all()

    def _schedule(self, worker: _Worker | None, delay: float) -> None:
        """Have the watcher start a worker in place of `worker` in `delay` seconds (call with
        the lock held)."""
        self.due.append((time.monotonic() + delay, worker))
        self._wake()

    def drain(self) -> None:
        """A reload replaced this pool's service: new messages go to the new pool, and this one
        is closed when those it holds are surely done (Reloader). Its messages in flight finish
        on the workers they have, and it starts none: it replaced a worker that died meanwhile
        (up to milter.timeout + 5 s, and each back-off retry), loading rules for no message and
        counting each in mailsift_worker_restarts_total beside the new pool's."""
        with self.lock:
            self.draining = True
            self.due = []  # their workers are dead or stopped: close() tidies them
            self._refuse_waiters()

    def _wake(self) -> None:
        """Have the watcher look again (call with the lock held: never once the pipe is closed)."""
        if not self.closed:
            with contextlib.suppress(BlockingIOError):  # full: it has plenty to wake it already
                os.write(self._wake_write, b".")

    def _watch(self) -> None:
        """The pool's own thread: notice a death or a start in its workers, as it happens."""
        while not self.closed:
            try:
                self._watch_once()
            except Exception:  # a mistake here must not leave the pool unwatched for good
                log.exception("scoring workers' watcher")
                time.sleep(1)

    def _watch_once(self) -> None:
        with self.lock:
            watched: dict[Any, _Worker] = {w.process.sentinel: w for w in self.idle}
            watched.update((w.conn, w) for w in self.starting)
            wake_at = [at for at, _ in self.due] + [w.start_by for w in self.starting]
        timeout = max(0.0, min(wake_at) - time.monotonic()) if wake_at else None
        for ready in multiprocessing.connection.wait([self._wake_read, *watched], timeout):
            if ready == self._wake_read:
                os.read(self._wake_read, 4096)
            elif isinstance(ready, Connection):
                self._started(watched[ready])
            else:
                self._died_idle(watched[ready])
        if not self.closed:
            self._replace_due()

    def _died_idle(self, worker: _Worker) -> None:
        with self.lock:
            if worker not in self.idle:  # a message took it first, and will find it dead
                return
            self.idle.remove(worker)
        worker.process.join(1)
        how = _exit_text(worker.process.exitcode)
        if self.draining:
            log.warning("scoring worker %s of the configuration before the reload had died while "
                        "idle (%s); not replaced, as its pool is closing", worker.process.pid, how)
            return
        if worker.replacement and not worker.scored:  # replaced at once, it may only die again
            self._failed(worker, f"died while idle before it scored a message ({how})")
            return
        log.warning("scoring worker %s had died while idle (%s); starting a replacement",
                    worker.process.pid, how)
        with self.lock:
            self._schedule(worker, 0.0)

    def _started(self, worker: _Worker) -> None:
        why = worker.started()
        with self.lock:
            self.starting.remove(worker)
        if why is None:
            with self.lock:
                self.start_failure = None
                self.loads.append(time.monotonic() - worker.launched)
            self._release(worker)  # which wakes warm_up once the worker is idle
        else:
            self._failed(worker, why)

    def _failed(self, worker: _Worker | None, what: str) -> None:
        """A worker could not start, or a replacement died before it did any work: log `what`
        ('could not start: why'), and try again later, each time a little later.

        Not before the pool is warm: warm_up raises `what` and the start-up or the reload fails,
        saying it, and the pool is closed. The pool logged "trying again in 1s (meanwhile a
        message with no worker ready gets milter.on_error)" just before the milter exited (or
        the reload kept the running workers), of a try and messages that never came."""
        now = time.monotonic()
        with self.changed:
            self.start_failure = what
            self.changed.notify_all()
            if not self.warm:
                return
            if self.draining:  # closing: nothing is tried again
                self._refuse_waiters()
                return
            if now - self.last_failure > RETRY_RESET_S:
                self.start_failures = 0
            self.last_failure = now
            self.start_failures += 1
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self.start_failures - 1))
            self._schedule(worker, delay)
            self._refuse_waiters()
        log.error("a scoring worker %s; trying again in %gs (meanwhile a message no worker can "
                  "reach within half of milter.timeout gets milter.on_error)", what, delay)

    def _replace_due(self) -> None:
        """Start a replacement for each worker whose time has come; kill a start that hangs."""
        now = time.monotonic()
        with self.lock:
            ready = [worker for at, worker in self.due if at <= now and not self.draining]
            self.due = [(at, worker) for at, worker in self.due if at > now]
            hung = [worker for worker in self.starting if worker.start_by <= now]
            self.starting = [worker for worker in self.starting if worker not in hung]
        for worker in hung:
            worker.stop()
            self._failed(worker, f"could not start: it was still loading after {START_TIMEOUT_S:g}s")
        for replaced in ready:
            if replaced is not None:
                self.replaced()
            self._start(replaced)

    def _renew(self, worker: _Worker | None) -> None:
        """In a thread of its own (see _start): start a worker, in place of `worker` if one."""
        if worker is not None:
            worker.stop()
        try:
            fresh = _Worker(self.context, self.store_health, replacement=worker is not None)
        except Exception as exc:  # no process to be had (the fork server gone, no memory)
            self._launched()
            self._failed(worker, f"could not start: no process: {type(exc).__name__}: {exc}")
            return
        with self.lock:
            listed = not self.closed
            if listed:
                self.workers = [w for w in self.workers if w is not worker] + [fresh]
                self.starting.append(fresh)
                self.launching -= 1
                self._wake()
        if listed:
            fresh.set_up(self.config, self.ruleset)  # once start_by bounds it: see _Worker
            return
        fresh.stop()  # the pool was closed meanwhile: before close() goes on (see there)
        self._launched()

    def _launched(self) -> None:
        """A start in _renew is over without a worker for the pool; close() may be waiting."""
        with self.changed:
            self.launching -= 1
            self.changed.notify_all()

    def close(self, grace_until: float | None = None) -> None:
        """Stop the watcher, let the messages being scored finish (_finish_in_flight) until the
        monotonic time `grace_until` (default: STOP_GRACE_S from now), kill the workers still
        starting or scoring, close every pipe (an idle worker then exits by itself), then kill
        what is left. Closing twice is harmless. At a stop every pool shares one grace
        (daemon.run): closed one after the other, a pool a reload replaced and still draining
        gave its slow message 2 s, and then the running pool gave its own 2 s more.

        A start under way is waited for (its thread kills what it started) and one loading is
        killed, not left to finish: the milter stopping during a reload then exited with new
        processes still reading their arguments, whose shared value's semaphore multiprocessing
        removes at exit (FileNotFoundError), or loading the rules, to say "ready" into a closed
        pipe; each printed a traceback into the journal."""
        atexit.unregister(self.close)
        with self.lock:
            if self.closed:
                return
            self._wake()
            self.closed = True
        self.watcher.join(10)
        scoring = self._finish_in_flight(time.monotonic() + STOP_GRACE_S if grace_until is None
                                         else grace_until)
        deadline = time.monotonic() + 10
        with self.changed:
            while self.launching and self.changed.wait(max(0.0, deadline - time.monotonic())):
                pass
            os.close(self._wake_read)
            os.close(self._wake_write)
            starting = list(self.starting)
        for worker in starting:
            worker.stop()
        for worker in scoring:  # its message gets on_error: see score()
            worker.process.kill()
        for worker in self.workers:
            worker.conn.close()
        deadline = time.monotonic() + 10
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()

    def _finish_in_flight(self, grace_until: float) -> list[_Worker]:
        """At a stop: refuse the messages waiting for a worker, wait until the monotonic time
        `grace_until` for those being scored, and return the workers still scoring. close()
        closed their pipes and then waited up to 10 s for them: a message in flight lost its
        verdict all the same and met on_error, or Postfix's milter_default_action when the wait
        ran out, logged as 'worker died (exit code 0); replaced' though nothing died or was
        replaced; and a stop during a reload, whose compile slows every worker, took those 10 s."""
        with self.changed:
            for waiter in self.waiting:
                waiter.refused = STOPPING
                waiter.arrived.set()
            self.waiting.clear()
            self.changed.wait_for(lambda: not self.busy, max(0.0, grace_until - time.monotonic()))
            return list(self.busy)
