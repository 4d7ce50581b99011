"""An SMTP client that reports what the sending side saw: reply codes per stage, the queue id.

smtplib's `sendmail` turns every refusal into a different exception and drops the DATA reply on
success; the e2e tests need the exact code and text (550 5.7.1 <text>, 451 4.7.1) and the queue id
Postfix names in "250 2.0.0 Ok: queued as ID", so this walks the transaction step by step.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.support.ports import LOOPBACK

QUEUED_AS = re.compile(r"queued as (\w+)")

CLIENT_HELO = "client.test.invalid"  # what the test client says in EHLO


@dataclass
class Sent:
    """The client's view of one transaction."""

    code: int  # the final reply: DATA's, or the one that ended the transaction early
    text: str
    stage: str  # "data" when the message was handed over, else where it stopped
    refused_recipients: dict[str, tuple[int, str]] = field(default_factory=dict)
    # From the connect to the reply that ended the transaction (QUIT not included): what a
    # benchmark times, so the sending side's teardown does not count as the server's latency.
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.stage == "data" and 200 <= self.code < 300

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"

    @property
    def queue_id(self) -> str | None:
        found = QUEUED_AS.search(self.text)
        return found.group(1) if found else None


def send(port: int, sender: str, recipients: Sequence[str], raw: bytes, *,
         xclient: dict[str, str] | None = None, timeout: float = 60.0,
         smtputf8: bool = False, host: str = LOOPBACK) -> Sent:
    """Submit one message to the smtpd on `port`; never raises for an SMTP-level refusal.

    `xclient`: attributes for Postfix's XCLIENT (e.g. {"LOGIN": "alice"} for an authenticated
    sender, {"ADDR": "192.0.2.7"} for a client address): the milter sees them as if real.
    `smtputf8`: MAIL FROM asks for SMTPUTF8 (RFC 6531), and addresses go out in UTF-8.
    `host`: where the smtpd listens (LOOPBACK6 for a real IPv6 connection).
    """
    started = time.perf_counter()
    with smtplib.SMTP(host, port, local_hostname=CLIENT_HELO,
                      timeout=timeout) as smtp:
        # ASCII commands go out the same; a test writes a raw 8-bit envelope byte as U+0080-U+00FF
        smtp.command_encoding = "latin-1"
        sent = _transaction(smtp, sender, recipients, raw, xclient, ["SMTPUTF8"] if smtputf8 else [])
        sent.seconds = time.perf_counter() - started
        return sent


def _transaction(smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], raw: bytes,
                 xclient: dict[str, str] | None, options: list[str]) -> Sent:
    """EHLO (and XCLIENT) through the final reply on an open connection."""
    smtp.ehlo()
    if xclient:
        args = " ".join(f"{k}={v}" for k, v in xclient.items())
        code, text = smtp.docmd("XCLIENT", args)
        if code != 220:
            return Sent(code, text.decode(errors="replace"), "xclient")
        smtp.ehlo()
    code, text = smtp.mail(sender, options)  # SMTPUTF8 switches commands to UTF-8
    if code != 250:
        smtp.rset()
        return Sent(code, text.decode(errors="replace"), "mail")
    refused: dict[str, tuple[int, str]] = {}
    for rcpt in recipients:
        code, text = _rcpt(smtp, rcpt)
        if code not in (250, 251):
            refused[rcpt] = (code, text.decode(errors="replace"))
    if len(refused) == len(recipients):
        smtp.rset()
        code, text = next(iter(refused.values()))
        return Sent(code, text, "rcpt", refused)
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPDataError as exc:
        reply_text = exc.smtp_error.decode(errors="replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        return Sent(exc.smtp_code, reply_text, "data", refused)
    return Sent(code, reply.decode(errors="replace"), "data", refused)


def _rcpt(smtp: smtplib.SMTP, rcpt: str) -> tuple[int, bytes]:
    """RCPT TO; a recipient already in angle brackets goes out exactly as written, as smtplib
    would reparse a source route or quotes away, and these are what a test may be about."""
    if rcpt.startswith("<"):
        return smtp.docmd("RCPT", f"TO:{rcpt}")
    return smtp.rcpt(rcpt)
