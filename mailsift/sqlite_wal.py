"""WAL mode for the SQLite files that several processes open at once: the Bayes store and the
quarantine index.

SQLite answers a journal-mode change that meets another connection's lock with "database is
locked" at once, without calling its busy handler. So when the milter's workers (or two learn
jobs) open a new file at the same moment, some of them failed to open it at all: 18 of 90
Bayes-store opens and 7 of 90 quarantine-index opens in a test of three processes at once.
"""

from __future__ import annotations

import sqlite3
import time

RETRY_S = 0.01


def use_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Switch `db`'s file to WAL (a no-op when it is already), retrying while it is busy."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY  # or BUSY_*
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(RETRY_S)
