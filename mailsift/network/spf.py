"""SPF (RFC 7208) with pyspf, resolving through the message's budgeted lookups.

pyspf resolves synchronously through its module-level `DNSLookup`. It is replaced once, at import,
by a function that sends the question to the event loop of the message being checked (found in a
context variable, so concurrent messages in threads never mix) and falls back to pyspf's own
resolver when called outside a check. That way SPF obeys the configured nameservers, shares the
answer cache and cannot outlast the per-message budget.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import spf

from mailsift.network.identities import Identities, domain_of
from mailsift.network.resolver import Lookups
from mailsift.network.verdicts import SPF_RESULTS, SpfVerdict

_CURRENT: ContextVar[Lookups | None] = ContextVar("mailsift_spf_lookups", default=None)
_LIBRARY_LOOKUP = spf.DNSLookup


def _lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> list[tuple[Any, Any]]:
    """pyspf's DNS interface: [((name, type), value), ...]; TempError when no answer came."""
    lookups = _CURRENT.get()
    if lookups is None:
        return _LIBRARY_LOOKUP(name, qtype, strict, timeout)
    answer = lookups.query_blocking(name, qtype)
    if answer.unknown:
        raise spf.TempError(f"DNS {answer.outcome} for {name}/{qtype}")
    return [((name, qtype), _value(qtype, record)) for record in answer.records]


def _value(qtype: str, record: str) -> object:
    if qtype in ("TXT", "SPF"):
        return [record.encode("utf-8")]
    if qtype == "MX":
        preference, _, host = record.partition(" ")
        return int(preference), host
    return record


spf.DNSLookup = _lookup


async def check_spf(ids: Identities, lookups: Lookups) -> SpfVerdict | None:
    """The SPF result for the envelope sender, or for the HELO name of a bounce; None: no client."""
    if not ids.client_ip:
        return None
    identity = "mailfrom" if ids.mail_from else "helo"
    sender = ids.mail_from or f"postmaster@{ids.helo}"
    domain = domain_of(sender)
    if not domain or domain.startswith("["):
        return SpfVerdict("none", identity, domain, sender, ids.client_ip, "no domain to check")
    token = _CURRENT.set(lookups)
    try:
        result, explanation = await asyncio.to_thread(_evaluate, ids, sender, lookups.remaining())
    finally:
        _CURRENT.reset(token)
    return SpfVerdict(result, identity, domain, sender, ids.client_ip, explanation)


def _evaluate(ids: Identities, sender: str, budget: float) -> tuple[str, str]:
    query = spf.query(i=ids.client_ip, s=sender, h=ids.helo or "unknown",
                      querytime=max(budget, 0.001))
    result, _code, explanation = query.check()
    return (result if result in SPF_RESULTS else "permerror"), str(explanation)
