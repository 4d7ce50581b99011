"""Free loopback TCP ports for the servers the tests start.

The kernel picks the port for a socket bound to port 0; the socket is closed before the port is
handed on, so another process could in theory take it first. On a test machine that window is
harmless, and it is the only way to give a port to a program (Postfix, libmilter) that binds by
itself.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"


def free_port(host: str = LOOPBACK) -> int:
    """A loopback port nobody listens on now (on ::1 for `host` LOOPBACK6)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def has_loopback6() -> bool:
    """Whether this host has ::1 (a container may run without IPv6)."""
    try:
        free_port(LOOPBACK6)
    except OSError:
        return False
    return True


def wait_for_port(port: int, timeout: float = 10.0, host: str = LOOPBACK) -> None:
    """Return once something accepts TCP connections on `port`; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.02)


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A loopback port where a TCP connect hangs, as to a firewalled host (nothing beyond loopback
    is reachable here): its listener never accepts, and once its queue of one is full the kernel
    drops every further SYN."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
            yield int(listener.getsockname()[1])
        finally:
            for filler in fillers:
                filler.close()
