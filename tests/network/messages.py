"""Messages for the network tests: an ordinary letter, optionally DKIM-signed with the test key."""

from __future__ import annotations

import dkim

from mailsift.analysis.model import Envelope
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.zone import GOOD_IP, SELECTOR

MIN_SCAN_BYTES = 16 * 1024  # the smallest scan.max_bytes allowed
BODY = ("Hello Anna,\n\nthe minutes of Tuesday's meeting are attached as promised. Let me know if\n"
        "anything is missing before Friday.\n\nBest regards,\nTom\n")


def letter(sender: str = "Tom Baker <tom@shop.test>", *, reply_to: str | None = None,
           body: str = BODY) -> bytes:
    headers = [f"From: {sender}", "To: Anna <anna@our.test>", "Subject: Minutes of Tuesday",
               "Date: Tue, 06 Aug 2024 10:55:00 +0100", "Message-ID: <minutes-42@shop.test>",
               "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    if reply_to:
        headers.append(f"Reply-To: {reply_to}")
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def signed(raw: bytes, private_key: bytes, domain: str = "shop.test", *, length: bool = False,
           algorithm: str = "rsa-sha256") -> bytes:
    """`raw` with a DKIM-Signature of `domain`; `length` adds l=, the count of the body as signed;
    `algorithm` is a= (rsa-sha1, or ed25519-sha256 with an ed25519 `private_key`)."""
    signature = dkim.sign(raw, SELECTOR.encode(), domain.encode(), private_key,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                          length=length, signature_algorithm=algorithm.encode())
    return signature + raw


def scan(scanner: Scanner, raw: bytes, *, ip: str = GOOD_IP, helo: str = "mail.shop.test",
         mail_from: str = "tom@shop.test", auth_user: str = "") -> Result:
    """Score `raw` as the milter would for a connection from `ip` (SASL login `auth_user`)."""
    return scanner.scan(raw, Envelope(client_ip=ip, helo=helo, mail_from=mail_from,
                                      rcpt_to=["anna@our.test"], auth_user=auth_user))
