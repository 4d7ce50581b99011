"""Clients and relays on IPv6, and IPv4 clients written as IPv4-mapped IPv6 addresses.

A list is asked about an IPv6 address by its nibble name (RFC 5782), but only when it says it
lists IPv6 (`ipv6 = true`); reverse DNS looks in ip6.arpa and confirms by AAAA; an address
written ::ffff:192.0.2.66 by another MTA is judged as the IPv4 host it is.
"""

from __future__ import annotations

import pytest

from mailsift.config import parse_config
from mailsift.scanner import Scanner
from tests.network.conftest import network_config
from tests.network.messages import letter, scan
from tests.network.zone import (
    BLOCK_ZONE,
    EVERY_IP6_ZONE,
    GOOD_IP6,
    LISTED_IP,
    LISTED_IP6,
    NO_PTR_IP6,
)

SIX_LETTER = letter("Tom Baker <tom@six.test>")
RDNS_RULES = {"RDNS_NONE", "RDNS_UNCONFIRMED", "RDNS_DYNAMIC"}
HELO_RULES = {"HELO_NOT_FQDN", "HELO_IP_MISMATCH", "HELO_OWN_DOMAIN"}
EDGE_MX = "10.0.0.5"


def scanner_with(test_dns_address: str, *, ipv6: bool | None = None,
                 trusted: list[str] | None = None, zone: str = BLOCK_ZONE) -> Scanner:
    settings = network_config(test_dns_address).model_dump()
    settings["dns"]["blocklists"][0]["zone"] = zone
    if ipv6 is not None:
        settings["dns"]["blocklists"][0]["ipv6"] = ipv6
    if trusted is not None:
        settings["network"]["trusted_networks"] = trusted
    return Scanner(parse_config(settings, "test"))


def test_ipv6_client_is_asked_about_by_its_nibble_name_by_default(test_dns_address: str) -> None:
    """A site's list entries written before `ipv6` existed keep the hits of lists of IPv6."""
    result = scan(scanner_with(test_dns_address), SIX_LETTER, ip=LISTED_IP6,
                  helo="mail6.listed.test", mail_from="tom@six.test")
    hit = next(h for h in result.hits if h.name == "RCVD_IN_TEST_BL")
    assert hit.evidence == f"{LISTED_IP6} listed in {BLOCK_ZONE} (127.0.0.2)"


def test_list_said_to_list_ipv4_only_is_never_asked_about_an_ipv6_client(
        test_dns_address: str) -> None:
    """Asking an IPv4-only list costs a query per message for no answer. The test list answers
    the nibble name, so only not asking keeps the rule off."""
    scanner = scanner_with(test_dns_address, ipv6=False)
    result = scan(scanner, SIX_LETTER, ip=LISTED_IP6, helo="mail6.listed.test",
                  mail_from="tom@six.test")
    assert "RCVD_IN_TEST_BL" not in result.rule_names
    assert "RCVD_IN_TEST_BL" in scan(scanner, letter(), ip=LISTED_IP).rule_names  # IPv4 still


def test_list_that_lists_every_ipv6_address_does_not_count_for_ipv6_hosts(
        test_dns_address: str, caplog: pytest.LogCaptureFixture) -> None:
    """A zone listing RFC 5782's never-listed ::FFFF:7F00:1 would hit every message from an IPv6
    host; its IPv4 test points are right, so its answers for IPv4 hosts still count."""
    scanner = scanner_with(test_dns_address, zone=EVERY_IP6_ZONE)
    result = scan(scanner, SIX_LETTER, ip=LISTED_IP6, helo="mail6.listed.test",
                  mail_from="tom@six.test")
    assert "RCVD_IN_TEST_BL" not in result.rule_names
    assert f"DNS list {EVERY_IP6_ZONE} lists 1.0.0.0.0.0.f.7.f.f.f.f" in caplog.text
    assert "set ipv6 = false for it" in caplog.text
    assert "RCVD_IN_TEST_BL" in scan(scanner, letter(), ip=LISTED_IP).rule_names


@pytest.mark.parametrize("written", [f"IPv6:::ffff:{LISTED_IP}", f"::ffff:{LISTED_IP}"])
def test_ipv4_mapped_relay_is_looked_up_and_trusted_as_its_ipv4_address(
        test_dns_address: str, written: str) -> None:
    """An edge MX on a dual-stack socket may record an IPv4 client as ::ffff:192.0.2.66: a
    nibble name no IPv4 list answers, outside every IPv4 network of trusted_networks."""
    received = (f"Received: from mail.listed.test (mail.listed.test [{written}])\r\n"
                "\tby edge.our.test (Postfix) with ESMTP id 4711; Tue, 06 Aug 2024 10:54:00 +0100\r\n")
    scanner = scanner_with(test_dns_address, trusted=[f"{EDGE_MX}/32"])
    result = scan(scanner, received.encode() + letter(), ip=EDGE_MX)
    hit = next(h for h in result.hits if h.name == "RCVD_IN_TEST_BL")
    assert hit.evidence == f"{LISTED_IP} listed in {BLOCK_ZONE} (127.0.0.2)"
    trusting = scanner_with(test_dns_address, trusted=[f"{EDGE_MX}/32", f"{LISTED_IP}/32"])
    assert "RCVD_IN_TEST_BL" not in scan(trusting, received.encode() + letter(), ip=EDGE_MX).rule_names


@pytest.mark.parametrize(("ip", "expected"), [
    (GOOD_IP6, set()),  # PTR in ip6.arpa, confirmed by AAAA
    (NO_PTR_IP6, {"RDNS_NONE"}),
])
def test_reverse_dns_of_an_ipv6_client(scanner: Scanner, ip: str, expected: set[str]) -> None:
    result = scan(scanner, SIX_LETTER, ip=ip, helo="mail6.six.test", mail_from="tom@six.test")
    assert RDNS_RULES & set(result.rule_names) == expected


@pytest.mark.parametrize(("helo", "expected"), [
    (f"[IPv6:{GOOD_IP6}]", set()),
    ("[IPv6:2001:DB8:1:0::25]", set()),  # the same address written longer
    (GOOD_IP6, set()),  # a bare address, as some clients write it
    ("[IPv6:2001:db8:1::26]", {"HELO_IP_MISMATCH"}),
    ("2001:db8:1::26", {"HELO_IP_MISMATCH"}),
    ("[192.0.2.10]", {"HELO_IP_MISMATCH"}),
])
def test_helo_address_literal_of_an_ipv6_client(scanner: Scanner, helo: str, expected: set[str]) -> None:
    result = scan(scanner, SIX_LETTER, ip=GOOD_IP6, helo=helo, mail_from="tom@six.test")
    assert HELO_RULES & set(result.rule_names) == expected


def test_ipv6_client_allowed_by_spf_passes(scanner: Scanner) -> None:
    result = scan(scanner, SIX_LETTER, ip=GOOD_IP6, helo="mail6.six.test", mail_from="tom@six.test")
    assert "SPF_PASS" in result.rule_names
