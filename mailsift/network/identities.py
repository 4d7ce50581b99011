"""Who a message claims to be from, and which host handed it to us: the inputs of every network check.

The connecting host is the first untrusted relay (Postfix's connection data when the milter scans,
else the Received chain). Its envelope sender is authoritative only for the hop Postfix saw itself;
for a message read from a file the Return-Path header stands in for it, as in SpamAssassin.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from publicsuffixlist import PublicSuffixList

from mailsift.analysis.addresses import address_pairs, parse_address
from mailsift.analysis.model import Message, Relay
from mailsift.analysis.relays import NOT_PUBLIC, within
from mailsift.network.textdomains import written_domains

# Unknown top-level domains count as public suffixes (the PSL's "*" rule), as DMARC requires.
PSL = PublicSuffixList()

MAX_RELAYS = 5
# Headers of mailing-list posts; lists point Reply-To at the list, whatever the author's domain.
LIST_HEADERS = ("List-Id", "List-Post", "Mailing-List")


@dataclass
class Identities:
    client_ip: str = ""  # of the first untrusted relay; '' when every hop is ours or authenticated
    helo: str = ""
    client_rdns: str = ""
    mail_from: str = ""  # envelope sender; '' for bounces and when unknown
    from_name: str = ""
    from_address: str = ""
    from_domain: str = ""
    reply_to_domains: list[str] = field(default_factory=list)
    via_list: bool = False  # posted through a mailing list
    relay_ips: list[str] = field(default_factory=list)  # untrusted and listable, newest first
    uri_domains: list[str] = field(default_factory=list)  # for domain lists: links', then written

    @property
    def mail_from_domain(self) -> str:
        return domain_of(self.mail_from)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower() if "@" in address else ""


def org_domain(domain: str) -> str:
    """The registrable ("organisational") domain: mail.shop.example.co.uk -> example.co.uk."""
    return PSL.privatesuffix(domain) or domain


def identities(msg: Message, max_uri_domains: int) -> Identities:
    relay = msg.first_untrusted
    from_name, from_address = parse_address(msg.header("From"))
    found = Identities(
        from_name=from_name,
        from_address=from_address.lower(),
        from_domain=domain_of(from_address),
        reply_to_domains=sorted({domain_of(a) for _, a in address_pairs(msg.header_values("Reply-To"))}
                                - {""}),
        via_list=any(msg.has_header(h) for h in LIST_HEADERS),
        relay_ips=_listable(msg.untrusted_relays),
        uri_domains=_uri_domains(msg, max_uri_domains),
    )
    if relay is not None and not relay.auth:
        found.client_ip, found.helo, found.client_rdns = relay.ip, relay.helo, relay.rdns
        found.mail_from = _envelope_sender(msg, relay)
    return found


def _uri_domains(msg: Message, limit: int) -> list[str]:
    """The domains to look up in domain lists: those of links first, then those written as text
    (`textdomains`), at most `limit`. Links first because a link is what a reader follows, and so
    that domains a spammer writes as text cannot push a linked one out of the limit."""
    found = dict.fromkeys(u.domain for u in msg.uris if u.domain)
    if len(found) < limit:
        for domain in written_domains(msg.visible_text):
            found[domain] = None
            if len(found) == limit:
                break
    return list(found)[:limit]


def _envelope_sender(msg: Message, relay: Relay) -> str:
    """The envelope sender `relay` gave: the MTA's MAIL FROM (even when empty) for the hop it saw
    itself, else what a trusted hop recorded, else the MTA's MAIL FROM again, since only trusted
    relays (our edge MX) stand between `relay` and the MTA and they pass the sender on unchanged;
    for a message read from a file, the Return-Path header."""
    if msg.envelope.client_ip and (relay.ip == msg.envelope.client_ip or not relay.envfrom):
        return msg.envelope.mail_from
    return relay.envfrom or parse_address(msg.header("Return-Path"))[1]


def _listable(relays: list[Relay]) -> list[str]:
    """Relay addresses to look up in DNS lists: not the non-public ones, which no list can know and
    whose lookup would leak the site's internal addressing."""
    ips = []
    for relay in relays:
        if relay.auth or within(ipaddress.ip_address(relay.ip), NOT_PUBLIC):
            continue
        ips.append(relay.ip)
    return list(dict.fromkeys(ips))[:MAX_RELAYS]
