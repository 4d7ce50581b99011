"""Real redis-server processes for the store tests, on free loopback ports in temporary dirs.

A real server rather than a fake: what is tested is exactly what a fake would get wrong —
Lua atomicity, TTLs, eviction under maxmemory, AUTH, unix sockets, round trips.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# This directory has no __init__.py, so the checkout root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.redis_server import (
    REDIS_SERVER,
    TEST_PASSWORD,
    RedisServer,
    free_port,
    wait_for_sentinel,
)

__all__ = ["TEST_PASSWORD", "RedisServer"]  # re-exported: the store tests import them from here


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, emptied for this test."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_unix_url(redis_server: RedisServer) -> str:
    """The shared server again, reached through its unix socket."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.unix_url


@pytest.fixture(scope="session")
def redis_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-auth"), password=TEST_PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def redis_sentinel(redis_server: RedisServer, tmp_path: Path) -> Iterator[int]:
    """A Sentinel watching the shared server as master "bayes"; yields the Sentinel's port."""
    port = free_port()
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its config file: it must be writable
    config.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                      f"sentinel monitor bayes 127.0.0.1 {redis_server.port} 1\n")
    sentinel = subprocess.Popen([REDIS_SERVER, str(config), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_sentinel(port)
        yield port
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Private servers for tests that change server settings or stop the server."""
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        servers.append(RedisServer(tmp_path / f"redis-{len(servers)}", *extra))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
