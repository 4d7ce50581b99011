"""DMARC: the From domain's policy, relaxed and strict alignment of SPF and DKIM."""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
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
