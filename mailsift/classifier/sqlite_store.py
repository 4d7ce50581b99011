"""The embedded Bayes token store: one SQLite file, safe for several milter processes at once.

Layout (schema version in `PRAGMA user_version`, checked on open):

- `namespaces(id, name)`: one row per key prefix. Per-user or per-domain Bayes is a prefix, and
  a prefix is a small integer column in every other table rather than a table set of its own:
  one fixed schema means no table names built from user input, no DDL when a user appears, and
  thousands of users do not bloat the schema SQLite parses on every open. The integer costs one
  or two bytes per row where the prefix text would cost its length.
- `tokens(ns, key, spam, ham, seen)` WITHOUT ROWID, primary key (ns, key): the 8-byte token
  key is the clustering key, so a lookup is a B-tree probe per token and a row is ~25 bytes.
  There is deliberately no index on `seen`: every learn rewrites `seen` for hundreds of tokens,
  and an index would double that write work to speed up `expire`, which runs once a day.
- `totals(ns, spam, ham)`: messages learned per class.
- `seen(ns, digest, label)` WITHOUT ROWID: which class each learned message was counted as;
  this is what makes learning idempotent and reversible.

Concurrency: WAL lets readers (lookups) run while one writer learns; writers take the write
lock up front (`BEGIN IMMEDIATE`) so two learners never deadlock upgrading a read lock, and
wait up to `busy_timeout` for each other. `synchronous=NORMAL` is the WAL setting that can lose
the last transactions on power loss but never corrupts: acceptable for token counts.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache, cached_property, partial
from pathlib import Path

from mailsift.classifier.store import (
    SCHEMA_VERSION,
    BackupToken,
    DumpInfo,
    Label,
    LearnItem,
    Outcome,
    StoreError,
    StoreName,
    StoreSummary,
    TokenCounts,
    Totals,
    backup_token,
    batch_deltas,
    read_count,
    read_label,
    summary,
    token_count,
    unreadable_schema,
)
from mailsift.ownership import access_hint, owner_hint, settle_new_file
from mailsift.sqlite_wal import use_wal

BUSY_TIMEOUT_S = 10.0  # a bulk learn_batch may hold the write lock for a second or two
EXPORT_CHUNK = 5000

SCHEMA = """
CREATE TABLE namespaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE tokens (
    ns INTEGER NOT NULL, key BLOB NOT NULL,
    spam INTEGER NOT NULL, ham INTEGER NOT NULL, seen INTEGER NOT NULL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE totals (ns INTEGER PRIMARY KEY, spam INTEGER NOT NULL, ham INTEGER NOT NULL);
CREATE TABLE seen (
    ns INTEGER NOT NULL, digest TEXT NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (ns, digest)) WITHOUT ROWID;
"""

# ?3/?4 are the deltas to spam/ham; a token that is new (e.g. expired since it was learned) starts
# from zero, and a count never goes below zero.
APPLY_DELTA = """
INSERT INTO tokens (ns, key, spam, ham, seen) VALUES (?1, ?2, max(0, ?3), max(0, ?4), ?5)
ON CONFLICT (ns, key) DO UPDATE SET
    spam = max(0, spam + ?3), ham = max(0, ham + ?4), seen = max(seen, ?5)
"""
FORGET_DELTA = """
UPDATE tokens SET spam = max(0, spam + ?3), ham = max(0, ham + ?4) WHERE ns = ?1 AND key = ?2
"""
DROP_EMPTY = "DELETE FROM tokens WHERE ns = ? AND key = ? AND spam = 0 AND ham = 0"
MOVE_TOTALS = """
INSERT INTO totals (ns, spam, ham) VALUES (?1, max(0, ?2), max(0, ?3))
ON CONFLICT (ns) DO UPDATE SET spam = max(0, spam + ?2), ham = max(0, ham + ?3)
"""


@cache
def _lookup_query(size: int) -> str:
    return f"SELECT key, spam, ham FROM tokens WHERE ns = ? AND key IN ({','.join('?' * size)})"


def _moves(label: Label, gain: int, loss: int) -> tuple[int, int]:
    """Spam and ham deltas: `gain` added to `label`'s count, `loss` taken from the other's."""
    return (gain, -loss) if label is Label.SPAM else (-loss, gain)


class SQLiteStore:
    """`TokenStore` on a SQLite file; `prefix` selects the namespace (per-user Bayes)."""

    def __init__(self, path: str, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._ns = 0
        self._conn()  # open now: a bad path or a foreign schema should fail at start-up

    # -- connection ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """The connection, reopened in a forked child: SQLite connections must not cross fork.

        The parent's connection is dropped, not closed: closing it here could release locks the
        parent still holds."""
        if self._db is None or self._pid != os.getpid():
            with self._errors():
                self._db = self._open()
                self._pid = os.getpid()
        return self._db

    def _open(self) -> sqlite3.Connection:
        new = not os.path.exists(self.path)
        if not new and not os.access(self.path, os.W_OK):
            # Said at open, as when opening took the write lock: the milter learns (autolearn),
            # and a store it can only read would otherwise fail message by message.
            raise StoreError(f"sqlite {self.path}: attempt to write a readonly database"
                             f"{owner_hint(Path(self.path))}")
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        if new:  # before WAL: SQLite gives the -wal and -shm files the database's owner
            settle_new_file(Path(self.path))
        use_wal(db, BUSY_TIMEOUT_S)
        db.execute("PRAGMA synchronous=NORMAL")
        self._check_schema(db)
        return db

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """Create the tables in a new file; refuse a version this code does not read.

        Only a new file takes the write lock: opening a store (a milter worker starting, a
        recipient's store on first use) must not wait for a learner's transaction."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            with self._write(db, namespace=False):
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:  # nobody created it while we waited for the lock
                    for statement in SCHEMA.split(";")[:-1]:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise StoreError(unreadable_schema(
                f"sqlite {self.path}", str(version), "move this file aside and restore your "
                "backup from before the upgrade into a new one (mailsift learn --restore FILE)"))

    def _find_namespace(self, db: sqlite3.Connection, create: bool) -> None:
        """Resolve the prefix's id, inside a transaction. Until a write makes the row, the id
        stays 0, which no row carries, so reads of a prefix nobody taught find nothing and
        write nothing: a milter scoring mail for thousands of recipients (bayes.per_recipient)
        adds no row per recipient. Looked up again on each transaction until found, as another
        process may teach the prefix meanwhile."""
        if self._ns:
            return
        row = db.execute("SELECT id FROM namespaces WHERE name = ?", (self.prefix,)).fetchone()
        if row is None and create:
            row = (db.execute("INSERT INTO namespaces (name) VALUES (?)", (self.prefix,)).lastrowid,)
        self._ns = row[0] if row else 0

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite {self.path}: {exc}{access_hint(Path(self.path), exc)}") from exc

    @contextmanager
    def _write(self, db: sqlite3.Connection | None = None,
               namespace: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock first so concurrent learners queue;
        it creates the namespace unless `namespace` is False (while the schema is made)."""
        db = db or self._conn()
        with self._errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                if namespace:
                    self._find_namespace(db, create=True)
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across several queries."""
        db = self._conn()
        with self._errors():
            db.execute("BEGIN")
            try:
                self._find_namespace(db, create=False)
                yield db
            finally:
                db.execute("COMMIT")

    # -- for the report digests, kept in the same file ----------------------------------------

    def writing(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._read()

    @cached_property
    def named(self) -> StoreName:
        """Made once: every token row of a lookup is checked against it (see _token_counts)."""
        return self._named(self.prefix)

    @property
    def namespace(self) -> int:
        """The id of this store's prefix, for tables of other modules that share the file; read
        it inside `reading()` or `writing()` (0 in a read while the prefix was never written)."""
        return self._ns

    # -- classification -----------------------------------------------------------------------

    def lookup(self, keys: Sequence[bytes]) -> tuple[Totals, list[TokenCounts]]:
        """Totals and counts in one read transaction, one query per `max_vars` keys.

        The IN list is padded to a power of two (repeating a key is harmless), so a few distinct
        statements serve every message size and stay in sqlite3's statement cache.
        """
        db = self._conn()
        found: dict[bytes, TokenCounts] = {}
        with self._read():
            totals = self._totals(db)
            limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1
            for start in range(0, len(keys), limit):
                chunk = list(keys[start:start + limit])
                size = min(limit, 1 << (len(chunk) - 1).bit_length())
                chunk += chunk[-1:] * (size - len(chunk))
                for key, spam, ham in db.execute(_lookup_query(size), [self._ns, *chunk]):
                    found[key] = self._token_counts(key, spam, ham)
        zero = TokenCounts(0, 0)
        return totals, [found.get(key, zero) for key in keys]

    def _token_counts(self, key: bytes, spam: object, ham: object) -> TokenCounts:
        """A token's row, checked as Redis's are: SQLite hands over text or a fraction as it is."""
        store = self.named
        return TokenCounts(token_count(spam, store, "spam count", key),
                           token_count(ham, store, "ham count", key))

    def totals(self) -> Totals:
        with self._read() as db:
            return self._totals(db)

    def _totals(self, db: sqlite3.Connection) -> Totals:
        row = db.execute("SELECT spam, ham FROM totals WHERE ns = ?", (self._ns,)).fetchone()
        return self._checked_totals(self.prefix, *row) if row else Totals(0, 0)

    def _checked_totals(self, prefix: str, spam: object, ham: object) -> Totals:
        """A row of `totals`, which SQLite would hand over as it is, text and all."""
        store = self._named(prefix)
        return Totals(read_count(spam, store, "the spam total"), read_count(ham, store, "the ham total"))

    def _named(self, prefix: str) -> StoreName:
        return StoreName(f"sqlite {self.path}", prefix)

    def seen(self, digest: str) -> Label | None:
        with self._read() as db:
            return self._label_of(db, digest)

    # -- learning -----------------------------------------------------------------------------

    def learn(self, item: LearnItem, label: Label, now: int) -> Outcome:
        return self.learn_batch([item], label, now)[0]

    def learn_batch(self, items: Sequence[LearnItem], label: Label, now: int) -> list[Outcome]:
        """All messages in one transaction (one fsync instead of one per message), each token
        written once however many of them contain it (see `batch_deltas`)."""
        with self._write() as db:
            self._totals(db)  # a damaged total is refused, not learned over (MOVE_TOTALS reads text as 0)
            previous = {digest: self._label_of(db, digest)
                        for digest in dict.fromkeys(item.digest for item in items)}
            deltas = batch_deltas(items, label, previous)
            db.executemany(APPLY_DELTA, ((self._ns, key, *_moves(label, gain, deltas.losses[key]), now)
                                         for key, gain in deltas.gains.items()))
            db.execute(MOVE_TOTALS, (self._ns, *_moves(label, len(deltas.changed), deltas.moved)))
            db.executemany("INSERT OR REPLACE INTO seen (ns, digest, label) VALUES (?, ?, ?)",
                           ((self._ns, digest, label.value) for digest in deltas.changed))
        return deltas.outcomes

    def forget(self, item: LearnItem) -> Outcome:
        with self._write() as db:
            previous = self._label_of(db, item.digest)
            if previous is None:
                return Outcome.UNKNOWN
            self._totals(db)  # as in learn_batch
            spam, ham = _moves(previous, gain=-1, loss=0)  # its own class loses the message
            keys = list(dict.fromkeys(item.keys))
            db.executemany(FORGET_DELTA, ((self._ns, key, spam, ham) for key in keys))
            db.executemany(DROP_EMPTY, ((self._ns, key) for key in keys))
            db.execute(MOVE_TOTALS, (self._ns, spam, ham))
            db.execute("DELETE FROM seen WHERE ns = ? AND digest = ?", (self._ns, item.digest))
        return Outcome.FORGOTTEN

    def _label_of(self, db: sqlite3.Connection, digest: str) -> Label | None:
        row = db.execute("SELECT label FROM seen WHERE ns = ? AND digest = ?",
                         (self._ns, digest)).fetchone()
        return self._label(digest, row[0]) if row else None

    def _label(self, digest: str, value: str) -> Label:
        return read_label(value, self.named, f"the learned-message record of {digest}")

    # -- maintenance --------------------------------------------------------------------------

    def expire(self, now: int, token_ttl: int, hapax_ttl: int) -> int:
        """Also the per-recipient stores under this prefix (bayes.per_recipient: prefix + KEY +
        ':'), which nothing else would ever prune: the daily `learn --expire` names no recipient,
        and unlike Redis keys, rows carry no TTL of their own."""
        with self._write(namespace=False) as db:
            cursor = db.execute(
                "DELETE FROM tokens WHERE ns IN (SELECT id FROM namespaces WHERE substr(name, 1, ?) = ?)"
                " AND (seen < ? OR (spam + ham <= 1 AND seen < ?))",
                (len(self.prefix), self.prefix, now - token_ttl, now - hapax_ttl))
            return cursor.rowcount

    def dump_info(self) -> DumpInfo:
        with self._read() as db:
            totals = self._totals(db)
            count, oldest, newest = db.execute(
                "SELECT count(*), min(seen), max(seen) FROM tokens WHERE ns = ?",
                (self._ns,)).fetchone()
        return DumpInfo(totals, count, oldest, newest)

    def nested_stores(self) -> list[StoreSummary]:
        """One query: the token count of each namespace is a range of the primary key."""
        with self._read() as db:
            rows = db.execute(
                "SELECT n.name, t.spam, t.ham, (SELECT count(*) FROM tokens WHERE ns = n.id) "
                "FROM namespaces n LEFT JOIN totals t ON t.ns = n.id "
                "WHERE substr(n.name, 1, ?) = ? AND n.name != ? ORDER BY n.name",
                (len(self.prefix), self.prefix, self.prefix)).fetchall()
        found = [summary(name, tokens, partial(self._checked_totals, name, spam or 0, ham or 0))
                 for name, spam, ham, tokens in rows]
        return [store for store in found if not store.empty]

    def clear(self) -> None:
        with self._write() as db:
            self._delete_all(db)

    def _delete_all(self, db: sqlite3.Connection) -> None:
        for table in ("tokens", "totals", "seen"):
            db.execute(f"DELETE FROM {table} WHERE ns = ?", (self._ns,))

    def export(self) -> tuple[Totals, dict[str, Label], Iterator[BackupToken]]:
        """Totals and seen records now; tokens streamed from a snapshot of the same moment."""
        db = self._conn()
        with self._errors():
            db.execute("BEGIN")
            try:
                self._find_namespace(db, create=False)
                totals = self._totals(db)
                seen = {digest: self._label(digest, label) for digest, label in db.execute(
                    "SELECT digest, label FROM seen WHERE ns = ?", (self._ns,))}
            except BaseException:
                db.execute("COMMIT")
                raise
        return totals, seen, self._stream_tokens(db)

    def _stream_tokens(self, db: sqlite3.Connection) -> Iterator[BackupToken]:
        """Yield tokens from the open read transaction, ending it when done (or abandoned)."""
        try:
            with self._errors():
                cursor = db.execute("SELECT key, spam, ham, seen FROM tokens WHERE ns = ?",
                                    (self._ns,))
                store = self.named
                while rows := cursor.fetchmany(EXPORT_CHUNK):
                    for key, spam, ham, seen in rows:
                        yield backup_token(key, spam, ham, seen, store)
        finally:
            db.execute("COMMIT")

    def import_(self, totals: Totals, seen: dict[str, Label], tokens: Iterable[BackupToken]) -> None:
        """Replace this namespace's contents in one transaction: a failed restore changes nothing."""
        with self._write() as db:
            self._delete_all(db)
            db.execute("INSERT INTO totals (ns, spam, ham) VALUES (?, ?, ?)",
                       (self._ns, totals.spam, totals.ham))
            db.executemany("INSERT INTO seen (ns, digest, label) VALUES (?, ?, ?)",
                           ((self._ns, digest, label.value) for digest, label in seen.items()))
            db.executemany("INSERT OR REPLACE INTO tokens (ns, key, spam, ham, seen) "
                           "VALUES (?, ?, ?, ?, ?)",
                           ((self._ns, t.key, t.spam, t.ham, t.seen) for t in tokens))

    @property
    def where(self) -> str:
        return self.path

    def with_prefix(self, prefix: str) -> SQLiteStore:
        """Another namespace of the same file. SQLite connections are cheap and one connection
        per namespace keeps each store's transactions its own."""
        return SQLiteStore(self.path, prefix)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

