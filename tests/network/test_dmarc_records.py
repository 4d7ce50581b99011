"""DMARC records: np= for subdomains that do not exist (RFC 9989), a tag named twice, v=dmarc1.

Phishing invents subdomains of a bank (secure-login.bank.example) that have no DNS records. A bank
publishing `p=none; sp=none; np=reject` asks for those to be rejected while its own domain and real
subdomains are only monitored; np= was ignored, so such mail scored DMARC_NONE. And a record naming
a tag twice took the last one: `p=none; p=reject` was scored as p=reject.
"""

from __future__ import annotations

import pytest

from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.test_dmarc import DMARC_RULES, failing


def dmarc_evidence(result: Result) -> dict[str, str]:
    return {h.name: h.evidence for h in result.hits if h.name in DMARC_RULES}


def test_made_up_subdomain_gets_the_policy_for_missing_subdomains(scanner: Scanner) -> None:
    result = failing(scanner, "alert@secure-login.bank.test")
    assert dmarc_evidence(result) == {"DMARC_REJECT": (
        "secure-login.bank.test (record at bank.test, np=reject, no such subdomain)")}
    assert "dmarc=fail header.from=secure-login.bank.test policy.dmarc=reject" in result.auth_results


@pytest.mark.parametrize("sender", [
    "news@news.bank.test",  # has an MX
    "web@www.bank.test",  # has an address
])
def test_subdomain_that_exists_keeps_the_subdomain_policy(scanner: Scanner, sender: str) -> None:
    result = failing(scanner, sender)
    domain = sender.partition("@")[2]
    assert dmarc_evidence(result) == {"DMARC_NONE": f"{domain} (record at bank.test, sp=none)"}
    assert f"dmarc=fail header.from={domain} policy.dmarc=none" in result.auth_results


def test_subdomain_holding_only_a_txt_record_exists_and_keeps_the_subdomain_policy(
        scanner: Scanner) -> None:
    """RFC 9989 takes NXDOMAIN alone for "does not exist" (RFC 9091 took NODATA for A, AAAA and
    MX too): a bank's subdomain holding only an SPF record for a sending service is real, and its
    mail was put under the np=reject meant for made-up names."""
    assert dmarc_evidence(failing(scanner, "x@spf.bank.test")) == {
        "DMARC_NONE": "spf.bank.test (record at bank.test, sp=none)"}


def test_organisational_domain_itself_keeps_its_own_policy(scanner: Scanner) -> None:
    """np= is for subdomains; the bank's own domain is judged by its p=."""
    result = failing(scanner, "news@bank.test")
    assert dmarc_evidence(result) == {"DMARC_NONE": "bank.test (record at bank.test, p=none)"}


@pytest.mark.parametrize(("sender", "rule"), [
    # np=rejected is no policy, and without a rua= the record gives none (RFC 9989 4.10.1)
    ("x@made-up.npbad.test", "DMARC_MISSING"),
    ("x@made-up.nppct.test", "DMARC_QUARANTINE"),  # np=reject; pct=0: the next lower, as for p=
])
def test_policy_for_missing_subdomains_is_read_as_the_other_policies(
        scanner: Scanner, sender: str, rule: str) -> None:
    assert set(dmarc_evidence(failing(scanner, sender))) == {rule}


@pytest.mark.parametrize("sender", [
    "tom@dup.test",  # v=DMARC1; p=none; p=reject
    "tom@dup.shop.test",  # v=DMARC1; p=none; p=none, under shop.test's sp=quarantine
])
def test_record_naming_a_tag_twice_is_no_record(scanner: Scanner, sender: str) -> None:
    """RFC 7489 6.3 takes DKIM's tag=value syntax, and RFC 6376 3.2 makes a tag-list naming a
    tag twice invalid as a whole: neither p= counts, and (as for two records, RFC 7489 6.6.3)
    the organisational domain's record is not taken instead."""
    result = failing(scanner, sender)
    assert set(dmarc_evidence(result)) == {"DMARC_MISSING"}
    assert "dmarc=none" in result.auth_results


@pytest.mark.parametrize(("sender", "evidence"), [
    # v=dmarc1; p=reject: no record, so no policy (was DMARC_REJECT)
    ("tom@lowerv.test", {"DMARC_MISSING": "lowerv.test publishes no DMARC record"}),
    # v=dmarc1; p=none: no record there, so shop.test's applies (was DMARC_NONE)
    ("tom@lowerv.shop.test", {"DMARC_QUARANTINE": "lowerv.shop.test (record at shop.test, sp=quarantine)"}),
])
def test_version_in_lower_case_makes_no_dmarc_record(
        scanner: Scanner, sender: str, evidence: dict[str, str]) -> None:
    """RFC 9989 4.8: dmarc-version = "v" equals %s"DMARC1", case sensitive; 4.7: a value that does
    not "match precisely" means the record "MUST be ignored", as a TXT record of another kind."""
    assert dmarc_evidence(failing(scanner, sender)) == evidence


def test_tag_names_and_policies_in_capitals_are_read(scanner: Scanner) -> None:
    """V=DMARC1; P=Reject: quoted ABNF strings ("v", "reject") match in either case (RFC 5234 2.3).
    A guard: the old code read it too."""
    assert dmarc_evidence(failing(scanner, "tom@upperv.test")) == {
        "DMARC_REJECT": "upperv.test (record at upperv.test, p=reject)"}
