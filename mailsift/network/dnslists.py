"""DNS block and allow lists, as configured: relay addresses, and the domains of links and those
written as text (`identities`), looked up in zones.

Which lists, which answers count and what a listing is worth are the site's choice (public lists
have terms of use, commercial ones private zones), so nothing here names a list: every configured
list becomes a rule (see `mailsift.rules.checks.network_lists`), and a listing is recorded under
that rule's name.
"""

from __future__ import annotations

import ipaddress
import logging

from mailsift.config import DnsConfig, DnsList
from mailsift.log_throttle import ThrottledWarning
from mailsift.network.identities import Identities
from mailsift.network.resolver import Lookups, reverse_name

log = logging.getLogger(__name__)
warn = ThrottledWarning(log).warn  # a dead or refusing list answers so for every message

# Answers that say "you may not query me" rather than "listed": 127.255.255.0/24 (Spamhaus and
# others, e.g. for queries through a public resolver) and 127.0.0.1 (URI lists such as URIBL and
# SURBL; RFC 5782 keeps it for "not listed"). An error to log, never a listing.
REFUSALS = (ipaddress.ip_network("127.255.255.0/24"), ipaddress.ip_network("127.0.0.1/32"))
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def all_lists(config: DnsConfig) -> list[DnsList]:
    return [*config.blocklists, *config.allowlists]


# RFC 5782 section 5: a list of IPv6 addresses lists ::FFFF:7F00:2 and never ::FFFF:7F00:1, the
# IPv4-mapped forms of its IPv4 test points, asked about by their nibble names as any IPv6 address.
IPV6_TEST_POINTS = ("::ffff:7f00:2", "::ffff:7f00:1")


def test_points(entry: DnsList, version: int = 4, shown: bool = False) -> tuple[str, str]:
    """RFC 5782's test points: the name every list must list (127.0.0.2, or TEST for domain lists;
    ::FFFF:7F00:2 for `version` 6) and the one it must never list (127.0.0.1, or INVALID;
    ::FFFF:7F00:1). A list that lists the second is dead or broken: retired lists have been
    known to answer "listed" for every query, and a zone may do so for IPv6 names alone.
    As asked (under the list's access key), or `shown` in a log or configtest line (without)."""
    zone = entry.zone if shown else entry.query_zone
    if entry.kind == "uri":
        return f"test.{zone}", f"invalid.{zone}"
    if version == 6:
        # by hand: dnspython names an IPv4-mapped address as the IPv4 address it maps
        listed, never = (ipaddress.ip_address(ip).reverse_pointer.removesuffix("ip6.arpa")
                         for ip in IPV6_TEST_POINTS)
        return f"{listed}{zone}", f"{never}{zone}"
    return reverse_name("127.0.0.2", zone), reverse_name("127.0.0.1", zone)


def shown_name(config: DnsConfig, name: str) -> str:
    """A name that was queried, as a log line or a message's facts may show it: a list's access
    key taken out (DNS_TIMEOUT's evidence named the query, and reached X-Spam-Report)."""
    asked = name.lower()  # as `Lookups` keeps it
    for entry in all_lists(config):
        under = entry.query_zone.lower()
        if entry.query_zone != entry.zone and (asked == under or asked.endswith(f".{under}")):
            return name[:len(name) - len(under)] + entry.zone
    return name


def version_of(subject: str) -> int:
    """6 for an IPv6 address asked about, 4 for an IPv4 one and for a domain."""
    return 6 if ":" in subject else 4


def refusal(code: str) -> bool:
    """Whether an answer is a list's way of refusing the query (see REFUSALS)."""
    try:
        address = ipaddress.ip_address(code)
    except ValueError:
        return False
    return any(address in network for network in REFUSALS)


def questions(entry: DnsList, ids: Identities) -> list[tuple[str, str]]:
    """(what is looked up, DNS name) pairs for one list; IPv6 relays only for a list that says it
    lists IPv6 (`ipv6`). The relays' addresses are canonical already: an IPv4-mapped address is
    asked about as the IPv4 address it is (`relays.canonical_ip`)."""
    if entry.kind == "uri":
        return [(domain, f"{domain}.{entry.query_zone}") for domain in ids.uri_domains]
    ips = ids.relay_ips if entry.relays == "all" else [ip for ip in ids.relay_ips[:1] if ip == ids.client_ip]
    return [(ip, reverse_name(ip, entry.query_zone)) for ip in ips if entry.ipv6 or ":" not in ip]


async def check_lists(config: DnsConfig, ids: Identities, lookups: Lookups) -> dict[str, str]:
    """Rule name -> evidence, for every list that lists something of this message.

    Each list asked anything is also asked its never-listed test point, in the same round (the
    resolver's cache makes that one query per TTL), the IPv6 one too when it is asked about an
    IPv6 relay: a list that lists it would add its score to every message (from an IPv6 host),
    so none of its answers (for IPv6 hosts) count."""
    asked = [(entry, subject, name) for entry in all_lists(config)
             for subject, name in questions(entry, ids)]
    probed = list({(entry.rule, version_of(subject)): (entry, version_of(subject))
                   for entry, subject, _ in asked}.values())
    answers = await lookups.query_all([(name, "A") for _, _, name in asked]
                                      + [(test_points(entry, version)[1], "A") for entry, version in probed])
    dead = {(entry.rule, version) for (entry, version), answer
            in zip(probed, answers[len(asked):], strict=True)
            if _lists_everything(entry, version, answer.records)}
    listed: dict[str, str] = {}
    for (entry, subject, _), answer in zip(asked, answers[:len(asked)], strict=True):
        codes = listings(entry, answer.records)
        if codes and entry.rule not in listed and (entry.rule, version_of(subject)) not in dead:
            listed[entry.rule] = f"{subject} listed in {entry.zone} ({', '.join(codes)})"
    return listed


def _lists_everything(entry: DnsList, version: int, records: tuple[str, ...]) -> bool:
    found = listings(entry, records)
    if found and version == 6:
        warn(f"dead6 {entry.zone}", "DNS list %s lists %s (%s), which no list may list: it lists "
             "every IPv6 address, so none of its answers for IPv6 hosts count; set ipv6 = false "
             "for it", entry.zone, test_points(entry, 6, shown=True)[1], ", ".join(found))
    elif found:
        warn(f"dead {entry.zone}", "DNS list %s lists %s (%s), which no list may list: it lists "
             "everything, so none of its answers count; remove it", entry.zone,
             test_points(entry, shown=True)[1], ", ".join(found))
    return bool(found)


def listings(entry: DnsList, records: tuple[str, ...]) -> list[str]:
    """The answers that count as listings (see counts)."""
    return [code for code in records if counts(entry, code)]


def counts(entry: DnsList, code: str) -> bool:
    """Whether an answer is a listing: one of the list's codes, or any 127/8 answer when it has
    none; a refusal (REFUSALS) never is, whatever the codes say."""
    if refusal(code):
        warn(f"refused {entry.zone}", "DNS list %s refuses our queries (answer %s): check its "
             "terms and the resolver", entry.zone, code)
        return False
    if entry.codes:
        return code in entry.codes
    try:
        return ipaddress.ip_address(code) in LOOPBACK
    except ValueError:
        return False
