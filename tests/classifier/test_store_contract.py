"""The TokenStore contract, run unchanged against every backend: what one store does, all do."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsift.classifier.redis_store import RedisStore
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import (
    DumpInfo,
    Label,
    LearnItem,
    Outcome,
    StoreDamaged,
    StoreSummary,
    TokenCounts,
    TokenStore,
    Totals,
    read_backup,
    token_key,
    write_backup,
)

DAY = 86400
T0 = 1_700_000_000
SPAM, HAM = Label.SPAM, Label.HAM

MakeStore = Callable[[str], TokenStore]


def message(digest: str, *tokens: str) -> LearnItem:
    return LearnItem(digest, [token_key(token) for token in tokens])


def counts(store: TokenStore, *tokens: str) -> list[tuple[int, int]]:
    _, found = store.lookup([token_key(token) for token in tokens])
    return [(count.spam, count.ham) for count in found]


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Stores of one backend, all in the same file, server or cluster, told apart by prefix (in
    the cluster, prefixes hash to different slots and so, mostly, to different nodes)."""
    stores: list[TokenStore] = []

    def make(prefix: str = "mailsift:") -> TokenStore:
        if request.param == "sqlite":
            store: TokenStore = SQLiteStore(str(tmp_path / "bayes.sqlite"), prefix)
        elif request.param == "redis-cluster":
            store = RedisStore.from_url("redis://", prefix=prefix,
                                        cluster=request.getfixturevalue("redis_cluster_seeds"))
        else:
            store = RedisStore.from_url(request.getfixturevalue("redis_url"), prefix=prefix)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> TokenStore:
    return make_store("mailsift:")


@pytest.fixture
def batch_and_single(make_store: MakeStore) -> tuple[TokenStore, TokenStore]:
    """Two stores of one backend: one to learn batches into, one to learn the same one by one."""
    return make_store("batch:"), make_store("single:")


def same_contents(first: TokenStore, second: TokenStore, items: list[LearnItem]) -> None:
    """Assert two stores hold the same totals, token counts, seen records and token ages."""
    keys = list(dict.fromkeys(key for item in items for key in item.keys))
    assert first.lookup(keys) == second.lookup(keys)
    assert first.dump_info() == second.dump_info()
    assert [first.seen(item.digest) for item in items] == [second.seen(item.digest) for item in items]


A = message("a" * 40, "viagra", "cheap", "hello")
B = message("b" * 40, "meeting", "hello", "tomorrow")
C = message("c" * 40, "cheap", "offer", "hello")


class TestStoreContract:
    def test_empty_lookup_is_all_zeros(self, store: TokenStore) -> None:
        totals, found = store.lookup([token_key("never"), token_key("seen")])
        assert totals == Totals(0, 0)
        assert found == [TokenCounts(0, 0), TokenCounts(0, 0)]
        assert store.lookup([]) == (Totals(0, 0), [])

    def test_learn_counts_tokens_and_totals(self, store: TokenStore) -> None:
        assert store.learn(A, SPAM, T0) is Outcome.LEARNED
        assert store.learn(B, HAM, T0) is Outcome.LEARNED
        assert store.learn(C, SPAM, T0) is Outcome.LEARNED
        assert store.totals() == Totals(2, 1)
        assert counts(store, "viagra", "cheap", "hello", "meeting", "unknown") == [
            (1, 0), (2, 0), (2, 1), (0, 1), (0, 0)]

    def test_learning_twice_changes_nothing(self, store: TokenStore) -> None:
        store.learn(A, SPAM, T0)
        assert store.learn(A, SPAM, T0 + 5) is Outcome.ALREADY
        assert store.totals() == Totals(1, 0)
        assert counts(store, "viagra", "cheap", "hello") == [(1, 0)] * 3

    def test_a_token_counts_once_per_message(self, store: TokenStore) -> None:
        store.learn(message("d" * 40, "same", "same", "same"), SPAM, T0)
        assert counts(store, "same") == [(1, 0)]

    def test_relearn_as_the_other_class_moves_the_counts(self, store: TokenStore) -> None:
        store.learn(A, SPAM, T0)
        store.learn(C, SPAM, T0)
        assert store.learn(A, HAM, T0) is Outcome.RELEARNED
        assert store.totals() == Totals(1, 1)
        assert counts(store, "viagra", "cheap", "hello", "offer") == [(0, 1), (1, 1), (1, 1), (1, 0)]
        assert store.seen(A.digest) is HAM

    def test_forget_restores_the_previous_counts(self, store: TokenStore) -> None:
        store.learn(B, HAM, T0)
        before = (store.totals(), counts(store, "viagra", "cheap", "hello", "meeting"))
        store.learn(A, SPAM, T0)
        assert store.forget(A) is Outcome.FORGOTTEN
        assert (store.totals(), counts(store, "viagra", "cheap", "hello", "meeting")) == before
        assert store.seen(A.digest) is None
        assert store.dump_info().tokens == 3  # viagra and cheap are gone, not kept at 0/0

    def test_forget_of_an_unknown_message_changes_nothing(self, store: TokenStore) -> None:
        store.learn(B, HAM, T0)
        assert store.forget(A) is Outcome.UNKNOWN
        assert store.totals() == Totals(0, 1)
        assert counts(store, "hello", "viagra") == [(0, 1), (0, 0)]

    def test_learn_batch_equals_single_learns(self, make_store: MakeStore) -> None:
        single, batch = make_store("single:"), make_store("batch:")
        for item in (A, B, C):
            single.learn(item, SPAM, T0)
        assert batch.learn_batch([A, B, C, A], SPAM, T0) == [
            Outcome.LEARNED, Outcome.LEARNED, Outcome.LEARNED, Outcome.ALREADY]
        assert batch.learn_batch([B], HAM, T0) == [Outcome.RELEARNED]
        single.learn(B, HAM, T0)
        tokens = ("viagra", "cheap", "hello", "meeting", "tomorrow", "offer")
        assert batch.totals() == single.totals() == Totals(2, 1)
        assert counts(batch, *tokens) == counts(single, *tokens)
        assert batch.learn_batch([], SPAM, T0) == []

    def test_a_message_twice_in_one_batch_counts_once(self, store: TokenStore) -> None:
        assert store.learn_batch([A, C, A], SPAM, T0) == [
            Outcome.LEARNED, Outcome.LEARNED, Outcome.ALREADY]
        assert store.totals() == Totals(2, 0)
        assert counts(store, "viagra", "cheap", "hello", "offer") == [(1, 0), (2, 0), (2, 0), (1, 0)]
        assert store.learn_batch([A, B, A], HAM, T0) == [
            Outcome.RELEARNED, Outcome.LEARNED, Outcome.ALREADY]
        assert store.totals() == Totals(1, 2)
        assert counts(store, "viagra", "cheap", "hello", "meeting") == [(0, 1), (1, 1), (1, 2), (0, 1)]

    def test_a_batch_of_new_already_and_relearned_messages_equals_learning_one_by_one(
            self, batch_and_single: tuple[TokenStore, TokenStore]) -> None:
        D = message("d" * 40, "hello", "offer", "tomorrow", "free")
        E = message("e" * 40, "viagra", "meeting", "free", "unsubscribe")
        for store in batch_and_single:
            store.learn(A, SPAM, T0)
            store.learn(B, HAM, T0)
            store.learn(D, HAM, T0)
        batch, single = batch_and_single
        items = [A, B, C, D, B, E, A, C]
        expected = [Outcome.ALREADY, Outcome.RELEARNED, Outcome.LEARNED, Outcome.RELEARNED,
                    Outcome.ALREADY, Outcome.LEARNED, Outcome.ALREADY, Outcome.ALREADY]
        assert [single.learn(item, SPAM, T0 + DAY) for item in items] == expected
        assert batch.learn_batch(items, SPAM, T0 + DAY) == expected
        assert batch.totals() == single.totals() == Totals(5, 0)
        same_contents(batch, single, items)
        assert counts(batch, "hello", "free", "meeting", "tomorrow") == [(4, 0), (2, 0), (2, 0),
                                                                         (2, 0)]

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.lists(st.integers(0, 4), max_size=7), st.sampled_from([SPAM, HAM])),
                    max_size=5))
    def test_any_batches_equal_learning_one_by_one(
            self, batch_and_single: tuple[TokenStore, TokenStore],
            batches: list[tuple[list[int], Label]]) -> None:
        """Summed per batch or applied per message: the same outcomes, counts and last-seen times."""
        messages = [message(f"{n:040x}", *vocabulary) for n, vocabulary in enumerate(
            (["x", "y", "z"], ["y", "z", "w"], ["z", "v"], ["x", "w", "v", "u"], ["z", "z", "t"]))]
        batch, single = batch_and_single
        batch.clear()
        single.clear()
        for day, (numbers, label) in enumerate(batches):
            items = [messages[number] for number in numbers]
            now = T0 + day * DAY
            assert batch.learn_batch(items, label, now) == [single.learn(item, label, now)
                                                            for item in items]
        same_contents(batch, single, messages)

    def test_seen_tells_the_class_a_message_was_learned_as(self, store: TokenStore) -> None:
        assert store.seen(A.digest) is None
        store.learn(A, SPAM, T0)
        store.learn(B, HAM, T0)
        assert (store.seen(A.digest), store.seen(B.digest)) == (SPAM, HAM)

    def test_expire_drops_old_tokens_and_hapaxes_sooner(self, store: TokenStore) -> None:
        store.learn(A, SPAM, T0)  # viagra, cheap, hello
        store.learn(C, SPAM, T0 + 20 * DAY)  # cheap, offer, hello seen again later
        store.learn(B, HAM, T0 + 100 * DAY)  # meeting, tomorrow (hapaxes), hello
        # at T0 + 125 days with hapax TTL 30 days: viagra (hapax, 125 days) and offer (hapax,
        # 105 days) go; cheap (count 2, 105 days) stays under the 180-day TTL; B's hapaxes are young
        assert store.expire(T0 + 125 * DAY, 180 * DAY, 30 * DAY) == 2
        assert counts(store, "viagra", "offer", "cheap", "meeting", "hello") == [
            (0, 0), (0, 0), (2, 0), (0, 1), (2, 1)]
        # at T0 + 201 days: cheap (last seen day 20) is past the 180-day TTL
        assert store.expire(T0 + 201 * DAY, 180 * DAY, 150 * DAY) == 1
        assert counts(store, "cheap", "meeting", "hello") == [(0, 0), (0, 1), (2, 1)]
        assert store.totals() == Totals(2, 1)  # expiry forgets tokens, not messages

    def test_dump_info(self, store: TokenStore) -> None:
        assert store.dump_info() == DumpInfo(Totals(0, 0), 0, None, None)
        store.learn(A, SPAM, T0)
        store.learn(B, HAM, T0 + 60)
        assert store.dump_info() == DumpInfo(Totals(1, 1), 5, T0, T0 + 60)

    def test_with_prefix_is_another_namespace_of_the_same_store(self, make_store: MakeStore) -> None:
        site = make_store("mailsift:")
        domain = site.with_prefix("mailsift:example.org:")
        assert domain.learn(A, SPAM, T0) is Outcome.LEARNED
        assert (site.totals(), domain.totals()) == (Totals(0, 0), Totals(1, 0))
        assert make_store("mailsift:example.org:").totals() == Totals(1, 0)
        domain.close()
        assert site.learn(B, HAM, T0) is Outcome.LEARNED  # its connection is still open
        assert site.totals() == Totals(0, 1)

    def test_a_store_read_before_its_prefix_was_taught_sees_what_is_taught_later(
            self, make_store: MakeStore) -> None:
        """A milter's recipient store is opened on the first message to that domain, usually
        before anyone taught it, and must not stay blind to a later `learn --for`."""
        reader = make_store("mailsift:late.example:")
        assert (reader.totals(), counts(reader, "hello"), reader.seen(A.digest)) == (
            Totals(0, 0), [(0, 0)], None)
        make_store("mailsift:late.example:").learn(A, SPAM, T0)
        assert (reader.totals(), counts(reader, "hello"), reader.seen(A.digest)) == (
            Totals(1, 0), [(1, 0)], SPAM)

    def test_nested_stores_are_listed_by_prefix_with_what_each_learned(self, make_store: MakeStore) -> None:
        """A hosting provider's per-recipient stores: listed from the site-wide store, each once
        (in a cluster, from whichever node holds its slot), a store that holds nothing left out
        as the milter treats it as none; its own contents are no nested store."""
        site = make_store("mailsift:")
        site.learn(C, SPAM, T0)
        assert site.nested_stores() == []
        site.with_prefix("mailsift:example.org:").learn_batch([A, C], SPAM, T0)
        site.with_prefix("mailsift:bücher.example:").learn(B, HAM, T0)
        emptied = site.with_prefix("mailsift:gone.example:")
        emptied.learn(B, HAM, T0)
        emptied.forget(B)
        site.with_prefix("mailsift:cleared.example:").learn(A, SPAM, T0)
        site.with_prefix("mailsift:cleared.example:").clear()
        make_store("other:example.net:").learn(A, SPAM, T0)
        assert site.nested_stores() == [
            StoreSummary("mailsift:bücher.example:", Totals(0, 1), 3),
            StoreSummary("mailsift:example.org:", Totals(2, 0), 4),
        ]
        assert site.with_prefix("mailsift:example.org:").nested_stores() == []

    def test_clear_touches_only_its_own_prefix(self, make_store: MakeStore) -> None:
        alice, bob = make_store("mailsift:alice@example.org:"), make_store("mailsift:bob@example.org:")
        alice.learn(A, SPAM, T0)
        bob.learn(A, HAM, T0)
        bob.learn(B, HAM, T0)
        assert counts(alice, "hello") == [(1, 0)]
        assert counts(bob, "hello") == [(0, 2)]
        alice.clear()
        assert alice.dump_info() == DumpInfo(Totals(0, 0), 0, None, None)
        assert alice.seen(A.digest) is None
        assert bob.totals() == Totals(0, 2)
        assert bob.seen(A.digest) is HAM
        assert counts(bob, "hello", "viagra") == [(0, 2), (0, 1)]

    def test_backup_clear_restore_gives_identical_lookups(self, make_store: MakeStore) -> None:
        store = make_store("mailsift:")
        store.learn_batch([A, C], SPAM, T0)
        store.learn(B, HAM, T0 + 30)
        keys = [token_key(token) for token in ("viagra", "cheap", "hello", "meeting", "zzz")]
        before = (store.lookup(keys), store.dump_info(), store.seen(A.digest), store.seen(B.digest))
        backup = io.StringIO()
        assert write_backup(store, backup) == 6
        store.clear()
        assert store.totals() == Totals(0, 0)
        backup.seek(0)
        assert read_backup(store, backup, "backup.jsonl") == 6
        assert (store.lookup(keys), store.dump_info(), store.seen(A.digest),
                store.seen(B.digest)) == before
        assert store.learn(A, SPAM, T0) is Outcome.ALREADY  # seen records came back too

    def test_restore_into_another_backend_prefix(self, make_store: MakeStore) -> None:
        source, target = make_store("source:"), make_store("target:")
        source.learn(A, SPAM, T0)
        backup = io.StringIO()
        write_backup(source, backup)
        backup.seek(0)
        read_backup(target, backup, "backup.jsonl")
        assert target.dump_info() == source.dump_info()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from(["learn", "batch", "forget"]), st.integers(0, 3),
                              st.sampled_from([SPAM, HAM])), max_size=12))
    def test_any_sequence_matches_a_simple_model(self, store: TokenStore,
                                                 steps: list[tuple[str, int, Label]]) -> None:
        """Counts always equal "messages of each class containing the token", never negative."""
        messages = [message(f"{n:040x}", *vocabulary) for n, vocabulary in enumerate(
            (["x", "y", "z"], ["y", "z", "w"], ["z", "v"], ["x", "w", "v", "u"]))]
        tokens = ["u", "v", "w", "x", "y", "z"]
        store.clear()
        learned: dict[int, Label] = {}
        for action, number, label in steps:
            item = messages[number]
            if action == "forget":
                expected = Outcome.FORGOTTEN if learned.pop(number, None) else Outcome.UNKNOWN
                assert store.forget(item) is expected
                continue
            previous, learned[number] = learned.get(number), label
            expected = (Outcome.LEARNED if previous is None else
                        Outcome.ALREADY if previous is label else Outcome.RELEARNED)
            outcome = (store.learn(item, label, T0) if action == "learn"
                       else store.learn_batch([item], label, T0)[0])
            assert outcome is expected
        model = {token: (sum(learned.get(n) is SPAM and token_key(token) in m.keys
                             for n, m in enumerate(messages)),
                         sum(learned.get(n) is HAM and token_key(token) in m.keys
                             for n, m in enumerate(messages))) for token in tokens}
        assert counts(store, *tokens) == [model[token] for token in tokens]
        labels = list(learned.values())
        assert store.totals() == Totals(labels.count(SPAM), labels.count(HAM))
        assert store.dump_info().tokens == sum(1 for spam, ham in model.values() if spam + ham)


def hand_edit(store: TokenStore, field: str, value: str | int, token: str | None = None) -> None:
    """Write `value` into the `field` ("spam" or "ham") of the totals, or of `token`'s counts,
    as `sqlite3` or `redis-cli` in an administrator's hands might."""
    if isinstance(store, SQLiteStore):
        table, row = ("tokens", " AND key = ?") if token else ("totals", "")
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute(f"UPDATE {table} SET {field} = ? WHERE ns = (SELECT id FROM namespaces "
                       f"WHERE name = ?){row}",
                       (value, store.prefix, *([token_key(token)] if token else [])))
    else:
        assert isinstance(store, RedisStore)
        key = store._token(token_key(token)) if token else store._totals_key
        store.client.hset(key, field[0], value)


class TestDamagedData:
    """What mailsift never writes, as an administrator meets it after a hand edit: named in one
    StoreDamaged, the same on every backend, and never learned over."""

    @pytest.mark.parametrize("value", ["lots", "-3", "2.5"])
    def test_a_token_count_that_is_no_count_is_named_by_the_lookup(self, store: TokenStore,
                                                                   value: str) -> None:
        """SQLite handed 'lots' to the classifier as it was, and neither backend minded -3."""
        store.learn(A, SPAM, T0)
        hand_edit(store, "spam", float(value) if value == "2.5" else value, token="cheap")
        with pytest.raises(StoreDamaged, match=f"the spam count of token {token_key('cheap').hex()} "
                                               rf"holds '?{value}'?, not a whole number from 0"):
            store.lookup([token_key("hello"), token_key("cheap")])
        assert counts(store, "hello", "viagra") == [(1, 0), (1, 0)]

    @pytest.mark.parametrize("value", ["lots", "-4"])
    def test_a_damaged_total_is_refused_by_learning_not_learned_over(self, store: TokenStore,
                                                                     value: str) -> None:
        """Learning took 'lots' as 0 and wrote 1 over it, so the damage was gone unseen, and
        a negative total grew from below zero."""
        store.learn(A, SPAM, T0)
        hand_edit(store, "spam", value)
        for attempt in (lambda: store.learn(B, HAM, T0), lambda: store.learn_batch([B, C], SPAM, T0),
                        lambda: store.forget(A)):
            with pytest.raises(StoreDamaged, match=rf"the spam total.* holds '?{value}'?, not a "
                                                   "whole number from 0"):
                attempt()
        with pytest.raises(StoreDamaged):
            store.totals()  # still damaged: left for the administrator to repair
        hand_edit(store, "spam", 1)
        assert (store.seen(A.digest), store.seen(B.digest), store.seen(C.digest)) == (SPAM, None, None)
        assert counts(store, "meeting", "viagra", "offer") == [(0, 0), (1, 0), (0, 0)]
        assert store.learn(B, HAM, T0) is Outcome.LEARNED
        assert store.totals() == Totals(1, 1)
