"""Users' welcome and block lists for internationalised senders and owners: bücher.example and
xn--bcher-kva.example are one domain in an entry, in the sender and in the owner's address."""

from __future__ import annotations

import pytest

from mailsift.analysis.model import Envelope
from mailsift.config import Config, parse_config
from mailsift.quarantine.model import list_entry
from mailsift.quarantine.store import open_quarantine
from mailsift.rules.checks import userlists
from mailsift.scanner import Scanner
from tests.quarantine.conftest import make_message


@pytest.fixture
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    directory = tmp_path_factory.mktemp("userlists-idn")
    return parse_config({"quarantine": {"dir": str(directory / "q")},
                         "rules": {"local_cf": str(directory / "none.cf")},
                         "bayes": {"enabled": False}}, "test")


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userlists, "_CACHE", userlists._Cache())


def _hits(config: Config, rcpt: str, sender: str) -> set[str]:
    envelope = Envelope(mail_from=sender, rcpt_to=[rcpt])
    return set(Scanner(config, network=False).scan(make_message(sender=sender), envelope).rule_names)


@pytest.mark.parametrize("entry", ["bücher.example", "jörg@bücher.example", "xn--bcher-kva.example",
                                   "jörg@XN--BCHER-KVA.example"])
@pytest.mark.parametrize("sender", ["jörg@bücher.example", "jörg@xn--bcher-kva.example",
                                    "jörg@mail.bücher.example"])
def test_a_block_entry_covers_the_sender_in_either_spelling(config: Config, entry: str,
                                                             sender: str) -> None:
    """Stored as older versions did (as typed, no ASCII form): such entries must keep working."""
    open_quarantine(config.quarantine).backend.set_listed("bob@example.org", "block", entry.lower(), True)
    expected = "mail." not in sender or "@" not in entry
    assert ("USER_IN_BLOCKLIST" in _hits(config, "bob@example.org", sender)) == expected


def test_an_owner_has_its_lists_for_a_recipient_in_the_other_spelling(config: Config) -> None:
    open_quarantine(config.quarantine).backend.set_listed("anna@bücher.example", "block",
                                                          "spam.example", True)
    assert "USER_IN_BLOCKLIST" in _hits(config, "anna@xn--bcher-kva.example", "x@spam.example")
    assert "USER_IN_BLOCKLIST" not in _hits(config, "anna@bucher.example", "x@spam.example")


@pytest.mark.parametrize("sender", ["jörg@bucher.example", "jörg@büсher.example",
                                    "jörg@bü\u200dcher.example"])
def test_a_look_alike_sender_is_not_covered(config: Config, sender: str) -> None:
    """The accent dropped, a Cyrillic с, a joiner IDNA refuses: other names, not bücher."""
    open_quarantine(config.quarantine).backend.set_listed("bob@example.org", "block",
                                                          "bücher.example", True)
    assert "USER_IN_BLOCKLIST" not in _hits(config, "bob@example.org", sender)


def test_an_entry_is_stored_in_ascii_form_and_a_refused_domain_is_no_entry() -> None:
    assert list_entry(" @BÜCHER.example ") == "xn--bcher-kva.example"
    assert list_entry("Jörg@bücher.example") == "jörg@xn--bcher-kva.example"
    with pytest.raises(ValueError, match="not an address or domain"):
        list_entry("bü\u200dcher.example")
