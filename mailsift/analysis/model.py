"""The analysed message: every fact rules and the Bayes tokenizer need, computed by one parse.

Rules never look at raw bytes except through `full_text`; the tokenizer never re-parses. Keeping
one immutable-after-build object is what lets a message be scored by hundreds of rules and
tokenised for Bayes at the cost of a single MIME walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache

from mailsift.analysis.addresses import address_pairs


@dataclass(slots=True)
class Header:
    """One header field as it appeared, plus its decoded form.

    `raw` keeps folding and encoded words so `:raw` rules and forgery checks see what was sent;
    `value` is unfolded and RFC 2047-decoded to Unicode for everything else.
    """

    name: str
    raw: str
    value: str


@dataclass(slots=True)
class Uri:
    """A link found in text or HTML, normalised so that obfuscated spellings compare equal."""

    raw: str
    url: str  # normalised: percent-decoded where safe, IDNA host decoded to Unicode, host lower-case
    scheme: str
    host: str  # lower-case, Unicode (IDNA decoded); IP literals as written in dotted form
    domain: str  # registrable domain from the Public Suffix List ('' for IP hosts and bare words)
    is_ip: bool = False
    source: str = "text"  # "text" | "html" (href/src/action)
    anchor_text: str = ""  # visible text of the <a> element that carried it, if any


@dataclass(slots=True)
class HtmlFacts:
    """What the HTML of the message does, as opposed to what it says."""

    parts: int = 0
    visible_chars: int = 0
    hidden_chars: int = 0  # display:none / visibility:hidden / same fg and bg colour
    tiny_chars: int = 0  # font-size below 4px or <font size=1> and smaller
    images: int = 0
    image_area: int = 0  # sum of width*height where declared
    remote_images: int = 0
    forms: int = 0
    scripts: int = 0
    iframes: int = 0
    objects: int = 0  # <object>, <embed>, <applet>
    links: int = 0
    # (anchor text, target domain): link text that names another registrable domain than its href
    link_mismatches: list[tuple[str, str]] = field(default_factory=list)
    comment_chars: int = 0
    malformed: bool = False


@dataclass(slots=True)
class TextPart:
    """One text/* MIME part, decoded to Unicode."""

    content_type: str
    declared_charset: str  # as written in the header, lower-case, '' if absent
    charset: str  # the charset actually used to decode (may come from detection)
    text: str  # visible text (HTML rendered to text)
    raw_text: str  # decoded but not rendered (HTML tags kept): what `rawbody` rules match
    transfer_encoding: str  # lower-case Content-Transfer-Encoding, '' if absent
    is_html: bool = False
    charset_detected: bool = False  # declared charset missing/wrong/unknown and detection used
    needless_base64: bool = False  # base64 although the decoded content is plain 7-bit text


@dataclass(slots=True)
class Archive:
    """What an attached archive holds, as far as it can be read without unpacking it.

    Malware travels inside archives because gateways judge the outer name; the member names are
    what the recipient double-clicks after opening it.
    """

    kind: str  # "zip", "gzip", "tar", "xz", "rar", "7z", ...: recognised by the first bytes
    # Member names as stored (paths kept), at most archives.MAX_MEMBERS; a member of a zip inside
    # the zip is written "inner.zip/name", a folder "name/". A gzip or xz holding a tar lists the
    # tar's members. Empty for kinds that are recognised but not read.
    members: list[str] = field(default_factory=list)
    encrypted: bool = False  # a member's content is encrypted (its name still is not)
    # Not listed in full within the limits: a zip (or a zip inside it) whose list of members is
    # over archives.MAX_DIRECTORY, not read at all; a tar whose headers are, or a compressed tar
    # cut at the message's archives.NESTED_BYTES that is a bomb (archives.BOMB_RATIO), listed up
    # to there.
    too_big: bool = False
    # A compressed tar met once the message's archives before it had spent its unpacking
    # allowance (archives.NESTED_BYTES and its reserves): not read at all, or cut short of
    # archives.RESERVE and listed up to there. Not for its own size: alone, it would be read.
    allowance_spent: bool = False
    # An archive that cannot be listed: damaged, truncated, lying or using an unknown method.
    # zipfile lists all or nothing, so such a zip gave no names; a tar gave those before the damage.
    unreadable: bool = False
    # Zips inside the archive left closed: inside the zip, bigger than what was left of
    # archives.NESTED_BYTES (with the archive's archives.RESERVE) or compressed with a method not
    # unpacked (bzip2, LZMA); inside the tar, cut off by the end of a plain tar or past
    # archives.TAR_ZIPS; inside such an inner zip, every one (never opened). Their files are not
    # in `members`.
    unopened: list[str] = field(default_factory=list)
    # More members (nested ones included) than archives.MAX_MEMBERS: those past it are not in
    # `members`, so a program behind 1,000 decoys would pass the rules on member names.
    too_many: bool = False
    # The first member whose path leaves the folder the archive is unpacked into ("zip slip"):
    # '..' above it or an absolute path, or a tar link whose target does. '' if none.
    escaping: str = ""
    # The target of `escaping` when it is such a link (its own path stays inside). '' if none.
    escape_target: str = ""

    @property
    def unlisted(self) -> bool:
        """Some of the archive's files could not be listed: they escape the rules on member names."""
        return (self.too_big or self.allowance_spent or self.unreadable or self.too_many
                or bool(self.unopened))


@dataclass(slots=True)
class Attachment:
    filename: str  # decoded (RFC 2231 / RFC 2047), '' if none
    declared_type: str  # lower-case Content-Type of the part
    sniffed_type: str  # MIME type guessed from the first bytes, '' if unknown
    size: int  # decoded size in bytes (of what was read within limits)
    extensions: list[str] = field(default_factory=list)  # lower-case, e.g. ["pdf", "exe"]
    archive: Archive | None = None  # set when the bytes are an archive

    @property
    def double_extension(self) -> bool:
        """A decoy extension in front of the real one, e.g. `invoice.pdf.exe`."""
        return len(self.extensions) >= 2


@dataclass(slots=True)
class Relay:
    """One hop of the Received chain, newest first, in the spirit of SpamAssassin's relay list."""

    ip: str
    rdns: str  # reverse name as recorded by the receiving host, '' if unknown
    helo: str
    by: str
    ident: str = ""
    auth: str = ""  # authentication mechanism if the receiving host recorded one
    envfrom: str = ""
    id: str = ""
    trusted: bool = False
    internal: bool = False
    # position among the message's Received headers (0 = topmost); -1 for the hop the MTA told
    # us itself (milter) when no header records it: SpamAssassin's ALL-EXTERNAL etc. need it
    received_index: int = -1


@dataclass(slots=True)
class Facts:
    """Anomalies found while parsing: name -> short evidence. Rules score them via `eval:fact(NAME)`."""

    items: dict[str, str] = field(default_factory=dict)
    # The names found in what every copy of the message keeps: not only in a header field
    # written or rewritten on the way to the mailbox (`headers.on_the_way`), such as a raw 8-bit
    # Subject that the delivered copy has tagged and encoded. The Bayes tokenizer reads these.
    kept: set[str] = field(default_factory=set)
    # True while such a field is read (`headers.split_block`, `headers.build_headers`).
    on_the_way: bool = False

    def add(self, name: str, evidence: str = "") -> None:
        self.items.setdefault(name, evidence[:120])
        if not self.on_the_way:
            self.kept.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self.items


@dataclass(slots=True)
class Envelope:
    """What the MTA told us (milter) or what could be inferred (command line)."""

    client_ip: str = ""
    client_name: str = ""
    helo: str = ""
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    auth_user: str = ""
    queue_id: str = ""
    receiver: str = ""  # the receiving MTA's name (Postfix's myhostname): our authserv-id


@dataclass
class Message:
    """The analysed message. Built by `mailsift.analysis.parse.analyse`."""

    raw: bytes
    headers: list[Header]
    text_parts: list[TextPart]
    uris: list[Uri]
    html: HtmlFacts
    attachments: list[Attachment]
    relays: list[Relay]  # newest first
    facts: Facts
    envelope: Envelope
    received_time: datetime | None  # newest Received date, or arrival time in the milter
    size: int
    mime_parts: int
    max_depth: int
    truncated: bool = False  # body analysis stopped at scan limits
    # (name, value as written) of the header fields of each MIME part below the top level, in
    # message order, within the scan limits: `mimeheader` rules match them. Decoded only when a
    # rule asks, since few sites have such rules.
    part_headers: list[list[tuple[str, str]]] = field(default_factory=list)
    # The scan.max_bytes the body was read within (None: not built by `analyse`), and whether
    # `raw` itself holds only that much of the body, as the milter's copy of a bigger message
    # does: the learning digest (classifier.digest) needs both to name a big message the same
    # whichever copy of it is read.
    scan_max_bytes: int | None = None
    body_cut: bool = False
    # The message as the milter's worker holds it, when that is not `raw` read whole: a message
    # whose CRLF form is over scan.max_bytes, held as its headers and the first scan.max_bytes
    # of its body with the CRLF line ends Postfix hands a milter (`parse._milter_held`). None
    # when the message fits: then every copy is read whole, as it always was. See `held`.
    held_raw: bytes | None = None
    # More than blank space followed scan.max_bytes of the body: the milter cut it (body_cut),
    # or `analyse` did, reading a whole copy. Unlike `truncated`, not set by max_parts/max_depth.
    body_truncated: bool = False
    # actions.subject_tag: what the milter puts in front of a spam's Subject, which the delivered
    # copy has and the milter's does not, so the Bayes tokenizer leaves it out (rules see it).
    subject_tag: str = ""
    _by_name: dict[str, list[Header]] = field(default_factory=dict, repr=False)
    _addresses: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for h in self.headers:
            self._by_name.setdefault(h.name.lower(), []).append(h)

    def header_values(self, name: str) -> list[str]:
        """Decoded values of every header called `name` (case-insensitive), in message order."""
        return [h.value for h in self._by_name.get(name.lower(), ())]

    def header_raw(self, name: str) -> list[str]:
        return [h.raw for h in self._by_name.get(name.lower(), ())]

    def header(self, name: str, default: str = "") -> str:
        """The first decoded value of a header, or `default`."""
        found = self._by_name.get(name.lower())
        return found[0].value if found else default

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(display name, address) pairs of every `name` header, parsed once per message:
        several checks and the tokenizer read From, To and Reply-To, and parsing is not cheap."""
        key = name.lower()
        if key not in self._addresses:
            self._addresses[key] = list(_parse_addresses(tuple(self.header_values(name))))
        return self._addresses[key]

    def has_header(self, name: str) -> bool:
        return name.lower() in self._by_name

    @property
    def held(self) -> bytes:
        """The message's bytes as the milter's worker holds them, for `full` rules, DKIM and ARC,
        which read the message itself rather than its analysis: for a big message read from a
        file (LF lines, the whole body) they saw more text than the milter scored, so `mailsift
        check` of the delivered copy could hit a rule or verify a signature the milter did not."""
        return self.raw if self.held_raw is None else self.held_raw

    @property
    def subject(self) -> str:
        return self.header("Subject")

    @cached_property
    def visible_text(self) -> str:
        """What a reader sees of every text part (HTML rendered), for the tokenizer and digests."""
        return "\n".join(p.text for p in self.text_parts)

    @property
    def untrusted_relays(self) -> list[Relay]:
        return [r for r in self.relays if not r.trusted]

    @property
    def first_untrusted(self) -> Relay | None:
        """The relay that handed the message to our trusted network: the one checks judge."""
        return next((r for r in self.relays if not r.trusted), None)


@lru_cache(maxsize=8192)
def _parse_addresses(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """getaddresses, remembered across messages: the stdlib parser is pure Python and the same
    From, To and Cc values come back again and again (list mail, regular correspondents; 70% of
    the address headers in the corpus repeat one seen before)."""
    return address_pairs(values)
