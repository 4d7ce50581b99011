"""Mail handed over by our own internal relay: the checks judge the Internet host it recorded.

A mailsift host behind an edge MX on a private address sees every message come from that MX. The
sender is the host in the MX's Received header, and the envelope sender Postfix was given is the
one that host used, passed on unchanged by the MX.
"""

from __future__ import annotations

import pytest

from mailsift.config import parse_config
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan
from tests.network.zone import GOOD_IP, NO_PTR_IP

EDGE_MX = "10.0.0.5"


def received(ip: str, by: str = "edge.our.test") -> bytes:
    return (f"Received: from mail.shop.test (mail.shop.test [{ip}])\r\n\tby {by} (Postfix) with ESMTPS "
            "id 4WdQ1x2Zz9; Tue, 06 Aug 2024 10:55:02 +0100\r\n").encode()


def scanner_trusting(test_dns: DnsFixture, trusted: list[str]) -> Scanner:
    settings = network_config(test_dns.server.address).model_dump()
    settings["network"]["trusted_networks"] = trusted
    return Scanner(parse_config(settings, "test"))


@pytest.mark.parametrize("trusted", [[], [f"{EDGE_MX}/32"]], ids=["inferred", "listed"])
def test_bank_mail_through_the_internal_relay_passes_spf_and_dmarc(
        test_dns: DnsFixture, trusted: list[str]) -> None:
    result = scan(scanner_trusting(test_dns, trusted), received(GOOD_IP) + letter(), ip=EDGE_MX,
                  helo="edge.our.test")
    assert {"SPF_PASS", "DMARC_PASS"} <= set(result.rule_names)
    assert not {"SPF_FAIL", "DMARC_REJECT", "RDNS_NONE"} & set(result.rule_names)
    assert "spf=pass smtp.mailfrom=tom@shop.test" in result.auth_results


def test_a_public_client_is_judged_whatever_it_wrote_below(scanner: Scanner) -> None:
    """The inference trusts private addresses only: a public client's own header is not believed."""
    result = scan(scanner, received(GOOD_IP, by="mail.shop.test") + letter(), ip=NO_PTR_IP)
    assert {"SPF_FAIL", "DMARC_REJECT"} <= set(result.rule_names)


def test_an_unlisted_private_relay_is_judged_once_networks_are_listed(test_dns: DnsFixture) -> None:
    """Listing networks is the administrator's decision: the inference no longer applies."""
    result = scan(scanner_trusting(test_dns, ["192.0.2.0/24"]), received(GOOD_IP) + letter(),
                  ip=EDGE_MX, helo="edge.our.test")
    assert "SPF_FAIL" in result.rule_names
