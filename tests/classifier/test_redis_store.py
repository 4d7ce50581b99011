"""What only the Redis store has: connections, AUTH, TTLs, memory limits, round trips, Lua."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from bench.redis_memory import BATCH, learn_rate, memory_per_token, synthetic_messages
from mailsift.classifier import redis_store
from mailsift.classifier.digest import ReportDigests
from mailsift.classifier.redis_store import CONFLICT_RETRIES, RedisStore
from mailsift.classifier.reports import digest_store
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import (
    Label,
    LearnItem,
    Outcome,
    StoreDamaged,
    StoreError,
    TokenCounts,
    Totals,
    token_key,
)
from tests.support.ports import LOOPBACK, unanswered_port
from tests.support.redis_server import (
    TEST_PASSWORD,
    RedisClusterServers,
    SentinelPair,
    after_fail_over,
)

if TYPE_CHECKING:
    from conftest import RedisServer

    ServerFactory = Callable[..., RedisServer]

T0 = 1_700_000_000
DAY = 86400
NOT_A_HASH = r"the key \{mailsift:\}t:[0-9a-f]{16} holds 'a string', not a hash"


def message(digest: str, *tokens: str) -> LearnItem:
    return LearnItem(digest, [token_key(token) for token in tokens])


def distinct_messages(count: int, tokens: int, tag: str = "") -> list[LearnItem]:
    """Messages sharing no token, so each token's count is 1 and memory grows with each."""
    return [message(f"{tag}{n:040x}", *(f"{tag}{n}-{t}" for t in range(tokens))) for n in range(count)]


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore.from_url(redis_url)
    yield store
    store.close()


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the client writes to a socket from now on: one write per round trip."""
    counter = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(connection: redis.connection.AbstractConnection, *args: object,
                 **kwargs: object) -> None:
        counter[0] += 1
        original(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return counter


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_sends(monkeypatch)


def token_name(store: RedisStore, token: str) -> bytes:
    return b"{" + store.prefix.encode() + b"}t:" + token_key(token)


class TestConnecting:
    def test_password_and_acl_user(self, redis_auth_server: RedisServer) -> None:
        password = redis_auth_server.password
        for store in (RedisStore.from_url(redis_auth_server.url, password=password),
                      RedisStore.from_url(redis_auth_server.url, username="default",
                                          password=password),
                      RedisStore.from_url(f"redis://:{password}@127.0.0.1:{redis_auth_server.port}/0")):
            store.clear()
            assert store.learn(message("a" * 40, "hello"), Label.SPAM, T0) is Outcome.LEARNED
            assert store.totals() == Totals(1, 0)
            store.close()

    @pytest.mark.parametrize("password", ["wrong-Pa55word-x", None])  # TEST_PASSWORD has Pa55word too
    def test_bad_or_missing_password_is_a_store_error_without_the_password(
            self, redis_auth_server: RedisServer, password: str | None,
            caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        store = RedisStore.from_url(redis_auth_server.url, password=password)
        with pytest.raises(StoreError, match=f"^redis at 127.0.0.1:{redis_auth_server.port}: ") as raised:
            store.lookup([token_key("hello")])
        text = str(raised.value)
        assert "Pa55word" not in text
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        assert all("Pa55word" not in record.getMessage() for record in caplog.records)

    def test_unix_socket(self, redis_unix_url: str, redis_url: str) -> None:
        over_socket = RedisStore.from_url(redis_unix_url)
        over_tcp = RedisStore.from_url(redis_url)
        over_socket.learn(message("a" * 40, "hello"), Label.HAM, T0)
        assert over_tcp.lookup([token_key("hello")])[1][0].ham == 1
        with pytest.raises(StoreError, match="^" + re.escape("redis at /nonexistent/redis.sock: ")):
            RedisStore.from_url("unix:///nonexistent/redis.sock").totals()

    def test_tls(self, redis_tls_server: RedisServer) -> None:
        assert redis_tls_server.tls is not None
        url = f"rediss://127.0.0.1:{redis_tls_server.port}/0"
        store = RedisStore.from_url(url, ssl_ca_certs=str(redis_tls_server.tls / "ca.crt"))
        store.clear()
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert store.lookup([token_key("hello")])[1] == [TokenCounts(1, 0)]
        with pytest.raises(StoreError, match="certificate verify failed"):
            RedisStore.from_url(url).totals()  # the system CAs do not know the test CA
        with pytest.raises(StoreError, match=f"^redis at 127.0.0.1:{redis_tls_server.port}: "):
            RedisStore.from_url(f"redis://127.0.0.1:{redis_tls_server.port}/0").totals()

    def test_sentinel_finds_the_master(self, redis_url: str, redis_sentinel: int) -> None:
        sentinels = [("127.0.0.1", redis_sentinel)]
        store = RedisStore.from_url("redis://", sentinel=sentinels, sentinel_service="bayes")
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert RedisStore.from_url(redis_url).totals() == Totals(1, 0)
        unknown = RedisStore.from_url("redis://", sentinel=sentinels, sentinel_service="nothing")
        with pytest.raises(StoreError,
                           match=f"^redis at sentinel nothing via 127.0.0.1:{redis_sentinel}: "):
            unknown.totals()

    def test_a_sentinel_fail_over_is_followed(self, tmp_path: Path) -> None:
        pair = SentinelPair(tmp_path / "sentinel", service="bayes")
        try:
            store = RedisStore.from_url("redis://", sentinel=[("127.0.0.1", pair.port)],
                                        sentinel_service="bayes")
            store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
            pair.fail_over()
            learned = after_fail_over(lambda: store.learn(message("b" * 40, "hello"), Label.SPAM, T0),
                                      StoreError)
            assert learned is Outcome.LEARNED
            assert store.lookup([token_key("hello")]) == (Totals(2, 0), [TokenCounts(2, 0)])
        finally:
            pair.stop()

    def test_a_stopped_redis_fails_fast(self, redis_server_factory: ServerFactory) -> None:
        server = redis_server_factory()
        store = RedisStore.from_url(server.url)
        store.lookup([token_key("hello")])
        server.stop()
        keys = [token_key(f"t{n}") for n in range(500)]
        for _ in range(2):  # the broken pooled connection, then a fresh connect
            started = time.perf_counter()
            with pytest.raises(StoreError, match=f"^redis at 127.0.0.1:{server.port}: "):
                store.lookup(keys)
            assert time.perf_counter() - started < 0.2

    def test_a_redis_that_never_ran_fails_fast(self, unused_port: int) -> None:
        store = RedisStore.from_url(f"redis://127.0.0.1:{unused_port}/0")
        started = time.perf_counter()
        with pytest.raises(StoreError, match="Connection refused"):
            store.lookup([token_key("hello")])
        assert time.perf_counter() - started < 0.2

    def test_a_blackholed_redis_costs_the_connect_timeout(self) -> None:
        with unanswered_port() as port:
            store = RedisStore.from_url(f"redis://{LOOPBACK}:{port}/0", connect_timeout=0.1)
            started = time.perf_counter()
            with pytest.raises(StoreError, match="^" + re.escape(f"redis at {LOOPBACK}:{port}: ")):
                store.lookup([token_key("hello")])
            assert time.perf_counter() - started < 0.5

    def test_bad_url_and_bad_prefix(self, redis_url: str) -> None:
        with pytest.raises(StoreError, match="bad Redis URL"):
            RedisStore.from_url("http://example.org/")
        with pytest.raises(StoreError, match="must not contain"):
            RedisStore.from_url(redis_url, prefix="a{b}:")

    def test_a_bad_cluster_url_is_named_without_its_password(self) -> None:
        with pytest.raises(StoreError) as err:
            RedisStore.from_url("redis://:Secr3t-pw@/3", cluster=[("127.0.0.1", 1)])
        assert str(err.value) == ("bad Redis URL for a cluster: 'redis://:***@/3' names a database "
                                  "other than 0, and a Redis Cluster has only database 0")


class TestCluster:
    """A store in a real Redis Cluster; the contract suite runs there too (test_store_contract)."""

    def test_a_store_lives_on_the_node_that_owns_its_prefix(
            self, redis_cluster: RedisClusterServers, redis_cluster_seeds: list[tuple[str, int]]) -> None:
        prefixes = {redis_cluster.owner(f"{{user{n}:}}").port: f"user{n}:" for n in range(40)}
        assert len(prefixes) == len(redis_cluster.primaries)  # a store on each node
        stores = [RedisStore.from_url("redis://", prefix=prefix, cluster=redis_cluster_seeds)
                  for prefix in prefixes.values()]
        for n, store in enumerate(stores):
            store.learn_batch(distinct_messages(20 + n, 5, tag=store.prefix), Label.SPAM, T0)
        for port, store in zip(prefixes, stores, strict=True):
            node = next(node for node in redis_cluster.primaries if node.port == port)
            with node.client() as client:  # schema, totals; per message its seen record, 5 tokens
                assert client.dbsize() == 2 + 6 * store.totals().spam
            assert store.dump_info().tokens == 5 * store.totals().spam
        stores[0].clear()
        assert [store.dump_info().tokens for store in stores] == [0, 21 * 5, 22 * 5]

    def test_one_round_trip_per_lookup_and_per_learn(self, redis_cluster_seeds: list[tuple[str, int]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        store = RedisStore.from_url("redis://", cluster=redis_cluster_seeds)
        store.learn(message("warm" * 10, "warm-up"), Label.SPAM, T0)  # slot map, schema, script
        store.lookup([token_key("warm-up")])
        sends = count_sends(monkeypatch)
        store.lookup([token_key(f"t{n}") for n in range(500)])
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert sends == [2]

    def test_fail_over_to_a_replica_is_followed_with_a_password(self, tmp_path: Path) -> None:
        cluster = RedisClusterServers(tmp_path, replicated_key="{mailsift:}totals",
                                      password=TEST_PASSWORD)
        try:
            store = RedisStore.from_url("redis://", cluster=cluster.seeds, password=TEST_PASSWORD)
            store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
            primary = cluster.owner("{mailsift:}totals")
            with primary.client() as client:
                assert client.execute_command("WAIT", 1, 5000) == 1  # the replica has the learn
            primary.stop()
            cluster.wait_for_promotion("{mailsift:}totals")
            found = after_fail_over(lambda: store.lookup([token_key("hello")]), StoreError)
            assert found == (Totals(1, 0), [TokenCounts(1, 0)])
            with pytest.raises(StoreError, match=r"^redis at cluster via ") as refused:
                RedisStore.from_url("redis://", cluster=cluster.seeds, password="wrong-Pa55word").totals()
            assert "Pa55word" not in str(refused.value)
        finally:
            cluster.stop()

    def test_a_cluster_over_tls(self, redis_tls_server: RedisServer, tmp_path: Path) -> None:
        certs = redis_tls_server.tls  # the session's test CA and certificate, for every node too
        assert certs is not None
        cluster = RedisClusterServers(tmp_path, tls=certs)
        try:
            store = RedisStore.from_url("rediss://", cluster=cluster.seeds,
                                        ssl_ca_certs=str(certs / "ca.crt"))
            store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
            assert store.lookup([token_key("hello")])[1] == [TokenCounts(1, 0)]
            assert store.dump_info().tokens == 1
            with pytest.raises(StoreError, match="certificate verify failed"):
                RedisStore.from_url("rediss://", cluster=cluster.seeds).totals()  # system CAs
        finally:
            cluster.stop()

    def test_a_cluster_that_never_ran_fails_fast(self, unused_port: int) -> None:
        store = RedisStore.from_url("redis://", cluster=[("127.0.0.1", unused_port)])  # no connect
        for _ in range(2):
            started = time.perf_counter()
            with pytest.raises(StoreError, match=f"^redis at cluster via 127.0.0.1:{unused_port}: "):
                store.lookup([token_key("hello")])
            assert time.perf_counter() - started < 0.2
        store.close()

    def test_what_a_cluster_cannot_be(self, redis_cluster_seeds: list[tuple[str, int]]) -> None:
        with pytest.raises(StoreError, match="has only database 0"):
            RedisStore.from_url("redis:///3", cluster=redis_cluster_seeds)
        with pytest.raises(StoreError, match="through Sentinels or is a Redis Cluster, not both"):
            RedisStore.from_url("redis://", cluster=redis_cluster_seeds, sentinel=[("127.0.0.1", 1)])


class TestLayout:
    def test_schema_version_is_written_and_checked(self, store: RedisStore, redis_url: str) -> None:
        client = redis.Redis.from_url(redis_url)
        assert store.totals() == Totals(0, 0)
        assert client.keys("*") == []  # reading an empty store writes nothing
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert client.get("{mailsift:}schema") == b"1"
        client.set("{mailsift:}schema", "99")
        with pytest.raises(StoreError) as refused:
            RedisStore.from_url(redis_url).lookup([])
        assert str(refused.value).endswith(
            " (keys under prefix 'mailsift:'): Bayes schema version 99 (written by a newer "
            "mailsift; this one reads version 1): run that mailsift again, or restore your backup "
            "from before the upgrade under another bayes.key_prefix or into an empty database "
            "(mailsift learn --restore FILE) (README: Backups and upgrades)")
        assert client.get("{mailsift:}schema") == b"99"
        assert RedisStore.from_url(redis_url, prefix="other:").totals() == Totals(0, 0)

    def test_a_recipient_store_read_but_never_taught_leaves_no_key(
            self, store: RedisStore, redis_url: str, sends: list[int]) -> None:
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        domain = store.with_prefix("mailsift:new.example:")
        sends[0] = 0
        for _ in range(3):
            assert domain.lookup([token_key("hello")]) == (Totals(0, 0), [TokenCounts(0, 0)])
        assert sends[0] == 1 + 3  # its schema read once (no eviction check: the parent's), lookups
        client = redis.Redis.from_url(redis_url)
        assert client.keys("{mailsift:new.example:}*") == []

    def test_keys_of_other_features_under_the_prefix_are_no_nested_store(
            self, store: RedisStore, redis_url: str) -> None:
        """In a cluster the outbound pause counts and the quarantine index tag their keys
        {mailsift:pause:} and {mailsift:quarantine:}: under our prefix, but no Bayes store. Nor
        are token keys whose raw bytes hold a "}" (which the SCAN pattern's * matches past)."""
        client = redis.Redis.from_url(redis_url)
        client.set("{mailsift:pause:}LIMITER/sender/1", 3)
        client.set("{mailsift:quarantine:}version", 1)
        client.hset("{mailsift:quarantine:}msg:1", "raw", "x")
        store.learn(LearnItem("a" * 40, [b"}t:abc}x", token_key("hello")]), Label.SPAM, T0)
        assert store.nested_stores() == []

    def test_only_tokens_carry_a_ttl(self, redis_url: str) -> None:
        store = RedisStore.from_url(redis_url, token_ttl=90 * DAY, hapax_ttl=10 * DAY)
        store.learn(message("a" * 40, "once", "twice"), Label.SPAM, T0)
        store.learn(message("b" * 40, "twice"), Label.HAM, T0)
        client = redis.Redis.from_url(redis_url)
        assert 10 * DAY - 5 <= client.ttl(token_name(store, "once")) <= 10 * DAY
        assert 90 * DAY - 5 <= client.ttl(token_name(store, "twice")) <= 90 * DAY
        for key in ("{mailsift:}totals", "{mailsift:}schema", "{mailsift:}seen:" + "a" * 40):
            assert client.ttl(key) == -1
        store.forget(message("b" * 40, "twice"))  # back to one occurrence: the hapax TTL again
        assert client.ttl(token_name(store, "twice")) <= 10 * DAY
        assert client.hgetall(token_name(store, "once")) == {b"s": b"1", b"h": b"0",
                                                             b"a": str(T0).encode()}

    def test_learn_batch_gives_the_ttls_of_learning_one_by_one(self, redis_url: str) -> None:
        client = redis.Redis.from_url(redis_url)
        stores = [RedisStore.from_url(redis_url, prefix=prefix, token_ttl=90 * DAY,
                                      hapax_ttl=10 * DAY) for prefix in ("batch:", "single:")]
        relearned = message("q" * 40, "fresh", "stale")
        for store in stores:
            store.learn(message("p" * 40, "old-hapax", "fresh", "stale"), Label.SPAM, T0)
            store.learn(relearned, Label.HAM, T0)
            client.hset(token_name(store, "stale"), "a", T0 - 7200)  # older than TTL_REFRESH
            client.expire(token_name(store, "fresh"), 5000)  # to see that it is left alone
            client.expire(token_name(store, "stale"), 5000)
        items = [message("r" * 40, "new-hapax", "new-pair", "old-hapax", "fresh", "stale"),
                 message("s" * 40, "new-pair", "fresh"), relearned]
        batch, single = stores
        assert batch.learn_batch(items, Label.SPAM, T0 + 60) == [
            single.learn(item, Label.SPAM, T0 + 60) for item in items]
        tokens = ["new-hapax", "new-pair", "old-hapax", "fresh", "stale"]
        ttls = [[client.ttl(token_name(store, token)) for token in tokens] for store in stores]
        for batch_ttl, single_ttl, expected in zip(*ttls, [10 * DAY, 90 * DAY, 90 * DAY, 5000,
                                                           90 * DAY], strict=True):
            assert expected - 5 <= batch_ttl <= expected
            assert expected - 5 <= single_ttl <= expected
        assert batch.lookup([token_key(token) for token in tokens]) == single.lookup(
            [token_key(token) for token in tokens])

    def test_expire_gives_a_ttl_to_tokens_without_one(self, store: RedisStore, redis_url: str) -> None:
        now = int(time.time())
        store.learn(message("a" * 40, "kept", "dropped"), Label.SPAM, now)
        client = redis.Redis.from_url(redis_url)
        client.persist(token_name(store, "kept"))
        client.hset(token_name(store, "dropped"), "a", now - 40 * DAY)
        assert store.expire(now, 180 * DAY, 30 * DAY) == 1
        assert 30 * DAY - 5 <= client.ttl(token_name(store, "kept")) <= 30 * DAY
        assert not client.exists(token_name(store, "dropped"))

    def test_restored_tokens_get_a_full_ttl(self, store: RedisStore, redis_url: str) -> None:
        store.learn(message("a" * 40, "old"), Label.SPAM, T0 - 400 * DAY)
        totals, seen, tokens = store.export()
        saved = list(tokens)  # streamed: read them before clearing
        store.clear()
        store.import_(totals, seen, saved)
        assert redis.Redis.from_url(redis_url).ttl(token_name(store, "old")) > 29 * DAY


class TestAtomicity:
    def test_a_script_failing_midway_counts_nothing(self, store: RedisStore, redis_url: str) -> None:
        """A key of the wrong type in the middle of a message fails it before any write, naming
        the key (it was a WRONGTYPE error, taken for a store that is down)."""
        client = redis.Redis.from_url(redis_url)
        client.set(token_name(store, "t150"), "not a hash")
        item = message("a" * 40, *(f"t{n}" for n in range(300)))
        with pytest.raises(StoreDamaged, match=NOT_A_HASH):
            store.learn(item, Label.SPAM, T0)
        assert store.totals() == Totals(0, 0)
        assert store.seen(item.digest) is None
        _, counts = store.lookup([key for key in item.keys if key != token_key("t150")])
        assert set(counts) == {TokenCounts(0, 0)}

    def test_a_batch_failing_midway_counts_nothing(self, store: RedisStore, redis_url: str) -> None:
        redis.Redis.from_url(redis_url).set(token_name(store, "t150"), "not a hash")
        items = [message(f"{n:040x}", "common", *(f"t{n * 100 + t}" for t in range(100)))
                 for n in range(3)]
        with pytest.raises(StoreDamaged, match=NOT_A_HASH):
            store.learn_batch(items, Label.SPAM, T0)
        assert store.totals() == Totals(0, 0)
        assert all(store.seen(item.digest) is None for item in items)
        _, counts = store.lookup([key for item in items for key in item.keys
                                  if key != token_key("t150")])
        assert set(counts) == {TokenCounts(0, 0)}

    def test_a_forget_failing_midway_takes_nothing(self, store: RedisStore, redis_url: str) -> None:
        item = message("a" * 40, *(f"t{n}" for n in range(300)))
        store.learn(item, Label.SPAM, T0)
        redis.Redis.from_url(redis_url).set(token_name(store, "t150"), "not a hash")
        with pytest.raises(StoreDamaged, match=NOT_A_HASH):
            store.forget(item)
        assert store.totals() == Totals(1, 0)
        assert store.seen(item.digest) is Label.SPAM
        assert store.lookup([token_key("t0")])[1][0].spam == 1

    def test_a_totals_key_of_another_type_is_damage_not_an_outage(self, store: RedisStore,
                                                                   redis_url: str) -> None:
        """`SET {mailsift:}totals 5` over the hash (a redis-cli session gone wrong) gave
        WRONGTYPE, which every caller took for a store that is down: `learn --stores` said
        "unavailable" for all stores, and the milter stopped asking Bayes about any message.
        Each read and write now names the key, and a store nested under it lists it as damaged."""
        item = message("a" * 40, "cheap")
        store.learn(item, Label.SPAM, T0)
        nested = store.with_prefix("mailsift:a.example:")
        nested.learn(item, Label.SPAM, T0)
        client = redis.Redis.from_url(redis_url)
        for key in ("{mailsift:}totals", "{mailsift:a.example:}totals"):
            client.delete(key)
            client.set(key, 5)
        totals_key = r"the key \{mailsift:\}totals holds 'a string', not a hash"
        for attempt in (store.totals, lambda: store.lookup(item.keys),
                        lambda: store.learn(message("b" * 40, "x"), Label.HAM, T0),
                        lambda: store.learn_batch([message("c" * 40, "y")] * 2, Label.HAM, T0),
                        lambda: store.forget(item)):
            with pytest.raises(StoreDamaged, match=totals_key):
                attempt()
        assert client.get("{mailsift:}totals") == b"5"
        (listed,) = RedisStore.from_url(redis_url, prefix="mailsift:").nested_stores()
        assert (listed.prefix, listed.totals) == ("mailsift:a.example:", None)
        assert "the key {mailsift:a.example:}totals holds 'a string'" in str(listed.damage)

    def test_forget_of_an_unknown_digest_leaves_the_counts(self, store: RedisStore) -> None:
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert store.forget(message("b" * 40, "hello")) is Outcome.UNKNOWN
        assert store.lookup([token_key("hello")])[1][0].spam == 1
        assert store.totals() == Totals(1, 0)


class TestConcurrentLearning:
    """learn_batch reads the seen records, then sends one script: another host may learn one of
    the messages in between."""

    def test_a_message_learned_elsewhere_meanwhile_is_not_counted_twice(
            self, store: RedisStore, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        other_host = RedisStore.from_url(redis_url)
        contested = message("c" * 40, "hello", "offer")
        items = [message("a" * 40, "hello", "cheap"), contested]
        read = store._previous
        reads: list[dict[str, Label | None]] = []

        def then_the_other_host_learns(client: redis.Redis, digests: list[str]) -> dict[str, Label | None]:
            found = read(client, digests)
            if not reads:
                other_host.learn(contested, Label.HAM, T0)
            reads.append(found)
            return found

        monkeypatch.setattr(store, "_previous", then_the_other_host_learns)
        assert store.learn_batch(items, Label.SPAM, T0) == [Outcome.LEARNED, Outcome.RELEARNED]
        assert len(reads) == 2  # the script refused the stale read; the second read saw "ham"
        assert store.totals() == Totals(2, 0)
        assert store.lookup([token_key(token) for token in ("hello", "offer", "cheap")])[1] == [
            TokenCounts(2, 0), TokenCounts(1, 0), TokenCounts(1, 0)]
        assert store.seen(contested.digest) is Label.SPAM

    def test_a_batch_that_keeps_conflicting_is_learned_message_by_message(
            self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        items = [message("a" * 40, "hello", "cheap"), message("b" * 40, "hello", "meeting")]
        store.learn(items[0], Label.HAM, T0)
        reads: list[list[str]] = []

        def always_stale(client: redis.Redis, digests: list[str]) -> dict[str, Label | None]:
            reads.append(digests)
            return dict.fromkeys(digests)  # as if nothing was learned: never what the script finds

        monkeypatch.setattr(store, "_previous", always_stale)
        assert store.learn_batch(items, Label.SPAM, T0) == [Outcome.RELEARNED, Outcome.LEARNED]
        assert len(reads) == CONFLICT_RETRIES
        assert store.totals() == Totals(2, 0)
        assert store.lookup([token_key(token) for token in ("hello", "cheap", "meeting")])[1] == [
            TokenCounts(2, 0), TokenCounts(1, 0), TokenCounts(1, 0)]

    def test_a_batch_split_over_several_scripts_equals_learning_one_by_one(
            self, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(redis_store, "SCRIPT_TOKENS", 10)
        batch, single = RedisStore.from_url(redis_url, prefix="batch:"), RedisStore.from_url(
            redis_url, prefix="single:")
        items = [message(f"{n % 7:040x}", "common", f"w{n % 5}", f"v{n % 3}") for n in range(20)]
        for store in (batch, single):
            store.learn(items[3], Label.HAM, T0)
        assert batch.learn_batch(items, Label.SPAM, T0) == [
            single.learn(item, Label.SPAM, T0) for item in items]
        keys = [token_key(token) for token in ("common", *(f"w{n}" for n in range(5)),
                                               *(f"v{n}" for n in range(3)))]
        assert batch.lookup(keys) == single.lookup(keys)
        assert batch.lookup(keys)[0] == Totals(7, 0)


class TestRoundTrips:
    def test_one_round_trip_per_lookup_and_per_learn(self, store: RedisStore, redis_url: str,
                                                     sends: list[int]) -> None:
        store.learn(message("warm" * 10, "warm-up"), Label.SPAM, T0)  # schema check, script load
        keys = [token_key(f"t{n}") for n in range(500)]
        store.lookup(keys[:1])  # loads lookup.lua
        server = redis.Redis.from_url(redis_url)
        before = server.info("commandstats")
        sends[0] = 0
        store.lookup(keys)
        assert sends[0] == 1
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        assert sends[0] == 2
        after = server.info("commandstats")
        ran = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
               for name in after if name != "cmdstat_info"}
        assert {name: calls for name, calls in ran.items() if calls} == {
            "cmdstat_hmget": 501 + 2,  # lookup.lua's; then learn_batch.lua's of token and totals
            "cmdstat_evalsha": 2, "cmdstat_get": 1, "cmdstat_hset": 2, "cmdstat_set": 1,
            "cmdstat_expire": 1}

    def test_learn_batch_reads_and_writes_each_token_once(self, store: RedisStore, redis_url: str,
                                                         sends: list[int]) -> None:
        store.learn_batch([message("warm" * 10, "warm-up")], Label.SPAM, T0)  # loads the script
        items = [message(f"{n:040x}", "the", "and", f"word{n % 10}", *(f"t{n}-{t}" for t in range(47)))
                 for n in range(100)]
        server = redis.Redis.from_url(redis_url)
        server.config_resetstat()
        sends[0] = 0
        assert store.learn_batch(items, Label.HAM, T0) == [Outcome.LEARNED] * 100
        assert sends[0] == 2  # MGET of the seen records, then the script
        distinct = 2 + 10 + 100 * 47
        stats = server.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 1
        assert stats["cmdstat_hmget"]["calls"] == stats["cmdstat_hset"]["calls"] == distinct + 1
        sends[0] = 0
        assert store.learn_batch(items, Label.HAM, T0) == [Outcome.ALREADY] * 100
        assert sends[0] == 1  # nothing to write: the read alone answers


class TestMemoryLimits:
    def test_volatile_lru_evicts_only_tokens(self, redis_server_factory: ServerFactory) -> None:
        server = redis_server_factory("--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru")
        store = RedisStore.from_url(server.url)
        items = distinct_messages(200, 300)  # 60,000 tokens: ~10 MB unevicted
        for start in range(0, len(items), 20):
            assert store.learn_batch(items[start:start + 20], Label.SPAM, T0) == [Outcome.LEARNED] * 20
        client = server.client()
        assert int(client.info("stats")["evicted_keys"]) > 0
        assert store.totals() == Totals(200, 0)
        assert all(store.seen(item.digest) is Label.SPAM for item in items)
        assert store.dump_info().tokens < 60_000
        _, counts = store.lookup(list(items[-1].keys))
        assert sum(count.spam for count in counts) > 0  # the latest tokens survived
        assert all(count.spam <= 1 and count.ham == 0 for count in counts)

    def test_noeviction_refuses_a_whole_message(self, redis_server_factory: ServerFactory) -> None:
        server = redis_server_factory("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
        store = RedisStore.from_url(server.url)
        learned = 0
        for item in distinct_messages(400, 300):
            try:
                store.learn(item, Label.SPAM, T0)
            except StoreError as exc:
                assert str(exc).startswith(f"redis at 127.0.0.1:{server.port}: ")
                assert "OutOfMemoryError" in str(exc)
                refused = item
                break
            learned += 1
        else:
            pytest.fail("2 MB did not fill up")
        assert store.totals() == Totals(learned, 0)
        assert store.seen(refused.digest) is None
        assert all(count.spam == 0 for count in store.lookup(list(refused.keys))[1])
        assert store.dump_info().tokens == learned * 300
        batch = [refused, *distinct_messages(5, 300, tag="more")]
        with pytest.raises(StoreError, match="OutOfMemoryError"):
            store.learn_batch(batch, Label.SPAM, T0)
        assert store.totals() == Totals(learned, 0)
        assert all(store.seen(item.digest) is None for item in batch)
        assert store.dump_info().tokens == learned * 300


class TestEvictionPolicy:
    """An allkeys-* policy can evict totals and seen records; only a log line can tell."""

    @pytest.mark.parametrize(("policy", "warned"), [("allkeys-lru", True), ("allkeys-lfu", True),
                                                    ("volatile-lru", False), ("noeviction", False)])
    def test_a_policy_that_may_evict_totals_is_named_once(
            self, redis_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture,
            policy: str, warned: bool) -> None:
        server = redis_server_factory("--maxmemory-policy", policy)
        store = RedisStore.from_url(server.url)
        store.learn(message("a" * 40, "hello"), Label.SPAM, T0)
        store.lookup([token_key("hello")])
        found = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
        assert found == ([f"redis at 127.0.0.1:{server.port}: maxmemory-policy {policy} may evict the "
                          "Bayes totals and learned-message records, not only old tokens; set "
                          "volatile-lru"] if warned else [])

    def test_a_user_denied_config_is_not_warned_and_works(
            self, redis_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
        server = redis_server_factory("--maxmemory-policy", "allkeys-lru")
        with server.client() as admin:
            admin.acl_setuser("milter", enabled=True, passwords=["+milter-Pw-1"], keys=["*"],
                              commands=["+@all", "-config"])
        store = RedisStore.from_url(server.url, username="milter", password="milter-Pw-1")
        assert store.learn(message("a" * 40, "hello"), Label.SPAM, T0) is Outcome.LEARNED
        assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]


class TestFigures:
    def test_memory_per_token(self, redis_server_factory: ServerFactory,
                              capsys: pytest.CaptureFixture[str]) -> None:
        per_token = memory_per_token(redis_server_factory().url, 20_000)
        with capsys.disabled():
            print(f"\nRedis memory per token: {per_token:.0f} bytes")
        assert 50 < per_token < 300

    def test_the_learn_rate_bench_learns_every_message_in_batches(
            self, redis_server_factory: ServerFactory, tmp_path: Path) -> None:
        """What bench/redis_memory.py times: how fast is for its section of BENCHMARKS.md, that
        every message (three batches here, the last of one) reaches both stores is for here."""
        items = synthetic_messages(2 * BATCH + 1, 30)
        for store in (RedisStore.from_url(redis_server_factory().url),
                      SQLiteStore(str(tmp_path / "bayes.sqlite"))):
            learn_rate(store, items)
            assert store.totals() == Totals(2 * BATCH + 1, 0)
            store.close()


def test_a_report_is_recorded_and_counted_all_or_nothing(redis_server_factory: ServerFactory) -> None:
    """Reporting recorded the message, then counted its digests in a second call. A failure
    between the two (here an ACL denying the counters; in life, Redis gone or full) left the
    message recorded and nothing counted, and reporting it again found the record and counted
    nothing ever after."""
    server = redis_server_factory()
    with server.client() as admin:
        admin.acl_setuser("reporter", enabled=True, passwords=["+Reporter-Pw-1"], commands=["+@all"],
                          keys=["{mailsift:}schema", "{mailsift:}rm:*"])
    store = RedisStore.from_url(server.url, username="reporter", password="Reporter-Pw-1")
    digests = ReportDigests(frozenset({"line-digest"}), frozenset({"url-digest"}))
    with pytest.raises(StoreError, match="NoPermissionError"):
        digest_store(store).report("m" * 40, digests)
    with server.client() as admin:
        assert admin.keys("*rm:*") == []
        admin.acl_setuser("reporter", enabled=True, keys=["*"])
    reports = digest_store(RedisStore.from_url(server.url, username="reporter",
                                               password="Reporter-Pw-1"))
    assert reports.report("m" * 40, digests) is True
    assert reports.count_reported(["line-digest", "url-digest"]) == {"line-digest", "url-digest"}
    assert reports.report("m" * 40, digests) is False  # a repeat still counts once
    assert reports.revoke("m" * 40) is True
    assert reports.count_reported(["line-digest", "url-digest"]) == set()
