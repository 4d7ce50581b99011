"""DMARC (RFC 7489): does the From domain's owner vouch for this message, and what does it ask for?

The policy record is looked up at `_dmarc.<From domain>` and, at the same time rather than after a
miss, at the organisational domain (Public Suffix List). The message passes when SPF or a DKIM
signature passed for a domain aligned with the From domain (strict: the same name; relaxed: the
same organisational domain). A failure is reported together with the published policy, so a site
can decide per policy: score a p=none failure lightly, reject on p=reject.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailsift.network.identities import org_domain
from mailsift.network.resolver import Answer, Lookups
from mailsift.network.verdicts import DkimSignature, DmarcVerdict, SpfVerdict

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcRecord:
    domain: str  # where it was published
    policy: str
    subdomain_policy: str
    strict_dkim: bool
    strict_spf: bool


def record_names(from_domain: str) -> list[str]:
    names = [f"_dmarc.{from_domain}"]
    organisational = org_domain(from_domain)
    if organisational != from_domain:
        names.append(f"_dmarc.{organisational}")
    return names


async def fetch_record(from_domain: str, lookups: Lookups) -> DmarcRecord | Answer | None:
    """The record that applies; the failed Answer when a lookup gave no verdict; None: no record."""
    names = record_names(from_domain)
    answers = await lookups.query_all([(n, "TXT") for n in names])
    for name, answer in zip(names, answers, strict=True):
        if answer.unknown:
            return answer
        record = parse_record(name.removeprefix("_dmarc."), answer.records)
        if record is not None:
            return record
    return None


def parse_record(domain: str, texts: tuple[str, ...]) -> DmarcRecord | None:
    """The one DMARC record among the TXT records (none if zero or several, per RFC 7489 6.6.3)."""
    candidates = [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1")]
    if len(candidates) != 1:
        return None
    tags = {}
    for part in candidates[0].split(";"):
        key, _, value = part.partition("=")
        tags[key.strip().lower()] = value.strip().lower()
    policy = tags.get("p", "none") if tags.get("p") in POLICIES else "none"
    subdomain = tags.get("sp", policy) if tags.get("sp") in POLICIES else policy
    return DmarcRecord(domain, policy, subdomain, tags.get("adkim") == "s", tags.get("aspf") == "s")


def evaluate(from_domain: str, found: DmarcRecord | Answer | None, spf: SpfVerdict | None,
             signatures: list[DkimSignature]) -> DmarcVerdict:
    if isinstance(found, Answer):
        return DmarcVerdict("temperror", "none", from_domain)
    if found is None:
        return DmarcVerdict("none", "none", from_domain)
    policy = found.policy if found.domain == from_domain else found.subdomain_policy
    spf_ok = spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, found.strict_spf)
    dkim_ok = signed_by(signatures, from_domain, found.strict_dkim) is not None
    return DmarcVerdict("pass" if spf_ok or dkim_ok else "fail", policy, from_domain, found.domain,
                        spf_ok, dkim_ok)


def signed_by(signatures: Iterable[DkimSignature], domain: str, strict: bool) -> DkimSignature | None:
    """A verifying signature aligned with `domain` (DMARC's test; also the welcome lists'), if any."""
    return next((s for s in signatures if s.result == "pass" and aligned(s.domain, domain, strict)),
                None)


def aligned(domain: str, from_domain: str, strict: bool) -> bool:
    if not domain:
        return False
    if strict:
        return domain == from_domain
    return org_domain(domain) == org_domain(from_domain)
