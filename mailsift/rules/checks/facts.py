"""`eval:fact(NAME)`: lets a rule file score an anomaly the message analysis recorded.

The analysis never raises on malformed input; it records facts (see `mailsift.analysis.facts`).
Scoring them in rule files keeps the weights tunable like any other rule.
"""

from __future__ import annotations

from mailsift.rules.registry import CheckContext, CheckResult, check


@check("fact")
def fact(ctx: CheckContext, name: str) -> CheckResult:
    """Hit when the analysis recorded `name`; the evidence is what it noted."""
    if name not in ctx.msg.facts:
        return None
    return ctx.msg.facts.items[name] or True
