"""USER_IN_WELCOMELIST / USER_IN_BLOCKLIST: users' own lists reach the scanner through the index."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope
from mailsift.config import Config, parse_config
from mailsift.quarantine.store import open_quarantine
from mailsift.rules.checks import userlists
from mailsift.scanner import Scanner
from tests.quarantine.conftest import make_message
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    directory = tmp_path_factory.mktemp("userlists")
    return parse_config({"quarantine": {"dir": str(directory / "q")},
                         "rules": {"local_cf": str(directory / "none.cf")},
                         "bayes": {"enabled": False}}, "test")


@pytest.fixture(scope="module")
def scanner(config: Config) -> Scanner:
    return Scanner(config, network=False)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userlists, "_CACHE", userlists._Cache())


def _hits(scanner: Scanner, rcpts: list[str], sender: str = "news@shop.example") -> set[str]:
    envelope = Envelope(mail_from=sender, rcpt_to=rcpts)
    return set(scanner.scan(make_message(sender=sender), envelope).rule_names)


def test_without_the_network_checks_no_welcome_counts(config: Config, scanner: Scanner) -> None:
    """Nothing can prove the sender, so the entry shows and weighs nothing: it counted as
    written, so with dns.enabled off (the default) anyone who wrote a welcomed From got -100.
    (The confirmed welcome: tests/network/test_welcome_auth.py.)"""
    open_quarantine(config.quarantine).backend.set_listed("jane@example.org", "welcome",
                                                          "shop.example", True)
    result = scanner.scan(make_message(sender="news@mail.shop.example"),
                          Envelope(client_ip="203.0.113.9", mail_from="news@mail.shop.example",
                                   rcpt_to=["Jane@example.org"]))
    assert "USER_IN_WELCOMELIST" not in result.rule_names
    hit = next(h for h in result.hits if h.name == "USER_WELCOME_UNVERIFIED")
    assert hit.evidence == "shop.example"


def test_blocked_address_scores_large_positive(config: Config, scanner: Scanner) -> None:
    open_quarantine(config.quarantine).backend.set_listed("bob@example.org", "block",
                                                          "pest@spam.example", True)
    assert "USER_IN_BLOCKLIST" in _hits(scanner, ["bob@example.org"], "pest@spam.example")
    assert "USER_IN_BLOCKLIST" not in _hits(scanner, ["bob@example.org"], "other@spam.example")


def test_one_users_list_does_not_decide_for_another_recipient(config: Config, scanner: Scanner) -> None:
    open_quarantine(config.quarantine).backend.set_listed("jane@example.org", "welcome",
                                                          "shop.example", True)
    assert "USER_IN_WELCOMELIST" not in _hits(scanner, ["jane@example.org", "bob@example.org"])


def test_unreadable_store_means_no_lists_not_a_failed_scan(tmp_path: Path, scanner: Scanner,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "index.sqlite").write_bytes(b"not a database, " * 100)
    config = parse_config({"quarantine": {"dir": str(tmp_path / "q")}}, "test")
    assert userlists._CACHE.get(config.quarantine) == {}
    monkeypatch.setattr(scanner, "config", config)
    assert "USER_IN_BLOCKLIST" not in _hits(scanner, ["bob@example.org"], "pest@spam.example")


def test_a_hung_index_costs_scoring_a_short_wait_and_keeps_the_lists_read_before(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared Redis holding the lists stops answering (SIGSTOP). Each reload of the lists
    (once a minute in each worker) held a message about 10 s, the quarantine's timeouts, and then
    dropped every user's lists: a blocked sender's spam went through until the next reload."""
    server = RedisServer(tmp_path / "redis")
    try:
        config = parse_config({"quarantine": {"dir": str(tmp_path / "q"), "index": server.url},
                               "rules": {"local_cf": str(tmp_path / "none.cf")},
                               "bayes": {"enabled": False}}, "test")
        open_quarantine(config.quarantine).backend.set_listed("bob@example.org", "block",
                                                              "pest@spam.example", True)
        scanner = Scanner(config, network=False)
        assert "USER_IN_BLOCKLIST" in _hits(scanner, ["bob@example.org"], "pest@spam.example")
        monkeypatch.setattr(userlists, "REFRESH_S", 0.5)
        caplog.set_level(logging.WARNING)
        os.kill(server.process.pid, signal.SIGSTOP)
        for _ in range(2):
            time.sleep(0.5)  # each message reads the lists again
            started = time.monotonic()
            hits = _hits(scanner, ["bob@example.org"], "pest@spam.example")
            assert time.monotonic() - started < 1.5
            assert "USER_IN_BLOCKLIST" in hits
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "users' welcome/block lists unavailable, scoring with those read before, if any: "
        f"quarantine store unavailable: redis at 127.0.0.1:{server.port}: TimeoutError: Timeout "
        "reading from socket"]
