"""Free loopback TCP ports for the servers the tests start.

The kernel picks the port for a socket bound to port 0; the socket is closed before the port is
handed on, so another process could in theory take it first. On a test machine that window is
harmless, and it is the only way to give a port to a program (Postfix, libmilter) that binds by
itself.
"""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


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
