"""DNS for one message: every lookup started at once, all of them within one time budget.

A message's network checks need a few dozen lookups (SPF includes, DKIM keys, DMARC records, list
zones, PTR and forward names). Done one after the other, a slow zone would make every message wait
for it in turn; so the checks run as asyncio tasks on dnspython's asynchronous resolver, and a
`Lookups` object gives each of them what is left of the message's budget. An answer that is not
there when the budget ends is a TIMEOUT: the checks treat it as "unknown", never as a verdict.

The resolver (with its answer cache) is shared by all messages of a process, so a burst of mail
from one sender costs one lookup. The same question asked twice within a message (SPF and the
sender-domain check both want the domain's TXT records) is sent once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from mailsift.config import split_host_port

# One try at one server may take this long before the next try; the budget still bounds the total.
PER_TRY_TIMEOUT = 1.0


class Outcome(enum.StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, without records of the type asked for
    TIMEOUT = "timeout"  # no answer within the budget
    SERVFAIL = "servfail"  # the servers answered with an error (SERVFAIL, REFUSED) or not at all


UNKNOWN = frozenset({Outcome.TIMEOUT, Outcome.SERVFAIL})


@dataclass(frozen=True)
class Answer:
    """What one lookup found; records as text: addresses, 'pref host' for MX, names without the dot."""

    outcome: Outcome
    records: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        """No verdict possible: the rule depending on it must not fire."""
        return self.outcome in UNKNOWN

    @property
    def exists(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.NODATA)


@lru_cache(maxsize=4)
def shared_resolver(nameservers: tuple[str, ...], cache_size: int) -> dns.asyncresolver.Resolver:
    """The process-wide resolver for a configuration: its cache outlives single messages."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    if nameservers:
        resolver.nameservers = [_nameserver(ns) for ns in nameservers]
    else:
        try:
            resolver.read_resolv_conf("/etc/resolv.conf")
        except (OSError, dns.resolver.NoResolverConfiguration):
            resolver.nameservers = []  # every lookup then fails as SERVFAIL and is recorded
    resolver.timeout = PER_TRY_TIMEOUT
    if cache_size:
        resolver.cache = dns.resolver.LRUCache(cache_size)
    return resolver


def _nameserver(text: str) -> dns.nameserver.Nameserver:
    host, port = split_host_port(text)
    return dns.nameserver.Do53Nameserver(host, port)


def escaped(name: str) -> bool:
    """Whether `name` holds a backslash: dnspython reads it as a zone-file escape (sh\\111p.test is
    shop.test), while mail systems and `domains.ascii_domain` keep it as a letter of the name. Asked,
    it would fetch another domain's records than the one the checks compare; no host name holds a
    backslash, so no such name exists in the DNS."""
    return "\\" in name


def encodable(name: str) -> bool:
    """Whether a query for `name` can be sent at all: dnspython encodes a non-ASCII name by IDNA
    2008, which refuses emoji, fractions and the like. Such a name would take a lookup slot and
    record DNS_SERVFAIL (a fact scoring may use) for a question no server ever saw. A name with a
    backslash (`escaped`) would be asked as another name."""
    if escaped(name):
        return False
    if name.isascii():
        return True
    try:
        dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError):
        return False
    return True


def reverse_name(ip: str, zone: str = "") -> str:
    """192.0.2.1 -> 1.2.0.192.in-addr.arpa, or 1.2.0.192.ZONE for a DNS list (nibbles for IPv6)."""
    name = dns.reversename.from_address(ip).to_text(omit_final_dot=True)
    if not zone:
        return name
    suffix = ".in-addr.arpa" if ipaddress.ip_address(ip).version == 4 else ".ip6.arpa"
    return f"{name.removesuffix(suffix)}.{zone}"


@dataclass
class Lookups:
    """The lookups of one message: shared budget, one query per question, failures remembered."""

    resolver: dns.asyncresolver.Resolver
    budget: float
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    failures: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    _deadline: float = field(init=False, default=0.0)
    _pending: dict[tuple[str, str], asyncio.Future[Answer]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._deadline = self.loop.time() + self.budget

    def remaining(self) -> float:
        return max(self._deadline - self.loop.time(), 0.0)

    async def query(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        if key not in self._pending:
            self._pending[key] = asyncio.ensure_future(self._resolve(*key))
        return await asyncio.shield(self._pending[key])

    async def query_all(self, questions: Sequence[tuple[str, str]]) -> list[Answer]:
        return list(await asyncio.gather(*(self.query(n, t) for n, t in questions)))

    def query_blocking(self, name: str, rdtype: str) -> Answer:
        """For the libraries that resolve synchronously (pyspf) from a worker thread."""
        future = asyncio.run_coroutine_threadsafe(self.query(name, rdtype), self.loop)
        try:
            return future.result(timeout=self.remaining() + PER_TRY_TIMEOUT)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            return Answer(Outcome.TIMEOUT)

    async def _resolve(self, name: str, rdtype: str) -> Answer:
        answer = await self._ask(name, rdtype)
        if answer.unknown:
            self.failures[(name, rdtype)] = answer.outcome
        return answer

    async def _ask(self, name: str, rdtype: str) -> Answer:
        if escaped(name):
            return Answer(Outcome.NXDOMAIN)
        lifetime = self.remaining()
        if lifetime <= 0:
            return Answer(Outcome.TIMEOUT)
        try:
            qname = dns.name.from_text(name)
            # Our own deadline too: dnspython sleeps its backoff between tries (0.1, 0.2, 0.4 s,
            # up to 2 s) before it looks at the lifetime, so a lookup to a resolver that never
            # answers ended 0.4 s late at the default 3 s, after gather's guard had cut off every
            # check, and no lookup was recorded as timed out (nor counted in the metrics).
            async with asyncio.timeout(lifetime):
                found = await self.resolver.resolve(qname, rdtype, lifetime=lifetime,
                                                    search=False, raise_on_no_answer=False)
        except TimeoutError:
            return Answer(Outcome.TIMEOUT)
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
                dns.exception.SyntaxError, dns.name.IDNAException, UnicodeError):
            # No such name can exist in the DNS, nor be asked about: IDNA refuses an emoji or a
            # U+FFFD in a sender's d= or From domain. As a DNSException it was a SERVFAIL, so a
            # question no server saw made SPF, DKIM and DMARC temperror (DMARC not applied).
            return Answer(Outcome.NXDOMAIN)
        except dns.resolver.NXDOMAIN:
            return Answer(Outcome.NXDOMAIN)
        except dns.exception.Timeout:
            return Answer(Outcome.TIMEOUT)
        except dns.exception.DNSException:
            return Answer(Outcome.SERVFAIL)
        if found.rrset is None:
            return Answer(Outcome.NODATA)
        return Answer(Outcome.OK, tuple(_text(rdata) for rdata in found.rrset))


def _text(rdata: object) -> str:
    kind = rdata.rdtype  # type: ignore[attr-defined]
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(rdata.address)  # type: ignore[attr-defined]
    if kind == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if kind == dns.rdatatype.MX:
        return f"{rdata.preference} {_host(rdata.exchange)}"  # type: ignore[attr-defined]
    if kind in (dns.rdatatype.PTR, dns.rdatatype.CNAME):
        return _host(rdata.target)  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
