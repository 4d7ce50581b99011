"""Several processes opening one new file at the same moment, as a milter's workers do on a fresh
install: races in creating a file show only when the opens really coincide, so each round lines
the processes up at a barrier first. One round of one process runs a single child (as another
user, say) and reports what it raised."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import threading
from collections.abc import Callable

from mailsift.quarantine.local import INDEX_WRITER
from mailsift.quarantine.local import WRITER_IDLE_S as INDEX_WRITER_IDLE_S

CONTEXT = multiprocessing.get_context("fork")  # the opener may be a closure


def _open(opener: Callable[[int], object], round_: int, start: multiprocessing.synchronize.Barrier,
          failures: multiprocessing.queues.SimpleQueue[str]) -> None:
    start.wait()
    try:
        opener(round_)
    except Exception as exc:  # any failure to open is what the caller looks for
        failures.put(f"{type(exc).__name__}: {exc}")


def _wait_for_index_writers() -> None:
    """fork copies the calling thread alone, and a lock another thread holds stays held in the
    child for good. An earlier test's quarantine index writer, closing its SQLite connection
    when idle, held SQLite's allocator mutex at one fork: the child hung in sqlite3.connect, the
    test failed after its 60 s, and pytest then waited forever for that child at exit."""
    for thread in threading.enumerate():
        if thread.name == INDEX_WRITER:
            thread.join(INDEX_WRITER_IDLE_S + 5)


def failures_opening_together(opener: Callable[[int], object], rounds: int = 20,
                              processes: int = 3) -> list[str]:
    """Run `opener(round)` in `processes` processes at once, for each round; what failed."""
    _wait_for_index_writers()
    failures = CONTEXT.SimpleQueue()
    for round_ in range(rounds):
        start = CONTEXT.Barrier(processes)
        # daemonic: a child that hangs fails the test below and is killed, never waited for
        openers = [CONTEXT.Process(target=_open, args=(opener, round_, start, failures), daemon=True)
                   for _ in range(processes)]
        for process in openers:
            process.start()
        for process in openers:
            process.join(timeout=60)
            if process.exitcode is None:
                process.kill()
            assert process.exitcode == 0
    found = []
    while not failures.empty():
        found.append(failures.get())
    return found
