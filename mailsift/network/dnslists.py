"""DNS block and allow lists, as configured: relay addresses and link domains looked up in zones.

Which lists, which answers count and what a listing is worth are the site's choice (public lists
have terms of use, commercial ones private zones), so nothing here names a list: every configured
list becomes a rule (see `mailsift.rules.checks.network_lists`), and a listing is recorded under
that rule's name.
"""

from __future__ import annotations

import ipaddress
import logging

from mailsift.config import DnsConfig, DnsList
from mailsift.network.identities import Identities
from mailsift.network.resolver import Lookups, reverse_name

log = logging.getLogger(__name__)

# Lists answer from 127.255.255.0/24 to say "you may not query me" (e.g. through a public
# resolver): an error to log, never a listing.
LIST_ERRORS = ipaddress.ip_network("127.255.255.0/24")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def all_lists(config: DnsConfig) -> list[DnsList]:
    return [*config.blocklists, *config.allowlists]


def questions(entry: DnsList, ids: Identities) -> list[tuple[str, str]]:
    """(what is looked up, DNS name) pairs for one list."""
    if entry.kind == "uri":
        return [(domain, f"{domain}.{entry.zone}") for domain in ids.uri_domains]
    ips = ids.relay_ips if entry.relays == "all" else [ip for ip in ids.relay_ips[:1] if ip == ids.client_ip]
    return [(ip, reverse_name(ip, entry.zone)) for ip in ips]


async def check_lists(config: DnsConfig, ids: Identities, lookups: Lookups) -> dict[str, str]:
    """Rule name -> evidence, for every list that lists something of this message."""
    asked = [(entry, subject, name) for entry in all_lists(config)
             for subject, name in questions(entry, ids)]
    answers = await lookups.query_all([(name, "A") for _, _, name in asked])
    listed: dict[str, str] = {}
    for (entry, subject, _), answer in zip(asked, answers, strict=True):
        codes = [code for code in answer.records if counts(entry, code)]
        if codes and entry.rule not in listed:
            listed[entry.rule] = f"{subject} listed in {entry.zone} ({', '.join(codes)})"
    return listed


def counts(entry: DnsList, code: str) -> bool:
    if entry.codes:
        return code in entry.codes
    try:
        address = ipaddress.ip_address(code)
    except ValueError:
        return False
    if address in LIST_ERRORS:
        log.warning("DNS list %s refuses our queries (answer %s): check its terms and the resolver",
                    entry.zone, code)
        return False
    return address in LOOPBACK
