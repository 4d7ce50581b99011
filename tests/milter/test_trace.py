"""The Received header a quarantined copy starts with reads back as the hop it describes."""

from __future__ import annotations

from datetime import UTC, datetime

from mailsift.analysis.relays import parse_received
from mailsift.milter.trace import Hop, received_header

ARRIVAL = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def hop(**changes: object) -> Hop:
    fields: dict[str, object] = {
        "helo": "mail.sender.example", "client_name": "mail.sender.example",
        "client_ip": "192.0.2.7", "by": "mx.example.org", "queue_id": "4Xb2Lm0QkPz1",
        "authenticated": False, "tls": False, "recipients": ["jane@example.org"], "arrival": ARRIVAL}
    return Hop(**{**fields, **changes})  # type: ignore[arg-type]


def value(header: bytes) -> str:
    assert header.startswith(b"Received: ") and header.endswith(b"\r\n")
    return header.decode().removeprefix("Received: ")


def test_the_header_names_the_client_the_host_the_queue_id_and_the_one_recipient() -> None:
    header = received_header(hop())
    relay = parse_received(value(header))
    assert relay is not None
    assert (relay.ip, relay.rdns, relay.helo, relay.by, relay.id, relay.auth) == (
        "192.0.2.7", "mail.sender.example", "mail.sender.example", "mx.example.org", "4Xb2Lm0QkPz1",
        "")
    assert header.endswith(b"\tfor <jane@example.org>; " + ARRIVAL.astimezone().strftime(
        "%a, %d %b %Y %H:%M:%S %z").encode() + b"\r\n")


def test_an_authenticated_tls_client_is_esmtpsa_and_counts_as_authenticated() -> None:
    header = received_header(hop(authenticated=True, tls=True))
    assert b" with ESMTPSA id " in header
    relay = parse_received(value(header))
    assert relay is not None and relay.auth


def test_a_client_without_a_verified_name_is_unknown_and_several_recipients_are_not_listed() -> None:
    header = received_header(hop(client_name="[192.0.2.7]", recipients=["a@example.org", "b@example.org"]))
    assert header.startswith(b"Received: from mail.sender.example (unknown [192.0.2.7])\r\n")
    assert b"for <" not in header and b"example.org>" not in header
    relay = parse_received(value(header))
    assert relay is not None and (relay.ip, relay.rdns) == ("192.0.2.7", "")


def test_an_ipv6_client_is_written_as_postfix_writes_it() -> None:
    """Postfix writes an IPv6 client as the RFC 5321 literal [IPv6:...]; the copy wrote it bare."""
    header = received_header(hop(client_name="[2001:db8::5]", client_ip="2001:db8::5"))
    assert header.startswith(b"Received: from mail.sender.example (unknown [IPv6:2001:db8::5])\r\n")
    relay = parse_received(value(header))
    assert relay is not None and (relay.ip, relay.rdns) == ("2001:db8::5", "")


def test_a_client_that_sent_no_helo_is_written_by_its_name_as_postfix_writes_it() -> None:
    """Postfix writes `from NAME (NAME [IP])`, its verified name or "unknown"; the copy wrote
    "unknown" for a client with a name, so Bayes read another HELO from it than from the
    delivered copy."""
    assert received_header(hop(helo="")).startswith(
        b"Received: from mail.sender.example (mail.sender.example [192.0.2.7])\r\n")
    assert received_header(hop(helo="", client_name="[192.0.2.7]")).startswith(
        b"Received: from unknown (unknown [192.0.2.7])\r\n")
