"""USER_IN_BLOCKLIST / USER_WELCOME_UNVERIFIED under Postfix's recipient_delimiter
(milter.recipient_delimiter = "+-"): mail to jane+shop@example.org, which Postfix delivers to
Jane, is judged by her lists, unless the subaddress has lists of its own; no one else's mail
is (janet@, +jane@, and Bob's login address jane-bob@, a mailbox of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope
from mailsift.config import Config, parse_config
from mailsift.quarantine.store import open_quarantine
from mailsift.rules.checks import userlists
from mailsift.scanner import Scanner
from tests.quarantine.conftest import make_message
from tests.quarantine.test_digest import HASH

PEST = "pest@spam.example"
JANE = "jane@example.org"


def site(directory: Path, delimiter: str) -> Config:
    """Jane blocks PEST and welcomes shop.example; jane+work@ blocks only shop.example."""
    config = parse_config({
        "milter": {"recipient_delimiter": delimiter},
        "quarantine": {"dir": str(directory / "q")},
        "rules": {"local_cf": str(directory / "none.cf")},
        "bayes": {"enabled": False},
        "web": {"users": [{"name": "bob", "password_hash": HASH,
                           "addresses": ["jane-bob@example.org"]}]}}, "test")
    backend = open_quarantine(config.quarantine).backend
    backend.set_listed(JANE, "block", PEST, True)
    backend.set_listed(JANE, "welcome", "shop.example", True)
    backend.set_listed("jane+work@example.org", "block", "shop.example", True)
    return config


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(site(tmp_path_factory.mktemp("subaddress-lists"), "+-"), network=False)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userlists, "_CACHE", userlists._Cache())


def _hits(scanner: Scanner, rcpts: list[str], sender: str) -> set[str]:
    envelope = Envelope(mail_from=sender, rcpt_to=rcpts)
    return set(scanner.scan(make_message(sender=sender), envelope).rule_names)


@pytest.mark.parametrize("rcpt", ["jane+shop@example.org", "Jane-News@EXAMPLE.org",
                                  "jane+@example.org", "jane-a+b@example.org"])
def test_her_lists_judge_mail_to_her_subaddresses(scanner: Scanner, rcpt: str) -> None:
    """Her block of a pest let its mail to jane+shop@ through, and her welcome of a shop did
    not reach its newsletter to jane+news@: the lists of the address as given (none) were read."""
    assert "USER_IN_BLOCKLIST" in _hits(scanner, [rcpt], PEST)
    assert "USER_WELCOME_UNVERIFIED" in _hits(scanner, [rcpt], "news@shop.example")  # no network
    assert "USER_IN_BLOCKLIST" in _hits(scanner, [rcpt, JANE], PEST)  # both hers: hers decide


def test_a_subaddress_with_lists_of_its_own_is_judged_by_those(scanner: Scanner) -> None:
    """As Postfix looks up the whole address before the cut one."""
    assert "USER_IN_BLOCKLIST" in _hits(scanner, ["jane+work@example.org"], "news@shop.example")
    assert "USER_IN_BLOCKLIST" not in _hits(scanner, ["jane+work@example.org"], PEST)


@pytest.mark.parametrize("rcpt", ["janet@example.org", "+jane@example.org", "jane-bob@example.org",
                                  "jane+shop@example.net"])
def test_no_one_elses_mail_is_judged_by_her_lists(scanner: Scanner, rcpt: str) -> None:
    assert "USER_IN_BLOCKLIST" not in _hits(scanner, [rcpt], PEST)


def test_without_a_delimiter_a_subaddress_has_no_lists_of_hers(tmp_path: Path) -> None:
    """Postfix's default (a guard)."""
    scanner = Scanner(site(tmp_path, ""), network=False)
    assert "USER_IN_BLOCKLIST" not in _hits(scanner, ["jane+shop@example.org"], PEST)
