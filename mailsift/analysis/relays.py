"""The Received chain: who handed the message to whom, and which of those hops we can believe.

Network checks (DNS blocklists, SPF, HELO forgery) must judge the first host outside our own
network, so every Received header is reduced to one `Relay` and trust is assigned the way
SpamAssassin does: walking from the newest hop, a relay is trusted while its IP is loopback or in
`trusted_networks`; the first one that is not ends trust for all older hops, because anything it
wrote (and everything before it) may be forged. When the administrator has listed no network at
all, every address that is not on the public Internet is trusted, as SpamAssassin infers: a
mailsift host behind an internal relay (an edge MX at 10.0.0.5) would otherwise judge that relay
as the sender, fail the SPF of every domain ending in -all and reject a bank's DMARC-protected mail.

MTAs word their headers differently but share a shape: `from NAME (COMMENTS) by HOST with PROTO
id ID; DATE`. The comment forms recognised are Postfix, Sendmail and Gmail `(rdns [ip])`, Exim
`([ip] helo=NAME)`, qmail `(HELO name) (ip)` and Exchange `(ip)`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from mailsift.analysis.model import Relay

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FROM = re.compile(r"\s*from\s+(\S+)\s*(.*)", re.IGNORECASE | re.DOTALL)
BY = re.compile(r"\sby\s+", re.IGNORECASE)
# Sendmail, Postfix, Gmail: "(ident@rdns [ip])", "(unknown [ip])", "([ip])", "(IDENT:user@rdns [ip])".
BRACKETED = re.compile(
    r"\(\s*(?:IDENT:)?(?:([^\s@()\[\]]+)@)?([^\s()\[\]]*?)\.?\s*\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
# qmail and Exchange: "(1.2.3.4)", "(ident@1.2.3.4)", "(2001:db8::1)".
PARENTHESISED = re.compile(
    r"\((?:([^\s@()]+)@)?([0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)\)")
# An address alone: IPv4 with or without brackets, IPv6 only in brackets ("from [IPv6:2001:db8::1]"
# of Exim and others), as unbracketed it would take the times of a date for an address.
BARE = re.compile(r"\[?\b([0-9]{1,3}(?:\.[0-9]{1,3}){3})\b\]?|\[(?:IPv6:)?([0-9A-Fa-f]*:[0-9A-Fa-f:.]+)\]")
QMAIL_HELO = re.compile(r"\(HELO\s+([^)\s]*)\)", re.IGNORECASE)
EXIM_HELO = re.compile(r"\bhelo=([^)\s]+)")
EXIM_IDENT = re.compile(r"\bident=([^)\s]+)")
WITH = re.compile(r"\bwith\s+([^\s;()]+)", re.IGNORECASE)
ID = re.compile(r"\bid\s+<?([^\s;<>]+)", re.IGNORECASE)
ENVFROM = re.compile(r"envelope-from\s+<?([^\s>)]*)", re.IGNORECASE)
AUTH_COMMENT = re.compile(r"\((?:authenticated|Authenticated sender:|AUTH:)|\bauthenticated as\b", re.I)
# RFC 3848: a protocol ending in "A" means the client authenticated.
AUTH_PROTOCOLS = frozenset({"ESMTPA", "ESMTPSA", "LMTPA", "LMTPSA", "ASMTP"})
NO_NAME = frozenset({"unknown", "unverified", ""})
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def parse_received(value: str) -> Relay | None:
    """One Relay from a Received header value, or None when it names no connecting IP."""
    text = " ".join(value.split())
    head = text.rpartition(";")[0] or text
    match = FROM.match(head)
    if match is None:
        return None
    name, rest = match[1], match[2]
    from_part, after_by = _split_by(rest)
    relay = _from_clause(name, from_part, "(Exim" in after_by)
    if relay is None:
        return None
    relay.by = after_by.split(None, 1)[0].strip("();") if after_by else ""
    protocol = WITH.search(after_by)
    relay.auth = _auth(protocol[1] if protocol else "", text)
    found = ID.search(after_by)
    relay.id = found[1] if found else ""
    found = ENVFROM.search(text)
    relay.envfrom = found[1] if found else ""
    return relay


def _split_by(rest: str) -> tuple[str, str]:
    """Split at the first " by " that is not inside a comment such as "(invoked by uid 0)"."""
    for match in BY.finditer(rest):
        start = match.start()
        if rest.count("(", 0, start) <= rest.count(")", 0, start):
            return rest[:start], rest[match.end():]
    return rest, ""


def _from_clause(name: str, comments: str, exim: bool) -> Relay | None:
    """IP, reverse name, HELO and ident from what follows "from"."""
    ident = rdns = ""
    helo = name
    bracketed = BRACKETED.search(comments)
    parenthesised = PARENTHESISED.search(comments) if bracketed is None else None
    if bracketed is not None:
        ident, rdns, ip = bracketed[1] or "", bracketed[2], bracketed[3]
    elif parenthesised is not None:
        ident, ip = parenthesised[1] or "", parenthesised[2]
    else:
        bare = BARE.fullmatch(name) or BARE.search(comments)
        if bare is None:
            return None
        ip = bare[1] or bare[2]
    ip = _valid_ip(ip)
    if not ip:
        return None
    exim_helo = EXIM_HELO.search(comments)
    qmail_helo = QMAIL_HELO.search(comments)
    if exim_helo is not None or (exim and not rdns):
        # Exim: the name after "from" is the verified reverse name, the HELO is given apart
        # (and left out when it equals the reverse name).
        rdns = verified_name(name)
        helo = exim_helo[1] if exim_helo is not None else rdns
        found = EXIM_IDENT.search(comments)
        ident = found[1] if found else ident
    elif qmail_helo is not None:
        rdns, helo = name, qmail_helo[1]
    return Relay(ip=ip, rdns=verified_name(rdns).rstrip("."), helo=helo, by="", ident=ident)


def verified_name(name: str) -> str:
    """A client's reverse name, '' when it has none verified. MTAs write such a client's name as
    "unknown" (Postfix), "unverified", or its address in brackets (Exim's "from [192.0.2.1]",
    libmilter's "[2001:db8::5]"): taken for a name it becomes a Bayes token per address and a
    reverse name the relay rules see. Asked for the relays of a Received chain, the connection
    the MTA saw, and `client_text`."""
    return "" if name.lower() in NO_NAME or name.startswith("[") else name


def client_text(name: str, ip: str) -> str:
    """The client as Postfix's log writes it, name[address] (unknown[2001:db8::5]): the milter's
    log line and the quarantine's views name it alike, so the one can be found from the other."""
    return f"{verified_name(name) or 'unknown'}[{ip or '-'}]"


def _valid_ip(text: str) -> str:
    """The address in canonical form (`canonical_ip`), '' if it is none. Most are IPv4 already
    written canonically, which the pattern confirms at a tenth of the cost of the ipaddress module."""
    if CANONICAL_IPV4.fullmatch(text):
        return text
    try:
        return canonical_ip(text)
    except ValueError:
        return ""


def canonical_ip(text: str) -> str:
    """An address as every check compares it: compressed IPv6, and an IPv4-mapped IPv6 address
    (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client) as the IPv4 address
    it is, so trusted_networks, DNS lists, SPF and rDNS judge 192.0.2.1, not a nibble name that
    no list and no IPv4 network can match. ValueError if `text` is no address."""
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _auth(protocol: str, text: str) -> str:
    if protocol.upper() in AUTH_PROTOCOLS:
        return protocol.upper()
    # Every form AUTH_COMMENT knows contains one of these two words; most Received headers have
    # neither, and the pattern cannot skip ahead on its own (its second branch starts with \b).
    lowered = text.lower()
    if "authenticated" not in lowered and "(auth:" not in lowered:
        return ""
    found = AUTH_COMMENT.search(text)
    return found[0].strip("(: ").lower() if found else ""


# Addresses not on the public Internet (RFC 1918 and 6598 private and shared space, loopback,
# link-local, IPv6 unique-local, "this network" and IPv6's unspecified ::, multicast and reserved).
# No DNS list can know them, and only a site's own hosts can connect from them. Not here, as
# they are public: NAT64's 64:ff9b::/96, met only behind a site's own translator, whose prefix
# may be another one, so mapping it back to IPv4 is for its administrator to ask for; and 6to4's
# 2002::/16, a real IPv6 host that SPF's ip6: and reverse DNS judge as such, and the lists by its
# nibble name (6to4 is deprecated, RFC 7526).
NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/3", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"))


@lru_cache(maxsize=32)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """Parsed networks, cached because the configuration does not change between messages."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def trusted_networks(trusted: Sequence[str], internal: Sequence[str]) -> tuple[Network, ...]:
    """The networks whose Received headers are believed: `trusted_networks`, else
    `internal_networks` (an internal relay is trusted too, as in SpamAssassin), else, when the
    administrator listed neither, every range that is not public (`NOT_PUBLIC`, inferred)."""
    return networks(tuple(trusted or internal)) or NOT_PUBLIC


def mark_trust(relays: list[Relay], trusted: Sequence[str], internal: Sequence[str]) -> None:
    """Set `trusted` and `internal` on the newest-first relays, stopping at the first outsider.

    Addresses past that relay are not parsed: every relay after it is neither, and parsing was
    most of the cost (a message has ~5 relays, the first is usually already outside)."""
    trusted_nets = trusted_networks(trusted, internal)
    internal_nets = networks(tuple(internal)) or trusted_nets
    trusting = inside = True
    for relay in relays:
        if trusting or inside:
            ip = ipaddress.ip_address(relay.ip)
            trusting = trusting and within(ip, trusted_nets)
            inside = inside and within(ip, internal_nets)
        relay.trusted, relay.internal = trusting, inside


def within(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: tuple[Network, ...]) -> bool:
    """Whether `ip` is loopback (always ours) or in one of `nets`."""
    return ip.is_loopback or any(ip.version == net.version and ip in net for net in nets)


def received_date(value: str) -> datetime | None:
    """The date after the last ';' of a Received header, as an aware datetime (UTC if unzoned).

    A date whose instant has no UTC datetime (31 Dec 9999 west of Greenwich, 1 Jan 0001 east of
    it) is as unreadable as garbage: the date checks convert the arrival time to UTC."""
    text = value.rpartition(";")[2].strip()
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:
            return when.replace(tzinfo=UTC)
        when.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when
