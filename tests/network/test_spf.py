"""SPF for the envelope sender (the HELO name for bounces), from the first untrusted relay."""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.messages import letter, scan
from tests.network.zone import GOOD_IP, LISTED_IP, NO_PTR_IP

SPF_RULES = {"SPF_PASS", "SPF_FAIL", "SPF_SOFTFAIL", "SPF_NEUTRAL", "SPF_NONE", "SPF_PERMERROR",
             "SPF_TEMPERROR"}


@pytest.mark.parametrize(("mail_from", "ip", "rule"), [
    ("tom@shop.test", GOOD_IP, "SPF_PASS"),
    ("tom@shop.test", NO_PTR_IP, "SPF_FAIL"),
    ("tom@soft.test", NO_PTR_IP, "SPF_SOFTFAIL"),
    ("tom@neutral.test", NO_PTR_IP, "SPF_NEUTRAL"),
    ("tom@nospf.test", GOOD_IP, "SPF_NONE"),
    ("tom@broken.test", GOOD_IP, "SPF_PERMERROR"),
    ("tom@tempfail.test", GOOD_IP, "SPF_TEMPERROR"),
])
def test_spf_result_is_the_one_rule_that_hits(scanner: Scanner, mail_from: str, ip: str, rule: str) -> None:
    result = scan(scanner, letter(), ip=ip, mail_from=mail_from)
    assert SPF_RULES & set(result.rule_names) == {rule}


def test_softfail_from_an_allowed_host_is_a_pass(scanner: Scanner) -> None:
    result = scan(scanner, letter(), ip=GOOD_IP, mail_from="tom@soft.test")
    assert "SPF_PASS" in result.rule_names
    assert "SPF_SOFTFAIL" not in result.rule_names


def test_bounce_is_checked_against_the_helo_name(scanner: Scanner) -> None:
    allowed = scan(scanner, letter(), ip=GOOD_IP, helo="shop.test", mail_from="")
    forged = scan(scanner, letter(), ip=NO_PTR_IP, helo="shop.test", mail_from="")
    assert "SPF_PASS" in allowed.rule_names
    assert "smtp.helo=shop.test" in allowed.auth_results
    assert "SPF_FAIL" in forged.rule_names


def test_temporary_error_is_shown_but_weighs_nothing(scanner: Scanner) -> None:
    result = scan(scanner, letter(), mail_from="tom@tempfail.test")
    hit = next(h for h in result.hits if h.name == "SPF_TEMPERROR")
    assert hit.score < 0.01
    assert "DNS_SERVFAIL" in result.rule_names


def test_mail_from_our_trusted_network_is_not_checked(scanner: Scanner) -> None:
    result = scan(scanner, letter(), ip="127.0.0.1", mail_from="tom@shop.test")
    assert not SPF_RULES & set(result.rule_names)


@pytest.mark.parametrize(("mail_from", "ip", "rule"), [
    ("tom@incl.test", GOOD_IP, "SPF_PERMERROR"),  # include: of a domain without SPF (RFC 7208 5.2)
    ("tom@many.test", NO_PTR_IP, "SPF_PERMERROR"),  # 11 terms that query DNS (4.6.4)
    ("tom@void.test", NO_PTR_IP, "SPF_PERMERROR"),  # 3 lookups that find nothing (4.6.4)
    ("tom@redir.test", GOOD_IP, "SPF_PASS"),
    ("tom@redir.test", NO_PTR_IP, "SPF_FAIL"),
    ("tom@redirnone.test", GOOD_IP, "SPF_PERMERROR"),  # redirect= to a domain without SPF (6.1)
    ("tom@macro.test", GOOD_IP, "SPF_PASS"),  # exists:%{ir}.%{l}._spf.%{d}
    ("anna@macro.test", GOOD_IP, "SPF_FAIL"),
    ("tom@split.test", LISTED_IP, "SPF_PASS"),  # the address is in the record's second string
    ("tom@split.test", NO_PTR_IP, "SPF_FAIL"),
    ("tom@explained.test", NO_PTR_IP, "SPF_FAIL"),  # exp= whose server never answers (6.2)
    ("tom@six.test", "2001:db8:1::25", "SPF_PASS"),  # a: with an AAAA record
    ("tom@six.test", "2001:db8:2::25", "SPF_PASS"),  # mx with an IPv6-only MX host
    ("tom@six.test", "2001:db8:3::25", "SPF_FAIL"),
])
def test_spf_edges_real_senders_produce(scanner: Scanner, mail_from: str, ip: str, rule: str) -> None:
    result = scan(scanner, letter(), ip=ip, mail_from=mail_from)
    assert SPF_RULES & set(result.rule_names) == {rule}
