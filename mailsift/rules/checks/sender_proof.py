"""Who a message says it is from, and whether that can be believed: read by the users' welcome
and block lists (userlists.py) and the site's (sitelists.py) alike, so that a sender one list
welcomes is the sender the other welcomes, confirmed by the same proof.

The senders are the envelope sender and the From address, with their domains in ASCII form
(`ascii_address`), as list entries are kept. Anyone can write any sender address, and spam that
forges a bank or a colleague is common, so a welcome counts only for a confirmed sender: SPF
passes for that envelope sender, or a DKIM signature of its domain verifies over the whole body
(a signature whose l= leaves content unsigned is no pass: network/dkim.py). Without the network
checks there is no proof to be had, so no welcome counts: the entry shows as unverified (before,
it counted as written, and with dns.enabled off, the default, anyone writing a welcomed From got
-100). Mail that never passed an untrusted relay, or came from an authenticated sender, is our
own: welcome lists speak about strangers' mail, and a welcome there (a migrated
`whitelist_from *@ourdomain`) would carry a compromised account's or host's spam past the
outbound pause.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailsift.domains import ascii_address
from mailsift.network.dmarc import signed_by
from mailsift.network.verdicts import NETWORK_KEY
from mailsift.quarantine.model import address_of
from mailsift.rules.checks.network_auth import network_verdicts
from mailsift.rules.registry import CheckContext, DefaultRule

NO_AUTOLEARN = frozenset({"noautolearn"})  # a list's say-so is no evidence about the content


def claimed_senders(ctx: CheckContext) -> list[str]:
    """The envelope sender and the From address, in ASCII form, without repeats or blanks. A list
    entry may name either: a partner's newsletter comes From the partner with the envelope
    sender of the mailing service it uses, and the From is what a user sees and lists."""
    written = (ctx.msg.envelope.mail_from, address_of(ctx.msg.header("From")))
    return [sender for sender in dict.fromkeys(ascii_address(w) for w in written) if sender]


def welcome_result(ctx: CheckContext, kind: str, found: dict[str, str]) -> str | None:
    """The evidence of a welcome list check, `found` mapping each claimed sender a list covers to
    the entries covering it: for "welcome", those of senders confirmed (SPF for the envelope
    sender, a DKIM signature of its domain for either); for "unverified", all of them when none
    is confirmed, so a forged From beside a welcomed envelope sender earns nothing either way."""
    proven = [entry for sender, entry in found.items() if confirmed(ctx, sender)]
    shown = proven if kind == "welcome" else [] if proven else list(found.values())
    return evidence(shown)


def list_result(ctx: CheckContext, kind: str, found: dict[str, str]) -> str | None:
    """The evidence of a list check of `kind` ("block", "welcome" or "unverified"): a block needs
    no proof, a welcome does (`welcome_result`)."""
    return evidence(found.values()) if kind == "block" else welcome_result(ctx, kind, found)


def evidence(entries: Iterable[str]) -> str | None:
    """The list entries that hit, once each, in order: a rule's evidence (None: no hit)."""
    return ", ".join(sorted(set(entries))) or None


def confirmed(ctx: CheckContext, sender: str) -> bool:
    """Whether `sender` (one of `claimed_senders`) is who it says it is, as far as this scan
    can tell (see above)."""
    if ctx.msg.first_untrusted is None or ctx.msg.envelope.auth_user or NETWORK_KEY not in ctx.cache:
        return False
    verdicts = network_verdicts(ctx)
    spf = verdicts.spf
    if spf is not None and (spf.result, spf.identity, ascii_address(spf.sender)) == (
            "pass", "mailfrom", sender):
        return True
    return signed_by(verdicts.dkim, sender.rpartition("@")[2], strict=False) is not None


def list_rules(prefix: str, whose: str, group: str) -> tuple[DefaultRule, ...]:
    """The three rules of a welcome and block list check, `kind` their argument: PREFIX_IN_
    WELCOMELIST (-100, a confirmed sender), PREFIX_IN_BLOCKLIST (+100) and
    PREFIX_WELCOME_UNVERIFIED (shown at no weight), for the lists of `whose`."""
    return (
        DefaultRule(f"{prefix}_IN_WELCOMELIST", -100.0, f"Sender is on {whose} welcome list",
                    args=("welcome",), group=group, tflags=NO_AUTOLEARN),
        DefaultRule(f"{prefix}_IN_BLOCKLIST", 100.0, f"Sender is on {whose} block list",
                    args=("block",), group=group, tflags=NO_AUTOLEARN),
        DefaultRule(f"{prefix}_WELCOME_UNVERIFIED", 0.001, f"Sender is on {whose} welcome list, "
                    "but neither SPF nor DKIM confirms it", args=("unverified",), group=group))
