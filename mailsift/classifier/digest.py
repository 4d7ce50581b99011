"""Digests of a message: one exact identity for learning, and fuzzy ones for shared spam reports.

The learning digest must be the same for the copy the milter scored and the copy a user later
drags into a "spam" folder, so it ignores everything a filter changes on the way (our X-Spam-*
headers, a tagged Subject, the mbox From line) and hashes what stays: Message-ID, Date and body.

Report digests must survive what spammers vary between copies — the greeting, a recipient's name,
tracking parameters in links — so they hash normalised lines of the visible text (lower-case,
digits and links removed, spacing collapsed) one by one, and links without their query string.
A copy with a changed greeting still shares most of its line digests with the reported original.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import regex

from mailsift.analysis.model import Message

MIN_LINE_CHARS = 24  # shorter lines ("Hi Bob,", "Thanks!") are too common to identify a message
MAX_LINES = 40
# A scheme is a short word before "://": bounding it keeps the search linear. An unbounded
# `\S+://` backtracked over every start of a long unbroken line (100 KB: 14 s, quadratic).
URL_IN_TEXT = regex.compile(r"\b[a-z][a-z0-9+.\-]{0,31}://\S+|www\.\S+")
NOT_LETTERS = regex.compile(r"[^\p{L}]+")
MBOX_QUOTED_FROM = regex.compile(rb"(?m)^>+From ")


def _sha(data: str | bytes, size: int = 16) -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.blake2b(raw, digest_size=size).hexdigest()


def learn_digest(msg: Message) -> str:
    """The identity a learned message is remembered by (see the module docstring for why)."""
    _, _, body = msg.raw.partition(b"\n\n")
    if not body:
        _, _, body = msg.raw.partition(b"\r\n\r\n")
    ident = f"{msg.header('Message-ID').strip()}\0{msg.header('Date').strip()}\0".encode()
    return _sha(ident + _mailbox_neutral(body), 20)


def _mailbox_neutral(body: bytes) -> bytes:
    """The body as every way of storing it agrees on: CRLF or LF, no trailing blank lines (an
    mbox drops the one before the next From line, a file keeps it), and no mbox quoting of body
    lines that start with "From " (">From ", ">>From " in mboxrd). Without this, learning a
    folder and later its mbox export counted every message twice."""
    body = body.replace(b"\r\n", b"\n").rstrip()
    return MBOX_QUOTED_FROM.sub(b"From ", body)


@dataclass(frozen=True)
class ReportDigests:
    lines: frozenset[str]
    urls: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.lines | self.urls


def normalised_lines(msg: Message) -> list[str]:
    text = msg.visible_text
    lines = []
    for line in text.splitlines():
        line = NOT_LETTERS.sub(" ", URL_IN_TEXT.sub(" ", line.lower())).strip()
        if len(line) >= MIN_LINE_CHARS:
            lines.append(line)
    return lines[:MAX_LINES]


def report_digests(msg: Message) -> ReportDigests:
    lines = frozenset("l:" + _sha(line) for line in normalised_lines(msg))
    urls = frozenset("u:" + _sha(f"{u.host}{u.url.split(u.host, 1)[-1].split('?')[0].rstrip('/')}")
                     for u in msg.uris if u.host)
    return ReportDigests(lines, urls)
