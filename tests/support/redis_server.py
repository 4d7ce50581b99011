"""Real redis-server processes on free loopback ports in temporary dirs, for any test that needs one.

A real server rather than a fake: what is tested is exactly what a fake would get wrong — Lua
atomicity, TTLs, eviction under maxmemory, AUTH, unix sockets, round trips, and (for the milter)
what happens to mail when the server goes away mid-run.
The pytest fixtures built on this live in tests/classifier/conftest.py and tests/e2e/conftest.py.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support.ports import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0
TEST_PASSWORD = "s3cret-Pa55word-for-tests"

__all__ = ["REDIS_SERVER", "START_TIMEOUT_S", "TEST_PASSWORD", "RedisServer", "free_port",
           "make_certificates", "wait_for_sentinel"]


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

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


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


def wait_for_sentinel(port: int, master: str = "bayes") -> None:
    """Return once the Sentinel on `port` knows the address of `master`."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with redis.Redis(host="127.0.0.1", port=port) as client:
                if client.sentinel_get_master_addr_by_name(master):
                    return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis sentinel on port {port} did not start") from None
            time.sleep(0.02)
