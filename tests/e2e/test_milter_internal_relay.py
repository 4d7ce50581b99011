"""A mailsift host behind an internal relay, with `network.trusted_networks` left empty.

The edge MX (10.0.0.5, a private address) takes the mail from the Internet and hands it to the
Postfix that runs mailsift. The network checks must judge the Internet host recorded in the edge
MX's Received header, not the edge MX: judged as the sender, it fails the SPF of every domain
ending in -all, and a bank's DMARC p=reject turns that into DMARC_REJECT on its genuine mail.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MilterFactory, Mta
from tests.e2e.test_milter_network import AUTHSERV_ID, RECIPIENT, dns_overrides
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import letter
from tests.network.zone import GOOD_IP

EDGE_MX = "10.0.0.5"
# What the edge MX wrote when mail.shop.test (allowed by shop.test's SPF, which ends in -all)
# handed it the message; shop.test publishes DMARC p=reject.
EDGE_RECEIVED = (f"Received: from mail.shop.test (mail.shop.test [{GOOD_IP}])\r\n"
                 "\tby edge.our.test (Postfix) with ESMTPS id 4WdQ1x2Zz9\r\n"
                 "\tfor <anna@example.com>; Tue, 06 Aug 2024 10:55:02 +0100 (BST)\r\n").encode()
NETWORK_RULES = ("SPF_FAIL", "DMARC_REJECT", "RDNS_NONE", "HELO_")


@pytest.mark.parametrize("trusted", [[], [EDGE_MX]], ids=["inferred", "listed"])
def test_bank_mail_through_the_internal_relay_is_judged_by_its_internet_sender(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture,  # noqa: F811
        trusted: list[str]) -> None:
    """Listed as the config's description of trusted_networks asks ("list your MX and relay
    hosts"), the edge MX also made all inbound mail outbound while milter.trusted defaulted to
    outbound: no X-Spam headers, and a pause of the edge MX after ten spams."""
    start_milter({**dns_overrides(test_dns.server.address),
                  "network": {"trusted_networks": trusted}})
    sent = mta.send(EDGE_RECEIVED + letter(), RECIPIENT, sender="tom@shop.test",
                    xclient={"ADDR": EDGE_MX, "NAME": "[UNAVAILABLE]", "HELO": "edge.our.test"})
    assert sent.accepted, sent.reply
    delivered = mta.delivered("<minutes-42@shop.test>")
    results = [" ".join(v.split()) for v in delivered.headers("Authentication-Results")]
    assert results == [f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=tom@shop.test; dkim=none; "
                       "dmarc=pass header.from=shop.test policy.dmarc=reject"]
    status = " ".join((delivered.header("X-Spam-Status") or "").split())
    assert not [rule for rule in NETWORK_RULES if rule in status], status
    assert status.startswith("No, score="), status  # scanned as inbound mail: our verdict is on it
