"""What only the SQLite store has: several processes on one file, the schema version, speed."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import Label, LearnItem, StoreError, TokenCounts, Totals, token_key
from tests.support.open_together import failures_opening_together

T0 = 1_700_000_000
DAY = 86400
WORKERS = 4
PER_WORKER = 40


def _learner(path: str, worker: int) -> None:
    """One milter-like process: its own store object, learning one message at a time."""
    store = SQLiteStore(path)
    for n in range(PER_WORKER):
        words = ["shared", f"w{worker}", *(f"w{worker}-{n}-{t}" for t in range(100))]
        store.learn(LearnItem(f"{worker:08x}{n:032x}", [token_key(w) for w in words]), Label.SPAM, T0)
        store.lookup([token_key("shared")])
    store.close()


def test_processes_that_create_the_file_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """The milter's workers on a fresh install, or two learn jobs, open a new file together:
    SQLite refused the switch to WAL with "database is locked" in 18 of 90 such opens."""
    assert failures_opening_together(lambda n: SQLiteStore(str(tmp_path / f"{n}.sqlite")).totals()) == []


def test_concurrent_processes_learn_into_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "bayes.sqlite")
    SQLiteStore(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_learner, args=(path, n)) for n in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = SQLiteStore(path)
    assert store.totals() == Totals(WORKERS * PER_WORKER, 0)
    _, counts = store.lookup([token_key("shared"), token_key("w0"), token_key("w3-7-99")])
    assert counts == [TokenCounts(WORKERS * PER_WORKER, 0), TokenCounts(PER_WORKER, 0),
                      TokenCounts(1, 0)]
    assert store.dump_info().tokens == 1 + WORKERS + WORKERS * PER_WORKER * 100


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "bayes.sqlite"))
    store.learn(LearnItem("a" * 40, [token_key("parent")]), Label.HAM, T0)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            store.learn(LearnItem("b" * 40, [token_key("child")]), Label.SPAM, T0)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    assert store.totals() == Totals(1, 1)


def test_a_recipient_store_read_but_never_taught_adds_no_namespace(tmp_path: Path) -> None:
    """bayes.per_recipient opens a store for every recipient domain the milter scores mail
    for; before, each one added a row to the file, taught or not."""
    path = str(tmp_path / "bayes.sqlite")
    site = SQLiteStore(path, "mailsift:")
    site.learn(LearnItem("a" * 40, [token_key("hello")]), Label.SPAM, T0)
    for n in range(3):
        domain = site.with_prefix(f"mailsift:d{n}.example:")
        assert domain.lookup([token_key("hello")]) == (Totals(0, 0), [TokenCounts(0, 0)])
        assert (domain.totals(), domain.seen("a" * 40)) == (Totals(0, 0), None)
        assert domain.dump_info().tokens == 0
        domain.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM namespaces").fetchall() == [("mailsift:",)]


def test_expire_prunes_the_per_recipient_stores_too(tmp_path: Path) -> None:
    """The daily `learn --expire` names no recipient; before, the per-recipient stores of a
    SQLite file (bayes.per_recipient) kept every token forever. A store under another prefix
    is not one of them and is left alone."""
    path = str(tmp_path / "bayes.sqlite")
    site = SQLiteStore(path, "mailsift:")
    stores = [site.with_prefix("mailsift:example.com:"), site.with_prefix("other:")]
    for n, store in enumerate(stores):
        store.learn(LearnItem(str(n) * 40, [token_key("old")]), Label.SPAM, T0)
    assert site.expire(T0 + 400 * DAY, 180 * DAY, 30 * DAY) == 1
    assert [store.lookup([token_key("old")])[1] for store in stores] == [
        [TokenCounts(0, 0)], [TokenCounts(1, 0)]]
    assert [store.totals() for store in stores] == [Totals(1, 0)] * 2
    with sqlite3.connect(path) as db:  # expiring made no row for the never-taught site store
        assert db.execute("SELECT name FROM namespaces ORDER BY id").fetchall() == [
            ("mailsift:example.com:",), ("other:",)]


def test_opening_and_reading_a_store_does_not_wait_for_a_learner(tmp_path: Path) -> None:
    """A learner holds the write lock for a whole batch; a milter worker opening the file, or a
    recipient's store on its first message, only reads. Before, each open took the write lock
    and waited up to the 10 s busy timeout, then failed with "database is locked"."""
    path = str(tmp_path / "bayes.sqlite")
    SQLiteStore(path).learn(LearnItem("a" * 40, [token_key("hello")]), Label.HAM, T0)
    learner = sqlite3.connect(path, isolation_level=None)
    learner.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        for prefix in ("mailsift:", "mailsift:new.example:"):
            store = SQLiteStore(path, prefix)
            store.lookup([token_key("hello")])
            store.close()
        assert time.monotonic() - started < 1.0
    finally:
        learner.execute("ROLLBACK")
        learner.close()


def test_a_newer_schema_is_refused_naming_the_newer_mailsift_and_the_way_back(tmp_path: Path) -> None:
    """After a rollback, README's Rollback has the admin replace 'a store written by the newer
    version': the line said only 'Bayes schema version 7, this mailsift reads version 1'."""
    path = tmp_path / "bayes.sqlite"
    SQLiteStore(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError) as refused:
        SQLiteStore(str(path))
    assert str(refused.value) == (
        f"sqlite {path}: Bayes schema version 7 (written by a newer mailsift; this one reads "
        "version 1): run that mailsift again, or move this file aside and restore your backup "
        "from before the upgrade into a new one (mailsift learn --restore FILE) (README: Backups "
        "and upgrades)")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "bayes.sqlite"
    path.write_bytes(b"this is not SQLite " * 100)
    with pytest.raises(StoreError, match=r"^sqlite .*bayes\.sqlite: file is not a database"):
        SQLiteStore(str(path))


def test_lookup_of_500_tokens_in_150000_finds_each_known_one(tmp_path: Path) -> None:
    """How fast is for bench/bayes.py (scoring from SQLite), not for a timed test here."""
    store = SQLiteStore(str(tmp_path / "bayes.sqlite"))
    items = [LearnItem(f"{n:040x}", [token_key(f"m{n}-{t}") for t in range(300)]) for n in range(500)]
    store.learn_batch(items, Label.SPAM, T0)
    keys = [token_key(f"m{n}-7") for n in range(250)] + [token_key(f"unknown{n}") for n in range(250)]
    totals, counts = store.lookup(keys)
    assert totals == Totals(500, 0)
    assert counts == [TokenCounts(1, 0)] * 250 + [TokenCounts(0, 0)] * 250


def test_lookup_of_more_keys_than_sqlite_variables(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "bayes.sqlite"))
    keys = [token_key(f"t{n}") for n in range(40_000)]
    store.learn(LearnItem("a" * 40, keys), Label.HAM, T0)
    _, counts = store.lookup([*keys, token_key("unknown")])
    assert counts[:-1] == [TokenCounts(0, 1)] * len(keys) and counts[-1] == TokenCounts(0, 0)
