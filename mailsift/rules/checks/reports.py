"""`eval:reported(kind)`: the message matches spam that someone reported with `learn --report`.

The lookup happens once per message in the scanner (it needs the store); these rules only read
its result. "body" means most of the message's text lines were reported — a copy with another
greeting or other tracking parameters still matches; "url" means one of its links was.
"""

from __future__ import annotations

from mailsift.classifier.reports import ReportMatch
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

REPORTS_KEY = "reports"
GROUP = "reports"


@check("reported",
       DefaultRule("DIGEST_REPORTED", 4.5, "Most of the text matches spam reported by a user",
                   args=("body",), group=GROUP),
       DefaultRule("DIGEST_URL_REPORTED", 1.5, "Links to a page seen in spam reported by a user",
                   args=("url",), group=GROUP))
def reported(ctx: CheckContext, kind: str) -> CheckResult:
    found: ReportMatch | None = ctx.cache.get(REPORTS_KEY)
    if found is None:
        return None
    if kind == "body" and found.body_reported:
        return f"{found.lines} of {found.of_lines} lines reported"
    if kind == "url" and found.urls:
        return f"{found.urls} link(s) reported"
    return None
