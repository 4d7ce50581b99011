"""DMARC: the From domain's policy, relaxed and strict alignment of SPF and DKIM."""

from __future__ import annotations

import pytest

from mailsift.config import ScanConfig
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import BODY, MIN_SCAN_BYTES, letter, scan, signed
from tests.network.zone import GOOD_IP, NO_PTR_IP

DMARC_RULES = {"DMARC_PASS", "DMARC_MISSING", "DMARC_NONE", "DMARC_QUARANTINE", "DMARC_REJECT"}


def dmarc_hits(scanner: Scanner, raw: bytes, **envelope: str) -> set[str]:
    return DMARC_RULES & set(scan(scanner, raw, **envelope).rule_names)


def test_aligned_spf_pass_passes(scanner: Scanner) -> None:
    assert dmarc_hits(scanner, letter(), ip=GOOD_IP) == {"DMARC_PASS"}


def test_relaxed_alignment_accepts_a_subdomain_bounce_address(scanner: Scanner) -> None:
    assert dmarc_hits(scanner, letter(), mail_from="bounce-42@bounces.shop.test") == {"DMARC_PASS"}


def test_strict_alignment_refuses_a_subdomain_bounce_address(scanner: Scanner) -> None:
    raw = letter("News <news@strict.test>")
    assert dmarc_hits(scanner, raw, mail_from="bounce-42@bounces.strict.test") == {"DMARC_REJECT"}


def test_aligned_dkim_passes_where_spf_fails(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(), test_dns.dkim_private_key)
    assert dmarc_hits(scanner, raw, ip=NO_PTR_IP) == {"DMARC_PASS"}


@pytest.mark.parametrize(("sender", "rule"), [
    ("Tom <tom@shop.test>", "DMARC_REJECT"),
    ("Mia <mia@soft.test>", "DMARC_QUARANTINE"),
    ("Ned <ned@neutral.test>", "DMARC_NONE"),
    ("Sue <sue@sub.shop.test>", "DMARC_QUARANTINE"),  # the organisational domain's sp=
])
def test_failure_is_reported_with_the_published_policy(scanner: Scanner, sender: str, rule: str) -> None:
    result = scan(scanner, letter(sender), ip=NO_PTR_IP, mail_from=sender.split("<")[1].rstrip(">"))
    assert DMARC_RULES & set(result.rule_names) == {rule}
    assert "dmarc=fail" in result.auth_results


def test_domain_without_a_record_is_missing_not_failing(scanner: Scanner) -> None:
    raw = letter("Nick <nick@nospf.test>")
    assert dmarc_hits(scanner, raw, ip=NO_PTR_IP, mail_from="nick@nospf.test") == {"DMARC_MISSING"}


def failing(scanner: Scanner, sender: str) -> Result:
    """A letter from `sender` through a host its domain never allowed, unsigned: DMARC fails."""
    return scan(scanner, letter(f"Someone <{sender}>"), ip=NO_PTR_IP, mail_from=sender)


@pytest.mark.parametrize(("sender", "rule"), [
    ("tom@pct.test", "DMARC_QUARANTINE"),  # p=reject; pct=0: the owner is not rejecting yet
    ("tom@half.test", "DMARC_NONE"),  # p=quarantine; pct=50
])
def test_policy_applied_to_part_of_the_mail_counts_as_the_next_lower(
        scanner: Scanner, sender: str, rule: str) -> None:
    """RFC 7489 6.6.4: mail outside pct= gets the next lower policy; which message is outside is
    chance, so a scorer that must give the same message the same score takes the lower one."""
    assert DMARC_RULES & set(failing(scanner, sender).rule_names) == {rule}


def test_two_records_at_the_from_domain_leave_it_to_the_organisational_domain(scanner: Scanner) -> None:
    """RFC 9989 4.10: several records at a name are discarded and the search goes on, so the
    organisational domain's sp= applies (RFC 7489 6.6.3 ended the search with no DMARC)."""
    result = failing(scanner, "tom@twice.shop.test")
    assert {h.name: h.evidence for h in result.hits if h.name in DMARC_RULES} == {
        "DMARC_QUARANTINE": "twice.shop.test (record at shop.test, sp=quarantine)"}
    assert "dmarc=fail header.from=twice.shop.test policy.dmarc=quarantine" in result.auth_results


@pytest.mark.parametrize(("sender", "rule"), [
    ("tom@typo.test", "DMARC_MISSING"),  # 'v=DMARC1 p=reject': no v=DMARC1 tag, not a record
    ("tom@extra.test", "DMARC_REJECT"),  # tags we do not know are ignored
    ("tom@badp.test", "DMARC_MISSING"),  # p=rejected and no rua=: no DMARC processing
    ("tom@badprua.test", "DMARC_NONE"),  # p=rejected with a rua=: as if p=none
])
def test_record_syntax(scanner: Scanner, sender: str, rule: str) -> None:
    assert DMARC_RULES & set(failing(scanner, sender).rule_names) == {rule}


def test_spf_temperror_of_the_from_domain_is_no_dmarc_failure(scanner: Scanner) -> None:
    """slow.test's SPF includes a zone that never answers: SPF might have passed, so DMARC's
    p=reject must not weigh as if it had failed."""
    result = scan(scanner, letter("Sam <sam@slow.test>"), ip=GOOD_IP, mail_from="sam@slow.test")
    assert not DMARC_RULES & set(result.rule_names)
    assert "dmarc=temperror" in result.auth_results
    assert result.score < 1.0


def test_dkim_key_that_never_arrives_is_no_dmarc_failure(scanner: Scanner, test_dns: DnsFixture) -> None:
    """The bank sending through a mail provider: its bounce address (shop.test) passes SPF without
    aligning, and its own DKIM key does not arrive in time; the signature may well be good."""
    raw = signed(letter("Bank <alerts@slowkey.test>"), test_dns.dkim_private_key, domain="slowkey.test")
    result = scan(scanner, raw, ip=GOOD_IP, mail_from="bounce@shop.test")
    assert not DMARC_RULES & set(result.rule_names)
    assert "dkim=temperror" in result.auth_results
    assert "dmarc=temperror" in result.auth_results


@pytest.mark.parametrize(("sender", "mail_from", "rule"), [
    ("news@a.b.example.co.uk", "bounce@mail.example.co.uk", "DMARC_PASS"),  # same org domain
    ("news@a.b.example.co.uk", "bounce@other.co.uk", "DMARC_QUARANTINE"),  # co.uk is a suffix
    ("news@example.co.uk", "bounce@other.co.uk", "DMARC_REJECT"),
])
def test_organisational_domain_comes_from_the_public_suffix_list(
        scanner: Scanner, sender: str, mail_from: str, rule: str) -> None:
    result = scan(scanner, letter(f"News <{sender}>"), ip=GOOD_IP, mail_from=mail_from)
    assert "SPF_PASS" in result.rule_names
    assert DMARC_RULES & set(result.rule_names) == {rule}


def test_signed_body_cut_at_the_scan_limit_is_no_dmarc_failure(test_dns: DnsFixture) -> None:
    """A big attachment from a p=reject domain whose SPF does not align: the milter hands over
    scan.max_bytes of body, so the aligned signature cannot verify; that is our limit, not forgery."""
    config = network_config(test_dns.server.address).model_copy(
        update={"scan": ScanConfig(max_bytes=MIN_SCAN_BYTES)})
    full = signed(letter(body=BODY * (2 * MIN_SCAN_BYTES // len(BODY))), test_dns.dkim_private_key)
    head, _, body = full.partition(b"\r\n\r\n")
    result = scan(Scanner(config), head + b"\r\n\r\n" + body[:MIN_SCAN_BYTES], ip=NO_PTR_IP)
    assert not DMARC_RULES & set(result.rule_names)
    assert "dmarc=temperror" in result.auth_results
