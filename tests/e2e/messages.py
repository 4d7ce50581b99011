"""Test messages for the e2e tests: plain, well-formed mail whose score is set by a marker word.

Each message gets a unique Message-ID, which is how a test finds it at the sink, in the
quarantine and in Postfix's log without depending on what other tests sent.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import format_datetime, localtime

TAG_MARK = "XE2ETAGME"
QUARANTINE_MARK = "XE2EQUARANTINEME"
REJECT_MARK = "XE2EREJECTME"
# Triggers E2E_SLOW: exponential backtracking in the regex engine (see rules/e2e.cf).
SLOW_MARK = "x" * 40 + "! y"

SENDER = "alice@sender.example"
HAM_TEXT = (
    "Hi Bob,\n\n"
    "thanks for the notes from Tuesday's meeting. I went through the open points with the team\n"
    "and we agree to move the review to next week, after the release branch is cut. Could you\n"
    "send me the updated schedule when you have it?\n\n"
    "Best regards,\nAlice\n"
)


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@sender.example>"


def make_message(*marks: str, subject: str = "Meeting notes", to: str = "bob@example.com",
                 headers: list[tuple[str, str]] | None = None,
                 raw_subject: str | None = None) -> tuple[bytes, str]:
    """A message and its Message-ID; each `mark` is a paragraph added after the ham text.

    `raw_subject`: put this exact (e.g. RFC 2047 encoded) Subject value in, untouched.
    `headers`: extra headers added as given (e.g. forged X-Spam-* headers).
    """
    message_id = new_message_id()
    msg = EmailMessage()
    msg["From"] = f"Alice Example <{SENDER}>"
    msg["To"] = to
    if raw_subject is None:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = message_id
    body = HAM_TEXT + "".join(f"\n{mark}\n" for mark in marks)
    msg.set_content(body, cte="7bit")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    extra = list(headers or [])
    if raw_subject is not None:
        extra.insert(0, ("Subject", raw_subject))
    if extra:
        lines = b"".join(f"{name}: {value}\r\n".encode() for name, value in extra)
        raw = lines + raw
    return raw, message_id
