"""Digests of a message: one exact identity for learning, and fuzzy ones for shared spam reports.

The learning digest must be the same for the copy the milter scored and the copy a user later
drags into a "spam" folder, so it ignores everything a filter changes on the way (our X-Spam-*
headers, a tagged Subject, the mbox From line) and hashes what stays: Message-ID, Date and body,
the body found where the analysis finds it (`parse.body_of`; not at the first "\\n\\n", which in
a file of mixed line ends can be inside the body) and as every way of storing it agrees on
(`_mailbox_neutral`).

A big message is named by the start of its body. The milter's worker gets the headers and only
the first scan.max_bytes of the body, counted with the CRLF line ends Postfix sends (1 MiB by
default), while `mailsift learn` and the quarantine read the whole message: hashing all of the
body gave autolearn one digest and a correction by hand another, so "learn as ham" left the
autolearned spam counts in place, learning it by hand counted it twice and a report made from
one copy was not revoked from the other. So a body whose stored form, counted with CRLF line
ends, is over `DIGEST_LIMIT` (scan.max_bytes' default), and any body the milter cut, is hashed
in its first half of that: its first 512 KiB (CRLF), mbox quoting undone, which every copy
holds, under a digest of its own kind (`LEADING`) that never equals a whole body's.
A body within the limit is hashed whole, exactly as before this rule, so the learned-message
records of such mail stay valid; records of mail over 1 MiB learned by an older mailsift may
not be found again (its autolearn hashed the cut body, its learn the whole).

A larger scan.max_bytes changes no digest. A smaller one is the limit instead (its first half
hashed), since the milter then has less of the body: a message over the new limit gets another
digest than the one it was learned under, so learning it again counts it again and forgetting
it finds nothing, as its tokens change too (the analysis reads less of it); a message within
the new limit keeps its digest. Forget such mail before lowering the limit.

Blank space past the limit is not a cut (the milter's `_blank_rest`, as `analyse`), so a body
over it by its last line ends only is hashed whole from every copy. The limit counts the body
as sent, its ">From " lines with their ">" as the milter got them: a copy read from an mbox has
the mbox's own quoting undone before this (`analysis.parse.unquoted`, by `analyse` and by
`mailsift learn`'s mbox reader). Counted without them, a body over the limit by no more than
the ">" of its "From " lines was hashed whole from a file and by its start in the milter, which
cut it. Copies still differ for a body whose such ">" make up over half the limit: the leading
part the milter holds is then shorter, once they are undone, than a whole copy's.

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
from mailsift.analysis.parse import body_of, crlf_cut
from mailsift.config import ScanConfig

MIN_LINE_CHARS = 24  # shorter lines ("Hi Bob,", "Thanks!") are too common to identify a message
MAX_LINES = 40
# A scheme is a short word before "://": bounding it keeps the search linear. An unbounded
# `\S+://` backtracked over every start of a long unbroken line (100 KB: 14 s, quadratic).
URL_IN_TEXT = regex.compile(r"\b[a-z][a-z0-9+.\-]{0,31}://\S+|www\.\S+")
NOT_LETTERS = regex.compile(r"[^\p{L}]+")
MBOX_QUOTED_FROM = regex.compile(rb"(?m)^>+From ")
# Bodies longer than this (CRLF bytes) are named by their first half: scan.max_bytes' default,
# so a site that raises it keeps every digest (see the module docstring).
DIGEST_LIMIT: int = ScanConfig.model_fields["max_bytes"].default
LEADING = b"mailsift-leading"  # blake2b's personalisation of a leading-part digest (16 bytes)


def _sha(data: str | bytes, size: int = 16, person: bytes = b"") -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.blake2b(raw, digest_size=size, person=person).hexdigest()


def learn_digest(msg: Message) -> str:
    """The identity a learned message is remembered by (see the module docstring for why)."""
    body = body_of(msg.raw)  # LF line ends: where `analyse` split it, not at a "\n\n" in the body
    ident = f"{msg.header('Message-ID').strip()}\0{msg.header('Date').strip()}\0".encode()
    limit = min(msg.scan_max_bytes or DIGEST_LIMIT, DIGEST_LIMIT)
    if not msg.body_cut:
        sent = body.rstrip()  # counted as the milter counts it
        if len(sent) + sent.count(b"\n") <= limit:
            return _sha(ident + _mailbox_neutral(body), 20)
    return _sha(ident + _leading(body[:limit], limit // 2), 20, LEADING)


def _leading(body: bytes, size: int) -> bytes:
    """The body's first `size` bytes counted with CRLF line ends, mbox quoting undone (not its
    trailing blank lines: the milter's cut may fall in blank lines the whole copy continues
    after). `body` (LF line ends, `body_of`) is no more than the milter has; reading further
    would change nothing."""
    text = MBOX_QUOTED_FROM.sub(b"From ", body)
    return text[:crlf_cut(text, 0, size)[0]]


def _mailbox_neutral(body: bytes) -> bytes:
    """The body as every way of storing it agrees on: CRLF or LF (`body_of` made each CRLF LF,
    once, as before: another pass would take a CR off lines ending in CR CR LF, as some spam's
    do, and change their digests), no trailing blank lines (an mbox drops the one before the
    next From line, a file keeps it), and no mbox quoting of body lines that start with "From "
    (">From ", ">>From " in mboxrd). Without this, learning a folder and later its mbox export
    counted every message twice."""
    return MBOX_QUOTED_FROM.sub(b"From ", body.rstrip())


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
