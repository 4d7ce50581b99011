"""The MIME walk: the tree of parts, visited with an explicit stack under the scan limits.

The stdlib feedparser recurses (through generators) once per nesting level, so a hostile message
with thousands of nested multiparts exhausts the stack and, before that, costs quadratic time. This
walk splits multiparts itself with one regular expression per boundary and never descends past
`max_depth`, so the cost is bounded by limits instead of by the sender. Parameter parsing (RFC 2045
quoting, RFC 2231 continuations and charsets) is left to the stdlib `email.message.Message`.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from email.message import Message as ParamParser
from email.utils import collapse_rfc2231_value
from functools import lru_cache

from mailsift.analysis.charsets import well_formed
from mailsift.analysis.headers import decode_loose_base64, split_block, text_of, unfold
from mailsift.analysis.model import Facts

KNOWN_CTE = frozenset({"", "7bit", "8bit", "binary", "base64", "quoted-printable"})
# RFC 2231 parameters ("name*=", "name*0*="), the ones the stdlib can trip over when they are broken.
EXTENDED_PARAM = re.compile(r";\s*[^\s;=]+\*[^\s;=]*\s*=\s*(?:\"[^\"]*\"|[^;]*)")
# The stdlib's parameter parser copies the rest of the value at each ";" and, at each ";" between
# quotes, counts the quotes again from the parameter's start, so its time grows with the square
# of a value's length: a Content-Type of 400 KB of "; x=y" took 3.2 s of CPU (1.6 MB, 54 s)
# and one name="" holding 64 KB of ";" 7 s, per part, in every path that reads the message. It
# is handed at most this many ";", read in one pass (`_bounded`): the parameters after them are
# left unread, a fact. Mail writes a few parameters, RFC 2231 a long name in sections of ~70
# characters (a 255-character UTF-8 name in ~35); no field of the corpus has over 3 that say
# anything (one spam has 7,138 empty ones, which are dropped, as the stdlib ignores them).
MAX_SEMICOLONS = 64
# Distinct Content-Type/Content-Disposition pairs remembered; a multipart's boundary makes its
# pair unique, so the cache mostly serves the leaves.
PARAMS_CACHE = 1024
BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r?\n|\Z))")
# The types that enclose one whole message, walked into like a multipart. message/global (RFC
# 6532 section 3.7) is message/rfc822 for SMTPUTF8 mail: its header fields may be UTF-8, and it
# is the type a DSN of such mail encloses its original in (RFC 6533). Either may come base64 or
# quoted-printable encoded, which `_decoded_message` removes before the walk goes in.
ENCLOSING = frozenset({"message/rfc822", "message/global"})
# The types that hold only a message's header block, read as text as a mail reader shows them:
# RFC 6522's text/rfc822-headers, RFC 6533's message/global-headers (UTF-8 allowed, as in
# message/global), and message/rfc822-headers, which no RFC defines but some report senders
# write (Microsoft's complaint reports among them) for the same header block.
HEADER_BLOCK_TYPES = frozenset({"text/rfc822-headers", "message/global-headers", "message/rfc822-headers"})


@dataclass(slots=True)
class Limits:
    max_parts: int
    max_depth: int
    body_truncated: bool  # the body was cut at max_bytes, so an unfinished end is expected


@dataclass(slots=True)
class Params:
    """What the Content-Type and Content-Disposition headers say, parameters already decoded."""

    content_type: str  # lower-case type/subtype
    charset: str  # lower-case, '' if absent
    boundary: str
    filename: str  # RFC 2231 joined and decoded; RFC 2047 words are left to the caller
    disposition: str  # lower-case 'inline', 'attachment' or ''


@dataclass(slots=True)
class Leaf:
    """A part that is not a container: what the text, HTML and attachment extraction read."""

    params: Params
    transfer_encoding: str
    body: bytes  # still transfer-encoded
    depth: int

    @property
    def content_type(self) -> str:
        return self.params.content_type

    @property
    def disposition(self) -> str:
        return self.params.disposition

    @property
    def is_text(self) -> bool:
        """Text a mail reader shows: a text/ part, or a header block of any of the
        HEADER_BLOCK_TYPES, so that the three spellings of one block are read, and counted as
        attachments or not, alike."""
        return self.content_type.startswith("text/") or self.content_type in HEADER_BLOCK_TYPES


# A part's header fields as (name, value as written: folding and encoded words kept)
Fields = list[tuple[str, str]]


@dataclass(slots=True)
class Walk:
    leaves: list[Leaf]
    parts: int  # entities visited, containers included
    max_depth: int  # deepest level visited; the top-level message is 0
    truncated: bool  # limits stopped the walk
    # The header fields of every part visited below the top level, containers included, in the
    # order visited: what `mimeheader` rules match besides the message's own headers.
    part_headers: list[Fields] = field(default_factory=list)


def walk(headers: Fields, body: bytes, limits: Limits, facts: Facts) -> Walk:
    """Visit the message's parts depth-first in message order, within max_parts and max_depth."""
    result = Walk([], 0, 0, False)
    stack: list[tuple[Fields, bytes, int, str]] = [(headers, body, 0, "text/plain")]
    while stack:
        if result.parts >= limits.max_parts:
            facts.add("MIME_TOO_MANY_PARTS", f"more than {limits.max_parts}")
            result.truncated = True
            break
        part_headers, part_body, depth, default_type = stack.pop()
        if depth:
            result.part_headers.append(part_headers)
        result.parts += 1
        result.max_depth = max(result.max_depth, depth)
        part_fields = _first_of_each(part_headers)
        params = read_params(part_fields, default_type, facts)
        ctype = params.content_type
        if ctype.startswith("multipart/") or ctype in ENCLOSING:
            if depth >= limits.max_depth:
                facts.add("MIME_TOO_DEEP", f"deeper than {limits.max_depth}")
                result.truncated = True
                continue
            if ctype in ENCLOSING:
                part_body = _decoded_message(part_body, part_fields, limits, facts)
            children = _children(ctype, params, part_body, limits, facts)
            if children is not None:
                stack.extend((f, b, depth + 1, d) for f, b, d in reversed(children))
                continue
            params.content_type = "text/plain"
        result.leaves.append(Leaf(params, _transfer_encoding(part_fields, facts), part_body, depth))
    return result


def _first_of_each(headers: Fields) -> dict[str, str]:
    """The first field of each name (lower-case), unfolded: the one that decides a part's type."""
    fields: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key not in fields:
            fields[key] = unfold(value)
    return fields


def read_params(fields: dict[str, str], default_type: str, facts: Facts) -> Params:
    """Content type and parameters of a part; broken RFC 2231 parameters are dropped, not fatal."""
    values, found = _params(fields.get("content-type"), fields.get("content-disposition"), default_type)
    for name, evidence in found:
        facts.add(name, evidence)
    return Params(*values)


@lru_cache(maxsize=PARAMS_CACHE)
def _params(content_type: str | None, disposition: str | None, default_type: str
            ) -> tuple[tuple[str, str, str, str, str], tuple[tuple[str, str], ...]]:
    """read_params for one pair of header values, remembered: most parts of most mail repeat a
    handful of them ("text/plain; charset=us-ascii"), and the stdlib parameter parser took ~9%
    of the analysis of a message. Returns the Params fields and the facts to add, in order."""
    fields = {name: value for name, value in (("content-type", content_type),
                                              ("content-disposition", disposition)) if value is not None}
    facts = Facts()
    try:
        params = _read_params(fields, default_type, facts)
    except (ValueError, TypeError, IndexError, LookupError, UnicodeError) as exc:
        facts.add("MIME_MALFORMED", f"parameters: {exc}")
        plain = {name: EXTENDED_PARAM.sub("", value) for name, value in fields.items()}
        params = _read_params(plain, default_type, facts)
    values = (params.content_type, params.charset, params.boundary, params.filename, params.disposition)
    return values, tuple(facts.items.items())


def _read_params(fields: dict[str, str], default_type: str, facts: Facts) -> Params:
    parser = ParamParser()
    for name in ("content-type", "content-disposition"):
        if name in fields:
            parser[name] = _bounded(name, fields[name], facts)
    filename = parser.get_filename() or parser.get_param("name") or ""
    if isinstance(filename, tuple):
        filename = collapse_rfc2231_value(filename)
    return Params(
        content_type=_content_type(fields, parser, default_type, facts),
        charset=parser.get_content_charset() or "",
        # RFC 2231 values are decoded by the stdlib, with UTF-7 too (see charsets.LONE_SURROGATE)
        boundary=well_formed(parser.get_boundary() or ""),
        filename=well_formed(str(filename)),
        disposition=fields.get("content-disposition", "").split(";", 1)[0].strip().lower(),
    )


def _bounded(name: str, value: str, facts: Facts) -> str:
    """`value` as the stdlib's parser may be given it (see MAX_SEMICOLONS): as written when it
    has few ";", else its type and the parameters up to the MAX_SEMICOLONS-th ";", empty ones
    dropped. Split as that parser splits, at each ";" after an even number of quotes (a quote
    after a backslash not counted) since the parameter's start."""
    if value.count(";") <= MAX_SEMICOLONS:
        return value
    pieces, start, counted, quotes = [], 0, 0, 0
    for semicolon in re.finditer(";", value):
        end = semicolon.start()
        quotes += value.count('"', counted, end) - value.count('\\"', counted, end)
        counted = end
        if quotes % 2 == 0:
            pieces.append(value[start:end])
            start, quotes = end + 1, 0
    pieces.append(value[start:])
    kept, semicolons = [pieces[0]], 0
    for piece in filter(str.strip, pieces[1:]):
        semicolons += 1 + piece.count(";")
        if semicolons > MAX_SEMICOLONS:
            facts.add("MIME_MALFORMED", f"{name}: parameters past the {MAX_SEMICOLONS}th ';' not read")
            break
        kept.append(piece)
    return ";".join(kept)


def _content_type(fields: dict[str, str], parser: ParamParser, default: str, facts: Facts) -> str:
    """The lower-case type/subtype; a value that is not type/subtype is read as text/plain."""
    if "content-type" not in fields:
        return default
    value = fields["content-type"].split(";", 1)[0].strip().lower()
    if value.count("/") != 1 or " " in value:
        if value:
            facts.add("MIME_MALFORMED", f"Content-Type: {value[:60]}")
        return "text/plain"
    return parser.get_content_type()


def _transfer_encoding(fields: dict[str, str], facts: Facts) -> str:
    value = fields.get("content-transfer-encoding", "").strip().lower()
    value = value.split(";", 1)[0].strip().strip("\"'")
    if value not in KNOWN_CTE:
        facts.add("MIME_BAD_CTE", value[:60])
    return value


def _decoded_message(body: bytes, fields: dict[str, str], limits: Limits, facts: Facts) -> bytes:
    """An enclosed message with its transfer encoding removed (and line ends made LF, as the
    top-level message's are) before its header block is read. RFC 6532 lets message/global be
    sent base64 or quoted-printable encoded; RFC 2046 5.2.1 forbids it for message/rfc822, but
    bouncers write it so too, and undecoded its original (and the backscatter it shows) was lost:
    the encoded text was read as a message without headers. The body is already within
    scan.max_bytes, and decoding only shrinks it; a payload that is no base64 is decoded loosely
    as any other part's is, its enclosed headers then mostly unreadable."""
    encoding = _transfer_encoding(fields, facts)
    if encoding not in ("base64", "quoted-printable"):
        return body
    data = decode_transfer(body, encoding, facts, quiet=limits.body_truncated)
    return data.replace(b"\r\n", b"\n") if b"\r" in data else data


def _children(ctype: str, params: Params, body: bytes, limits: Limits,
              facts: Facts) -> list[tuple[Fields, bytes, str]] | None:
    """The child parts of a container as (fields, body, default type), or None to read it as text."""
    if ctype in ENCLOSING:
        return [_split_part(body, "text/plain", facts)]
    boundary = params.boundary
    if not boundary:
        facts.add("MIME_MISSING_BOUNDARY", ctype)
        return None
    bodies, closed = split_multipart(body, boundary.encode("utf-8", errors="replace"))
    if bodies is None:
        facts.add("MIME_BOUNDARY_NOT_FOUND", boundary[:60])
        return None
    if not closed and not limits.body_truncated:
        facts.add("MIME_BOUNDARY_UNCLOSED", boundary[:60])
    # RFC 2046 section 5.1.5: in a digest, parts are messages unless they say otherwise.
    default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
    return [_split_part(b, default, facts) for b in bodies]


def _split_part(data: bytes, default_type: str, facts: Facts) -> tuple[Fields, bytes, str]:
    """A part's header fields (all of them, folding kept) and body.

    A part that starts with its body (no headers, just the empty line or not even that) is legal
    and common, so only the top-level message records a missing header block.
    """
    if data.startswith(b"\n"):
        return [], data[1:], default_type
    block = split_block(data, Facts())
    fields = [(name, text_of(value, "", facts)) for name, value in block.fields]
    return fields, data[block.body_start:], default_type


def split_multipart(body: bytes, boundary: bytes) -> tuple[list[bytes] | None, bool]:
    """The bodies between boundary lines, and whether the closing boundary was seen.

    Returns (None, False) when the boundary never occurs. Preamble and epilogue are dropped: they
    are not shown by mail readers. The line break before a boundary belongs to the boundary.
    """
    delimiter = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*$", re.MULTILINE)
    parts: list[bytes] = []
    start = -1
    for match in delimiter.finditer(body):
        if start >= 0:
            parts.append(body[start:max(start, match.start() - 1)])
        if match[1]:
            return (parts if start >= 0 else None), True
        start = match.end() + 1
    if start < 0:
        return None, False
    parts.append(body[start:])
    return parts, False


def decode_transfer(body: bytes, encoding: str, facts: Facts, quiet: bool) -> bytes:
    """The part's bytes with its Content-Transfer-Encoding removed.

    `quiet` suppresses the bad-encoding facts for a part cut short by the scan limit, whose end is
    broken by us rather than by the sender.
    """
    if encoding == "base64":
        data = body.translate(None, b" \t\r\n")
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            if not quiet:
                facts.add("MIME_BAD_BASE64", data[:40].decode("ascii", errors="replace"))
            return decode_loose_base64(data)
    if encoding == "quoted-printable":
        if not quiet and BAD_QP.search(body):
            facts.add("MIME_BAD_QP")
        return binascii.a2b_qp(body)
    return body
