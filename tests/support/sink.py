"""An SMTP sink on a loopback port: the "next hop" of the test Postfix, recording what it receives.

A real SMTP server (aiosmtpd) rather than a Maildir: Postfix's smtp client delivers to it exactly
as to a downstream MX, and the test sees the envelope (sender, recipients) next to the bytes.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.ports import LOOPBACK, free_port

# The greeting name must differ from Postfix's myhostname, or Postfix's smtp client sees its own
# name and defers with "mail for ... loops back to myself".
SINK_HOSTNAME = "sink.test.invalid"


@dataclass(frozen=True)
class Received:
    """One message as the sink got it."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    at: float = field(default_factory=time.monotonic)
    smtputf8: bool = False  # the sender asked for SMTPUTF8 (RFC 6531) in MAIL FROM

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @cached_property
    def _head(self) -> EmailMessage:
        """The header fields alone, parsed once: tests look a message up by Message-ID among
        dozens, some of several MB, and parsing each whole body for every look-up took a burst
        test 20 s."""
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.raw, headersonly=True)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header(self, name: str) -> str | None:
        """The (decoded) value of the first `name` header, None if absent."""
        value = self._head[name]
        return None if value is None else str(value)

    def headers(self, name: str) -> list[str]:
        return [str(v) for v in self._head.get_all(name) or []]

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")


class _Recorder:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        """Accept the recipient, as aiosmtpd does without this hook, unless `on_rcpt` answers."""
        refusal = self.sink.on_rcpt(address) if self.sink.on_rcpt else None
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        received = Received(sender=envelope.mail_from or "", recipients=tuple(envelope.rcpt_tos),
                            raw=raw, smtputf8=envelope.smtp_utf8)
        self.sink._add(received)
        refusal = self.sink.on_receive(received) if self.sink.on_receive else None
        return refusal or "250 2.0.0 Ok: stored by sink"


class SmtpSink:
    """aiosmtpd Controller on a free loopback port; thread-safe record of every message."""

    def __init__(self, port: int | None = None,
                 on_receive: Callable[[Received], str | None] | None = None,
                 on_rcpt: Callable[[str], str | None] | None = None) -> None:
        """`on_receive` runs for each message before the sink answers its DATA, and may return
        the reply instead of 250 (the message is recorded all the same): a test makes a server
        fail at an exact point of a run of deliveries (a bulk release) with it. `on_rcpt` may
        answer a RCPT TO (given its address) instead of 250 in the same way."""
        self.port = port or free_port()
        self.on_receive = on_receive
        self.on_rcpt = on_rcpt
        self._messages: list[Received] = []
        self._changed = threading.Condition()
        self._controller = Controller(_Recorder(self), hostname=LOOPBACK, port=self.port,
                                      server_hostname=SINK_HOSTNAME, ready_timeout=10)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _add(self, received: Received) -> None:
        with self._changed:
            self._messages.append(received)
            self._changed.notify_all()

    @property
    def messages(self) -> list[Received]:
        with self._changed:
            return list(self._messages)

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[Received]:
        """Wait until at least `count` messages arrived; return all of them. TimeoutError if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"sink got {len(self._messages)} of {count} message(s) "
                                   f"in {timeout:.0f} s")
            return list(self._messages)

    def find(self, message_id: str) -> list[Received]:
        """Messages (possibly several copies, e.g. one per recipient group) with this Message-ID."""
        return [m for m in self.messages if m.message_id == message_id]

    def wait_for_id(self, message_id: str, timeout: float = 15.0) -> Received:
        """Wait for the message with this Message-ID and return it."""
        with self._changed:
            def arrived() -> bool:
                return any(m.message_id == message_id for m in self._messages)

            if not self._changed.wait_for(arrived, timeout):
                raise TimeoutError(f"{message_id} did not reach the sink in {timeout:.0f} s; "
                                   f"it has {len(self._messages)} other message(s)")
        return self.find(message_id)[0]
