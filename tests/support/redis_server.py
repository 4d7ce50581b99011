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
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis

from tests.support.ports import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0
TEST_PASSWORD = "s3cret-Pa55word-for-tests"

__all__ = ["REDIS_SERVER", "START_TIMEOUT_S", "TEST_PASSWORD", "RedisClusterServers",
           "RedisServer", "SentinelPair", "after_fail_over", "free_port", "make_certificates",
           "wait_for_sentinel"]
SLOTS = 16384


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
        self._args = args
        self.start()

    def start(self) -> None:
        """Run the server (again, after `stop`: same port and directory, so a `dump.rdb` that
        a SAVE left there is loaded, as a restarted production Redis loads its snapshot)."""
        self.process = subprocess.Popen(self._args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
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


class RedisClusterServers:
    """A Redis Cluster of `primaries` redis-server processes sharing the slots, and optionally one
    replica of the primary that owns `replicated_key`'s slot, for fail-over tests.

    Built by hand (ADDSLOTSRANGE, MEET, REPLICATE) rather than by `redis-cli --cluster create`,
    which sleeps a second at a time while it waits; each node's bus port is chosen free too, as
    the default (port + 10000) may be taken or past 65535.
    """

    NODE_TIMEOUT_MS = 500  # how soon the others call a dead primary failed: quick fail-over tests

    def __init__(self, directory: Path, primaries: int = 3, replicated_key: str | None = None,
                 password: str | None = None, tls: Path | None = None) -> None:
        """`tls`: a directory from `make_certificates`; clients, the bus and replication then
        speak TLS only."""
        self.bus_ports: dict[int, int] = {}  # node port -> its cluster bus port
        self.password = password
        self.tls = tls
        self.primaries = [self._node(directory / f"node-{i}") for i in range(primaries)]
        per_node = SLOTS // primaries
        for i, node in enumerate(self.primaries):
            last = SLOTS - 1 if i == primaries - 1 else (i + 1) * per_node - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per_node, last)
        self.replica: RedisServer | None = None
        if replicated_key is not None:
            self.replica = self._node(directory / "replica")
        self._meet()
        if self.replica is not None and replicated_key is not None:
            primary = self.owner(replicated_key)
            with primary.client() as client:
                primary_id = client.execute_command("CLUSTER", "MYID")
            wait_until(lambda: self._replicate(primary_id), "the replica to attach")
        wait_until(self._ok, "the redis cluster to come together")

    def _node(self, directory: Path) -> RedisServer:
        bus = free_port()
        auth = ("--masterauth", self.password) if self.password else ()  # a replica's, to its primary
        tls = ("--tls-cluster", "yes", "--tls-replication", "yes") if self.tls else ()
        node = RedisServer(directory, "--cluster-enabled", "yes", "--cluster-config-file",
                           str(directory / "nodes.conf"), "--cluster-port", str(bus),
                           "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS), *auth, *tls,
                           password=self.password, tls=self.tls)
        self.bus_ports[node.port] = bus
        return node

    @property
    def nodes(self) -> list[RedisServer]:
        return [*self.primaries, *([self.replica] if self.replica else [])]

    @property
    def seeds(self) -> list[tuple[str, int]]:
        """Every node's address, as `RedisStore.from_url(cluster=...)` takes them."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    def _meet(self) -> None:
        with self.primaries[0].client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port,
                                       self.bus_ports[node.port])

    def _replicate(self, primary_id: bytes) -> bool:
        assert self.replica is not None
        try:
            with self.replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", primary_id)
        except redis.ResponseError:  # the replica has not heard of that primary yet
            return False
        return True

    def _ok(self) -> bool:
        """Every running node sees the whole cluster, all slots served."""
        for node in self.nodes:
            if not node.running():
                continue
            with node.client() as client:
                info = client.cluster("INFO")
            if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(self.nodes):
                return False
        return True

    def owner(self, key: str, asked: RedisServer | None = None) -> RedisServer:
        """The primary that serves `key`'s slot, as `asked` (the first primary) sees it."""
        with (asked or self.primaries[0]).client() as client:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            for start, end, (_, port, *_), *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(key)

    def flush(self) -> None:
        for node in self.primaries:
            with node.client() as client:
                client.flushall()

    def wait_for_promotion(self, key: str, timeout: float = START_TIMEOUT_S) -> None:
        """Return once every running node says the replica now serves `key` (its primary died)."""
        replica = self.replica
        assert replica is not None

        def promoted() -> bool:
            return all(self.owner(key, asked=node) is replica for node in self.nodes if node.running())

        wait_until(promoted, "the replica's promotion", timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelPair:
    """A master, its replica and one Sentinel watching them as `service`, set to fail over
    within about a second of the master's death (quorum 1: the one Sentinel decides)."""

    def __init__(self, directory: Path, service: str = "mymaster") -> None:
        self.service = service
        self.master = RedisServer(directory / "master")
        self.replica = RedisServer(directory / "replica", "--replicaof", "127.0.0.1",
                                   str(self.master.port))
        # The Sentinel learns of replicas from the master's INFO, at start and then every 10 s:
        # it is started once the replica is attached, or a quick fail-over has no candidate.
        wait_until(self._replica_attached, "the replica to attach")
        self.port = free_port()
        config = directory / "sentinel.conf"  # Sentinel rewrites its config: it must be writable
        config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
                          f"sentinel monitor {service} 127.0.0.1 {self.master.port} 1\n"
                          f"sentinel down-after-milliseconds {service} 300\n"
                          f"sentinel failover-timeout {service} 2000\n")
        self.sentinel = subprocess.Popen([REDIS_SERVER, str(config), "--sentinel"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_sentinel(self.port, service)
        wait_until(self._sentinel_knows_the_replica, "the Sentinel to find the replica")

    def _replica_attached(self) -> bool:
        with self.master.client() as client:
            return any(isinstance(value, dict) and value.get("state") == "online"
                       for value in client.info("replication").values())

    def _sentinel_knows_the_replica(self) -> bool:
        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            return bool(client.sentinel_slaves(self.service))

    def master_port(self) -> int:
        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            return int(client.sentinel_get_master_addr_by_name(self.service)[1])

    def fail_over(self) -> None:
        """Wait until the replica has everything the master wrote, stop the master, and return
        once the Sentinel names the replica as the new master."""
        with self.master.client() as client:
            assert client.execute_command("WAIT", 1, 5000) == 1
        self.master.stop()
        wait_until(lambda: self.master_port() == self.replica.port, "the Sentinel to promote the replica")

    def stop(self) -> None:
        self.sentinel.terminate()
        self.sentinel.wait(timeout=10)
        self.master.stop()
        self.replica.stop()


T = TypeVar("T")


def after_fail_over(action: Callable[[], T], errors: type[Exception], within: float = 2.0) -> T:
    """`action`'s result once it stops failing with `errors`, as calls do for a moment after a
    fail-over (a pooled connection to the dead server, a Sentinel or slot map not yet re-read);
    AssertionError if it still fails after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return action()
        except errors:
            assert time.monotonic() < deadline, f"still failing {within:g} s after the fail-over"
            time.sleep(0.05)


def wait_until(ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll `ready` until it is true; RuntimeError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)
