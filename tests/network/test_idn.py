"""Internationalised domains (RFC 6531/6532 mail): a domain is one domain in U-labels and A-labels.

A European sender's SMTPUTF8 mail says `From: Jörg <jörg@bücher.test>`, while its MTA may give
MAIL FROM in either form and its DKIM signer writes d=xn--bcher-kva.test; the DNS holds the
A-label alone (zone.IDN_ASCII), which is what every lookup must ask.
"""

from __future__ import annotations

import pytest

from mailsift.config import parse_config
from mailsift.domains import ascii_domain
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.test_arc import forwarded, from_forwarder
from tests.network.zone import GOOD_IP, IDN_ASCII, IDN_DOMAIN, NO_PTR_IP, OWN_DOMAIN

DMARC_RULES = {"DMARC_PASS", "DMARC_MISSING", "DMARC_NONE", "DMARC_QUARANTINE", "DMARC_REJECT"}


@pytest.mark.parametrize(("header_domain", "envelope_domain"), [
    (IDN_DOMAIN, IDN_DOMAIN),
    (IDN_DOMAIN, IDN_ASCII),
    (IDN_ASCII, IDN_DOMAIN),
    (IDN_DOMAIN.upper(), IDN_ASCII.upper()),
])
def test_spf_aligns_with_the_from_domain_in_either_form(
        scanner: Scanner, header_domain: str, envelope_domain: str) -> None:
    """SPF passed for xn--bcher-kva.test and DMARC still failed the From of bücher.test with the
    domain's p=reject: its own mail scored DMARC_REJECT."""
    result = scan(scanner, letter(f"Jörg <jörg@{header_domain}>"), ip=GOOD_IP,
                  mail_from=f"jörg@{envelope_domain}")
    assert "SPF_PASS" in result.rule_names
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_PASS"}


def test_dkim_signature_in_a_labels_aligns_with_a_from_in_u_labels(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """A signer writes d= in A-labels; the From of the same domain in U-labels is its author domain."""
    raw = signed(letter(f"Jörg <jörg@{IDN_DOMAIN}>"), test_dns.dkim_private_key, IDN_ASCII)
    names = set(scan(scanner, raw, ip=NO_PTR_IP, mail_from="bounce@shop.test").rule_names)
    assert {"DKIM_VALID", "DKIM_VALID_AU"} <= names
    assert DMARC_RULES & names == {"DMARC_PASS"}


def test_bounce_from_a_u_label_helo_aligns_with_the_from(scanner: Scanner) -> None:
    """A bounce (empty MAIL FROM) is checked by its HELO name, here written in U-labels."""
    result = scan(scanner, letter(f"Postmaster <postmaster@{IDN_ASCII}>"), ip=GOOD_IP,
                  helo=IDN_DOMAIN, mail_from="")
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_PASS"}


def test_lookups_ask_for_the_a_label_form(scanner: Scanner, test_dns: DnsFixture) -> None:
    """What the DNS server was asked: the A-labels only, never raw UTF-8 it could not know."""
    scan(scanner, letter(f"Jörg <jörg@{IDN_DOMAIN}>"), ip=GOOD_IP, mail_from=f"jörg@{IDN_DOMAIN}")
    asked = test_dns.server.log.read_text("utf-8", "replace")
    assert f"query[TXT] _dmarc.{IDN_ASCII} " in asked
    assert f"query[TXT] {IDN_ASCII} " in asked
    assert IDN_DOMAIN not in asked


@pytest.mark.parametrize(("own", "helo"), [
    ("unsere-bücher.test", "mx.xn--unsere-bcher-klb.test"),
    ("xn--unsere-bcher-klb.test", "mx.unsere-bücher.test"),
])
def test_own_domain_matches_in_either_form(test_dns: DnsFixture, own: str, helo: str) -> None:
    """own_domains may be written as the company spells its name; a stranger's HELO claiming it
    in the other form is still ours (config refused U-labels as no domain name)."""
    config = network_config(test_dns.server.address)
    own_config = parse_config({"dns": config.dns.model_dump(),
                               "network": {"own_domains": [OWN_DOMAIN, own]}}, "test")
    assert own_config.network.own_domains == [OWN_DOMAIN, "xn--unsere-bcher-klb.test"]
    result = scan(Scanner(own_config), letter(), helo=helo)
    assert "HELO_OWN_DOMAIN" in result.rule_names


def test_dkim_signature_in_u_labels_is_verified_with_the_a_label_key(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """RFC 8616 lets a signer write d=bücher.test; its key was looked up under the UTF-8 bytes
    read as ASCII (each byte a U+FFFD), a name no server holds: the signature got temperror."""
    raw = signed(letter(f"Jörg <jörg@{IDN_DOMAIN}>"), test_dns.dkim_private_key, IDN_DOMAIN)
    result = scan(scanner, raw, ip=NO_PTR_IP, mail_from="bounce@shop.test")
    assert {"DKIM_VALID", "DKIM_VALID_AU"} <= set(result.rule_names)
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_PASS"}
    assert f"dkim=pass header.d={IDN_ASCII}" in result.auth_results


def test_an_arc_seal_in_u_labels_is_from_the_trusted_sealer_in_a_labels(test_dns: DnsFixture) -> None:
    """arc_trusted_sealers holds bücher.test as xn--bcher-kva.test; a seal's d=bücher.test (its
    authserv-id in A-labels) was read as ASCII, each byte a U+FFFD, and never matched: the
    trusted forwarder's chain was ignored and the domain's own forwarded mail DMARC_REJECT."""
    config = network_config(test_dns.server.address)
    trusting = parse_config({"dns": config.dns.model_dump(),
                             "network": {"arc_trusted_sealers": [IDN_DOMAIN]}}, "test")
    result = from_forwarder(Scanner(trusting), forwarded(test_dns, sealer=IDN_ASCII, written=IDN_DOMAIN))
    assert "ARC_TRUSTED_FORWARD" in result.rule_names
    assert DMARC_RULES & set(result.rule_names) == set()


@pytest.mark.parametrize("escaped", ["bü\\099her.test", "b\\195\\188cher.test"])
def test_a_dns_escape_in_a_domain_is_not_read_as_the_letter_it_names(escaped: str) -> None:
    """dns.name.from_text read zone-file escapes: bü\\099her.test was bücher.test to every
    comparison, while a pure-ASCII name was never read so. No mail system reads them."""
    assert ascii_domain(escaped) == escaped
    assert ascii_domain("BÜCHER.test。") == IDN_ASCII  # what UTS 46 maps, as the resolver does
