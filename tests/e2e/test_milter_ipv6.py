"""IPv6 clients through a real Postfix: XCLIENT claims the address (ADDR=IPV6:...), and the milter
sees it as Postfix reports any IPv6 client, family AF_INET6 and a 4-tuple address; and one real
connection over [::1], without XCLIENT."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import MilterFactory, Mta
from tests.e2e.messages import QUARANTINE_MARK, TAG_MARK, make_message
from tests.e2e.test_milter_network import RECIPIENT, dns_overrides
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import letter
from tests.network.zone import LISTED_IP6
from tests.support.ports import has_loopback6

CUSTOMERS = "2001:db8:7::/48"  # a hosting provider's customer servers, one /64 each


def test_listed_ipv6_client_hits_a_list_of_ipv6_and_is_logged_as_postfix_names_it(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture) -> None:  # noqa: F811
    milter = start_milter(dns_overrides(test_dns.server.address))
    sent = mta.send(letter(), RECIPIENT, sender="tom@shop.test",
                    xclient={"ADDR": f"IPV6:{LISTED_IP6}", "NAME": "mail6.listed.test",
                             "HELO": f"[IPv6:{LISTED_IP6}]"})
    assert sent.accepted, sent.reply
    status = " ".join((mta.delivered("<minutes-42@shop.test>").header("X-Spam-Status") or "").split())
    assert "RCVD_IN_TEST_BL" in status and "HELO_IP_MISMATCH" not in status, status
    milter.wait_for_log(rf"{sent.queue_id}: client=mail6\.listed\.test\[{re.escape(LISTED_IP6)}\] ")


def test_ipv6_client_without_a_name_is_unknown_in_the_log_and_the_quarantine(
        mta: Mta, start_milter: MilterFactory) -> None:
    """libmilter names such a client "[2001:db8::5]": the log read [2001:db8::5][2001:db8::5]
    where Postfix's own line, which an admin greps beside it, reads unknown[2001:db8::5]."""
    milter = start_milter()
    raw, message_id = make_message(QUARANTINE_MARK)
    sent = mta.send(raw, "bob@example.com", xclient={"ADDR": "IPV6:2001:db8::5", "NAME": "[UNAVAILABLE]"})
    assert sent.accepted, sent.reply
    milter.wait_for_log(rf"{sent.queue_id}: client=unknown\[2001:db8::5\] .* action=quarantine")
    [held] = mta.quarantined(milter, message_id)
    assert (held.meta["client_ip"], held.meta["client_name"]) == ("2001:db8::5", "[2001:db8::5]")
    assert b"(unknown [IPv6:2001:db8::5])" in held.raw.split(b"\r\n\r\n")[0]


def test_trusted_ipv6_client_is_paused_for_its_whole_64_not_one_address(
        mta: Mta, start_milter: MilterFactory) -> None:
    """A customer server owns its /64 and can send each message from another address in it:
    counted per address, a spam run rotating them never reached pause_after."""
    milter = start_milter({"network": {"trusted_networks": [CUSTOMERS]},
                           "milter": {"trusted": "outbound"}, "outbound": {"pause_after": 2}})
    for address in ("2001:db8:7:1::a", "2001:db8:7:1::b"):
        raw, _ = make_message(TAG_MARK)  # far over outbound.reject
        assert mta.send(raw, "bob@example.com", xclient={"ADDR": f"IPV6:{address}"}).reply.startswith("550 ")
    raw, message_id = make_message()
    sent = mta.send(raw, "bob@example.com", xclient={"ADDR": "IPV6:2001:db8:7:1::c"})
    assert sent.reply.startswith("451 4.7.1 "), sent.reply
    assert mta.not_delivered(message_id)
    milter.wait_for_log(r"outbound mail of client 2001:db8:7:1::/64 paused: 2 messages .* from "
                        r"client \S+\[2001:db8:7:1::b\]")
    raw, message_id = make_message()  # the next customer's /64 sends on
    assert mta.send(raw, "bob@example.com", xclient={"ADDR": "IPV6:2001:db8:7:2::a"}).accepted
    mta.delivered(message_id)


@pytest.mark.skipif(not has_loopback6(), reason="this host has no ::1")
def test_real_connection_over_ipv6_loopback_is_scored_and_logged_as_postfix_names_it(
        mta: Mta, start_milter: MilterFactory) -> None:
    """Every other test here claims its IPv6 client by XCLIENT; this one connects to Postfix on
    [::1], so the milter gets what smtpd itself saw on an IPv6 socket, and names the client as
    Postfix's own log line does."""
    milter = start_milter()
    raw, message_id = make_message()
    sent = mta.send(raw, "bob@example.com", ipv6=True)
    assert sent.accepted, sent.reply
    assert mta.delivered(message_id).header("X-Spam-Status")
    named = re.search(r"connect from (\S+)\[::1\]", mta.postfix.log_text())
    assert named, mta.postfix.log_tail()
    milter.wait_for_log(rf"{sent.queue_id}: client={re.escape(named[1])}\[::1\] ")
