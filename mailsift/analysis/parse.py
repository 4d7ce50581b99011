"""`analyse`: raw message bytes in, one `Message` with everything rules and Bayes need out.

The order of work follows the scan limits: headers are always read whole (they are small and
every check needs them), the body only up to `max_bytes` (counted as the milter gets it, with
CRLF line ends, so every path sees the same part of a big message), its MIME tree only to
`max_parts` and `max_depth`. Whatever is wrong with the input becomes a fact (see
`facts.FACTS`), never an exception: a milter that throws lets the spam through.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from mailsift.analysis import archives, attachments, charsets, mime, relays, uris
from mailsift.analysis.headers import FIELD, HeaderBlock, body_charset, build_headers, split_block
from mailsift.analysis.html import Link, render
from mailsift.analysis.model import (
    Attachment,
    Envelope,
    Facts,
    Header,
    HtmlFacts,
    Message,
    Relay,
    TextPart,
    Uri,
)
from mailsift.config import Config

log = logging.getLogger(__name__)

PRINTABLE_ASCII = re.compile(rb"[^\t\n\r\x20-\x7e]")
NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() keeps
MBOX_MARK = b"From "  # an mbox's line before each message, and the start of a line it quotes
# A body line an mbox writer quoted: "From " as ">From ", ">From " as ">>From " (mboxrd).
QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def analyse(raw: bytes, config: Config, envelope: Envelope | None = None,
            arrival: datetime | None = None, body_cut: bool = False,
            later_hops: bool = False) -> Message:
    """Analyse one message; `arrival` stands in for the date when no Received header has one.

    `body_cut`: the caller already cut the body at scan.max_bytes (the milter sends a worker no
    more), so its unfinished end is ours, not the sender's, as when the cut is made here.
    `later_hops`: `raw` is a copy from after the envelope's client was received (`mailsift
    check` of a delivered file), which may carry the hops that came later (see `_relays`)."""
    raw = _strip_mbox_line(raw)
    facts = Facts()
    try:
        return _analyse(raw, config, envelope or Envelope(), arrival, facts, body_cut, later_hops)
    except Exception as exc:
        # Every known kind of bad input is handled above; this guard exists so that a parser bug
        # still leaves a scoreable message (headers-less, fact set) instead of a tempfail loop.
        log.exception("analysis failed")
        facts.add("ANALYSIS_ERROR", f"{type(exc).__name__}: {exc}")
        return Message(raw, [], [], [], HtmlFacts(), [], [], facts, envelope or Envelope(), arrival,
                       len(raw), 0, 0, truncated=True, body_cut=body_cut,
                       scan_max_bytes=config.scan.max_bytes)


def _strip_mbox_line(raw: bytes) -> bytes:
    """A message as it was sent, read from an mbox: without the `From sender date` line mbox
    files put before each message, and with the quoting of its "From " lines undone
    (`unquoted`), as `mailsift learn` reads an mbox. Left in, each ">" moved the cut at
    scan.max_bytes one byte before the milter's, so `mailsift check` of an mbox copy over the
    limit by its quoting alone read it as cut (its last part unread, an attachment's damage not
    scored) where the milter read it whole, and a signed message's body no longer verified."""
    if is_mbox_line(raw):
        end = raw.find(b"\n")
        return unquoted(raw[end + 1:]) if end >= 0 else b""
    return raw


def is_mbox_line(line: bytes) -> bool:
    """Whether `line` (a file's first line, or a line of an mbox) is the line an mbox puts before
    each message: "From ", then in mboxo and mboxrd the envelope sender and a date (`From
    ann@example.org Tue Nov 24 10:00:00 2026`). Neither is checked, as the stdlib's mailbox
    module checks neither: writers differ in both (Thunderbird's `From - Mon Nov 24 ...`, dates
    with or without a zone, a script's line with no date), and a real mbox line kept for want of
    a date we read would stand before the headers, where analyse reads a line that is no field
    as the start of the body: the message would lose every header. What else starts with "From "
    is the header field in its obsolete form, white space before the colon (`From : Ann
    <ann@example.org>`, RFC 5322 section 4.5.1; analyse reads it as a field): taken for the mbox
    line, it was dropped and the message lost its From. So a line is one unless it is that."""
    return line.startswith(MBOX_MARK) and FIELD.match(line) is None


def unquoted(raw: bytes) -> bytes:
    """A message read out of an mbox as it was sent: one ">" off each line the mbox writer
    quoted (Python's mailbox module, which reads it, leaves them). The milter reads a body only
    up to scan.max_bytes, and `analyse` cuts every copy there: each ">" it counted moved the
    cut of an mbox's copy of a bigger message one byte before the milter's, so its last words
    were others (a word cut short, the last ones lost) than those autolearn had counted. Which
    writer quoted what cannot be told (mboxo leaves a sent ">From " as it is, so it loses its
    ">" here), and words do not change: Bayes reads "From" from either."""
    return QUOTED_FROM.sub(rb"\1", raw)


def body_of(raw: bytes) -> bytes:
    """The body of `raw` (a `Message.raw`) where the analysis finds it, with LF line ends: after
    the header block `split_block` reads (its first empty line, or a line that is no field).
    The learning digest hashes this: it took what followed the first "\\n\\n" of the stored
    bytes, which in a file of CRLF headers and a body with some LF lines (saved by one tool,
    edited by another) is a blank line inside the body, so such a file was learned under another
    digest than the milter's copy (Postfix sends every line with CRLF), and a correction by hand
    counted it twice."""
    data, block = _split(raw, Facts())
    return data[block.body_start:]


def _split(raw: bytes, facts: Facts) -> tuple[bytes, HeaderBlock]:
    """`raw` with LF line ends, and its header block."""
    data = raw.replace(b"\r\n", b"\n") if b"\r" in raw else raw
    return data, split_block(data, facts)


def _analyse(raw: bytes, config: Config, envelope: Envelope, arrival: datetime | None,
             facts: Facts, body_cut: bool, later_hops: bool) -> Message:
    data, block = _split(raw, facts)
    headers = build_headers(block, body_charset(block.fields), facts)
    body, end = _milter_view(data, block.body_start, config.scan.max_bytes)
    # Blank space past the limit is no text left unread: the milter does not call that cut either
    body_truncated = body_cut or NOT_BLANK.search(data, end) is not None
    limits = mime.Limits(config.scan.max_parts, config.scan.max_depth, body_truncated)
    walk = mime.walk([(h.name, h.raw) for h in headers], body, limits, facts)
    body_parts = _Body(facts, quiet=body_truncated)
    for leaf in walk.leaves:
        body_parts.add(leaf)
    relay_list = _relays(headers, config, envelope, later_hops)
    return Message(
        raw=raw,
        headers=headers,
        text_parts=body_parts.text_parts,
        uris=body_parts.uris(),
        html=body_parts.html,
        attachments=body_parts.attachments,
        relays=relay_list,
        facts=facts,
        envelope=envelope,
        received_time=arrival or _received_time(headers),
        size=len(raw),
        mime_parts=walk.parts,
        max_depth=walk.max_depth,
        truncated=body_truncated or walk.truncated,
        body_truncated=body_truncated,
        part_headers=walk.part_headers,
        body_cut=body_cut,
        scan_max_bytes=config.scan.max_bytes,
        held_raw=_milter_held(data[:block.body_start], body, config.scan.max_bytes),
        subject_tag=config.actions.subject_tag,
    )


def _milter_view(data: bytes, start: int, limit: int) -> tuple[bytes, int]:
    """The body from `start` as far as the milter reads it: Postfix hands a milter CRLF line
    ends and the milter keeps the first `limit` (scan.max_bytes) bytes of those, while `data`
    has LF ones (`_analyse`). Cut at `limit` of its own bytes, a file's body reached further
    than the milter's (1 MiB of 76-character lines: 13 KiB more), so `mailsift learn`, `check`
    and a quarantine review saw, and Bayes counted, text the milter never scored. A cut that
    falls between a line's CR and LF keeps the CR, as the milter's does. Returns the body and
    where in `data` it ends."""
    end, size = crlf_cut(data, start, limit)
    if size == limit - 1 and data[end:end + 1] == b"\n":
        return data[start:end] + b"\r", end
    return data[start:end], end


def _milter_held(head: bytes, body: bytes, limit: int) -> bytes | None:
    """The message as the milter's worker holds it (`Message.held_raw`): the header block `head`
    and `body`, the part of the body it reads (`_milter_view`), with the CRLF line ends Postfix
    sends. None when that is within `limit`: the message is read whole, as before, by every path.
    Past it, a `full` rule reads its first `limit` bytes, which the LF lines of a file, its whole
    body, reached further into than the milter's; DKIM and ARC judge its body, not the file's."""
    if len(head) + head.count(b"\n") + len(body) + body.count(b"\n") <= limit:
        return None
    return (head + body).replace(b"\n", b"\r\n")


def crlf_cut(data: bytes, start: int, limit: int) -> tuple[int, int]:
    """(end, size): the longest `data[start:end]` whose CRLF form (each LF sent as CR LF, as
    Postfix sends a milter the body) is at most `limit` bytes, and that form's size. Each byte
    counts 1 or 2, so the end is found by halving the range where it must lie, counting line
    ends only in the half looked at: about 1.5 passes over `limit` bytes, never the whole body."""
    head = min(len(data), start + limit)
    lines = data.count(b"\n", start, head)
    if head - start + lines <= limit:
        return head, head - start + lines
    low = start + limit - lines  # fits: it has at most `lines` line ends
    low_lines = lines - data.count(b"\n", low, head)
    high = head  # does not fit
    while high - low > 1:
        middle = (low + high) // 2
        middle_lines = low_lines + data.count(b"\n", low, middle)
        if middle - start + middle_lines <= limit:
            low, low_lines = middle, middle_lines
        else:
            high = middle
    return low, low - start + low_lines


class _Body:
    """Collects text parts, attachments, HTML facts and links while the leaves are decoded."""

    def __init__(self, facts: Facts, quiet: bool) -> None:
        self.facts = facts
        self.quiet = quiet
        self.text_parts: list[TextPart] = []
        self.attachments: list[Attachment] = []
        self.archive_budget = archives.Budget()
        self.html = HtmlFacts()
        self.html_links: list[Uri] = []

    def add(self, leaf: mime.Leaf) -> None:
        facts = self.facts
        data = mime.decode_transfer(leaf.body, leaf.transfer_encoding, facts, self.quiet)
        name = attachments.filename(leaf, facts)
        if attachments.is_attachment(leaf, name):
            self.attachments.append(attachments.build(leaf, name, data, self.archive_budget))
        if leaf.is_text:
            self.text_parts.append(self._text_part(leaf, data))

    def _text_part(self, leaf: mime.Leaf, data: bytes) -> TextPart:
        facts = self.facts
        declared = leaf.params.charset
        decoded = charsets.decode(data, declared)
        if decoded.problem:
            facts.add(decoded.problem, declared)
        text = decoded.text
        if "\0" in text:
            facts.add("BODY_NUL")
            text = text.replace("\0", "")
        needless = leaf.transfer_encoding == "base64" and bool(data) and not PRINTABLE_ASCII.search(data)
        if needless:
            facts.add("MIME_BASE64_TEXT", leaf.content_type)
        part = TextPart(leaf.content_type, declared, decoded.charset, text, text, leaf.transfer_encoding,
                        charset_detected=decoded.detected, needless_base64=needless)
        if leaf.content_type == "text/html":
            part.is_html = True
            rendered = render(text, self.html)
            part.text = rendered.text
            self._html_links(rendered.links)
            if self.html.malformed:
                facts.add("HTML_MALFORMED")
        return part

    def _html_links(self, links: list[Link]) -> None:
        for link in links:
            uri = uris.normalise(link.url, "html", link.anchor_text)
            if uri is None:
                continue
            self.html_links.append(uri)
            named = uris.named_domain(link.anchor_text) if link.anchor_text else ""
            target = uri.domain or uri.host
            if named and target and named != target:
                self.html.link_mismatches.append((link.anchor_text, target))

    def uris(self) -> list[Uri]:
        """HTML links first, then links written in the visible text; each (url, source) once."""
        found: dict[tuple[str, str], Uri] = {}
        for uri in self.html_links:
            found.setdefault((uri.url, uri.source), uri)
        for part in self.text_parts:
            for raw in uris.find_in_text(part.text):
                uri = uris.normalise(raw)
                if uri is not None:
                    found.setdefault((uri.url, uri.source), uri)
        return list(found.values())


def _relays(headers: list[Header], config: Config, envelope: Envelope,
            later_hops: bool) -> list[Relay]:
    found = [relays.parse_received(h.value) for h in headers if h.name.lower() == "received"]
    chain: list[Relay] = []
    for index, relay in enumerate(found):
        if relay is not None:
            relay.received_index = index
            chain.append(relay)
    if envelope.client_ip:
        chain = _from_connection(chain, envelope, later_hops)
    relays.mark_trust(chain, config.network.trusted_networks, config.network.internal_networks)
    return chain


def _from_connection(chain: list[Relay], envelope: Envelope, later_hops: bool) -> list[Relay]:
    """The chain as the MTA that took the message from the envelope's client knows it: that
    connection first (`_connection`), then the hops before it. A Received header on top naming
    the client is that MTA's own record of the same hop (a quarantined or delivered copy), not
    one more relay.

    With `later_hops` (check of a delivered file), the newest header naming the client is that
    record wherever it is: the ones above it were added after the milter had judged the message
    (a content filter's reinjection, the mailbox host's LMTP), as the milter sees a message
    before they exist. Left in, they stood below the told client as the relays that had handed
    it the message: looked up in the DNS lists, judged for trust, given to Bayes as the
    sender's path. Without it (the milter) only a header on top is taken for that record:
    further down, one naming the client's own address was written by the client, and the
    headers above it are the client's say, judged as they are."""
    depth = len(chain) if later_hops else min(len(chain), 1)
    recorded = next((index for index in range(depth) if chain[index].ip == envelope.client_ip),
                    None)
    connection = _connection(envelope)
    if recorded is None:
        return [connection, *chain]
    connection.received_index = chain[recorded].received_index
    return [connection, *chain[recorded + 1:]]


def _connection(envelope: Envelope) -> Relay:
    """The hop the MTA saw itself: authoritative, unlike any Received header the client wrote.
    A client without a verified name ("unknown", libmilter's "[2001:db8::5]") has no reverse
    name, which rules and Bayes must see as none (`relays.verified_name`)."""
    return Relay(ip=envelope.client_ip, rdns=relays.verified_name(envelope.client_name),
                 helo=envelope.helo, by="", auth="SASL" if envelope.auth_user else "",
                 envfrom=envelope.mail_from, id=envelope.queue_id)


def _received_time(headers: list[Header]) -> datetime | None:
    """The date of the newest Received header that carries a readable one."""
    for header in headers:
        if header.name.lower() == "received":
            when = relays.received_date(header.value)
            if when is not None:
                return when
    return None
