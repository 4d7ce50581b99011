"""A user's welcome entry counts only for a sender that SPF or DKIM confirms: spam forging a
welcomed address (a bank, a colleague) used to get its -100 and reach the inbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.config import AutolearnConfig, QuarantineConfig
from mailsift.quarantine.store import open_quarantine
from mailsift.rules.checks import userlists
from mailsift.scanner import Scanner
from mailsift.training.autolearn import autolearn_label
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.zone import GOOD_IP, NO_PTR_IP

WELCOME_RULES = {"USER_IN_WELCOMELIST", "USER_WELCOME_UNVERIFIED"}


@pytest.fixture(scope="module")
def welcoming(test_dns: DnsFixture, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanner]:
    """A scanner whose recipient anna@our.test welcomes shop.test and mia@soft.test, and blocks
    neutral.test."""
    quarantine = QuarantineConfig(dir=str(Path(tmp_path_factory.mktemp("welcome")) / "q"))
    backend = open_quarantine(quarantine).backend
    backend.set_listed("anna@our.test", "welcome", "shop.test", True)
    backend.set_listed("anna@our.test", "welcome", "mia@soft.test", True)
    backend.set_listed("anna@our.test", "block", "neutral.test", True)
    config = network_config(test_dns.server.address).model_copy(update={"quarantine": quarantine})
    saved = userlists._CACHE
    userlists._CACHE = userlists._Cache()
    yield Scanner(config)
    userlists._CACHE = saved


def welcome_hits(scanner: Scanner, raw: bytes, ip: str, mail_from: str = "tom@shop.test") -> set[str]:
    return WELCOME_RULES & set(scan(scanner, raw, ip=ip, mail_from=mail_from).rule_names)


def test_a_sender_spf_confirms_is_welcomed(welcoming: Scanner) -> None:
    assert welcome_hits(welcoming, letter(), GOOD_IP) == {"USER_IN_WELCOMELIST"}


def test_a_forged_welcomed_sender_is_shown_but_not_welcomed(welcoming: Scanner) -> None:
    result = scan(welcoming, letter(), ip=NO_PTR_IP)  # SPF fails: not a shop.test server
    assert WELCOME_RULES & set(result.rule_names) == {"USER_WELCOME_UNVERIFIED"}
    hit = next(h for h in result.hits if h.name == "USER_WELCOME_UNVERIFIED")
    assert (hit.score, hit.evidence) == (0.001, "shop.test")


def test_a_verifying_dkim_signature_of_the_senders_domain_confirms_it(
        welcoming: Scanner, test_dns: DnsFixture) -> None:
    """Forwarded mail fails SPF but keeps its signature."""
    raw = signed(letter(), test_dns.dkim_private_key)
    assert welcome_hits(welcoming, raw, NO_PTR_IP) == {"USER_IN_WELCOMELIST"}
    another_domains = signed(letter("Mia <mia@soft.test>"), test_dns.dkim_private_key)
    assert welcome_hits(welcoming, another_domains, NO_PTR_IP, "mia@soft.test") == {
        "USER_WELCOME_UNVERIFIED"}


def test_our_own_mail_is_never_welcomed(welcoming: Scanner) -> None:
    """Welcome lists speak about strangers' mail. Mail from our own networks counted as welcomed
    unproven, so a compromised host's (or, authenticated, account's) spam to a welcoming user
    passed with -100, and past the outbound pause."""
    assert welcome_hits(welcoming, letter(), "127.0.0.1") == {"USER_WELCOME_UNVERIFIED"}
    authenticated = scan(welcoming, letter(), ip=GOOD_IP, auth_user="tom")
    assert WELCOME_RULES & set(authenticated.rule_names) == {"USER_WELCOME_UNVERIFIED"}


def test_a_confirmed_welcome_scores_large_negative_and_is_not_autolearned(welcoming: Scanner) -> None:
    result = scan(welcoming, letter(), ip=GOOD_IP)
    hit = next(h for h in result.hits if h.name == "USER_IN_WELCOMELIST")
    assert (hit.score, hit.evidence) == (-100.0, "shop.test")
    assert autolearn_label(result, AutolearnConfig()) is None


def test_a_block_entry_needs_no_proof(welcoming: Scanner) -> None:
    result = scan(welcoming, letter("Ned <ned@neutral.test>"), ip=NO_PTR_IP, mail_from="ned@neutral.test")
    assert "USER_IN_BLOCKLIST" in result.rule_names


def test_a_signature_whose_length_covers_the_whole_body_confirms_the_sender(
        welcoming: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(), test_dns.dkim_private_key, length=True)
    assert welcome_hits(welcoming, raw, NO_PTR_IP) == {"USER_IN_WELCOMELIST"}


def test_a_signature_over_part_of_the_body_does_not_confirm_the_sender(
        welcoming: Scanner, test_dns: DnsFixture) -> None:
    """l= lets anyone append to a welcomed partner's signed mail: a replayed message with a
    spammer's link after the signed text got the welcome's -100."""
    raw = signed(letter(), test_dns.dkim_private_key, length=True)
    appended = raw + b"\r\nNew bank details for your next payment: https://pay.example.com/iban\r\n"
    result = scan(welcoming, appended, ip=NO_PTR_IP)
    assert WELCOME_RULES & set(result.rule_names) == {"USER_WELCOME_UNVERIFIED"}
    assert "DKIM_UNSIGNED_TAIL" in result.rule_names


def test_an_rsa_sha1_signature_does_not_confirm_the_sender(welcoming: Scanner, test_dns: DnsFixture) -> None:
    """RFC 8301: no verifier may count an rsa-sha1 signature (a SHA-1 collision lets a forger fit
    a signature the sender made to a text of his own); it confirmed the welcome entry."""
    raw = signed(letter(), test_dns.dkim_private_key, algorithm="rsa-sha1")
    assert welcome_hits(welcoming, raw, NO_PTR_IP) == {"USER_WELCOME_UNVERIFIED"}


def test_a_newsletter_is_welcomed_by_its_from_and_the_partners_signature(
        welcoming: Scanner, test_dns: DnsFixture) -> None:
    """A partner's newsletter sent through a mailing service comes From the partner, with the
    service's envelope sender: only the envelope sender was looked up, so the entry the user
    made from the From they see never counted, signed by the partner or not."""
    newsletter = signed(letter(), test_dns.dkim_private_key)  # From tom@shop.test, d=shop.test
    assert welcome_hits(welcoming, newsletter, NO_PTR_IP, "bounce-7@random.test") == {
        "USER_IN_WELCOMELIST"}
    assert welcome_hits(welcoming, letter(), NO_PTR_IP, "bounce-7@random.test") == {
        "USER_WELCOME_UNVERIFIED"}  # the From forged, nothing signs it


def test_a_blocked_from_address_is_blocked_whatever_the_envelope_sender(welcoming: Scanner) -> None:
    result = scan(welcoming, letter("Ned <ned@neutral.test>"), ip=NO_PTR_IP,
                  mail_from="bounce-7@random.test")
    assert "USER_IN_BLOCKLIST" in result.rule_names
