"""`eval:spf(RESULT)`, `eval:dkim(STATE)`, `eval:dmarc(RESULT[, POLICY])`, `eval:arc(STATE)`: sender
authentication.

The verdicts were gathered before the rules ran (`mailsift.network.gather`); these checks only read
them, so every rule of a family agrees with the others and with the Authentication-Results header.
Rules using them carry `tflags net`: without the network they are off.
"""

from __future__ import annotations

from mailsift.network.dmarc import signed_by
from mailsift.network.verdicts import HISTORIC_HASH, NETWORK_KEY, NetworkVerdicts
from mailsift.rules.registry import CheckContext, CheckResult, check


def network_verdicts(ctx: CheckContext) -> NetworkVerdicts:
    """The message's verdicts; empty ones when the network checks did not run."""
    found = ctx.cache.get(NETWORK_KEY)
    return found if isinstance(found, NetworkVerdicts) else NetworkVerdicts()


@check("spf")
def spf(ctx: CheckContext, result: str) -> CheckResult:
    """Hit when SPF for the envelope sender (HELO for bounces) gave `result`."""
    verdict = network_verdicts(ctx).spf
    if verdict is None or verdict.result != result:
        return None
    return f"{verdict.identity} {verdict.sender} from {verdict.client_ip}: {verdict.result}"


@check("dkim")
def dkim(ctx: CheckContext, state: str) -> CheckResult:
    """valid: a signature verifies; aligned: one of the From domain does; invalid: signatures, none
    verifying (temporary key failures aside); partial: a signature verifies over the start of the
    body only (l=), and content follows it; sha1: a signature verifies with rsa-sha1, which counts
    for nothing (RFC 8301), and no other signature of its domain verifies; absent: no signature."""
    verdicts = network_verdicts(ctx)
    signatures = verdicts.dkim
    good = [s for s in signatures if s.result == "pass"]
    if state == "valid":
        return ", ".join(s.domain for s in good) if good else None
    if state == "aligned":
        mine = signed_by(signatures, verdicts.from_domain, strict=False)
        return mine.domain if mine else None
    if state == "invalid":
        broken = [s for s in signatures if s.result in ("fail", "permerror")]
        return None if good or not broken else f"{broken[0].domain}: {broken[0].reason}"
    if state == "partial":
        tails = [s for s in signatures if s.unsigned_bytes]
        return f"{tails[0].domain}: {tails[0].reason}" if tails else None
    if state == "sha1":
        passed = {s.domain for s in good}
        refused = [s for s in signatures if s.reason == HISTORIC_HASH and s.domain not in passed]
        return f"{refused[0].domain}: {refused[0].reason}" if refused else None
    if state == "absent":
        return not signatures and NETWORK_KEY in ctx.cache
    raise ValueError(f"unknown dkim state {state!r}")


@check("dmarc")
def dmarc(ctx: CheckContext, result: str, policy: str = "") -> CheckResult:
    """Hit when DMARC gave `result` (and, if given, the From domain's policy is `policy`); a failure
    whose policy we override is shown by the rule of the reason: DKIM_UNSIGNED_TAIL (the domain
    signed part of the body), ARC_TRUSTED_FORWARD (a trusted forwarder saw it pass)."""
    verdict = network_verdicts(ctx).dmarc
    if (verdict is None or verdict.result != result or (policy and verdict.policy != policy)
            or verdict.override):
        return None
    if not verdict.record_domain:
        return f"{verdict.from_domain} publishes no DMARC record"
    missing = ", no such subdomain" if verdict.policy_tag == "np" else ""
    tag = verdict.policy_tag or "p"
    asked = f"{tag}={verdict.policy}{missing}"
    if verdict.testing:  # the owner is testing: what it published, and why less applies
        asked = f"{tag}={verdict.published}{missing}, {verdict.testing}: applied as {verdict.policy}"
    return f"{verdict.from_domain} (record at {verdict.record_domain}, {asked})"


@check("arc")
def arc(ctx: CheckContext, state: str) -> CheckResult:
    """trusted_forward: DMARC failed, and a forwarder in network.arc_trusted_sealers sealed a valid
    ARC chain recording that the From domain's mail passed on arrival; its policy was not applied."""
    if state != "trusted_forward":
        raise ValueError(f"unknown arc state {state!r}")
    verdict = network_verdicts(ctx).dmarc
    return verdict.override if verdict is not None and verdict.forwarder else None
