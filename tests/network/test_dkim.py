"""DKIM: messages signed with dkimpy by the key whose public half is in the test zone."""

from __future__ import annotations

import re

import dkim
import pytest

from mailsift.config import ScanConfig
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import BODY, MIN_SCAN_BYTES, letter, scan, signed
from tests.network.zone import SELECTOR

DKIM_RULES = {"DKIM_VALID", "DKIM_VALID_AU", "DKIM_INVALID", "DKIM_ABSENT"}


def dkim_hits(scanner: Scanner, raw: bytes) -> set[str]:
    return DKIM_RULES & set(scan(scanner, raw).rule_names)


def test_signature_of_the_from_domain_is_valid_and_aligned(scanner: Scanner, test_dns: DnsFixture) -> None:
    assert dkim_hits(scanner, signed(letter(), test_dns.dkim_private_key)) == {"DKIM_VALID", "DKIM_VALID_AU"}


def test_signature_of_another_domain_is_valid_but_not_aligned(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter("Mia <mia@soft.test>"), test_dns.dkim_private_key)
    assert dkim_hits(scanner, raw) == {"DKIM_VALID"}


def test_changed_body_breaks_the_signature(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(), test_dns.dkim_private_key).replace(b"before Friday", b"before Monday")
    result = scan(scanner, raw)
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert "body hash" in next(h.evidence for h in result.hits if h.name == "DKIM_INVALID")
    assert "dkim=fail" in result.auth_results


def test_signature_without_a_published_key_is_invalid(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(), test_dns.dkim_private_key, domain="neutral.test")
    assert dkim_hits(scanner, raw) == {"DKIM_INVALID"}


def test_unsigned_message_has_no_signature(scanner: Scanner) -> None:
    assert dkim_hits(scanner, letter(body=BODY)) == {"DKIM_ABSENT"}


def test_one_good_signature_outweighs_a_broken_one(scanner: Scanner, test_dns: DnsFixture) -> None:
    good = signed(letter(), test_dns.dkim_private_key)
    broken = signed(letter(), test_dns.dkim_private_key, domain="neutral.test")
    raw = broken.split(b"\r\nFrom:")[0] + b"\r\n" + good
    result = scan(scanner, raw)
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert result.auth_results.count("dkim=") == 2


def test_body_cut_at_the_scan_limit_is_neutral_not_invalid(test_dns: DnsFixture) -> None:
    config = network_config(test_dns.server.address).model_copy(
        update={"scan": ScanConfig(max_bytes=MIN_SCAN_BYTES)})
    long_letter = letter(body=BODY * (2 * MIN_SCAN_BYTES // len(BODY)))
    full = signed(long_letter, test_dns.dkim_private_key)
    head, _, body = full.partition(b"\r\n\r\n")
    result = scan(Scanner(config), head + b"\r\n\r\n" + body[:MIN_SCAN_BYTES])  # as the milter passes it
    assert not DKIM_RULES & set(result.rule_names)
    assert "dkim=neutral" in result.auth_results


def test_a_key_the_dkim_library_cannot_read_makes_the_signature_invalid(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """A sender's DNS is theirs to write: dkimpy's reader failed on this key with an
    AssertionError, which stopped the network checks and so the scoring of the message."""
    raw = signed(letter("Tom <tom@badkey.test>"), test_dns.dkim_private_key, domain="badkey.test")
    result = scan(scanner, raw, mail_from="tom@badkey.test")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert "dkim=permerror" in result.auth_results


def test_a_message_dkimpy_cannot_split_into_headers_is_scored(scanner: Scanner) -> None:
    """A first line that continues a header nobody began: dkimpy raised IndexError."""
    assert dkim_hits(scanner, b" continued\r\n" + letter(body=BODY)) == {"DKIM_ABSENT"}


def test_a_body_hash_that_is_not_base64_makes_the_signature_invalid(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """Anyone can write this one, in the message itself: dkimpy checks the b= tag where it means
    bh= (four characters pass), then its base64 decoding raised binascii.Error."""
    raw = re.sub(rb"bh=[^;]+;", b"bh=ab=c;", signed(letter(), test_dns.dkim_private_key))
    assert dkim_hits(scanner, raw) == {"DKIM_INVALID"}


@pytest.mark.parametrize("domain", ["testing.test", "testingupper.test"])
def test_failing_signature_of_a_key_in_testing_mode_counts_as_unsigned(
        scanner: Scanner, test_dns: DnsFixture, domain: str) -> None:
    """RFC 6376 3.6.1: mail signed with a t=y key must not be treated differently from unsigned
    mail, even when the signature fails: the signer is still setting DKIM up. The key tag's
    flags are ABNF quoted strings, so t=Y is testing mode too (it counted as a failure)."""
    raw = signed(letter(f"Tom <tom@{domain}>"), test_dns.dkim_private_key, domain=domain)
    result = scan(scanner, raw.replace(b"before Friday", b"before Monday"), mail_from=f"tom@{domain}")
    assert not DKIM_RULES & set(result.rule_names)
    assert "dkim=neutral" in result.auth_results


def test_good_signature_of_a_key_in_testing_mode_still_verifies(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter("Tom <tom@testing.test>"), test_dns.dkim_private_key, domain="testing.test")
    assert dkim_hits(scanner, raw) == {"DKIM_VALID", "DKIM_VALID_AU"}


def test_signature_of_a_revoked_key_is_invalid(scanner: Scanner, test_dns: DnsFixture) -> None:
    """An empty p= is a key its owner withdrew (RFC 6376 3.6.1): nothing it signed verifies."""
    raw = signed(letter("Tom <tom@revoked.test>"), test_dns.dkim_private_key, domain="revoked.test")
    result = scan(scanner, raw, mail_from="tom@revoked.test")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert "dkim=permerror" in result.auth_results


def test_ed25519_signature_verifies(scanner: Scanner, test_dns: DnsFixture) -> None:
    """RFC 8463: senders sign with ed25519, alone or beside RSA; dkimpy needs PyNaCl for it."""
    raw = letter("Tom <tom@ed.test>")
    raw = dkim.sign(raw, SELECTOR.encode(), b"ed.test", test_dns.ed25519_private_key,
                    include_headers=[b"from", b"to", b"subject"], signature_algorithm=b"ed25519-sha256") + raw
    result = scan(scanner, raw, mail_from="tom@ed.test")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert "dkim=pass header.d=ed.test" in result.auth_results


def test_header_added_after_signing_leaves_the_signature_valid(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """A relay's Received or a list's List-Id, unsigned, changes nothing (RFC 6376 5.4)."""
    raw = b"List-Id: <minutes.shop.test>\r\n" + signed(letter(), test_dns.dkim_private_key)
    assert dkim_hits(scanner, raw) == {"DKIM_VALID", "DKIM_VALID_AU"}


def test_second_copy_of_a_signed_header_added_on_top_breaks_nothing_it_covers(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """A second Subject placed above the signed one: verifiers read the bottom one (RFC 6376
    5.4.2), so the signature still verifies; the message's From is the one signed."""
    raw = b"Subject: Urgent: verify your account\r\n" + signed(letter(), test_dns.dkim_private_key)
    assert dkim_hits(scanner, raw) == {"DKIM_VALID", "DKIM_VALID_AU"}
