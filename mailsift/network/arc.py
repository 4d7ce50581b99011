"""ARC (RFC 8617): a forwarder's sealed record that the From domain's mail authenticated when it
arrived there, before the forwarder changed it.

A forwarder that keeps the author's From (an alumni address, a Microsoft 365 or Google Workspace
rule, a mailing list) sends from an address the author's SPF does not allow, and a subject tag or
footer breaks the author's DKIM signature: DMARC fails, and a p=reject domain's real mail would be
scored as forgery. A forwarder that cares seals what it saw in an ARC set; RFC 7489 6.7 lets a
receiver override the domain's policy on such evidence. Anyone can write an ARC set, though, so it
counts only when the chain validates and its most recent seal is by a sealer the site lists in
network.arc_trusted_sealers. Chains sealed by anyone else are not checked: believing them would
change nothing, and their keys would cost lookups.

Keys are fetched with the message's other lookups and dkimpy validates offline, as for DKIM
(dkim.py): a key that did not arrive in time gives `temperror`. It grants no override, but when
the trusted sealer recorded a pass, DMARC is a temperror too rather than a fail: DNS trouble is
no forgery, as for an aligned DKIM key that did not arrive (dmarc.py).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import authres
import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from mailsift.domains import ascii_domain
from mailsift.network.dkim import LIBRARY_ERRORS, LibraryLog, body_length, key_name
from mailsift.network.dmarc import DmarcRecord, aligned
from mailsift.network.identities import domain_of, within_domains
from mailsift.network.resolver import Answer, Lookups
from mailsift.network.verdicts import ArcVerdict, DmarcVerdict

log = LibraryLog(__name__)
# Real chains have one to three sets (one per forwarder); each set needs up to two keys. A longer
# chain is not worth the lookups, and RFC 8617 itself stops at 50.
MAX_SETS = 10
ARC_SEAL = re.compile(rb"^arc-seal[ \t]*:", re.IGNORECASE | re.MULTILINE)
# dkimpy's chain validation status -> the arc= result (RFC 8617 4.2); None is a chain a sealer
# already declared broken (cv=fail), which validates no more than a broken seal.
RESULTS = {dkim.CV_Pass: "pass", dkim.CV_Fail: "fail", None: "fail", dkim.CV_None: "none"}
# What of an ARC-Authentication-Results vouches for the From domain: method -> its property; the
# strongest first, as the reason names the first found.
VOUCHING = {"dmarc": ("header", "from"), "dkim": ("header", "d"), "spf": ("smtp", "mailfrom")}

Sets = list[tuple[int, tuple[bytes, bytes]]]


async def check_arc(raw: bytes, lookups: Lookups, trusted: list[str]) -> ArcVerdict | None:
    """The verdict on the message's chain; None without one, or when its newest seal is untrusted.

    Without trusted sealers, or without an ARC-Seal header, this costs a pattern search over the
    header block, and no lookup.
    """
    if not trusted or not ARC_SEAL.search(raw, 0, len(raw) - body_length(raw)):
        return None
    newest, sets = _sets(raw)
    sealer = _sealer(sets, newest)
    if not sealer or not within_domains(sealer, trusted):
        return None
    if newest > MAX_SETS:
        return ArcVerdict("fail", sealer, newest, f"more than {MAX_SETS} ARC sets")
    names = sorted(_key_names(sets))
    keys = dict(zip(names, await lookups.query_all([(n, "TXT") for n in names]), strict=True))
    missing = next((k for k in keys.values() if k.unknown), None)
    if missing is not None:  # what the sealer recorded still counts: see `forwarded`
        return ArcVerdict("temperror", sealer, newest, f"key lookup {missing.outcome}",
                          passes=_passes(_newest_results(sets, newest)))
    return await asyncio.to_thread(_validate, raw, sealer, newest, keys)


def _sets(raw: bytes) -> tuple[int, Sets]:
    """The highest i= and every ARC header with its instance, newest first (dkimpy's reading)."""
    try:
        return dkim.ARC(raw, logger=log).sorted_arc_headers()
    except LIBRARY_ERRORS:
        return 0, []


def _tags(header: tuple[bytes, bytes]) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(header[1])
    except InvalidTagValueList:
        return {}


def _sealer(sets: Sets, instance: int) -> str:
    """d= of the ARC-Seal of `instance`, in ASCII form as arc_trusted_sealers holds it (a sealer
    may write U-labels, as DKIM's RFC 8616 allows); '' when there is none that can be read."""
    seal = next((h for i, h in sets if i == instance and h[0].lower() == b"arc-seal"), None)
    domain = _tags(seal).get(b"d", b"") if seal else b""
    return ascii_domain(domain.decode("utf-8", "replace"))


def _newest_results(sets: Sets, instance: int) -> bytes:
    """The ARC-Authentication-Results value of `instance`, unfolded, as dkimpy gives it."""
    value = next((h[1] for i, h in sets if i == instance and h[0].lower() == b"arc-authentication-results"),
                 b"")
    return re.sub(rb"\r?\n[ \t]+", b" ", value)


def _key_names(sets: Sets) -> set[str]:
    """The key of every seal and message signature of the chain."""
    signing = (b"arc-seal", b"arc-message-signature")
    found = [_tags(h) for _, h in sets if h[0].lower() in signing]
    return {key_name(t) for t in found if b"s" in t and b"d" in t}


def _validate(raw: bytes, sealer: str, newest: int, keys: dict[str, Answer]) -> ArcVerdict:
    def dnsfunc(name: bytes, timeout: float = 0) -> bytes:
        answer = keys.get(ascii_domain(name.decode("utf-8", "replace")))  # as key_name spells it
        record = next((r for r in answer.records if "p=" in r), "") if answer else ""
        return record.encode()

    try:
        status, instances, reason = dkim.ARC(raw, logger=log).verify(dnsfunc=dnsfunc)
    except LIBRARY_ERRORS as exc:
        return ArcVerdict("fail", sealer, newest, f"unreadable ({type(exc).__name__})")
    result = RESULTS.get(status, "fail")
    if result != "pass":
        return ArcVerdict(result, sealer, newest, str(reason)[:80])
    return ArcVerdict("pass", sealer, newest, passes=_passes(instances[0]["aar-value"]))


def _passes(aar: bytes) -> tuple[tuple[str, str], ...]:
    """What the newest ARC-Authentication-Results ('i=N; authserv-id; results') records as passing."""
    value = aar.partition(b";")[2].decode("utf-8", "replace").strip()
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
    except authres.AuthResError:
        return ()
    found = []
    for result in header.results:
        wanted = VOUCHING.get(result.method)
        if wanted is None or result.result != "pass":
            continue
        for prop in result.properties:
            if (prop.type, prop.name) == wanted:
                found.append((result.method, domain_of(prop.value) or ascii_domain(prop.value)))
    return tuple(found)


def forwarded(verdict: DmarcVerdict, arc: ArcVerdict | None,
              record: DmarcRecord | Answer | None) -> DmarcVerdict:
    """`verdict`, with the policy lifted when a trusted forwarder's valid chain vouches for the
    From domain: its ARC-Authentication-Results recorded DMARC passing for it, or SPF or DKIM
    passing for a domain aligned with it as the domain's record asks."""
    if (verdict.result != "fail" or verdict.override or arc is None
            or arc.result not in ("pass", "temperror") or not isinstance(record, DmarcRecord)):
        return verdict
    vouching = next((f"{method}=pass" for method in VOUCHING for passed, domain in arc.passes
                     if passed == method and _vouches(method, domain, verdict.from_domain, record)),
                    None)
    if vouching is None:
        return verdict
    if arc.result == "temperror":
        # The seal might well validate: DNS trouble is no forgery (as in dmarc._undecided), so
        # the domain's policy is not applied either way, and no override is granted.
        return replace(verdict, result="temperror")
    reason = f"local policy: trusted forwarder {arc.sealer} (ARC i={arc.instance}) saw {vouching}"
    return replace(verdict, override=reason, forwarder=arc.sealer)


def _vouches(method: str, domain: str, from_domain: str, record: DmarcRecord) -> bool:
    if method == "dmarc":
        return domain == from_domain
    return aligned(domain, from_domain, record.strict_dkim if method == "dkim" else record.strict_spf)
