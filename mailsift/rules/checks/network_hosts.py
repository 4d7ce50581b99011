"""`eval:rdns(KIND)`, `eval:helo(KIND)`: the connecting host's reverse DNS and HELO name.

Read from the network verdicts (see `mailsift.network.hosts` for what each kind means); rules using
them carry `tflags net`.
"""

from __future__ import annotations

from mailsift.rules.checks.network_auth import network_verdicts
from mailsift.rules.registry import CheckContext, CheckResult, check


@check("rdns")
def rdns(ctx: CheckContext, kind: str) -> CheckResult:
    """none: no PTR record; unconfirmed: the PTR name does not resolve back; dynamic: generic name."""
    return network_verdicts(ctx).findings.get(f"rdns.{kind}")


@check("helo")
def helo(ctx: CheckContext, kind: str) -> CheckResult:
    """not_fqdn, ip_mismatch (address literal of another host), own_domain (our name, outside host)."""
    return network_verdicts(ctx).findings.get(f"helo.{kind}")
