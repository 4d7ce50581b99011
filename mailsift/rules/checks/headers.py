"""Header checks that a regular expression cannot express: shapes, counts and comparisons.

Mail clients leave fingerprints (the Message-ID each one generates, the way it writes From) that
bulk tools copying a client's X-Mailer line rarely reproduce; and a subject's shape (all capitals,
words broken up by punctuation) says more than its words. Simple presence and wording tests live
in `shipped/10_header.cf` as ordinary header rules.
"""

from __future__ import annotations

import re

from mailsift.analysis.addresses import parse_address
from mailsift.analysis.model import Message
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "header"

# RFC 5322 msg-id: one `<left@right>` with no white space inside.
MESSAGE_ID_SHAPE = re.compile(r"\s*<[^<>@\s]+@[^<>@\s]+>\s*")
# Outlook and Outlook Express (Windows) make IDs of three hex groups joined by `$`; Outlook 2000
# (IMO/CWS) makes 28 capital letters A-P plus a suffix; Hotmail's web client uses OE/DAV prefixes.
OUTLOOK_ID = re.compile(
    r"<(?:[0-9a-f]{12}\$[0-9a-f]{8}\$[0-9a-f]{8}|[A-P]{28}\.[^@>]+|(?:OE|DAV)[0-9A-Za-z]+)@", re.ASCII)
OUTLOOK_MAILER = re.compile(r"\bMicrosoft Outlook\b(?!.*Macintosh)", re.IGNORECASE)
LETTERS = re.compile(r"[^\W\d_]")


def _addresses(msg: Message, *names: str) -> list[tuple[str, str]]:
    return [pair for name in names for pair in msg.addresses(name)]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower().strip(">. ")


@check("msgid_malformed",
       DefaultRule("MSGID_MALFORMED", 2.8, "Message-ID is not of the form <id@domain>", group=GROUP,
                   kind="header"))
def msgid_malformed(ctx: CheckContext) -> CheckResult:
    """Every real mail system writes `<id@host>`; a bulk tool filling the field itself often does not."""
    values = ctx.msg.header_values("Message-Id")
    if not values or MESSAGE_ID_SHAPE.fullmatch(values[0]):
        return None
    return values[0][:60] or "empty"


@check("forged_outlook_id",
       DefaultRule("FORGED_OUTLOOK_MSGID", 3, "Claims Outlook but has a Message-ID Outlook never makes",
                   group=GROUP, kind="header"))
def forged_outlook_id(ctx: CheckContext) -> CheckResult:
    """Outlook's IDs have fixed shapes; a copied X-Mailer line with another shape is a bulk tool.

    The Macintosh editions leave the ID to the server, so they are excluded; so is a message
    without a Message-ID, which MISSING_MSGID already scores.
    """
    mailer = ctx.msg.header("X-Mailer")
    ids = ctx.msg.header_values("Message-Id")
    if not ids or not OUTLOOK_MAILER.search(mailer) or OUTLOOK_ID.match(ids[0].strip()):
        return None
    return f"{mailer[:30]} / {ids[0][:40]}"


@check("from_malformed",
       DefaultRule("FROM_NO_ADDRESS", 2.3, "From has no usable address", group=GROUP, kind="header"))
def from_malformed(ctx: CheckContext) -> CheckResult:
    """A From without `local@domain` cannot be replied to: senders who want answers get it right."""
    values = ctx.msg.header_values("From")
    if not values:
        return None
    address = parse_address(values[0])[1]
    local, at, domain = address.rpartition("@")
    if at and local and "." in domain:
        return None
    return values[0][:60] or "empty"


@check("from_name_other_address",
       DefaultRule("FROM_NAME_OTHER_ADDR", 1.7, "From's display name is an address in another domain",
                   group=GROUP, kind="header"))
def from_name_other_address(ctx: CheckContext) -> CheckResult:
    """`"service@bank.example" <x@elsewhere>`: the reader sees the name, the reply goes elsewhere."""
    pairs = _addresses(ctx.msg, "From")
    if not pairs:
        return None
    name, address = pairs[0]
    shown = parse_address(name)[1] if "@" in name else ""
    if not shown or "@" not in address or _domain(shown) == _domain(address):
        return None
    return f"{shown[:40]} -> {_domain(address)}"


@check("from_is_to",
       DefaultRule("FROM_EQUALS_TO", 1.6, "From and To are the same address (sender hidden)",
                   group=GROUP, kind="header"))
def from_is_to(ctx: CheckContext) -> CheckResult:
    """Bulk senders put the recipient in From as well, so the real sender shows nowhere."""
    sender = _addresses(ctx.msg, "From")
    rcpts = _addresses(ctx.msg, "To")
    if not sender or len(rcpts) != 1 or not sender[0][1]:
        return None
    if sender[0][1].lower() != rcpts[0][1].lower() or ctx.msg.has_header("In-Reply-To"):
        return None
    return sender[0][1][:60]


@check("many_recipients",
       DefaultRule("TO_CC_MANY", 2, "Twenty or more visible recipients", args=(20,), group=GROUP,
                   kind="header"))
def many_recipients(ctx: CheckContext, limit: int) -> CheckResult:
    """Visible recipient lists that long are harvested addresses sent in one batch."""
    count = len([a for _, a in _addresses(ctx.msg, "To", "Cc") if "@" in a])
    return f"{count} recipients" if count >= limit else None


@check("reply_to_elsewhere",
       DefaultRule("REPLYTO_OTHER_DOMAIN", 0.3, "Reply-To goes to another domain than From",
                   group=GROUP, kind="header"))
def reply_to_elsewhere(ctx: CheckContext) -> CheckResult:
    """Answers collected away from the sending domain; lists do it too, so it scores little alone."""
    sender = _addresses(ctx.msg, "From")
    reply = _addresses(ctx.msg, "Reply-To")
    if not sender or not reply or "@" not in sender[0][1] or "@" not in reply[0][1]:
        return None
    if ctx.msg.has_header("List-Id") or ctx.msg.has_header("List-Post"):
        return None
    ours, theirs = _domain(sender[0][1]), _domain(reply[0][1])
    if ours == theirs or ours.endswith("." + theirs) or theirs.endswith("." + ours):
        return None
    return f"{ours} -> {theirs}"


@check("subject_caps",
       DefaultRule("SUBJ_ALL_CAPS", 2.3, "Subject is written in capitals", args=(10, 0.9), group=GROUP,
                   kind="header"))
def subject_caps(ctx: CheckContext, min_letters: int, ratio: float) -> CheckResult:
    """Shouting: nearly every letter of a subject of some length is upper-case, in any alphabet."""
    subject = ctx.msg.subject
    letters = len(LETTERS.findall(subject))
    if letters < min_letters:
        return None
    upper = sum(1 for c in subject if c.isupper())
    return subject[:60] if upper >= ratio * letters else None
