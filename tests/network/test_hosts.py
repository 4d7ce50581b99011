"""Reverse DNS of the connecting host, and its HELO name."""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.messages import letter, scan
from tests.network.zone import DYNAMIC_IP, GOOD_IP, NO_PTR_IP, OWN_DOMAIN, UNCONFIRMED_IP

RDNS_RULES = {"RDNS_NONE", "RDNS_UNCONFIRMED", "RDNS_DYNAMIC"}
HELO_RULES = {"HELO_NOT_FQDN", "HELO_IP_MISMATCH", "HELO_OWN_DOMAIN"}


@pytest.mark.parametrize(("ip", "expected"), [
    (GOOD_IP, set()),
    (NO_PTR_IP, {"RDNS_NONE"}),
    (UNCONFIRMED_IP, {"RDNS_UNCONFIRMED"}),
    (DYNAMIC_IP, {"RDNS_DYNAMIC"}),
])
def test_reverse_dns_of_the_client(scanner: Scanner, ip: str, expected: set[str]) -> None:
    assert RDNS_RULES & set(scan(scanner, letter(), ip=ip).rule_names) == expected


@pytest.mark.parametrize(("helo", "expected"), [
    ("mail.shop.test", set()),
    (f"[{GOOD_IP}]", set()),
    ("shopserver", {"HELO_NOT_FQDN"}),
    ("localhost.localdomain", {"HELO_NOT_FQDN"}),
    ("[192.0.2.77]", {"HELO_IP_MISMATCH"}),
    (f"mx.{OWN_DOMAIN}", {"HELO_OWN_DOMAIN"}),
    (OWN_DOMAIN, {"HELO_OWN_DOMAIN"}),
    (f"mx.not{OWN_DOMAIN}", set()),
])
def test_helo_name(scanner: Scanner, helo: str, expected: set[str]) -> None:
    assert HELO_RULES & set(scan(scanner, letter(), helo=helo).rule_names) == expected
