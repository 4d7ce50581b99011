"""The outbound pause shared by several milter hosts through a real Redis, and what a Redis that
fails (stopped, hung, unreachable, refusing writes) does to it: never hold mail, count on."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift import breaker
from mailsift.config import OutboundConfig
from mailsift.milter.sender_hold import (
    TIMEOUT_S,
    PauseSettings,
    SenderHold,
    named_sender,
    sender_hold,
    sender_name,
)
from mailsift.redis_connect import RedisSettings
from tests.support.cpu_time import wall_time
from tests.support.ports import LOOPBACK, free_port, unanswered_port
from tests.support.redis_server import TEST_PASSWORD, RedisClusterServers, RedisServer

ALICE = "SASL login alice"
# A call that does not wait for Redis: they take under a millisecond; one that waits takes
# TIMEOUT_S at least. The line is drawn halfway, as a loaded machine may hold a process off a CPU
# for tens of milliseconds.
FAST_S = TIMEOUT_S / 2
WINDOW_MINUTES = 1 / 60  # one second: the window passes within a test


def hosts(url: str, limit: int = 3, minutes: float = 60, count: int = 2,
          **store: object) -> list[SenderHold]:
    """`count` milter hosts sharing the Redis at `url`, with a prefix of this test's own."""
    settings = PauseSettings(limit, minutes, RedisSettings(url, **store), key_prefix="test:pause:")
    return [SenderHold(settings) for _ in range(count)]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def empty_redis(redis_server: RedisServer) -> RedisServer:
    with redis_server.client() as client:
        client.flushall()
    return redis_server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test may stop, freeze or demote."""
    server = RedisServer(tmp_path / "redis")
    yield server
    if server.running():
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_two_hosts_on_one_redis_share_counts_and_both_pause_at_the_limit(
        empty_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Counted per host, a compromised account got N x pause_after spam out of N hosts."""
    first, second = hosts(empty_redis.url)
    caplog.set_level(logging.WARNING)
    for host in (first, second):
        host.spam(ALICE)
    assert not first.held(ALICE) and not second.held(ALICE)
    first.spam(ALICE)
    assert first.held(ALICE) and second.held(ALICE)
    assert not second.held("SASL login carol")
    assert warnings(caplog) == [f"outbound mail of {ALICE} paused: 3 messages in 60 minutes scored "
                                "as spam; their mail is deferred until the window lets one go"]
    with empty_redis.client() as client:
        assert [key.decode() for key in client.keys("*")] == [f"test:pause:LIMITER/{ALICE}/3/3600/second"]


def test_the_window_lets_a_paused_sender_go_again_on_every_host(empty_redis: RedisServer) -> None:
    first, second = hosts(empty_redis.url, limit=2, minutes=WINDOW_MINUTES)
    first.spam(ALICE)
    second.spam(ALICE)
    paused_at = time.time()
    assert first.held(ALICE) and second.held(ALICE)
    time.sleep(max(0.0, paused_at + 1.05 - time.time()))
    assert not first.held(ALICE) and not second.held(ALICE)


def test_hosts_in_a_redis_cluster_share_counts_under_one_hash_tag(
        redis_cluster: RedisClusterServers, redis_cluster_seeds: list[tuple[str, int]]) -> None:
    first, second = hosts("redis://", limit=2, cluster=redis_cluster_seeds)
    first.spam(ALICE)
    second.spam(ALICE)
    assert first.held(ALICE) and second.held(ALICE)
    holding = []
    for node in redis_cluster.primaries:
        with node.client() as client:
            holding += [key.decode() for key in client.keys("*")]
    assert holding == [f"{{test:pause:}}LIMITER/{ALICE}/2/3600/second"]


def test_the_config_keys_reach_redis_over_tls_with_the_sites_ca(redis_tls_server: RedisServer) -> None:
    assert redis_tls_server.tls is not None
    config = OutboundConfig(pause_after=1, pause_store=f"rediss://127.0.0.1:{redis_tls_server.port}/0",
                            pause_key_prefix="test:tls:", tls_ca_file=str(redis_tls_server.tls / "ca.crt"))
    sender_hold(config).spam(ALICE)
    assert sender_hold(config).held(ALICE)  # a new host sees the count
    with redis_tls_server.client() as client:
        assert client.exists(f"test:tls:LIMITER/{ALICE}/1/3600/second")


def test_a_reload_keeps_the_hold_until_its_settings_or_password_change(tmp_path: Path) -> None:
    """The counts this host holds in memory survive a reload; a new store or password does not
    keep the old client."""
    secret = tmp_path / "password"
    secret.write_text("first\n")
    config = OutboundConfig(pause_store="redis://10.0.0.5:6379/0", password_file=str(secret))
    running = sender_hold(config)
    assert sender_hold(config, running) is running
    assert sender_hold(config.model_copy(update={"pause_minutes": 30}), running) is not running
    secret.write_text("second\n")
    assert sender_hold(config, running) is not running


def count_until_paused(host: SenderHold, limit: int) -> list[float]:
    """How long each check and count took while `host` counted `limit` spam messages (on the
    clock, which the promise is made on, the collector held off: see tests/support/cpu_time.py)."""
    def check_and_count() -> bool:
        held = host.held(ALICE)
        host.spam(ALICE)
        return held

    took = []
    for _ in range(limit):
        held, seconds = wall_time(check_and_count)
        assert not held
        took.append(seconds)
    assert host.held(ALICE)
    return took


def test_a_stopped_redis_costs_mail_nothing_and_each_host_counts_on_in_memory(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    first, second = hosts(own_redis.url)
    first.spam(ALICE)  # in Redis, before it stops (so its pooled connection breaks)
    own_redis.stop()
    caplog.set_level(logging.WARNING)
    assert max(count_until_paused(first, 3)) < FAST_S  # the shared count is out of reach
    assert warnings(caplog) == [
        f"outbound pause store unavailable (redis at 127.0.0.1:{own_redis.port}: ConnectionError: "
        f"Error 111 connecting to 127.0.0.1:{own_redis.port}. Connection refused.); this host "
        "counts senders' spam in its own memory until it is back",
        f"outbound mail of {ALICE} paused: 3 messages in 60 minutes scored as spam; their mail is "
        "deferred until the window lets one go"]
    assert not second.held(ALICE)  # what the first host counted meanwhile is its own


@pytest.mark.parametrize("outage", ["hung", "unanswered"])
def test_a_redis_that_does_not_answer_costs_one_message_the_timeout_once(
        outage: str, own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Hung (SIGSTOP: the connection opens, no reply comes) or unanswered (a connect that never
    completes, as to a firewalled host): the first check waits TIMEOUT_S, the rest none."""
    caplog.set_level(logging.WARNING)
    if outage == "hung":
        host = hosts(own_redis.url, count=1)[0]
        assert not host.held(ALICE)  # connected
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        took = count_until_paused(host, 3)
    else:
        with unanswered_port() as port:
            took = count_until_paused(hosts(f"redis://{LOOPBACK}:{port}/0", count=1)[0], 3)
    assert TIMEOUT_S <= took[0] < 2 * TIMEOUT_S and max(took[1:]) < FAST_S, took  # one wait, not two
    assert len(warnings(caplog)) == 2 and "Timeout" in warnings(caplog)[0], warnings(caplog)


def test_a_redis_refusing_writes_counts_in_memory_with_one_warning(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica (here of a master that is gone) answers reads and refuses writes: the count is
    kept in memory, and the store is not called back and failing again at every retry."""
    monkeypatch.setattr(breaker, "RETRY_AFTER", 0.0)
    with own_redis.client() as client:
        client.replicaof(LOOPBACK, free_port())
    host = hosts(own_redis.url, count=1)[0]
    caplog.set_level(logging.WARNING)
    assert max(count_until_paused(host, 3)) < FAST_S
    assert [text.split(" (")[0] for text in warnings(caplog)] == [
        "outbound pause store unavailable", f"outbound mail of {ALICE} paused: 3 messages in 60 minutes "
        "scored as spam; their mail is deferred until the window lets one go"]
    assert "ReadOnlyError" in warnings(caplog)[0]


def test_a_restarted_redis_is_counted_in_again_and_the_count_made_meanwhile_still_counts(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(breaker, "RETRY_AFTER", 0.2)
    first, second = hosts(own_redis.url, limit=2)
    own_redis.stop()
    first.spam(ALICE)  # in memory
    own_redis.start()
    time.sleep(0.2)
    caplog.clear()
    first.spam(ALICE)  # in Redis again
    assert warnings(caplog)[0] == "outbound pause store is back; senders' spam is counted there again"
    assert first.held(ALICE)  # one in memory, one shared
    assert not second.held(ALICE)
    second.spam(ALICE)
    assert second.held(ALICE)


def test_a_refused_password_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path / "redis", password=TEST_PASSWORD)
    try:
        wrong = "Wr0ng-" + TEST_PASSWORD
        host = hosts(f"redis://:{wrong}@127.0.0.1:{server.port}/0", count=1)[0]
        caplog.set_level(logging.WARNING)
        assert max(count_until_paused(host, 3)) < FAST_S
    finally:
        server.stop()
    assert "AuthenticationError" in warnings(caplog)[0]
    assert not any(wrong in text for text in caplog.text.splitlines())


@pytest.mark.parametrize(("client", "prefix", "counted"), [
    ("2001:db8:7:1::a", 64, "client 2001:db8:7:1::/64"),
    ("2001:db8:7:1:ffff::b", 64, "client 2001:db8:7:1::/64"),  # the same /64
    ("2001:db8:7:1::a", 56, "client 2001:db8:7::/56"),
    ("2001:db8:7:1::a", 128, "client 2001:db8:7:1::a"),  # per address, as the site chose
    ("192.0.2.7", 64, "client 192.0.2.7"),  # IPv4: the address
    # IPv4-mapped: the IPv4 client it is, not ::/64 shared by every such client
    ("::ffff:192.0.2.1", 64, "client 192.0.2.1"),
    ("::ffff:192.0.2.2", 64, "client 192.0.2.2"),
])
def test_trusted_ipv6_client_is_counted_by_its_network(client: str, prefix: int, counted: str) -> None:
    """An admin lifts with the address as Postfix's log writes it, with the "client " the milter's
    log line puts before it, or with what `outbound list` shows: each names the counted sender."""
    assert sender_name("", client, prefix) == counted
    assert [named_sender(name, prefix) for name in (client, f"client {client}", counted)] == [counted] * 3
