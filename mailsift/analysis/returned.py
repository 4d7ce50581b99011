"""Returned mail: bounces and auto-replies, and the original message each one answers.

When spammers put a company's addresses in the From of their mail, every server that refuses
that spam, every vacation responder and every challenge-response filter writes back to the
company: backscatter. Telling it from the bounce of a message a user really sent takes two
steps: recognising returned mail, then finding the original it carries so that its Received
chain and Message-ID can be compared with our own relays (`rules/checks/returned.py` judges).

Returned mail is recognised by its structure, not its wording, which every MTA and language
words differently: a multipart/report (RFC 6522: delivery status, read receipts, abuse
feedback), an RFC 3834 auto-reply header, or mail from the null sender or a mailer daemon
that carries an original. The original is looked for where bouncers put it: a message/rfc822
part or, in the bounce of SMTPUTF8 mail (RFC 6533), a message/global part; a part holding its
headers only (`mime.HEADER_BLOCK_TYPES`: text/rfc822-headers, message/global-headers); or
headers written in the text, as qmail and older MTAs write them, or quoted line by line with
`>` as a forwarded bounce or a vacation program quotes them. The original is looked for only in
mail that is returned mail by its form or its sender, so ordinary mail quoting a conversation
never is; `>`-quoted headers count only in mail that declares itself returned or came from the
null sender, as people quote headers too, a postmaster answering an abuse report among them.
Nothing here raises: a bounce without an original, or with its headers cut short, is returned
mail whose original is unknown or incomplete.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from mailsift.analysis.addresses import parse_address
from mailsift.analysis.headers import split_block, unfold
from mailsift.analysis.mime import ENCLOSING, HEADER_BLOCK_TYPES
from mailsift.analysis.model import Facts, Message
from mailsift.domains import ascii_domain

# RFC 6522 report types, named as an administrator reads them in the rule's evidence. RFC 6533's
# global- forms are the same reports of SMTPUTF8 mail (UTF-8 addresses allowed), and are named so.
REPORT_KINDS = {"delivery-status": "delivery report", "global-delivery-status": "delivery report",
                "disposition-notification": "read receipt", "global-disposition-notification": "read receipt",
                "feedback-report": "abuse feedback report"}
REPORT_TYPE = re.compile(r"""report-type\s*=\s*["']?([\w.-]+)""", re.IGNORECASE)
# The senders bounces come from when the envelope is not known (`mailsift check` of a saved file).
DAEMON_SENDERS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
# RFC 3834's keyword, before any parameter or comment ("auto-replied (vacation)").
AUTO_REPLIED = re.compile(r"\s*auto-replied(?![\w-])", re.IGNORECASE)
# Vacation and autoresponder programs that predate RFC 3834 mark their replies with these.
AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond")
# The first line of a header block quoted in a bounce's text: the fields bouncers start with,
# bare or behind quote marks (group 1: "> ", ">> ", "> > "). From, Subject and the other fields a
# reply quotes from a conversation start no block: they are not where a bouncer starts.
QUOTED_HEADERS = re.compile(r"^((?:>[ \t]?)*)(?:Return-Path|Received|Message-ID)[ \t]*:",
                            re.IGNORECASE | re.MULTILINE)
# Fields the sender's own program writes: the MTAs on the way put Received fields above them,
# so one of these below the last Received shows the chain reaches back to the sender.
ORIGINATOR_FIELDS = frozenset({"from", "date", "message-id", "subject"})
# A host name in either spelling: an SMTPUTF8 relay may write its name in U-labels.
BY_HOST = re.compile(r"(?:^|[\s(])by\s+(\w[\w.-]*)", re.IGNORECASE)
MSG_ID_DOMAIN = re.compile(r"<[^<>@\s]+@([^<>@\s]+)>")
# The most distinct host names, or Message-ID domains, compared with our own: a real chain has
# far fewer hops (Postfix returns mail after 50, RFC 5321 section 6.3 asks for at least 100),
# while the sender writes what a bounce encloses; 100,000 names in U-labels took 1.2 s to encode.
MAX_NAMES = 200


@dataclass(frozen=True)
class Original:
    """The header fields of the message a bounce answers, in their order, values unfolded. Its
    names are read once (cached): a judgement asks for them more than once."""

    fields: tuple[tuple[str, str], ...]
    found_in: str  # the type of the part that carried it ("message/global", ...) or "quoted text"

    def values(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self.fields if field.lower() == key]

    @cached_property
    def relay_hosts(self) -> list[str]:
        """Every host named after `by` in the Received fields, in ASCII form as
        network.outbound_relays holds it (`ascii_domain`): the MTAs it passed.
        Taken from the text, not from `relays.parse_received`, which skips a Received field
        without a connecting address, such as Postfix's record of mail its own users submit."""
        return _first_names(found[1] for value in self.values("Received")
                            for found in BY_HOST.finditer(value))

    @cached_property
    def message_id_domains(self) -> list[str]:
        return message_id_domains(self.values("Message-ID"))

    @property
    def chain_complete(self) -> bool:
        """Whether the Received chain is there down to the sender: at least one Received field,
        and a field the sender's program wrote below the last one. A bouncer that cut the
        headers short (or kept none) may have dropped the hop that shows the mail was ours."""
        names = [field.lower() for field, _ in self.fields]
        if "received" not in names:
            return False
        last = len(names) - 1 - names[::-1].index("received")
        return any(name in ORIGINATOR_FIELDS for name in names[last + 1:])


@dataclass(frozen=True, slots=True)
class Returned:
    """A bounce or auto-reply: what kind, the original it carries, and the Message-IDs it says
    it answers (In-Reply-To, References: all an auto-reply usually keeps of the original)."""

    kind: str
    original: Original | None
    answered_domains: tuple[str, ...]


def message_id_domains(values: list[str]) -> list[str]:
    """The domains of the <id@domain> in the values, in ASCII form (`ascii_domain`)."""
    return _first_names(found[1] for value in values for found in MSG_ID_DOMAIN.finditer(value))


def _first_names(names: Iterable[str]) -> list[str]:
    """The first MAX_NAMES distinct `names` in ASCII form, in their order. The names are read
    lazily and each is encoded once, so a list a sender made long costs no more than its cap."""
    return list(dict.fromkeys(ascii_domain(name) for name in _distinct(names, MAX_NAMES)))


def _distinct(names: Iterable[str], limit: int) -> Iterator[str]:
    seen: set[str] = set()
    for name in names:
        if len(seen) == limit:
            return
        if name not in seen:
            seen.add(name)
            yield name


def returned(msg: Message) -> Returned | None:
    """The message as returned mail, or None when it is none."""
    kind = _declared_kind(msg)
    automatic = bool(kind) or _from_null_sender(msg)
    original = _original(msg, quotes=automatic) if automatic or _from_daemon(msg) else None
    if not kind and original is None:
        return None
    answered = message_id_domains(msg.header_values("In-Reply-To") + msg.header_values("References"))
    return Returned(kind or "bounce", original, tuple(answered))


def _declared_kind(msg: Message) -> str:
    """What the message says it is by its structure or an auto-reply header, '' if nothing."""
    content_type = msg.header("Content-Type")
    if content_type.split(";", 1)[0].strip().lower() == "multipart/report":
        found = REPORT_TYPE.search(content_type)
        report = found[1].lower() if found else ""
        return REPORT_KINDS.get(report, f"report ({report or 'no type'})")
    if AUTO_REPLIED.match(msg.header("Auto-Submitted")):
        return "auto-reply"
    if any(msg.has_header(name) for name in AUTOREPLY_HEADERS):
        return "auto-reply"
    return ""


def _from_null_sender(msg: Message) -> bool:
    """Sent by the null sender (the envelope the milter saw, or the Return-Path a delivery
    wrote): a bounce if it carries an original. Without the milter the envelope sender is
    unknown ('' too), so it counts only when a client is known."""
    envelope = msg.envelope
    if envelope.client_ip and not envelope.mail_from:
        return True
    return any(value.strip() == "<>" for value in msg.header_values("Return-Path"))


def _from_daemon(msg: Message) -> bool:
    """From a mailer daemon's address: a bounce if it carries an original. People write as
    postmaster@ too, so this alone lets no `>`-quoted text be read (`_original`)."""
    local = parse_address(msg.header("From"))[1].rpartition("@")[0]
    return local.lower() in DAEMON_SENDERS


def _original(msg: Message, quotes: bool) -> Original | None:
    """The original message's headers, from the first place a bouncer puts them. Headers
    quoted with `>` are read only when `quotes`: the message says it is returned mail, or came
    from the null sender. A person's reply quotes headers too, even one from postmaster@
    answering an abuse report, and is no bounce of the message it quotes."""
    enclosed = _enclosed(msg)
    if enclosed is not None:
        return enclosed
    for part in msg.text_parts:
        if part.content_type in HEADER_BLOCK_TYPES:
            return _read_headers(part.raw_text, part.content_type)
    for part in msg.text_parts:
        if part.content_type == "text/plain":
            start = next((m for m in QUOTED_HEADERS.finditer(part.raw_text) if quotes or not m[1]), None)
            if start is not None:
                return _read_headers(_unquoted(part.raw_text[start.start():], start[1]), "quoted text")
    return None


def _enclosed(msg: Message) -> Original | None:
    """The headers of the first message/rfc822 or message/global part. The walk records a
    container's header fields and then its child's, so the enclosed message's are those after
    the container's."""
    parts = msg.part_headers
    for index, fields in enumerate(parts[:-1]):
        content_type = next((value for name, value in fields if name.lower() == "content-type"), "")
        found = unfold(content_type).split(";", 1)[0].strip().lower()
        if found in ENCLOSING:
            return Original(tuple((name, unfold(value)) for name, value in parts[index + 1]), found)
    return None


def _unquoted(text: str, marks: str) -> str:
    """The header block at the start of `text` without the quote `marks` of its first line.
    The block ends where its lines stop carrying the marks, or at a quoted empty line; the
    lines are read lazily, as the rest of the text may be long."""
    if not marks:
        return text
    lines = []
    for line in io.StringIO(text):
        content = line[len(marks):].rstrip("\r\n") if line.startswith(marks) else ""
        if not content:
            break
        lines.append(content)
    return "\n".join(lines) + "\n"


def _read_headers(text: str, found_in: str) -> Original:
    """A header block written as text; it ends at the first line that is not a header line."""
    block = split_block(text.encode("utf-8", errors="replace"), Facts())
    fields = tuple((name, unfold(value.decode("utf-8", errors="replace"))) for name, value in block.fields)
    return Original(fields, found_in)
