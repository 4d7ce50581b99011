"""A quarantine index a newer mailsift wrote, met after a rollback: every path refuses it with one
line naming the index and what to do, and nothing rewrites its version. The SQLite index was
marked version 1 by whatever opened it first (configtest included, which then said "reachable"),
and the Redis index was read as its own by everything but the milter's `add`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailsift.config import Config
from mailsift.configtest import quarantine_check
from mailsift.quarantine.model import QuarantineError, Query
from mailsift.quarantine.redis_backend import RedisBackend
from mailsift.quarantine.store import QuarantineStore
from mailsift.redis_connect import RedisSettings
from tests.quarantine.conftest import make_message, make_meta
from tests.support.redis_server import RedisServer

NEWER = 2


def newer_local_index(folder: Path) -> Path:
    store = QuarantineStore(folder)
    store.put(make_message(), make_meta())
    index = folder / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.execute(f"PRAGMA user_version = {NEWER}")
    return index


def user_version(index: Path) -> int:
    with sqlite3.connect(index) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def assert_names_rollback(text: str, where: str) -> None:
    assert where in text
    assert f"schema version {NEWER} (written by a newer mailsift; this one reads version 1)" in text
    assert "put back the index's copy from before the upgrade" in text


def test_a_newer_local_index_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    index = newer_local_index(tmp_path / "q")
    store = QuarantineStore(tmp_path / "q")
    for use in (lambda: store.search(Query()), lambda: store.put(make_message("Other"), make_meta()),
                lambda: store.backend.mark("configtest")):
        with pytest.raises(QuarantineError) as refused:
            use()
        assert_names_rollback(str(refused.value), str(index))
    assert user_version(index) == NEWER


def test_configtest_fails_a_newer_local_index(tmp_path: Path) -> None:
    index = newer_local_index(tmp_path / "q")
    check = quarantine_check(Config.model_validate({"quarantine": {"dir": str(tmp_path / "q")}}))
    assert not check.ok
    assert_names_rollback(check.detail, str(index))
    assert user_version(index) == NEWER


@pytest.fixture
def newer_redis_index(redis_server: RedisServer, tmp_path: Path) -> RedisServer:
    with redis_server.client() as client:
        client.flushall()
    QuarantineStore(tmp_path, RedisBackend.from_settings(RedisSettings(redis_server.url))
                    ).put(make_message(), make_meta())
    with redis_server.client() as client:
        client.set("mailsift:quarantine:version", str(NEWER))
    return redis_server


def test_a_newer_redis_index_is_refused_when_read_too(tmp_path: Path,
                                                      newer_redis_index: RedisServer) -> None:
    store = QuarantineStore(tmp_path, RedisBackend.from_settings(RedisSettings(newer_redis_index.url)))
    for use in (lambda: store.search(Query()), lambda: store.backend.all_lists(),
                lambda: store.backend.mark("digest")):
        with pytest.raises(QuarantineError) as refused:
            use()
        assert_names_rollback(str(refused.value), f"127.0.0.1:{newer_redis_index.port}")


def test_configtest_fails_a_newer_redis_index(tmp_path: Path, newer_redis_index: RedisServer) -> None:
    check = quarantine_check(Config.model_validate(
        {"quarantine": {"dir": str(tmp_path), "index": newer_redis_index.url}}))
    assert not check.ok
    assert_names_rollback(check.detail, f"127.0.0.1:{newer_redis_index.port}")
    with newer_redis_index.client() as client:
        assert client.get("mailsift:quarantine:version") == str(NEWER).encode()


def test_configtest_on_an_empty_redis_index_writes_nothing(tmp_path: Path,
                                                           redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.flushall()
    check = quarantine_check(Config.model_validate(
        {"quarantine": {"dir": str(tmp_path), "index": redis_server.url}}))
    assert check.ok, check.detail
    with redis_server.client() as client:
        assert client.keys("*") == []
