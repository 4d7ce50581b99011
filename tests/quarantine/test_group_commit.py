"""The local index's group commit: many milter threads quarantining at once each get their own
answer, and the writer thread ends when idle and comes back on the next message."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mailsift.quarantine import local
from mailsift.quarantine.model import QuarantineError, Query
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.open_together import failures_opening_together


def test_concurrent_puts_are_all_indexed_and_each_caller_gets_its_id(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(lambda i: store.put(make_message(body=f"n{i}"), make_meta()), range(200)))
    assert len(set(ids)) == 200
    assert sorted(store.ids()) == sorted(ids)
    assert store.search(Query(limit=None))[1] == 200
    assert {store.raw(i) for i in ids} == {make_message(body=f"n{i}") for i in range(200)}


def test_processes_that_open_a_new_index_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """On a fresh install every milter worker, the web UI and the CLI create the index when they
    first need it; SQLite refused the switch to WAL with "database is locked" in 7 of 90 opens
    of three processes at once."""
    def search(round_: int) -> None:
        QuarantineStore(tmp_path / f"q{round_}").search(Query(limit=None))

    assert failures_opening_together(search, rounds=40) == []


def test_writer_ends_when_idle_and_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "WRITER_IDLE_S", 0.05)
    store = QuarantineStore(tmp_path / "q")
    first = store.put(make_message(body="one"), make_meta())
    group = store.backend._group  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while group.writer_pid and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not group.writer_pid, "the index writer outlived its idle time"
    second = store.put(make_message(body="two"), make_meta())
    assert sorted(store.ids()) == sorted([first, second])


def test_a_row_that_cannot_be_indexed_fails_alone(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One bad row in a batch: that put raises, the others land, and nobody waits forever."""
    index = local.LocalBackend._index

    def refuse_poison(db: sqlite3.Connection, record: dict[str, Any]) -> None:
        if record["subject"] == "poison":
            raise ValueError("refused")
        index(db, record)

    monkeypatch.setattr(local.LocalBackend, "_index", staticmethod(refuse_poison))
    store = QuarantineStore(tmp_path / "q")
    subjects = ["poison" if i == 4 else f"fine {i}" for i in range(10)]

    def put(subject: str) -> str | Exception:
        try:
            return store.put(make_message(body=subject), make_meta(subject=subject))
        except QuarantineError as exc:
            return exc

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(put, subjects))
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failed) == 1 and "refused" in str(failed[0])
    assert sorted(store.ids()) == sorted(o for o in outcomes if isinstance(o, str))
    assert len(store.ids()) == 9
