"""`eval:sender_domain(KIND)`, `eval:from_forgery(KIND)`: the sender's domains and the From line.

Read from the network verdicts (see `mailsift.network.sender`); rules using them carry `tflags net`.
"""

from __future__ import annotations

from mailsift.rules.checks.network_auth import network_verdicts
from mailsift.rules.registry import CheckContext, CheckResult, check


@check("sender_domain")
def sender_domain(ctx: CheckContext, kind: str) -> CheckResult:
    """nxdomain, no_mx (neither MX nor address), weak (neither SPF nor DMARC)."""
    return network_verdicts(ctx).findings.get(f"sender.{kind}")


@check("from_forgery")
def from_forgery(ctx: CheckContext, kind: str) -> CheckResult:
    """freemail_reply_to, name_own_domain (display name claims our domain), lookalike (imitates ours)."""
    return network_verdicts(ctx).findings.get(f"from.{kind}")
