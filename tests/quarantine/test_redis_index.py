"""Reaching the shared quarantine index as a site's Redis is run: through Sentinel, which must
survive a fail-over (else every message to quarantine meets milter.on_error until someone edits
the config), over TLS with the site's own CA, and in a Redis Cluster."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailsift import breaker
from mailsift.config import QuarantineConfig, load_config
from mailsift.quarantine.model import QuarantineError, Query
from mailsift.quarantine.redis_backend import RETRIES, RedisBackend
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from mailsift.redis_connect import RedisSettings
from tests.quarantine.conftest import make_message, make_meta
from tests.support.cpu_time import wall_time
from tests.support.ports import free_port
from tests.support.redis_server import RedisClusterServers, RedisServer, SentinelPair, after_fail_over


@pytest.fixture
def sentinel_pair(tmp_path: Path) -> Iterator[SentinelPair]:
    pair = SentinelPair(tmp_path / "sentinel", service="quarantine")
    yield pair
    pair.stop()


def test_an_index_through_sentinel_follows_a_fail_over(sentinel_pair: SentinelPair,
                                                        tmp_path: Path) -> None:
    config = QuarantineConfig(dir=str(tmp_path / "q"), index="redis://",
                              sentinels=[f"127.0.0.1:{sentinel_pair.port}"],
                              sentinel_service="quarantine")
    store = open_quarantine(config)
    before = store.put(make_message(), make_meta())
    sentinel_pair.fail_over()
    # For a moment the Sentinel names no master while its own view settles.
    after = after_fail_over(lambda: store.put(make_message("Second"), make_meta(subject="Second")),
                            QuarantineError)
    assert set(store.ids()) == {before, after}
    with sentinel_pair.replica.client() as client:
        assert client.execute_command("ROLE")[0] == b"master"


def test_an_index_over_tls_is_verified_against_the_configured_ca(redis_tls_server: RedisServer,
                                                                  tmp_path: Path) -> None:
    assert redis_tls_server.tls is not None
    url = f"rediss://127.0.0.1:{redis_tls_server.port}/0"
    with_ca = QuarantineConfig(dir=str(tmp_path / "q"), index=url,
                               tls_ca_file=str(redis_tls_server.tls / "ca.crt"))
    store = open_quarantine(with_ca)
    message_id = store.put(make_message(), make_meta())
    assert store.raw(message_id) == make_message()
    without = open_quarantine(QuarantineConfig(dir=str(tmp_path / "q2"), index=url))
    with pytest.raises(QuarantineError, match="certificate verify failed"):
        without.ids()  # the system's CAs do not know the test CA



def test_a_quarantine_in_a_cluster_lives_on_the_node_of_its_hash_tag(
        redis_cluster: RedisClusterServers, redis_cluster_seeds: list[tuple[str, int]],
        tmp_path: Path) -> None:
    """One hash tag keeps every key in one slot, which MULTI/EXEC and SUNION in a cluster need."""
    config = QuarantineConfig(dir=str(tmp_path / "q"), index="redis://",
                              cluster_nodes=[f"{host}:{port}" for host, port in redis_cluster_seeds])
    store = open_quarantine(config)
    first = store.put(make_message(), make_meta(recipients=["jane@example.org", "joe@example.net"]))
    store.put(make_message("Other"), make_meta(recipients=["ann@example.com"], subject="Other"))
    found, total = store.search(Query(to=["jane@example.org", "joe@example.net"]))  # SUNION
    assert ([r["id"] for r in found], total) == ([first], 1)
    holding = []
    for node in redis_cluster.primaries:
        with node.client() as client:
            keys = [key.decode() for key in client.keys("*")]
        if keys:
            holding.append(keys)
    [keys] = holding
    assert all(key.startswith("{mailsift:quarantine:}") for key in keys)


def test_a_cluster_that_never_ran_fails_fast_with_the_quarantine_error(tmp_path: Path) -> None:
    config = QuarantineConfig(dir=str(tmp_path / "q"), index="redis://",
                              cluster_nodes=[f"127.0.0.1:{free_port()}"])
    store = open_quarantine(config)
    started = time.monotonic()
    with pytest.raises(QuarantineError, match=r"^quarantine store unavailable: "):
        store.put(make_message(), make_meta())
    assert time.monotonic() - started < 1.0


def big_meta(n: int) -> dict[str, Any]:
    """A message as a busy rule set leaves it: dozens of rules with evidence, some 8 KB of record."""
    meta = make_meta(score=10.0 + n, subject=f"subject-{n:03d}")
    meta["verdict"]["rules"] += [{"name": f"RULE_{r}", "score": 0.1, "description": "a sign " * 5,
                                  "evidence": "evidence " * 15} for r in range(40)]
    return meta


def sent_bytes(server: RedisServer) -> int:
    with server.client() as client:
        return int(client.info("stats")["total_net_output_bytes"])


def test_a_list_page_reads_whole_records_for_that_page_only(quarantine_redis: RedisServer,
                                                              tmp_path: Path) -> None:
    """Each list page read every record in Redis to sort and filter them: 1.2 s a page with
    30,000 messages held. It reads their summaries, and whole records for the page it shows."""
    with quarantine_redis.client() as client:
        client.flushall()
    store = open_quarantine(QuarantineConfig(dir=str(tmp_path / "q"), index=quarantine_redis.url))
    for n in range(300):
        store.put(make_message(f"m{n}"), big_meta(n))
    everything = sent_bytes(quarantine_redis)
    store.search(Query(limit=None))
    everything = sent_bytes(quarantine_redis) - everything
    before = sent_bytes(quarantine_redis)
    page, total = store.search(Query(sort="subject", descending=False, offset=10, limit=5))
    assert sent_bytes(quarantine_redis) - before < everything / 5
    assert ([r["subject"] for r in page], total) == ([f"subject-{n:03d}" for n in range(10, 15)], 300)
    assert len(page[0]["rules"]) == 42


def test_messages_stored_without_a_summary_are_found_and_given_one(quarantine_redis: RedisServer,
                                                                   tmp_path: Path) -> None:
    """A quarantine written before summaries (or by an older mailsift on another mail host)."""
    with quarantine_redis.client() as client:
        client.flushall()
    store = open_quarantine(QuarantineConfig(dir=str(tmp_path / "q"), index=quarantine_redis.url))
    ids = [store.put(make_message(f"m{n}"), make_meta(score=10.0 + n)) for n in range(4)]
    with quarantine_redis.client() as client:
        client.delete("mailsift:quarantine:summary")
    store.delete(ids[0], "test")  # its summary comes from this update, the others from the search
    found, total = store.search(Query(sort="score", min_score=11.5))
    assert ([r["id"] for r in found], total) == ([ids[3], ids[2]], 2)
    with quarantine_redis.client() as client:
        assert client.hlen("mailsift:quarantine:summary") == 4
    oldest, _ = store.search(Query(include_deleted=True, sort="score", descending=False))
    assert oldest[0]["state"] == "deleted"



HUNG_TIMEOUT_S = 0.5  # the socket timeout of `hung_index`: what each wait for it costs


@pytest.fixture
def hung_index(tmp_path: Path) -> Iterator[tuple[QuarantineStore, RedisServer]]:
    """A store on a Redis that the test may SIGSTOP, reached with a 0.5 s socket timeout and the
    backend's own retry (from_settings gives 5 s: the same thing, ten times slower)."""
    server = RedisServer(tmp_path / "redis")
    backend = RedisBackend(functools.partial(redis.Redis, host="127.0.0.1", port=server.port,
                                             socket_timeout=HUNG_TIMEOUT_S,
                                             retry=Retry(NoBackoff(), RETRIES)),
                           where=f"127.0.0.1:{server.port}")
    yield QuarantineStore(tmp_path / "q", backend), server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def put_while_hung(store: QuarantineStore, server: RedisServer, messages: int) -> list[float]:
    """How long each of `messages` puts took to fail with the index's Redis stopped (SIGSTOP), on
    the clock, the collector held off (see tests/support/cpu_time.py)."""
    def failed_put() -> None:
        with pytest.raises(QuarantineError, match="quarantine store unavailable"):
            store.put(make_message(), make_meta())

    os.kill(server.process.pid, signal.SIGSTOP)
    took = [wall_time(failed_put)[1] for _ in range(messages)]
    os.kill(server.process.pid, signal.SIGCONT)
    return took


def test_a_hung_index_costs_one_message_a_timeout_not_every_message(
        hung_index: tuple[QuarantineStore, RedisServer], caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that accepts connections but never answers (hung or overloaded). Each message to
    quarantine waited out the index's timeouts (10 s with the milter's settings) before
    milter.on_error applied; now only the first does, the next ones fail at once, and one
    warning says so."""
    store, server = hung_index
    store.put(make_message(), make_meta())
    caplog.set_level(logging.WARNING)
    took = put_while_hung(store, server, 4)
    # The next ones take under a millisecond; the line is drawn halfway to a wait, as a loaded
    # machine may hold a process off a CPU for tens of milliseconds.
    assert took[0] >= HUNG_TIMEOUT_S and max(took[1:]) < HUNG_TIMEOUT_S / 2, took
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"quarantine index unavailable (redis at 127.0.0.1:{server.port}: TimeoutError: Timeout "
        "reading from socket); mail to quarantine gets milter.on_error until it is back"]


def test_a_hung_index_is_asked_again_after_retry_after(
        hung_index: tuple[QuarantineStore, RedisServer], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(breaker, "RETRY_AFTER", 0.5)
    store, server = hung_index
    put_while_hung(store, server, 2)
    caplog.clear()
    time.sleep(0.5)
    kept = store.put(make_message("Back"), make_meta(subject="Back"))
    assert store.meta(kept)["subject"] == "Back"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "quarantine index is back; quarantining resumes"]


@pytest.fixture(params=["redis", "redis-cluster"])
def shared_index(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, RedisBackend]:
    """A config naming an emptied shared index, on one Redis or in a cluster, and its backend."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("quarantine_redis")
        with server.client() as client:
            client.flushall()
        index = f'index = "{server.url}"'
        settings = RedisSettings(server.url)
    else:
        seeds = request.getfixturevalue("redis_cluster_seeds")
        nodes = ", ".join(f'"{host}:{port}"' for host, port in seeds)
        index = f'index = "redis://"\ncluster_nodes = [{nodes}]'
        settings = RedisSettings("redis://", cluster=seeds)
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[quarantine]\ndir = "{tmp_path}/q"\n{index}\n')
    return config, RedisBackend.from_settings(settings)


def test_a_damaged_record_is_named_once_and_every_other_message_is_listed(
        shared_index: tuple[Path, RedisBackend], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A record that a redis-cli session left as no JSON, or as JSON of another shape, made
    `quarantine list` and `show` end in "internal error" (JSONDecodeError, AttributeError), and
    `expire` too: no message could be listed, nor the damaged one saved."""
    config, backend = shared_index
    store = QuarantineStore(tmp_path / "q", backend)
    garbled, reshaped, intact = (store.put(make_message(s), make_meta(subject=s))
                                 for s in ("Garbled", "Reshaped", "Intact"))
    key = f"{backend.prefix}msg:{garbled}"
    backend.client.hset(key, "record", "{not json")
    backend.client.hset(f"{backend.prefix}summary", garbled, "[1]")
    backend.client.hset(f"{backend.prefix}msg:{reshaped}", "record", json.dumps({"id": reshaped}))
    caplog.set_level(logging.WARNING)
    for query in (Query(), Query(limit=None)):
        caplog.clear()
        # each search by a store of its own, as by another process: one names a damaged record
        # once per interval (see the next test)
        found, _ = open_quarantine(load_config(str(config)).quarantine).search(query)
        assert [r["id"] for r in found] == [intact]
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 2, warned
        both = " ".join(warned)
        assert (f"the record of message {garbled} (field record of key {key}) is not one mailsift "
                "writes: it is not JSON") in both
        assert f"message {reshaped}" in both and "its record lacks time" in both
    listed = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "quarantine",
                             "list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "Intact" in listed.stdout and "Traceback" not in listed.stderr
    shown = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "quarantine",
                            "show", garbled], capture_output=True, text=True, timeout=120)
    assert (shown.returncode, shown.stdout) == (2, "")
    assert shown.stderr.count("\n") == 1 and "is not JSON" in shown.stderr, shown.stderr
    assert f"mailsift quarantine show {garbled} --raw" in shown.stderr
    assert store.raw(garbled) == make_message("Garbled")  # the mail itself is never lost
    with pytest.raises(QuarantineError, match="its record lacks time"):
        store.meta(reshaped)
    assert store.expire(datetime.now(UTC) + timedelta(days=1)).expired == 1  # the damaged ones are kept
    assert store.raw(garbled) == make_message("Garbled") and store.raw(reshaped)


def damaged_index(server: RedisServer, tmp_path: Path) -> tuple[QuarantineStore, list[str]]:
    """A store over an emptied index on `server` holding four messages, the second one's record
    damaged as a redis-cli edit leaves it (its summary intact), the fourth one stored without a
    summary (as a mailsift before summaries stored it): its id first, the readable ones after."""
    with server.client() as client:
        client.flushall()
    store = open_quarantine(QuarantineConfig(dir=str(tmp_path / "q"), index=server.url))
    ids = [store.put(make_message(s), make_meta(subject=s, score=score))
           for s, score in (("First", 40.0), ("Garbled", 30.0), ("Third", 20.0), ("Old", 10.0))]
    with server.client() as client:
        client.hset(f"mailsift:quarantine:msg:{ids[1]}", "record", "{not json")
        client.hdel("mailsift:quarantine:summary", ids[3])
    return store, [ids[1], ids[0], ids[2], ids[3]]


def test_a_user_that_may_only_read_lists_a_quarantine_with_a_damaged_record(
        quarantine_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A site may give the web UI a Redis ACL user that may only read. A list meeting a damaged
    record dropped its summary with HDEL, one meeting a message stored without a summary wrote
    one, and the first search by recipient filed the messages of older mailsifts and SET its
    mark: the user's every list failed on NOPERM. Each search is answered now, the index left
    as it was, and each thing left undone said once for two rounds of searches."""
    _, (garbled, *readable) = damaged_index(quarantine_redis, tmp_path)
    with quarantine_redis.client() as admin:
        admin.acl_setuser("webui", enabled=True, passwords=["+webui-Pw-1"], keys=["*"],
                          commands=["+@all", "-@write"])
    try:
        password = tmp_path / "password"
        password.write_text("webui-Pw-1\n")
        reader = open_quarantine(QuarantineConfig(dir=str(tmp_path / "q"), index=quarantine_redis.url,
                                                  username="webui", password_file=str(password)))
        caplog.set_level(logging.WARNING)
        for _ in range(2):
            for query in (Query(sort="score", limit=2),  # the admin's list, and a user's
                          Query(sort="score", limit=2, to=["jane@example.org"])):
                found, total = reader.search(query)
                assert ([r["id"] for r in found], total) == (readable[:2], 3)
        refused = [r.getMessage() for r in caplog.records if "without tidying" in r.getMessage()]
    finally:
        with quarantine_redis.client() as admin:
            admin.acl_deluser("webui")
    assert len(refused) == 2 and all("NoPermissionError" in line for line in refused), refused
    assert "the summaries it drops" in refused[0] and "not filed under" in refused[1]
    # a list without --to files nothing: the filing's warning named it as the way out
    assert refused[1].endswith("until a client that may write there files them: the daily "
                               "mailsift quarantine expire, or mailsift quarantine list --to "
                               "ADDRESS, with the milter's config"), refused[1]
    with quarantine_redis.client() as client:  # left as it was
        assert client.hexists("mailsift:quarantine:summary", garbled)
        assert not client.hexists("mailsift:quarantine:summary", readable[2])
        assert client.keys("mailsift:quarantine:mark:*") == []


def test_a_damaged_record_is_named_once_per_interval_not_at_each_list(
        quarantine_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Each list page that met a damaged record logged it again: an admin's log filled with the
    same line, one per page view. A process names it once per interval (10 minutes), with the
    count of the times left unsaid; another record's damage is news of its own."""
    store, (garbled, _, third, _) = damaged_index(quarantine_redis, tmp_path)
    caplog.set_level(logging.WARNING)

    def named() -> list[str]:
        found = [r.getMessage() for r in caplog.records if "is not one mailsift writes" in r.getMessage()]
        caplog.clear()
        return found

    for query in (Query(), Query(limit=None), Query(subject="Garbled")):
        store.search(query)
    first = named()
    assert len(first) == 1 and f"the record of message {garbled} " in first[0], first
    backend = store.backend  # the interval now passes on a clock of the test's
    assert isinstance(backend, RedisBackend)
    clock = [backend.warnings.clock() + 598]  # (the first line was said under 2 s ago)
    backend.warnings.clock = lambda: clock[0]
    store.search(Query())
    assert named() == []
    with quarantine_redis.client() as client:  # the third's record damaged too: said at once
        client.hset(f"mailsift:quarantine:msg:{third}", "record", "[1]")
    store.search(Query(limit=None))
    assert [f"message {third} " in line for line in named()] == [True]
    clock[0] += 2
    store.search(Query(limit=None))
    again = named()
    assert len(again) == 1 and again[0].endswith(" (4 more time(s) since the last such warning)")
    assert f"the record of message {garbled} " in again[0]
