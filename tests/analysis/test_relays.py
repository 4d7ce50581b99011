"""Received header parsing and the trusted/untrusted split."""

from __future__ import annotations

import pytest

from mailsift.analysis.model import Relay
from mailsift.analysis.relays import parse_received
from tests.analysis.helpers import build, config, run

POSTFIX = ("from mail.example.net (mail.example.net [192.0.2.10]) (using TLSv1.3 with cipher "
           "TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested) by mx.example.org "
           "(Postfix) with ESMTPS id 4ABC123DEF for <b@example.org>; Mon, 1 Jan 2024 10:00:00 +0000 (UTC)")
POSTFIX_UNKNOWN = ("from helo.example (unknown [198.51.100.7]) by mx.example.org (Postfix) with ESMTP id "
                   "QUEUE1; Mon, 1 Jan 2024 10:00:00 +0000")
POSTFIX_AUTH = ("from [10.0.0.5] (unknown [203.0.113.9]) (Authenticated sender: bob) by smtp.example.org "
                "(Postfix) with ESMTPSA id 7F00; Mon, 1 Jan 2024 10:00:00 +0000")
SENDMAIL = ("from lugh (root@localhost [127.0.0.1]) by lugh.tuatha.org (8.9.3/8.9.3) with ESMTP id "
            "QAA07188; Thu, 22 Aug 2002 16:25:32 +0100")
SENDMAIL_NO_RDNS = ("from ratree.psu.ac.th ([202.28.97.6]) by mx1.example.org (8.11.6/8.11.6) with SMTP "
                    "id g7MBIhl25223 for <x@example.org>; Thu, 22 Aug 2002 07:18:55 -0400")
EXIM = ("from host.example.com ([192.0.2.44] helo=mail.example.com) by mx.example.org with esmtp "
        "(Exim 4.96) (envelope-from <owner@example.com>) id 1rAbCd-000123-Xy for x@example.org; "
        "Mon, 01 Jan 2024 10:00:00 +0000")
EXIM_SAME_HELO = ("from host217-36-23-185.example.net ([217.36.23.185]) by rhenium.example.com with esmtp "
                  "(Exim 3.22 #8) id 17hrT0-0004gj-00 for a@b.c; Thu, 22 Aug 2002 13:53:38 +0100")
EXIM_NO_RDNS = ("from [192.0.2.45] (helo=laptop) by mx.example.org with esmtpa (Exim 4.96) id 1rX; "
                "Mon, 01 Jan 2024 10:00:00 +0000")
QMAIL = ("from unknown (HELO mailgateway.example.com) (62.189.7.27) by mta2.example.com with SMTP; "
         "22 Aug 2002 11:46:29 -0000")
QMAIL_IDENT = ("from p432.example.net (HELO darkstar) (user@159.134.205.176) by mail02.example.com "
               "with SMTP; 22 Aug 2002 19:52:16 -0000")
EXCHANGE = ("from EXCH01.corp.example (10.1.1.1) by EXCH02.corp.example (10.1.1.2) with Microsoft SMTP "
            "Server (version=TLS1_2) id 15.1.2507.23; Mon, 1 Jan 2024 10:00:00 +0000")
GMAIL = ("from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with "
         "SMTPS id a1sor123.2024.01.01.10.00.00 for <x@gmail.com> (Google Transport Security); "
         "Mon, 01 Jan 2024 10:00:00 -0800 (PST)")


@pytest.mark.parametrize(("header", "expected"), [
    (POSTFIX, Relay("192.0.2.10", "mail.example.net", "mail.example.net", "mx.example.org", id="4ABC123DEF")),
    (POSTFIX_UNKNOWN, Relay("198.51.100.7", "", "helo.example", "mx.example.org", id="QUEUE1")),
    (POSTFIX_AUTH, Relay("203.0.113.9", "", "[10.0.0.5]", "smtp.example.org", auth="ESMTPSA", id="7F00")),
    (SENDMAIL, Relay("127.0.0.1", "localhost", "lugh", "lugh.tuatha.org", ident="root", id="QAA07188")),
    (SENDMAIL_NO_RDNS, Relay("202.28.97.6", "", "ratree.psu.ac.th", "mx1.example.org", id="g7MBIhl25223")),
    (EXIM, Relay("192.0.2.44", "host.example.com", "mail.example.com", "mx.example.org",
                 envfrom="owner@example.com", id="1rAbCd-000123-Xy")),
    (EXIM_SAME_HELO, Relay("217.36.23.185", "host217-36-23-185.example.net", "host217-36-23-185.example.net",
                           "rhenium.example.com", id="17hrT0-0004gj-00")),
    (EXIM_NO_RDNS, Relay("192.0.2.45", "", "laptop", "mx.example.org", auth="ESMTPA", id="1rX")),
    (QMAIL, Relay("62.189.7.27", "", "mailgateway.example.com", "mta2.example.com")),
    (QMAIL_IDENT, Relay("159.134.205.176", "p432.example.net", "darkstar", "mail02.example.com",
                        ident="user")),
    (EXCHANGE, Relay("10.1.1.1", "", "EXCH01.corp.example", "EXCH02.corp.example", id="15.1.2507.23")),
    (GMAIL, Relay("209.85.220.41", "mail-sor-f41.google.com", "mail-sor-f41.google.com", "mx.google.com",
                  id="a1sor123.2024.01.01.10.00.00")),
])
def test_received_formats(header: str, expected: Relay) -> None:
    assert parse_received(header) == expected


@pytest.mark.parametrize("header", [
    "(qmail 11764 invoked from network); 22 Aug 2002 11:46:29 -0000",
    "by mx.example.org (Postfix, from userid 1000) id 4F57; Thu, 22 Aug 2002 16:25:45 +0100",
    "from mail pickup service by hotmail.com with Microsoft SMTPSVC; Thu, 22 Aug 2002 18:20:23 -0700",
])
def test_headers_without_a_connecting_ip_are_not_relays(header: str) -> None:
    assert parse_received(header) is None


def chain() -> bytes:
    return build([
        ("Received", "from localhost (localhost [127.0.0.1]) by mx.example.org (Postfix) id A; "
                     "Mon, 1 Jan 2024 10:00:03 +0000"),
        ("Received", "from relay.example.org (relay.example.org [10.0.0.2]) by mx.example.org (Postfix) "
                     "id B; Mon, 1 Jan 2024 10:00:02 +0000"),
        ("Received", "from spammer.example (dsl.example.net [198.51.100.66]) by relay.example.org (Postfix) "
                     "id C; Mon, 1 Jan 2024 10:00:01 +0000"),
        ("Received", "from forged.example (forged.example [10.0.0.3]) by spammer.example id D; "
                     "Mon, 1 Jan 2024 10:00:00 +0000"),
        ("Subject", "x"),
    ])


def test_trust_stops_at_the_first_untrusted_relay() -> None:
    message = run(chain(), config(trusted=["10.0.0.0/8"]))
    assert [(r.ip, r.trusted, r.internal) for r in message.relays] == [
        ("127.0.0.1", True, True), ("10.0.0.2", True, True),
        ("198.51.100.66", False, False), ("10.0.0.3", False, False)]
    first = message.first_untrusted
    assert first is not None
    assert (first.ip, first.rdns, first.helo) == ("198.51.100.66", "dsl.example.net", "spammer.example")
    assert len(message.untrusted_relays) == 2


def test_private_relays_are_trusted_while_no_network_is_listed() -> None:
    """SpamAssassin's inference: the internal relay (10.0.0.2) is ours, the first public hop is the
    sender, and the private address written below it (by the outsider) is not believed."""
    assert [(r.trusted, r.internal) for r in run(chain()).relays] == [
        (True, True), (True, True), (False, False), (False, False)]


def test_listed_networks_replace_the_inference() -> None:
    """Once the administrator lists networks, only those (and loopback) are trusted."""
    assert [r.trusted for r in run(chain(), config(trusted=["192.0.2.0/24"])).relays] == [
        True, False, False, False]


def test_internal_networks_alone_are_trusted_too() -> None:
    """As in SpamAssassin: an internal relay is trusted, and listing one ends the inference."""
    message = run(chain(), config(internal=["172.16.0.0/12"]))
    assert [(r.trusted, r.internal) for r in message.relays] == [
        (True, True), (False, False), (False, False), (False, False)]


def test_internal_networks_are_separate_from_trusted() -> None:
    message = run(chain(), config(trusted=["10.0.0.0/8", "198.51.100.0/24"], internal=["10.0.0.2/32"]))
    assert [(r.trusted, r.internal) for r in message.relays] == [
        (True, True), (True, True), (True, False), (True, False)]


def test_the_connection_the_mta_reports_is_the_authoritative_last_hop() -> None:
    """A client can write any Received header; the address Postfix saw is what rules must judge."""
    from mailsift.analysis.model import Envelope

    forged = ("Received", "from friend.example (friend.example [127.0.0.1]) by mx.example.org; "
              "Mon, 1 Jan 2024 00:00:00 +0000")
    older = ("Received", "from a.example (a.example [198.51.100.7]) by b.example; "
             "Mon, 1 Jan 2024 00:00:00 +0000")
    envelope = Envelope(client_ip="203.0.113.9", client_name="unknown", helo="bulk.example",
                        mail_from="x@bulk.example")
    msg = run(build([forged, older, ("From", "x@bulk.example")]), envelope=envelope)
    assert [r.ip for r in msg.relays] == ["203.0.113.9", "127.0.0.1", "198.51.100.7"]
    first = msg.first_untrusted
    assert first is not None and (first.ip, first.rdns, first.helo) == ("203.0.113.9", "", "bulk.example")


def test_postfix_own_received_header_for_the_same_hop_is_not_counted_twice() -> None:
    from mailsift.analysis.model import Envelope

    own = ("Received", "from mail.sender.example (mail.sender.example [192.0.2.44]) by mx.example.org "
           "(Postfix) with ESMTP id 4AB12; Mon, 1 Jan 2024 00:00:00 +0000")
    envelope = Envelope(client_ip="192.0.2.44", client_name="mail.sender.example", helo="mail.sender.example")
    msg = run(build([own, ("From", "a@sender.example")]), envelope=envelope)
    assert [r.ip for r in msg.relays] == ["192.0.2.44"]
    assert msg.relays[0].rdns == "mail.sender.example"


def test_hops_after_the_told_client_in_a_delivered_copy_are_not_its_relays() -> None:
    """`mailsift check --client-ip` of a delivered file (later_hops): the mailbox host's LMTP
    header, above our MX's record of the client, stood below the client as a relay that had
    handed it the message; the milter sees the message before that header exists. The milter's
    own view still takes only a header on top for its record: further down, one naming the
    client was written by the client, and the headers above it are judged."""
    from mailsift.analysis.model import Envelope
    from mailsift.analysis.parse import analyse
    from mailsift.config import Config

    later = ("Received", "from mx.example.org (mx.example.org [198.51.100.25]) by mailbox.example.org "
             "with LMTP id 7QX; Mon, 1 Jan 2024 00:00:02 +0000")
    own = ("Received", "from mail.sender.example (mail.sender.example [192.0.2.44]) by mx.example.org "
           "(Postfix) with ESMTP id 4AB12; Mon, 1 Jan 2024 00:00:01 +0000")
    older = ("Received", "from a.example (a.example [198.51.100.7]) by mail.sender.example; "
             "Mon, 1 Jan 2024 00:00:00 +0000")
    envelope = Envelope(client_ip="192.0.2.44", client_name="mail.sender.example",
                        helo="mail.sender.example")
    raw = build([later, own, older, ("From", "a@sender.example")])
    checked = analyse(raw, Config(), envelope, later_hops=True)
    assert [(r.ip, r.received_index) for r in checked.relays] == [("192.0.2.44", 1),
                                                                   ("198.51.100.7", 2)]
    assert [r.ip for r in run(raw, envelope=envelope).relays] == [
        "192.0.2.44", "198.51.100.25", "192.0.2.44", "198.51.100.7"]


@pytest.mark.parametrize("value", [
    "from [IPv6:2001:db8::25] (helo=laptop) by mx.example.org with esmtp (Exim 4.96) id 1rX; "
    "Mon, 01 Jan 2024 10:00:00 +0000",
    "from [2001:db8::25] by mx.example.org with ESMTP id 1rX; Mon, 01 Jan 2024 10:00:00 +0000",
])
def test_relay_named_only_by_its_bracketed_ipv6_address_is_a_hop(value: str) -> None:
    """As `from [192.0.2.45] (helo=laptop)` is: left out, the hop's older neighbour was taken
    for the first untrusted relay, and its address judged in this one's place."""
    relay = parse_received(value)
    assert relay is not None and (relay.ip, relay.rdns) == ("2001:db8::25", "")


@pytest.mark.parametrize("written", ["[IPv6:::ffff:192.0.2.66]", "[::FFFF:192.0.2.66]",
                                     "[::ffff:c000:242]"])
def test_ipv4_mapped_relay_address_is_its_ipv4_address(written: str) -> None:
    relay = parse_received(f"from mail.example.net (mail.example.net {written}) by mx.example.org "
                           "(Postfix) with ESMTP id 4A; Mon, 1 Jan 2024 10:00:00 +0000")
    assert relay is not None and relay.ip == "192.0.2.66"


def test_ipv4_mapped_relay_is_trusted_by_its_ipv4_network() -> None:
    own = ("Received", "from edge.example.org (edge.example.org [IPv6:::ffff:10.0.0.5]) by "
           "mx.example.org (Postfix) with ESMTP id 4A; Mon, 1 Jan 2024 10:00:00 +0000")
    outside = ("Received", f"{POSTFIX.split(' by ')[0]} by edge.example.org (Postfix) with ESMTP "
               "id 3B; Mon, 1 Jan 2024 09:59:00 +0000")
    msg = run(build([own, outside, ("From", "a@example.net")]),
              config(trusted=["10.0.0.0/8"]))
    assert [(r.ip, r.trusted) for r in msg.relays] == [("10.0.0.5", True), ("192.0.2.10", False)]


def test_relays_in_ipv6_trusted_networks_are_trusted() -> None:
    own = ("Received", "from edge.example.org (edge.example.org [IPv6:2001:db8:7::5]) by "
           "mx.example.org (Postfix) with ESMTP id 4A; Mon, 1 Jan 2024 10:00:00 +0000")
    outside = ("Received", "from mail.example.net (mail.example.net [IPv6:2001:db8:99::1]) by "
               "edge.example.org (Postfix) with ESMTP id 3B; Mon, 1 Jan 2024 09:59:00 +0000")
    msg = run(build([own, outside, ("From", "a@example.net")]),
              config(trusted=["2001:db8:7::/48"]))
    assert [(r.ip, r.trusted) for r in msg.relays] == [("2001:db8:7::5", True), ("2001:db8:99::1", False)]
    assert msg.first_untrusted is not None and msg.first_untrusted.rdns == "mail.example.net"


def test_unspecified_ipv6_relay_is_not_public() -> None:
    """'::' is no host's address (as 0.0.0.0 is none): a relay so written is inside, trusted by
    inference as 0.0.0.0/8 is, never the outside sender asked about in the lists."""
    own = ("Received", "from localhost ([IPv6:::]) by mx.example.org (Postfix) with ESMTP id 4A; "
           "Mon, 1 Jan 2024 10:00:00 +0000")
    outside = ("Received", f"{POSTFIX.split(' by ')[0]} by localhost (Postfix) with ESMTP "
               "id 3B; Mon, 1 Jan 2024 09:59:00 +0000")
    msg = run(build([own, outside, ("From", "a@example.net")]), config())
    assert [(r.ip, r.trusted) for r in msg.relays] == [("::", True), ("192.0.2.10", False)]


@pytest.mark.parametrize("name", ["[2001:db8::5]", "[192.0.2.44]", "unknown"])
def test_client_without_a_verified_name_has_no_reverse_name(name: str) -> None:
    """libmilter hands over such a client's name as its address in brackets: taken for a name,
    Bayes learnt a token per address and the relay header showed a reverse name it never had."""
    from mailsift.analysis.model import Envelope

    envelope = Envelope(client_ip=name.strip("[]") if name != "unknown" else "192.0.2.44",
                        client_name=name, helo="laptop.example", mail_from="x@example.net")
    msg = run(build([("From", "x@example.net")]), envelope=envelope)
    assert msg.relays[0].rdns == ""
