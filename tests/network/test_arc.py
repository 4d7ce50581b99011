"""Forwarded mail with an ARC chain (RFC 8617), through the loopback DNS server.

shop.test publishes p=reject. Its signed letter reaches a forwarder (an alumni address, a list
that keeps the author's From), which tags the subject, appends a footer and sends it on from an
address shop.test's SPF does not allow: SPF fails, the DKIM signature breaks, DMARC fails, and
mailsift scored the domain's real mail DMARC_REJECT. A forwarder listed in
network.arc_trusted_sealers that sealed what it saw (DMARC passed on arrival) now lifts the policy;
a chain sealed by anyone else, or one that does not validate, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dkim
import pytest

from mailsift.config import ConfigError, parse_config
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.zone import NO_PTR_IP, SELECTOR, TRUSTED_SEALER, UNLISTED_SEALER, UNTRUSTED_SEALER

SLOW_SEALER = "slowkey.test"  # trusted, but its keys are served by a server that never answers
DMARC_RULES = {"DMARC_PASS", "DMARC_NONE", "DMARC_QUARANTINE", "DMARC_REJECT"}
SAW_PASS = ("dkim=pass header.d=shop.test header.s=sel; spf=pass smtp.mailfrom=tom@shop.test; "
            "dmarc=pass header.from=shop.test")
SAW_FAIL = "dkim=none; spf=fail smtp.mailfrom=tom@shop.test; dmarc=fail header.from=shop.test"
FOOTER = b"-- \r\nalumni forwarding service\r\nhttps://alumni.example.org/forwarding\r\n"


@pytest.fixture(scope="module")
def arc_scanner(test_dns: DnsFixture) -> Scanner:
    config = network_config(test_dns.server.address)
    network = config.network.model_copy(
        update={"arc_trusted_sealers": [TRUSTED_SEALER, SLOW_SEALER]})
    return Scanner(config.model_copy(update={"network": network}))


def forwarded(test_dns: DnsFixture, sealer: str = TRUSTED_SEALER, saw: str = SAW_PASS, *,
              written: str = "") -> bytes:
    """shop.test's signed letter as `sealer` sends it on: its Authentication-Results recording
    `saw` on arrival, the subject tagged, a footer appended, then sealed (one ARC set, i=1) with
    d= as `written` (by default `sealer`)."""
    original = signed(letter(), test_dns.dkim_private_key)
    changed = original.replace(b"Subject: Minutes", b"Subject: [alumni] Minutes") + FOOTER
    received = f"Authentication-Results: {sealer}; {saw}\r\n".encode() + changed
    arc_set = dkim.arc_sign(received, SELECTOR.encode(), (written or sealer).encode(),
                            test_dns.dkim_private_key, sealer.encode())
    return b"".join(arc_set) + received


def from_forwarder(scanner: Scanner, raw: bytes) -> Result:
    """Scored as arriving from the forwarder's host, which shop.test's SPF (-all) does not allow;
    the forwarder kept the original envelope sender."""
    return scan(scanner, raw, ip=NO_PTR_IP)


def test_trusted_forwarder_that_saw_dmarc_pass_lifts_the_reject_policy(
        arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    result = from_forwarder(arc_scanner, forwarded(test_dns))
    assert {"SPF_FAIL", "DKIM_INVALID", "ARC_TRUSTED_FORWARD"} <= set(result.rule_names)
    assert not DMARC_RULES & set(result.rule_names)
    hit = next(h for h in result.hits if h.name == "ARC_TRUSTED_FORWARD")
    assert hit.score == pytest.approx(-0.1)
    assert hit.evidence == "local policy: trusted forwarder forwarder.test (ARC i=1) saw dmarc=pass"
    assert "dmarc=fail" in result.auth_results
    assert "policy.dmarc=none" in result.auth_results
    assert result.auth_results.endswith("; arc=pass")


@pytest.mark.parametrize("saw", [
    "dkim=pass header.d=shop.test header.s=sel",  # DKIM aligned with From, no DMARC result recorded
    "spf=pass smtp.mailfrom=bounce@bounces.shop.test",  # SPF of a subdomain: relaxed alignment
])
def test_aligned_spf_or_dkim_pass_recorded_by_a_trusted_forwarder_lifts_the_policy(
        arc_scanner: Scanner, test_dns: DnsFixture, saw: str) -> None:
    result = from_forwarder(arc_scanner, forwarded(test_dns, saw=saw))
    assert "ARC_TRUSTED_FORWARD" in result.rule_names
    assert not DMARC_RULES & set(result.rule_names)


@pytest.mark.parametrize("saw", [
    SAW_FAIL,  # the forwarder saw the forgery too, and said so
    "dkim=pass header.d=other.test header.s=sel; spf=pass smtp.mailfrom=x@other.test",  # unaligned
])
def test_trusted_forwarder_that_recorded_no_pass_for_the_from_domain_changes_nothing(
        arc_scanner: Scanner, test_dns: DnsFixture, saw: str) -> None:
    result = from_forwarder(arc_scanner, forwarded(test_dns, saw=saw))
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "ARC_TRUSTED_FORWARD" not in result.rule_names
    assert "; arc=pass" in result.auth_results


def test_chain_sealed_by_an_untrusted_forwarder_changes_nothing(
        arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    result = from_forwarder(arc_scanner, forwarded(test_dns, sealer=UNTRUSTED_SEALER))
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "ARC_TRUSTED_FORWARD" not in result.rule_names
    assert "; arc=" not in result.auth_results  # not checked: nothing to say about it


def test_forged_arc_record_breaks_the_seal_and_changes_nothing(
        arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    """A spammer takes a sealed message whose forwarder saw DMARC fail and edits the record to
    say pass: the seal no longer validates."""
    raw = forwarded(test_dns, saw=SAW_FAIL).replace(b"dmarc=fail", b"dmarc=pass")
    result = from_forwarder(arc_scanner, raw)
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "ARC_TRUSTED_FORWARD" not in result.rule_names
    assert "; arc=fail" in result.auth_results


def test_body_changed_after_sealing_fails_the_chain(arc_scanner: Scanner, test_dns: DnsFixture,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The newest ARC-Message-Signature covers the body as the forwarder sent it on. dkimpy's
    "body hash mismatch" went to the log at error level, one line per such message, burying the
    milter's own errors: the verdict carries it, the log keeps it at debug level."""
    caplog.set_level(logging.DEBUG, logger="mailsift.network")
    result = from_forwarder(arc_scanner, forwarded(test_dns) + b"Click https://example.com/win\r\n")
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "; arc=fail" in result.auth_results
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "body hash mismatch" in caplog.text


def test_sealer_key_that_never_arrives_makes_dmarc_a_temperror_not_a_reject(
        arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    """The trusted sealer recorded DMARC passing and its seal might well validate: DNS trouble
    is no forgery (as for a DKIM key that did not arrive), so no DMARC_REJECT, and no override."""
    result = from_forwarder(arc_scanner, forwarded(test_dns, sealer=SLOW_SEALER))
    assert DMARC_RULES & set(result.rule_names) == set()
    assert "ARC_TRUSTED_FORWARD" not in result.rule_names
    assert "dmarc=temperror" in result.auth_results and "; arc=temperror" in result.auth_results
    assert "DNS_TIMEOUT" in result.rule_names


def test_sealer_key_that_never_arrives_keeps_the_policy_when_the_sealer_saw_a_failure(
        arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    result = from_forwarder(arc_scanner, forwarded(test_dns, sealer=SLOW_SEALER, saw=SAW_FAIL))
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "; arc=temperror" in result.auth_results


def test_chain_longer_than_the_limit_is_not_validated(arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    """Each set costs key lookups and RSA checks; real chains have one to three."""
    from mailsift.network.arc import MAX_SETS  # here, so the other tests also run on older code

    raw = forwarded(test_dns)
    for _ in range(MAX_SETS):
        hop = b"Authentication-Results: forwarder.test; arc=pass\r\n" + raw
        raw = b"".join(dkim.arc_sign(hop, SELECTOR.encode(), TRUSTED_SEALER.encode(),
                                     test_dns.dkim_private_key, TRUSTED_SEALER.encode())) + hop
    result = from_forwarder(arc_scanner, raw)
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert f"more than {MAX_SETS} ARC sets" in result.auth_results


@pytest.mark.parametrize("damage", [
    lambda raw: raw.replace(b"ARC-Seal: i=1", b"ARC-Seal: i=1; d=forwarder.test; i=x"),
    lambda raw: raw.replace(b"ARC-Message-Signature: i=1", b"ARC-Message-Signature: i=2"),
    lambda raw: b"ARC-Seal: i=2; d=forwarder.test; s=sel; cv=pass; b=\r\n" + raw,
])
def test_malformed_arc_headers_never_crash(arc_scanner: Scanner, test_dns: DnsFixture,
                                           damage: Callable[[bytes], bytes]) -> None:
    result = from_forwarder(arc_scanner, damage(forwarded(test_dns)))
    assert "ARC_TRUSTED_FORWARD" not in result.rule_names
    assert "DMARC_REJECT" in result.rule_names


def test_no_arc_lookup_without_a_trusted_sealer(
        scanner: Scanner, arc_scanner: Scanner, test_dns: DnsFixture) -> None:
    """The sealer list empty (the default), or the chain sealed by a sealer not on it: no key is
    asked for, and the policy stands."""
    unlisted = from_forwarder(scanner, forwarded(test_dns, sealer=UNLISTED_SEALER))
    untrusted = from_forwarder(arc_scanner, forwarded(test_dns, sealer=UNTRUSTED_SEALER))
    assert "DMARC_REJECT" in unlisted.rule_names
    assert "DMARC_REJECT" in untrusted.rule_names
    asked = test_dns.server.log.read_text()
    assert f"_domainkey.{UNLISTED_SEALER}" not in asked
    assert f"_domainkey.{UNTRUSTED_SEALER}" not in asked


def test_a_sealer_that_is_no_domain_is_a_one_line_error() -> None:
    """A sealer is named by its d= domain; a mail address or URL would silently trust nobody."""
    with pytest.raises(ConfigError) as err:
        parse_config({"network": {"arc_trusted_sealers": ["https://lists.example.org"]}}, "mailsift.toml")
    assert str(err.value).startswith("mailsift.toml: network.arc_trusted_sealers: "
                                     "'https://lists.example.org' is not a domain name")
    assert str(err.value).endswith('allowed: domain names, e.g. ["lists.example.org", "google.com"]')
