"""DKIM signatures with a body length count (l=, RFC 6376 3.5 and 8.2) through the test DNS server.

Such a signature covers the first l bytes of the body; anyone can append after them and it still
verifies. mailsift passed it, and its domain then counted for DMARC and for users' welcome lists:
a bank's signed mail with a spammer's paragraph appended passed DMARC as the bank's. Now content
after the signed part makes the signature `policy`: no pass, no DMARC pass, no forgery either
(a mailing list's footer looks the same), and DKIM_UNSIGNED_TAIL says so in the report.
"""

from __future__ import annotations

import pytest

from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.zone import NO_PTR_IP

AUTH_RULES = {"DKIM_VALID", "DKIM_VALID_AU", "DKIM_INVALID", "DKIM_UNSIGNED_TAIL",
              "DMARC_PASS", "DMARC_NONE", "DMARC_QUARANTINE", "DMARC_REJECT"}
SPAM_PARAGRAPH = (b"\r\nURGENT: your account is suspended. Confirm your details within 24 hours at\r\n"
                  b"https://secure-login.example.com/verify or lose access.\r\n")
HTML_PART = (b"\r\n--appended\r\nContent-Type: text/html\r\n\r\n<p>Your parcel is held: "
             b"<a href=\"https://parcel.example.com/pay\">pay the fee</a></p>\r\n--appended--\r\n")
LIST_FOOTER = (b"-- \r\nminutes mailing list\r\nUnsubscribe: https://lists.example.org/minutes\r\n")


def relayed(raw: bytes, scanner: Scanner) -> Result:
    """Scored as arriving from a host shop.test's SPF does not allow (forwarded, a list, a
    replay): only the signature can vouch for the From domain, a p=reject one."""
    return scan(scanner, raw, ip=NO_PTR_IP)


def test_signature_with_a_length_covering_the_whole_body_is_an_ordinary_pass(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    result = relayed(signed(letter(), test_dns.dkim_private_key, length=True), scanner)
    assert AUTH_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU", "DMARC_PASS"}
    assert "dkim=pass" in result.auth_results
    assert "dmarc=pass" in result.auth_results


@pytest.mark.parametrize("appended", [SPAM_PARAGRAPH, HTML_PART])
def test_content_appended_after_the_signed_length_earns_no_dkim_or_dmarc_pass(
        scanner: Scanner, test_dns: DnsFixture, appended: bytes) -> None:
    raw = signed(letter(), test_dns.dkim_private_key, length=True) + appended
    result = relayed(raw, scanner)
    assert AUTH_RULES & set(result.rule_names) == {"DKIM_UNSIGNED_TAIL"}
    hit = next(h for h in result.hits if h.name == "DKIM_UNSIGNED_TAIL")
    signed_length = len(letter()) - letter().index(b"Hello")
    assert (hit.score, hit.evidence) == (
        0.3, f"shop.test: l={signed_length} leaves {len(appended)} body bytes unsigned")
    assert "dkim=policy" in result.auth_results
    assert "dmarc=fail" in result.auth_results
    assert "policy.dmarc=none" in result.auth_results  # we do not apply p=reject: see the next test


@pytest.mark.parametrize("list_header", [b"", b"List-Id: <minutes.lists.example.org>\r\n"])
def test_a_footer_after_the_signed_length_is_not_scored_as_forgery(
        scanner: Scanner, test_dns: DnsFixture, list_header: bytes) -> None:
    """A list that keeps the author's From and appends its footer to an l= signature: the domain
    did sign the message, so neither DKIM_INVALID nor its p=reject (DMARC_REJECT) applies; the
    footer costs what a broken signature would, and a replay with a spammer's text no less."""
    raw = list_header + signed(letter(), test_dns.dkim_private_key, length=True) + LIST_FOOTER
    result = relayed(raw, scanner)
    assert AUTH_RULES & set(result.rule_names) == {"DKIM_UNSIGNED_TAIL"}
    assert sum(h.score for h in result.hits if h.name in AUTH_RULES) == pytest.approx(0.3)


def test_blank_lines_appended_after_the_signed_length_are_no_content(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """DKIM's canonical body ends at its last non-empty line; l= counts that body."""
    raw = signed(letter(), test_dns.dkim_private_key, length=True) + b"\r\n\r\n\r\n"
    assert AUTH_RULES & set(relayed(raw, scanner).rule_names) == {
        "DKIM_VALID", "DKIM_VALID_AU", "DMARC_PASS"}


def test_aligned_spf_still_passes_dmarc_when_the_signature_leaves_a_tail(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """From shop.test's own server, SPF vouches for the message; the tail is shown all the same."""
    raw = signed(letter(), test_dns.dkim_private_key, length=True) + SPAM_PARAGRAPH
    result = scan(scanner, raw)  # from mail.shop.test
    assert AUTH_RULES & set(result.rule_names) == {"DKIM_UNSIGNED_TAIL", "DMARC_PASS"}
    assert "dmarc=pass" in result.auth_results
