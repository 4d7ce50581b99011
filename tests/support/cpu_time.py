"""CPU time of a piece of work, for tests that bound what hostile input may cost.

Such a bound guards a real limit (a crafted archive must not cost a message seconds), so it sits
a few times above the work's own cost and far below what the slow way cost. A full collection of
Python's garbage collector, landing in the window, is not the work's: it walks the whole heap,
which with the suite's 2,449 tests collected took 130 to 155 ms of CPU, 16 to 62 with
test_archives.py alone; one in the window of six reads measured at 22 ms made them 53 to 57 ms,
and that test failed its 80 ms bound now and then. So the collector is held off while the work
runs. It is not run first either: that would cost the full collection each time and change
nothing measured, as nothing of the heap is looked at with the collector off. Time other
processes spend does not count (process CPU time, not wall time), though a loaded machine still
slows the work itself: the worst tar headers, 75 ms, took up to 123 with the collector off and
other processes on both cores, so a bound keeps three times the work's cost at least.

Some bounds are on waiting, not working (a dead server must cost a message no timeout): they are
wall time, `wall_time`, the collector held off too, as a full collection in a window that should
take a millisecond is most of what the bound allows.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu_time(work: Callable[[], T], repeats: int = 1) -> tuple[T, float]:
    """What `work` returns and the CPU seconds it took, the least of `repeats` runs. The least
    is the work's cost with the least noise (caches, a busy core's neighbour), for bounds of a
    few milliseconds; `work` must then do the same each time (a fresh budget, say). What the
    last run returned is returned."""
    result, least = _timed(work)
    for _ in range(repeats - 1):
        result, seconds = _timed(work)
        least = min(least, seconds)
    return result, least


def wall_time(work: Callable[[], T]) -> tuple[T, float]:
    """What `work` returns and the seconds it took on the clock, for a bound on what it waits
    (a timeout, a server that does not answer): the clock its promise is made on."""
    return _timed(work, time.monotonic)


def _timed(work: Callable[[], T], clock: Callable[[], float] = time.process_time) -> tuple[T, float]:
    """What `work` returns and its seconds by `clock`, the collector off meanwhile (as it was,
    after)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        started = clock()
        result = work()
        return result, clock() - started
    finally:
        if enabled:
            gc.enable()
