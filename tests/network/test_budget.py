"""DNS that does not answer costs at most the budget, never the message; what failed is recorded."""

from __future__ import annotations

import time

import pytest

from mailsift.analysis.model import Envelope
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan
from tests.network.zone import LISTED_IP

BUDGET_S = 1.0
SLACK_S = 0.5


@pytest.fixture(scope="module")
def impatient(test_dns: DnsFixture) -> Scanner:
    return Scanner(network_config(test_dns.server.address, timeout=BUDGET_S))


def test_zone_that_never_answers_costs_at_most_the_budget(impatient: Scanner) -> None:
    raw = letter("Sam <sam@x.never.test>")
    envelope = Envelope(client_ip=LISTED_IP, helo="mail.listed.test", mail_from="sam@slow.test")
    started = time.monotonic()
    msg = impatient.analyse(raw, envelope)
    result = impatient.score(msg)
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S + SLACK_S, elapsed
    assert "DNS_TIMEOUT" in msg.facts
    assert "DNS_TIMEOUT" in result.rule_names
    # what did answer still counts; what depended on the silent zone does not fire
    assert "RCVD_IN_TEST_BL" in result.rule_names
    assert not {"SPF_FAIL", "SENDER_NXDOMAIN", "SENDER_NO_MX", "DMARC_MISSING"} & set(result.rule_names)


def test_resolver_that_never_answers_costs_at_most_the_budget(test_dns: DnsFixture) -> None:
    scanner = Scanner(network_config(test_dns.server.silent_address, timeout=BUDGET_S))
    started = time.monotonic()
    result = scan(scanner, letter(), ip=LISTED_IP)
    assert time.monotonic() - started < BUDGET_S + SLACK_S
    net_hits = [h for h in result.hits if "net" in h.tflags]
    # only the informational records: no judgement is made on missing answers
    assert {h.name for h in net_hits} == {"DNS_TIMEOUT", "SPF_TEMPERROR", "DKIM_ABSENT"}
    assert all(h.score < 0.01 for h in net_hits)
    assert "spf=temperror" in result.auth_results


def test_a_resolver_gone_at_the_default_budget_is_counted_lookup_by_lookup(
        test_dns: DnsFixture) -> None:
    """dnspython sleeps its backoff between tries (0.1, 0.2, 0.4 s...) before it looks at the
    lifetime, so at the default 3 s a lookup to a silent resolver ended 0.4 s late, after the
    outer guard had cut every check off: no lookup was recorded, and README's alert on
    mailsift_dns_errors_total{outcome="timeout"} never fired while the resolver was gone."""
    default = 3.0  # dns.timeout's default: the budget needs three tries for the 0.4 s backoff
    scanner = Scanner(network_config(test_dns.server.silent_address, timeout=default))
    started = time.monotonic()
    result = scan(scanner, letter(), ip=LISTED_IP)
    assert time.monotonic() - started < default + SLACK_S
    assert result.dns_failures and set(result.dns_failures) == {"timeout"}, result.dns_failures


def test_refusing_server_is_recorded_and_judges_nothing(scanner: Scanner) -> None:
    result = scan(scanner, letter("Ann <ann@unserved.example>"), mail_from="ann@unserved.example")
    assert "DNS_SERVFAIL" in result.rule_names
    judged = {"SENDER_NXDOMAIN", "SENDER_NO_MX", "SENDER_WEAK_AUTH", "DMARC_MISSING"}
    assert not judged & set(result.rule_names)
