"""Run every network check of one message at once, within the message's DNS budget.

SPF, DKIM and ARC key fetches, the DMARC record, DNS lists, reverse DNS and the sender-domain
lookups all start together; DMARC is judged last because it needs the SPF, DKIM and ARC outcomes.
Each lookup gets only what is left of `dns.timeout`, so the whole costs at most the budget (plus a
safety margin for the outer guard). Lookups that timed out or failed are recorded on the message as
the facts DNS_TIMEOUT and DNS_SERVFAIL; rules that depended on them simply do not fire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from mailsift.analysis.model import Message
from mailsift.config import Config, DnsConfig
from mailsift.log_throttle import ThrottledWarning
from mailsift.network import arc, dmarc, dnslists, hosts, sender
from mailsift.network.dkim import check_dkim
from mailsift.network.identities import Identities, identities
from mailsift.network.resolver import Answer, Lookups, Outcome, shared_resolver
from mailsift.network.spf import check_spf
from mailsift.network.verdicts import NetworkVerdicts

log = logging.getLogger(__name__)
warn = ThrottledWarning(log).warn  # a resolver that stops answering does so for every message

# The outer guard: every lookup already stops at the budget, this only catches a check that hangs.
GUARD_SECONDS = 0.3
FACTS = {Outcome.TIMEOUT: "DNS_TIMEOUT", Outcome.SERVFAIL: "DNS_SERVFAIL"}
T = TypeVar("T")


def gather(msg: Message, config: Config) -> NetworkVerdicts:
    """All network verdicts for `msg`; never raises for DNS trouble and never exceeds the budget.

    Synchronous, for the scanner; code already running an event loop awaits `gather_async`.
    """
    return asyncio.run(gather_async(msg, config))


async def gather_async(msg: Message, config: Config) -> NetworkVerdicts:
    settings = config.dns
    lookups = Lookups(shared_resolver(tuple(settings.nameservers), settings.cache_size), settings.timeout)
    own = config.network.own_domains
    ids = identities(msg, settings.max_uri_domains, own)
    verdicts = NetworkVerdicts(from_domain=ids.from_domain)
    verdicts.findings.update(hosts.check_helo(ids, own))
    verdicts.findings.update(sender.check_from(ids, own))
    try:
        async with asyncio.timeout(settings.timeout + GUARD_SECONDS):
            await _lookups(msg, config, ids, lookups, verdicts)
    except TimeoutError:
        warn("cut off", "network checks cut off after %.1fs", settings.timeout + GUARD_SECONDS)
        msg.facts.add("DNS_TIMEOUT", "network checks cut off at the budget")
    _record_failures(msg, lookups, verdicts, settings)
    return verdicts


async def _lookups(msg: Message, config: Config, ids: Identities, lookups: Lookups,
                   verdicts: NetworkVerdicts) -> None:
    spf, signatures, sealed, (record, txt), listed, rdns, domains = await asyncio.gather(
        _isolated("SPF", check_spf(ids, lookups), None),
        # The message as the milter holds it: a file's whole body is not what the milter verified
        _isolated("DKIM", check_dkim(msg.held, lookups, config.scan.max_bytes), []),
        _isolated("ARC", arc.check_arc(msg.held, lookups, config.network.arc_trusted_sealers), None),
        _isolated("DMARC record", _policy_records(ids, lookups), (None, None)),
        _isolated("DNS lists", dnslists.check_lists(config.dns, ids, lookups), {}),
        _isolated("reverse DNS", hosts.check_rdns(ids, lookups), {}),
        _isolated("sender domain", sender.check_domains(ids, lookups), {}),
    )
    verdicts.spf, verdicts.dkim, verdicts.arc, verdicts.listed = spf, signatures, sealed, listed
    verdicts.findings.update(rdns | domains)
    if ids.from_domain:
        found = dmarc.evaluate(ids.from_domain, record, spf, signatures)
        verdicts.dmarc = arc.forwarded(found, sealed, record)
        if txt is not None:
            verdicts.findings.update(sender.weak_domain(ids, record, txt))


async def _isolated(name: str, check: Coroutine[Any, Any, T], nothing: T) -> T:
    """The check's verdict, or `nothing` (its rules do not fire) when it raises: the libraries
    read records and signatures a sender writes, and one of their failures (dkimpy had three)
    must cost that check, not the scoring of the whole message, as a rule that raises costs only
    itself (mailsift.rules.engine)."""
    try:
        return await check
    except Exception as exc:  # see above: any failure of one check, logged with its cause
        warn(f"check {name}", "network check %s failed (%s: %s); its rules count as not hit",
             name, type(exc).__name__, exc)
        return nothing


async def _policy_records(ids: Identities, lookups: Lookups
                          ) -> tuple[dmarc.DmarcRecord | Answer | None, Answer | None]:
    """The DMARC record and the From domain's TXT records (for its SPF record), fetched together."""
    if not ids.from_domain:
        return None, None
    record, txt = await asyncio.gather(dmarc.fetch_record(ids.from_domain, lookups),
                                       lookups.query(ids.from_domain, "TXT"))
    return record, txt


def _record_failures(msg: Message, lookups: Lookups, verdicts: NetworkVerdicts,
                     settings: DnsConfig) -> None:
    """The failed lookups as facts, each named as reports may show it (`dnslists.shown_name`)."""
    for (name, rdtype), outcome in lookups.failures.items():
        question = f"{dnslists.shown_name(settings, name)}/{rdtype}"
        verdicts.failures[question] = str(outcome)
        msg.facts.add(FACTS[outcome], question)
