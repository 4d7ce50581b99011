"""Process lookups through /proc: which children a daemon has, and whether a PID is really alive.

Postfix's master and the milter fork their own workers; tests find those by parent PID (never by
name across the machine, so nothing that another test or engineer started is ever touched).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _stat(pid: int | str) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may itself contain spaces and parentheses
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1])


def children(parent: int, name: str | None = None) -> set[int]:
    """PIDs whose parent is `parent` (and whose command name is `name`, if given)."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat and stat[2] == parent and (name is None or stat[0] == name) and stat[1] != "Z":
            found.add(int(entry.name))
    return found


def descendants(parent: int) -> set[int]:
    """Children, grandchildren, ... of `parent`."""
    found: set[int] = set()
    todo = [parent]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a zombie has finished for our purposes)."""
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process in clock ticks (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)


def busy_process(pids: set[int], timeout: float = 10.0, window: float = 0.2) -> int:
    """The PID among `pids` that burns the most CPU right now (at least a quarter of a core).

    How a test finds the worker that is scoring its message, without any hook in the code under
    test: an idle worker uses no CPU, the one running a regex all it gets. That is a whole core
    on a quiet machine but only its share on a busy one: beside four busy loops on two cores,
    two fifths, and the half a core asked before was never seen within 15 s (2 runs of 6).
    """
    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    before = {pid: cpu_ticks(pid) for pid in pids}
    while time.monotonic() < deadline:
        time.sleep(window)
        after = {pid: cpu_ticks(pid) for pid in pids}
        used = {pid: after[pid] - before[pid] for pid in pids if alive(pid)}
        if used:
            pid, ticks = max(used.items(), key=lambda item: item[1])
            if ticks >= window * tick / 4:
                return pid
        before = after
    raise TimeoutError(f"none of {sorted(pids)} got busy within {timeout:.0f} s")
