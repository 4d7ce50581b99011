"""The connecting host: its reverse DNS, and the name it gave in HELO.

Mail servers run by someone who cares have a PTR record whose name resolves back to the address
and does not look like a consumer line (botnets send from those). The HELO name of a real server
is a fully-qualified name; an address literal naming another address, or one of our own domains
claimed by an outside host, is forgery.
"""

from __future__ import annotations

import ipaddress
import re

from mailsift.domains import ascii_domain
from mailsift.network.identities import Identities, within_domains
from mailsift.network.resolver import Lookups, reverse_name

MAX_PTR_NAMES = 3
# Words ISPs put in the names of dynamically assigned consumer addresses.
DYNAMIC_WORDS = re.compile(
    r"(?:^|[.-])(?:dyn(?:amic)?|dhcp|dialup|dial|ppp(?:oe)?|a?dsl|xdsl|cable|pool|cpe|broadband|"
    r"client|customer|user|home|catv|fibertel|ftth|res(?:idential)?|wlan|mobile|nat)(?:\d*)(?:[.-]|$)")
LOCAL_HELO = re.compile(r"(?:^localhost|\.localdomain|\.local|\.lan|\.home|\.internal)$")


def looks_dynamic(name: str, ip: str) -> bool:
    """A generic name: ISP wording, or the address's own numbers spelled into it."""
    if DYNAMIC_WORDS.search(name):
        return True
    address = ipaddress.ip_address(ip)
    if address.version != 4:
        return False
    octets = str(address).split(".")
    spelled = [f"{a}[.-]{b}" for a, b in ((octets[2], octets[3]), (octets[3], octets[2]))]
    return any(re.search(rf"(?:^|\D){pattern}(?:\D|$)", name) for pattern in spelled)


async def check_rdns(ids: Identities, lookups: Lookups) -> dict[str, str]:
    """rdns.none / rdns.unconfirmed / rdns.dynamic findings for the connecting host."""
    if not ids.client_ip:
        return {}
    ptr = await lookups.query(reverse_name(ids.client_ip), "PTR")
    if ptr.unknown:
        return {}
    if not ptr.records:
        return {"rdns.none": f"{ids.client_ip} has no PTR record"}
    names = list(ptr.records[:MAX_PTR_NAMES])
    findings = {}
    if any(looks_dynamic(n, ids.client_ip) for n in names):
        findings["rdns.dynamic"] = f"{ids.client_ip} is {names[0]}"
    forward = await lookups.query_all([(n, t) for n in names for t in ("A", "AAAA")])
    addresses = {a for answer in forward for a in answer.records}
    if _same_address(ids.client_ip, addresses):
        return findings
    if not any(answer.unknown for answer in forward):
        findings["rdns.unconfirmed"] = f"{ids.client_ip} -> {names[0]} does not resolve back"
    return findings


async def confirmed_name(ip: str, lookups: Lookups) -> str:
    """The client's name as Postfix reports it to a milter: the name of its PTR record when that
    name resolves back to `ip`, else "unknown" (no PTR, a name that does not confirm, or no
    answer in time). Postfix takes the one name its resolver gives, the first record; so does
    this. For `mailsift check --client-ip` without --client-name."""
    ptr = await lookups.query(reverse_name(ip), "PTR")
    if not ptr.records:
        return "unknown"
    name = ptr.records[0]
    forward = await lookups.query_all([(name, "A"), (name, "AAAA")])
    return name if _same_address(ip, {a for answer in forward for a in answer.records}) else "unknown"


def _same_address(ip: str, addresses: set[str]) -> bool:
    wanted = ipaddress.ip_address(ip)
    return any(ipaddress.ip_address(a) == wanted for a in addresses)


def check_helo(ids: Identities, own_domains: list[str]) -> dict[str, str]:
    """helo.not_fqdn / helo.ip_mismatch / helo.own_domain findings; no DNS needed."""
    helo = ascii_domain(ids.helo)  # a HELO of ours in U-labels is still ours
    if not ids.client_ip or not helo:
        return {}
    literal = _address_literal(helo)
    if literal is not None:
        if literal != ipaddress.ip_address(ids.client_ip):
            return {"helo.ip_mismatch": f"HELO {ids.helo} from {ids.client_ip}"}
        return {}
    findings = {}
    if "." not in helo or LOCAL_HELO.search(helo):
        findings["helo.not_fqdn"] = f"HELO {ids.helo}"
    if within_domains(helo, own_domains):
        findings["helo.own_domain"] = f"HELO {ids.helo} from {ids.client_ip}"
    return findings


def _address_literal(helo: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in '[192.0.2.1]', '[IPv6:2001:db8::1]' or a bare address; None for names."""
    text = helo.strip("[]").removeprefix("ipv6:")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
