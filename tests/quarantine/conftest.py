"""Quarantine stores on both backends (local files + SQLite, and a real redis-server), and messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsift.quarantine.redis_backend import RedisBackend
from mailsift.quarantine.store import QuarantineStore
from mailsift.redis_connect import RedisSettings
from mailsift.rules.result import Hit, Result
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def quarantine_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("quarantine-redis"))
    yield server
    server.stop()


@pytest.fixture(params=["local", "redis", "redis-cluster"])
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], QuarantineStore]:
    """Opens a store over one empty index on each backend, with connections of its own at each
    call, as each process that shares an index has (the milter, the web UI, the CLI)."""
    if request.param == "local":
        return lambda: QuarantineStore(tmp_path / "q")
    if request.param == "redis-cluster":
        settings = RedisSettings("redis://", cluster=request.getfixturevalue("redis_cluster_seeds"))
    else:
        server: RedisServer = request.getfixturevalue("quarantine_redis")
        with server.client() as client:
            client.flushall()
        settings = RedisSettings(server.url)
    return lambda: QuarantineStore(tmp_path / "q", RedisBackend.from_settings(settings))


@pytest.fixture
def store(open_index: Callable[[], QuarantineStore]) -> QuarantineStore:
    """An empty store on each backend: every contract test runs on each."""
    return open_index()


def make_message(subject: str = "Cheap pills", sender: str = "spammer@bad.example",
                 body: str = "Buy now.") -> bytes:
    return (f"From: Spammer <{sender}>\r\nTo: jane@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((subject, sender, body)))}@bad.example>\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}\r\n").encode()


def make_meta(recipients: list[str] | None = None, score: float = 42.0, subject: str = "Cheap pills",
              sender: str = "spammer@bad.example", time: str = "") -> dict[str, Any]:
    """What the milter hands to `put` (see MailsiftMilter._quarantine_meta)."""
    meta: dict[str, Any] = {
        "queue_id": "4ABCDEF", "client_ip": "192.0.2.7", "client_name": "bad.example",
        "helo": "bad.example", "mail_from": sender, "recipients": recipients or ["jane@example.org"],
        "from": f"Spammer <{sender}>", "subject": subject, "action": "quarantine",
        "verdict": {"score": score, "required_score": 5.0, "rules": [
            {"name": "LOW_RULE", "score": 1.5, "description": "a small sign", "evidence": ""},
            {"name": "BIG_RULE", "score": score - 1.5, "description": "a big sign",
             "evidence": "pills"}]},
    }
    if time:
        meta["time"] = time
    return meta


def make_capped_meta() -> dict[str, Any]:
    """A verdict as the milter stores it (`Result.as_dict()`) whose "money" group was capped: its
    rules add up to 12.4, the score is 11.0."""
    hits = [Hit("MONEY_BIG", 8.5, "lots of money", "USD 1,000,000", group="money"),
            Hit("MONEY_FAST", 2.4, "money fast", group="money"),
            Hit("LOW_RULE", 1.5, "a small sign")]
    return {**make_meta(), "verdict": Result(11.0, 5.0, hits, capped={"money": 1.4}).as_dict()}


def informational_meta() -> dict[str, Any]:
    """A verdict with a 0.001-point rule and a rule name longer than the table's old column."""
    meta = make_meta(score=9.001)
    meta["verdict"]["rules"] += [
        {"name": "URIBL_BLOCKED", "score": 0.001, "description": "the list refused", "evidence": ""},
        {"name": "FREEMAIL_FORGED_REPLYTO_AND_DISPLAY_NAME", "score": 0.5, "description": "forged",
         "evidence": ""}]
    return meta


# The real Postfix, sink and milter of tests/e2e, for the release tests (fixtures by import).
from tests.e2e.conftest import (  # noqa: E402, F401
    milter_port,
    mta,
    postfix,
    postfix_available,
    sink,
    start_milter,
)
