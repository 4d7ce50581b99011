"""Shared spam reports: the digests of reported messages, so every mail host recognises the spam.

`report` adds a message's line and link digests (see `digest.py`) under the message's learning
digest; `revoke` takes exactly those away again. Each digest counts how many reported messages
carry it, so revoking one report leaves the digests other reports share. Lookups are one round
trip per message. The store is the Bayes store's: the same Redis (keys under the same prefix and
hash tag) or the same SQLite file. A count that is no number (a hand edit) is StoreDamaged when
it is read or about to be written, naming the count and `--clear-reports`, as `--clear` keeps
the reports.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from mailsift.classifier.digest import ReportDigests
from mailsift.classifier.redis_store import RedisStore
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import StoreError, TokenStore, read_count

MIN_LINES = 2  # one shared line ("Click here to unsubscribe") says nothing about a message
CLEAR_REPORTS = "--clear-reports"  # what empties them: the repair a damaged count names


@dataclass(frozen=True)
class ReportMatch:
    lines: int  # line digests of the message that were reported
    of_lines: int  # line digests the message has
    urls: int

    @property
    def body_reported(self) -> bool:
        """Most of the message's text was reported: a copy of a reported spam, however altered."""
        return self.lines >= MIN_LINES and self.lines * 2 >= self.of_lines


class DigestStore(Protocol):
    def report(self, message: str, digests: ReportDigests) -> bool:
        """Record the digests under the message's learning digest; False if it was reported before."""

    def revoke(self, message: str) -> bool:
        """Withdraw what `report` recorded for this message; False if it was never reported."""

    def count_reported(self, digests: Iterable[str]) -> set[str]:
        """Which of these digests some report carries."""

    def export(self) -> dict[str, list[str]]:
        """Every reported message with its digests, for a backup. Reports are made by hand, so
        there are few enough to hold at once."""

    def clear(self) -> int:
        """Withdraw every report; how many messages were reported."""

    def replace(self, reports: dict[str, list[str]]) -> None:
        """Withdraw every report, then record `reports` (a restore)."""


def match(store: DigestStore, digests: ReportDigests) -> ReportMatch:
    found = store.count_reported(digests.all)
    return ReportMatch(len(digests.lines & found), len(digests.lines), len(digests.urls & found))


class RedisDigests:
    """`{P}rd:<digest>` counts reports carrying the digest; `{P}rm:<message>` lists a report's digests."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def _key(self, kind: str, name: str) -> str:
        return f"{self.store.key_base}{kind}:{name}"

    def report(self, message: str, digests: ReportDigests) -> bool:
        return self._record(message, sorted(digests.all))

    def _record(self, message: str, members: list[str]) -> bool:
        keys = [self._key("rm", message), *(self._key("rd", digest) for digest in members)]
        client = self.store.ready()
        self._counts(client, members)  # report.lua's INCR would fail part-way on a damaged one
        with self.store.errors():
            # "-" keeps the record even for a message without digests, so a repeat is recognised.
            return bool(self.store.script("report")(keys, ["-", *members], client))

    def _counts(self, client: Any, digests: list[str]) -> list[int]:
        """How many reports carry each digest (one MGET), checked: a DECR or INCR of a damaged
        count would fail after the others were applied, and scoring would read it as no number."""
        keys = [self._key("rd", digest) for digest in digests]
        with self.store.errors():
            found = client.mget(keys) if keys else []
        return [0 if count is None else read_count(count, self.store.named, f"the report count {key}",
                                                   CLEAR_REPORTS)
                for key, count in zip(keys, found, strict=True)]

    def revoke(self, message: str) -> bool:
        with self.store.errors():
            client = self.store.ready()
            members = [m.decode() for m in client.smembers(self._key("rm", message)) if m != b"-"]
        self._counts(client, members)
        with self.store.errors():
            pipe = client.pipeline(transaction=True)
            for digest in members:
                pipe.decr(self._key("rd", digest))
            pipe.delete(self._key("rm", message))
            replies = pipe.execute()
            stale = [self._key("rd", d) for d, n in zip(members, replies, strict=False) if n <= 0]
            if stale:
                client.delete(*stale)
        return bool(replies[-1])

    def count_reported(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted(digests)
        if not wanted:
            return set()
        counts = self._counts(self.store.ready(write=False), wanted)
        return {d for d, count in zip(wanted, counts, strict=True) if count > 0}

    def export(self) -> dict[str, list[str]]:
        start = len(self._key("rm", "").encode())
        found: dict[str, list[str]] = {}
        for keys in self.store.scan("rm:*"):
            with self.store.errors():
                pipe = self.store.ready(write=False).pipeline(transaction=False)
                for key in keys:
                    pipe.smembers(key)
                members = pipe.execute()
            found.update((key[start:].decode(), sorted(m.decode() for m in held if m != b"-"))
                         for key, held in zip(keys, members, strict=True) if held)
        return found

    def clear(self) -> int:
        """Every report's keys found first, then unlinked in one transaction: all or none, as
        on SQLite. Unlinked a SCAN batch at a time, a Redis failing part-way left some reports
        matched and others gone. Reports are made by hand, so their keys fit one transaction.
        Counted by what UNLINK removed, so a key SCAN returns twice counts once."""
        reports, counts = ({key for keys in self.store.scan(pattern) for key in keys}
                           for pattern in ("rm:*", "rd:*"))
        if not reports and not counts:
            return 0
        with self.store.errors():
            pipe = self.store.ready().pipeline(transaction=True)
            for keys in (reports, counts):
                if keys:
                    pipe.unlink(*keys)
            replies = pipe.execute()
        return replies[0] if reports else 0

    def replace(self, reports: dict[str, list[str]]) -> None:
        """Not atomic, like a restore of the tokens: a failed one is run again whole."""
        self.clear()
        for message, digests in reports.items():
            self._record(message, sorted(set(digests)))


class SQLiteDigests:
    """Two tables in the Bayes file: digest -> report count, and message -> its digests."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS report_digests (ns INTEGER, digest TEXT, reports INTEGER, "
        "PRIMARY KEY (ns, digest)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS report_messages (ns INTEGER, message TEXT, digest TEXT, "
        "PRIMARY KEY (ns, message, digest)) WITHOUT ROWID",
    )

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._created = False

    def _ensure_tables(self, db: sqlite3.Connection) -> None:
        if not self._created:
            for statement in self.SCHEMA:
                db.execute(statement)
            self._created = True

    def report(self, message: str, digests: ReportDigests) -> bool:
        with self.store.writing() as db:
            self._ensure_tables(db)
            return self._record(db, message, digests.all)

    def _record(self, db: sqlite3.Connection, message: str, digests: Iterable[str]) -> bool:
        """`report` inside the caller's write transaction; "-" marks a message without digests."""
        ns = self.store.namespace
        if db.execute("SELECT 1 FROM report_messages WHERE ns=? AND message=?",
                      (ns, message)).fetchone():
            return False
        members = set(digests) - {"-"}
        self._counts(db, sorted(members))
        db.executemany("INSERT INTO report_messages VALUES (?, ?, ?)",
                       [(ns, message, d) for d in sorted(members | {"-"})])
        db.executemany("INSERT INTO report_digests VALUES (?, ?, 1) ON CONFLICT(ns, digest) "
                       "DO UPDATE SET reports = reports + 1", [(ns, d) for d in sorted(members)])
        return True

    def revoke(self, message: str) -> bool:
        with self.store.writing() as db:
            self._ensure_tables(db)
            ns = self.store.namespace
            rows = db.execute("SELECT digest FROM report_messages WHERE ns=? AND message=?",
                              (ns, message)).fetchall()
            self._counts(db, [d for (d,) in rows if d != "-"])
            db.executemany("UPDATE report_digests SET reports = reports - 1 WHERE ns=? AND digest=?",
                           [(ns, d) for (d,) in rows if d != "-"])
            db.execute("DELETE FROM report_digests WHERE ns=? AND reports <= 0", (ns,))
            db.execute("DELETE FROM report_messages WHERE ns=? AND message=?", (ns, message))
        return bool(rows)

    def count_reported(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted(digests)
        if not wanted:
            return set()
        self._made()
        with self.store.reading() as db:
            return {d for d, count in self._counts(db, wanted).items() if count > 0}

    def _counts(self, db: sqlite3.Connection, digests: list[str]) -> dict[str, int]:
        """How many reports carry each of `digests` that some report carries, checked in
        Python: in SQL, text ranks above every number, so a damaged count matched as reported,
        and `reports - 1` turned it into a number unseen."""
        marks = ",".join("?" * len(digests))
        rows = db.execute(f"SELECT digest, reports FROM report_digests WHERE ns=? AND digest IN ({marks})",
                          (self.store.namespace, *digests))
        return {d: read_count(count, self.store.named, f"the report count of digest {d}", CLEAR_REPORTS)
                for d, count in rows}

    def _made(self) -> None:
        """The tables, made once: scoring must not take the write lock per message."""
        if not self._created:
            with self.store.writing() as db:
                self._ensure_tables(db)

    def export(self) -> dict[str, list[str]]:
        self._made()
        found: dict[str, list[str]] = {}
        with self.store.reading() as db:
            for message, digest in db.execute(
                    "SELECT message, digest FROM report_messages WHERE ns=? ORDER BY message, digest",
                    (self.store.namespace,)):
                digests = found.setdefault(message, [])  # "-" alone: reported, without digests
                if digest != "-":
                    digests.append(digest)
        return found

    def clear(self) -> int:
        with self.store.writing() as db:
            return self._delete_all(db)

    def _delete_all(self, db: sqlite3.Connection) -> int:
        """Inside the caller's write transaction."""
        self._ensure_tables(db)
        ns = self.store.namespace
        (withdrawn,), = db.execute("SELECT count(DISTINCT message) FROM report_messages WHERE ns=?", (ns,))
        for table in ("report_messages", "report_digests"):
            db.execute(f"DELETE FROM {table} WHERE ns=?", (ns,))
        return withdrawn

    def replace(self, reports: dict[str, list[str]]) -> None:
        """In one transaction: a failed restore leaves the reports as they were."""
        with self.store.writing() as db:
            self._delete_all(db)
            for message, digests in reports.items():
                self._record(db, message, digests)


def digest_store(store: TokenStore) -> DigestStore:
    """The report digests live beside the tokens, in the same backend."""
    if isinstance(store, RedisStore):
        return RedisDigests(store)
    if isinstance(store, SQLiteStore):
        return SQLiteDigests(store)
    raise StoreError(f"no digest store for {type(store).__name__}")
