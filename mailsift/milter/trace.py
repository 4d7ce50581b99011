"""The Received header of the hop the milter sits on, for the quarantined copy of a message.

Postfix adds its own Received header to the queue file but never shows it to a milter, so the
copy held in quarantine began with the sender's headers: a released message reached the
mailbox with no trace of where it had come from, and `quarantine learn` tokenised it without
the connecting relay that the milter's own verdict had weighed (it takes that from the SMTP
envelope). The header is written in Postfix's shape, so every Received parser reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from mailsift.analysis.relays import verified_name


@dataclass(frozen=True)
class Hop:
    helo: str
    client_name: str  # libmilter gives "[IP]" when the address has no verified name
    client_ip: str
    by: str  # Postfix's myhostname ({j})
    queue_id: str
    authenticated: bool
    tls: bool
    recipients: list[str]
    arrival: datetime


def received_header(hop: Hop) -> bytes:
    """RFC 5321 section 4.4 trace line, folded, CRLF-terminated; `with` as in RFC 3848. An IPv6
    client is written [IPv6:2001:db8::5], RFC 5321's address literal, and a client that sent no
    HELO by its name, as Postfix writes them (the copy said "from unknown" for a client with a
    verified name, where the delivered copy has its name, and Bayes read the two apart)."""
    name = verified_name(hop.client_name) or "unknown"
    literal = f"IPv6:{hop.client_ip}" if ":" in hop.client_ip else hop.client_ip
    client = f"{name} [{literal}]" if hop.client_ip else name
    protocol = "ESMTP" + ("S" if hop.tls else "") + ("A" if hop.authenticated else "")
    date = format_datetime(hop.arrival.astimezone())
    lines = [f"Received: from {hop.helo or name} ({client})",
             f"\tby {hop.by} (Postfix, held by mailsift) with {protocol} id {hop.queue_id}"]
    # As Postfix: the recipient only when there is one, so one copy does not list the others
    if len(hop.recipients) == 1:
        lines.append(f"\tfor <{hop.recipients[0]}>; {date}")
    else:
        lines[-1] += f"; {date}"
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n"
