"""Real redis-server processes for the store tests, on free loopback ports in temporary dirs.

A real server rather than a fake: what is tested is exactly what a fake would get wrong —
Lua atomicity, TTLs, eviction under maxmemory, AUTH, unix sockets, round trips.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0
TEST_PASSWORD = "s3cret-Pa55word-for-tests"


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it for a socket bound to port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server child process, with nothing saved to disk."""

    def __init__(self, directory: Path, *extra: str, password: str | None = None,
                 tls: Path | None = None) -> None:
        """`tls`: a directory from `make_certificates`; the server then speaks TLS only."""
        self.directory = directory
        self.port = free_port()
        self.socket_path = str(directory / "redis.sock")
        self.password = password
        self.tls = tls
        args = [REDIS_SERVER, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                "--port", str(self.port), "--dir", str(directory), "--unixsocket", self.socket_path,
                "--unixsocketperm", "700", *extra]
        if password:
            args += ["--requirepass", password]
        if tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", str(tls / "server.crt"), "--tls-key-file",
                     str(tls / "server.key"), "--tls-ca-cert-file", str(tls / "ca.crt")]
        directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_ping()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def client(self) -> redis.Redis:
        if self.tls:
            return redis.Redis(host="127.0.0.1", port=self.port, ssl=True,
                               ssl_ca_certs=str(self.tls / "ca.crt"))
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


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


def make_certificates(directory: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it (P-256: quick)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=mailsift test CA")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return directory


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    directory = tmp_path_factory.mktemp("redis-tls")
    server = RedisServer(directory / "server", tls=make_certificates(directory / "certs"))
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
        _wait_for_sentinel(port)
        yield port
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)


def _wait_for_sentinel(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with redis.Redis(host="127.0.0.1", port=port) as client:
                if client.sentinel_get_master_addr_by_name("bayes"):
                    return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis sentinel on port {port} did not start") from None
            time.sleep(0.02)


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
