"""Small builders for test messages, so each test shows exactly the bytes it feeds the analysis."""

from __future__ import annotations

import base64
import quopri

from mailsift.analysis.model import Envelope, Message
from mailsift.analysis.parse import analyse
from mailsift.config import Config, NetworkConfig, ScanConfig

BASE_HEADERS = [("From", "a@example.com"), ("To", "b@example.org"), ("Subject", "test")]


def as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def build(headers: list[tuple[str, str | bytes]], body: str | bytes = b"hello\n") -> bytes:
    """A message from (name, value) pairs and a body, LF line ends."""
    head = b"".join(as_bytes(name) + b": " + as_bytes(value) + b"\n" for name, value in headers)
    return head + b"\n" + as_bytes(body)


def simple(body: str | bytes, content_type: str = "text/plain", cte: str = "",
           extra: list[tuple[str, str | bytes]] | None = None) -> bytes:
    """A single-part message with the given Content-Type and transfer encoding."""
    headers = [*BASE_HEADERS, ("MIME-Version", "1.0"), ("Content-Type", content_type)]
    if cte:
        headers.append(("Content-Transfer-Encoding", cte))
    return build(headers + (extra or []), body)


def part(content_type: str, body: str | bytes, cte: str = "", disposition: str = "") -> bytes:
    """One MIME body part (headers, empty line, body)."""
    lines = [f"Content-Type: {content_type}"]
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}")
    if disposition:
        lines.append(f"Content-Disposition: {disposition}")
    return ("\n".join(lines) + "\n\n").encode() + as_bytes(body)


def multipart(parts: list[bytes], subtype: str = "mixed", boundary: str = "BOUNDARY") -> bytes:
    """A multipart body: the parts between boundary lines, closed properly."""
    sep = f"--{boundary}\n".encode()
    return sep + (b"\n" + sep).join(parts) + f"\n--{boundary}--\n".encode()


def multipart_message(parts: list[bytes], subtype: str = "mixed", boundary: str = "BOUNDARY") -> bytes:
    return simple(multipart(parts, subtype, boundary), f'multipart/{subtype}; boundary="{boundary}"')


def b64(data: str | bytes) -> str:
    return base64.encodebytes(as_bytes(data)).decode("ascii")


def transfer_encoded(text: str, encoding: str) -> str:
    """`text` base64 encoded with CRLF line ends inside, as a sender's program writes it, or
    quoted-printable encoded with the message's own LF line ends."""
    if encoding == "base64":
        return b64(text.replace("\n", "\r\n"))
    return quopri.encodestring(text.encode()).decode("ascii")


def config(trusted: list[str] | None = None, internal: list[str] | None = None, **scan: int) -> Config:
    return Config(scan=ScanConfig(**scan),
                  network=NetworkConfig(trusted_networks=trusted or [], internal_networks=internal or []))


def run(raw: bytes, cfg: Config | None = None, envelope: Envelope | None = None) -> Message:
    """Analyse and check the one promise every test relies on: no internal error."""
    message = analyse(raw, cfg or Config(), envelope)
    assert "ANALYSIS_ERROR" not in message.facts, message.facts.items
    return message
