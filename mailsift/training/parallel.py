"""A process pool for runs over many messages (learning, evaluation) that survives its workers.

The stdlib pool waits forever for the results of a worker that died (a crash in a C library, the
kernel's OOM killer): one bad message hung a whole `mailsift learn`. pebble's pool replaces the
worker and fails its task; here the items of a task that died, overran its time or raised are
then tried one by one, so only an item that also fails alone is lost, and the caller decides
what that means (learning: an unusable file; evaluation: an error).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from pebble import ProcessExpired, ProcessPool

from mailsift.batches import batched

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

CHUNK = 16  # items per task: a task's hand-off costs about as much as analysing a message
WINDOW = 16  # tasks in flight per worker: enough to keep them busy while the caller stores results
# A task takes ~15 ms; only an item that hangs (or a stalled disk) gets near this.
TASK_SECONDS = 60.0


@dataclass(frozen=True)
class Failure:
    why: str  # "its process died (exit code -9)", "took longer than 60 s", or the exception


class WorkerStartError(Exception):
    """The workers cannot start (say, the rules do not load), so no item can be processed.

    A worker whose initializer raised would exit and be restarted over and over, and the pool
    could wait forever (pebble sometimes does, the stdlib pool always did); instead the failure
    is kept and raised by every task, and the run stops with it."""


_start_error: WorkerStartError | None = None


class SurvivingPool(Generic[In, Out]):
    """`map(items)` runs `func` on each item in worker processes forked from this one, each
    started with `initializer(*initargs)`, and yields (item, result or Failure) in item order."""

    def __init__(self, func: Callable[[In], Out], initializer: Callable[..., None],
                 initargs: Sequence[Any]) -> None:
        self.func = func
        self.workers = os.cpu_count() or 1
        self.pool = ProcessPool(self.workers, initializer=_start, initargs=(initializer, initargs),
                                context=multiprocessing.get_context("fork"))

    def __enter__(self) -> SurvivingPool[In, Out]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        if exc is None:
            self.pool.close()  # let the workers finish and exit
        else:
            self.pool.stop()
        self.pool.join()

    def map(self, items: Iterable[In]) -> Iterator[tuple[In, Out | Failure]]:
        window: deque[tuple[list[In], Future[list[Out]]]] = deque()
        for chunk in batched(items, CHUNK):
            window.append((chunk, self.pool.schedule(_run_chunk, (self.func, chunk),
                                                     timeout=TASK_SECONDS)))
            if len(window) > WINDOW * self.workers:
                yield from self._results(*window.popleft())
        while window:
            yield from self._results(*window.popleft())

    def _results(self, chunk: list[In], future: Future[list[Out]]) -> Iterator[tuple[In, Out | Failure]]:
        try:
            results: list[Out | Failure] = list(future.result())
        except WorkerStartError:
            raise
        except Exception as exc:  # whatever went wrong, the items get a second try each
            log.warning("a task of %d items failed (%s); trying them one by one", len(chunk), _why(exc))
            results = [self._alone(item) for item in chunk]
        return zip(chunk, results, strict=True)

    def _alone(self, item: In) -> Out | Failure:
        try:
            return self.pool.schedule(_run_chunk, (self.func, [item]), timeout=TASK_SECONDS).result()[0]
        except WorkerStartError:
            raise
        except Exception as exc:  # the caller decides what a lost item means
            return Failure(_why(exc))


def _start(initializer: Callable[..., None], initargs: Sequence[Any]) -> None:
    """In a new worker: run the caller's initializer, keeping its failure for the tasks."""
    global _start_error
    try:
        initializer(*initargs)
    except Exception as exc:  # raised again by every task of this worker: see WorkerStartError
        _start_error = WorkerStartError(f"{type(exc).__name__}: {exc}")


def _run_chunk(func: Callable[[In], Out], chunk: list[In]) -> list[Out]:
    if _start_error is not None:
        raise _start_error
    return [func(item) for item in chunk]


def _why(exc: BaseException) -> str:
    if isinstance(exc, ProcessExpired):
        return f"its process died (exit code {exc.exitcode})"
    if isinstance(exc, FutureTimeout):
        return f"took longer than {TASK_SECONDS:g} s"
    return f"{type(exc).__name__}: {exc}"
