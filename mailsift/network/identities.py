"""Who a message claims to be from, and which host handed it to us: the inputs of every network check.

The connecting host is the first untrusted relay (Postfix's connection data when the milter scans,
else the Received chain). Its envelope sender is authoritative only for the hop Postfix saw itself;
for a message read from a file the Return-Path header stands in for it, as in SpamAssassin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from urllib.parse import parse_qsl, unquote

from mailsift.analysis.addresses import address_pairs, parse_address
from mailsift.analysis.model import Message, Relay, Uri
from mailsift.analysis.relays import NOT_PUBLIC, within
from mailsift.analysis.uris import PSL, host_info
from mailsift.domains import ascii_domain
from mailsift.network.resolver import encodable
from mailsift.network.textdomains import written_domains

MAX_RELAYS = 5
# Headers of mailing-list posts; lists point Reply-To at the list, whatever the author's domain.
LIST_HEADERS = ("List-Id", "List-Post", "Mailing-List")
# The fields of a mailto: link (RFC 6068) that name more addressees than those before the '?'.
MAILTO_ADDRESS_FIELDS = frozenset({"to", "cc", "bcc"})


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
    """The domain of an address in its ASCII form (`ascii_domain`), so that SPF's, DKIM's and
    the From's domain compare equal however each was spelt; '' without an @."""
    return ascii_domain(address.rpartition("@")[2]) if "@" in address else ""


def within_domains(domain: str, domains: list[str]) -> bool:
    """`domain` is one of `domains` or a subdomain of one."""
    return any(domain == d or domain.endswith("." + d) for d in domains)


def org_domain(domain: str) -> str:
    """The registrable ("organisational") domain: mail.shop.example.co.uk -> example.co.uk."""
    # Unknown top-level domains count as public suffixes (the PSL's "*" rule), as DMARC requires
    # (the list itself is loaded once, with URIs' default of not counting them).
    return PSL.privatesuffix(domain, accept_unknown=True) or domain


def identities(msg: Message, max_uri_domains: int, own_domains: Sequence[str] = ()) -> Identities:
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
        uri_domains=_uri_domains(msg, max_uri_domains, own_domains),
    )
    if relay is not None and not relay.auth:
        found.client_ip, found.helo, found.client_rdns = relay.ip, relay.helo, relay.rdns
        found.mail_from = _envelope_sender(msg, relay)
    return found


def _uri_domains(msg: Message, limit: int, own_domains: Sequence[str]) -> list[str]:
    """The domains to look up in domain lists: those of links first, then those written as text
    (`textdomains`), at most `limit`, none of ours. Links first because a link is what a reader
    follows, and so that domains a spammer writes as text cannot push a linked one out of the
    limit. Our own domains are left out because nearly every letter names them (the recipient's
    address in a quoted "anna@our.example wrote:", our staff's signatures): asking costs a slot
    and a query per list for each message, and a list that once lists our domain (a hacked page,
    a list's mistake) must not add its score to every reply our users get."""
    ours = _own_organisations(own_domains)
    domains = chain(_link_domains(msg.uris), written_domains(msg.visible_text))
    return list(islice(_unique(d for d in domains if d not in ours), limit))


def _link_domains(uris: Iterable[Uri]) -> Iterator[str]:
    """The registrable domain of each link, in link order, and those of a mailto: link's
    addressees in its place (the link's own domain stays empty: the uri rules and the Bayes tokens
    read it); only names the resolver can encode, so a host of emoji costs no slot."""
    for uri in uris:
        for domain in (uri.domain,) if uri.domain else _mailto_domains(uri):
            if domain and encodable(domain):
                yield domain


def _mailto_domains(uri: Uri) -> list[str]:
    """The registrable domains of the addresses a mailto: link writes to: before the '?' and in
    its to, cc and bcc fields, percent-decoded (`mailto:%6Frders@shop.example?cc=x@y.example`)."""
    if uri.scheme != "mailto":
        return []
    path, _, query = uri.url.partition(":")[2].partition("?")
    values = [unquote(path), *(v for k, v in parse_qsl(query) if k.lower() in MAILTO_ADDRESS_FIELDS)]
    return [host_info(domain_of(address)).domain for _, address in address_pairs(values)]


def _own_organisations(own_domains: Sequence[str]) -> frozenset[str]:
    """The registrable domain of each of our domains, as a link's would be spelt: the lists are
    asked about registrable domains only, so a link to shop.our.example, or any other name under
    our.example when mail.our.example is ours, would ask about our.example."""
    return frozenset(host_info(own).domain or own for own in own_domains)


def _unique(domains: Iterable[str]) -> Iterator[str]:
    """Each domain once, in order; lazy, so the text scan stops when the limit is reached."""
    seen: set[str] = set()
    for domain in domains:
        if domain not in seen:
            seen.add(domain)
            yield domain


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
