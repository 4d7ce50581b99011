"""`eval:bayes(low, high)`: the Bayes verdict as banded rules, tunable like any other rule.

The scanner computes the probability once per message and leaves it in the check context; the
bands and their scores live in `shipped/23_bayes.cf`, so a site can reweigh them in local.cf.
The evidence names the tokens that weighed most, so a report can say why.
"""

from __future__ import annotations

from mailsift.classifier.bayes import Verdict
from mailsift.rules.registry import CheckContext, CheckResult, check

BAYES_KEY = "bayes"
EVIDENCE_TOKENS = 3


@check("bayes")
def bayes(ctx: CheckContext, low: float, high: float) -> CheckResult:
    """Hit when the spam probability lies in [low, high)."""
    verdict: Verdict | None = ctx.cache.get(BAYES_KEY)
    if verdict is None or not (low <= verdict.prob < high):
        return None
    clues = ", ".join(c.token for c in verdict.clues[:EVIDENCE_TOKENS])
    store = f"; {verdict.store}'s store" if verdict.store else ""
    return f"p={verdict.prob:.6g}{store}" + (f"; {clues}" if clues else "")
