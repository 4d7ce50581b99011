"""Header blocks: splitting into fields, unfolding, and RFC 2047 decoding to Unicode.

Our own splitting instead of the stdlib parser because it is several times faster, keeps the
original folding for `:raw` rules, and lets a broken block (garbage lines, NULs, a missing empty
line) end in recorded facts instead of exceptions. Encoded words are decoded by hand for the same
reasons: adjacent words in one charset are joined before decoding, so a multi-byte character split
across two words (common from some encoders) comes out whole, and a bad word costs a fact, not the
whole header.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailsift.analysis.charsets import decode_short
from mailsift.analysis.model import Facts, Header

# A field name is any printable ASCII except ':'; white space before the colon is obsolete syntax
# (RFC 5322 section 4.5) that real mail still carries.
FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
FOLD = re.compile(r"\r?\n(?=[ \t])")
CHARSET_PARAM = re.compile(rb"charset\s*=\s*[\"']?([^\s\"';]+)", re.IGNORECASE)
# RFC 5322 section 2.1.1: lines must not exceed 998 characters.
MAX_LINE = 998
# Fields written or rewritten between the milter and the mailbox: trace and delivery fields
# (Postfix's and local delivery's), our verdict (the milter replaces any X-Spam-*, removes
# every Authentication-Results in our name and adds its own) and the Subject it tags
# (`on_the_way`).
WRITTEN_ON_THE_WAY = frozenset({"received", "return-path", "delivered-to", "x-original-to",
                                "authentication-results", "subject"})


@dataclass(slots=True)
class HeaderBlock:
    """The fields of one header block as bytes, and where the body starts."""

    fields: list[tuple[str, bytes]] = field(default_factory=list)  # (name, value with folding kept)
    body_start: int = 0


def split_block(data: bytes, facts: Facts) -> HeaderBlock:
    """Split the header block at the start of `data` (LF line ends) into fields.

    The block ends at the first empty line. A line that is neither a field nor a continuation ends
    it too, as in the stdlib parser: that line is the first body line of a message whose sender
    forgot the empty line.
    """
    block = HeaderBlock()
    if not data:
        return block
    if b"\0" in data[: data.find(b"\n\n") + 1 or len(data)]:
        facts.add("HEADER_NUL")
    pos, size = 0, len(data)
    name: str | None = None
    lines: list[bytes] = []
    while pos < size:
        end = data.find(b"\n", pos)
        if end < 0:
            end = size
        line = data[pos:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            pos = end + 1
            break
        if line[0] in b" \t":
            if name is None:
                facts.add("HEADER_CONTINUATION_FIRST", _evidence(line))
            else:
                lines.append(line)
                _check_length(line, name, facts)
        else:
            match = FIELD.match(line)
            if match is None:
                facts.add("MIME_NO_SEPARATOR" if name is not None else "MIME_NO_HEADERS", _evidence(line))
                break
            if name is not None:
                block.fields.append((name, b"\n".join(lines)))
            name = match[1].decode("ascii")
            _check_length(line, name, facts)
            lines = [line[match.end():].lstrip(b" \t")]
        pos = end + 1
    if name is not None:
        block.fields.append((name, b"\n".join(lines)))
    block.body_start = min(pos, size)
    return block


def _check_length(line: bytes, field: str, facts: Facts) -> None:
    if len(line) > MAX_LINE:
        facts.on_the_way = on_the_way(field)
        facts.add("HEADER_TOO_LONG", f"{len(line)} octets")
        facts.on_the_way = False


def _evidence(line: bytes) -> str:
    return line[:60].decode("ascii", errors="replace")


def body_charset(fields: Iterable[tuple[str, bytes]]) -> str:
    """The top-level charset of a header block's (name, raw value) fields: the best guess for
    raw 8-bit header text written by old clients (`text_of`). The milter tags a Subject from
    that text too, so the delivered copy's Subject reads as the analysis read the milter's."""
    for name, value in fields:
        if name.lower() == "content-type":
            found = CHARSET_PARAM.search(value)
            return found[1].decode("ascii", errors="replace") if found else ""
    return ""


def text_of(value: bytes, fallback_charset: str, facts: Facts) -> str:
    """A raw header value as text: ASCII, else UTF-8 (RFC 6532), else the message's body charset.

    Old clients wrote 8-bit headers in the charset of the body, so that is the best guess left.
    """
    if value.isascii():
        return value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        facts.add("HEADER_8BIT", _evidence(value))
        text, _ = decode_short(value, fallback_charset or "cp1252")
        return text


def unfold(raw: str) -> str:
    """RFC 5322 unfolding: the line break goes, the white space that followed it stays."""
    return FOLD.sub("", raw) if "\n" in raw else raw


def decode_words(value: str, facts: Facts) -> str:
    """Replace RFC 2047 encoded words by their text; white space between adjacent words is dropped."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    charset = ""
    pos = 0
    for match in ENCODED_WORD.finditer(value):
        gap = value[pos:match.start()]
        if charset and (gap.strip() or match[1].lower() != charset):
            out.append(_flush(pending, charset, facts))
            charset = ""
        if not charset:
            out.append(gap)
        charset = match[1].lower()
        pending += _word_bytes(match[2], match[3], facts)
        pos = match.end()
    if charset:
        out.append(_flush(pending, charset, facts))
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, payload: str, facts: Facts) -> bytes:
    data = payload.encode("utf-8", errors="replace")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        facts.add("HEADER_BAD_ENCODED_WORD", payload[:60])
        return decode_loose_base64(data)


def decode_loose_base64(data: bytes) -> bytes:
    """Base64 as a mail reader decodes it: junk characters skipped, padding repaired."""
    clean = NOT_BASE64.sub(b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def _flush(pending: bytearray, charset: str, facts: Facts) -> str:
    text, ok = decode_short(bytes(pending), charset)
    if not ok:
        facts.add("HEADER_BAD_ENCODED_WORD", f"charset {charset}")
    pending.clear()
    return text


def build_headers(block: HeaderBlock, fallback_charset: str, facts: Facts) -> list[Header]:
    """Header objects for a split block: raw keeps folding and encoded words, value is decoded."""
    headers = []
    try:
        for name, value in block.fields:
            facts.on_the_way = on_the_way(name)
            raw = text_of(value, fallback_charset, facts)
            headers.append(Header(name, raw, header_value(raw, facts)))
    finally:
        facts.on_the_way = False
    return headers


def on_the_way(name: str) -> bool:
    """Whether a field may be written or rewritten between the milter and the mailbox, so that
    one copy of the message has what is wrong with it and another not: the milter's copy has
    a raw 8-bit Subject that the delivered one has tagged and encoded, the delivered one a raw
    8-bit address in Return-Path that the milter's has not. The facts found in such a field
    alone are no Bayes tokens (`Facts.kept`); rules score them as any other."""
    lowered = name.lower()
    return lowered in WRITTEN_ON_THE_WAY or lowered.startswith("x-spam-")


def header_value(raw: str, facts: Facts) -> str:
    """A field's value as rules and checks read it: unfolded, RFC 2047 words decoded, trimmed."""
    return decode_words(unfold(raw), facts).strip()
