"""Presenting a verdict: SpamAssassin-compatible headers and the `Score | Rule | Description` table.

The header format matches SpamAssassin's so that existing Sieve scripts, procmail recipes and
mail-client filters on `X-Spam-Flag` / `X-Spam-Status` keep working after the switch.
"""

from __future__ import annotations

import textwrap

from mailsift import __version__
from mailsift.rules.result import Result

MAX_LEVEL = 50
LEVEL_CHAR = "*"
CAP_DESCRIPTION = "group total limited to its cap"


def status_line(result: Result, extra: str = "") -> str:
    """The X-Spam-Status value: verdict, score, threshold and the rules that hit."""
    verdict = "Yes" if result.is_spam else "No"
    tests = ",".join(sorted(result.rule_names)) or "none"
    line = f"{verdict}, score={result.score:.1f} required={result.required_score:.1f} tests={tests}"
    if extra:
        line += f" {extra}"
    return f"{line} version=mailsift-{__version__}"


def spam_headers(result: Result, extra: str = "") -> list[tuple[str, str]]:
    """The headers added to every scanned message, in the order SpamAssassin writes them.

    `extra` goes into X-Spam-Status before the version, e.g. "autolearn=spam" as SpamAssassin
    writes it (some sites' scripts read it)."""
    level = LEVEL_CHAR * min(max(int(result.score), 0), MAX_LEVEL)
    return [
        ("X-Spam-Flag", "YES" if result.is_spam else "NO"),
        ("X-Spam-Score", f"{result.score:.1f}"),
        ("X-Spam-Level", level),
        ("X-Spam-Status", status_line(result, extra)),
    ]


def report_text(result: Result) -> str:
    """The X-Spam-Report value: every rule that hit, its score and evidence, in one line."""
    parts = [f"{h.name}={h.score:.1f}" + (f" [{h.evidence}]" if h.evidence else "") for h in result.hits]
    return "; ".join(parts) or "none"


def fold(name: str, value: str, width: int = 78) -> str:
    """One header as it would be written, folded at commas and spaces so no line is too long."""
    lines = textwrap.wrap(value, width=width - 1, initial_indent=" " * (len(name) + 2),
                          subsequent_indent="\t", break_long_words=False, break_on_hyphens=False)
    first = lines[0][len(name) + 2:] if lines else ""
    return "\n".join([f"{name}: {first}", *lines[1:]])


def cap_rows(capped: dict[str, float]) -> list[tuple[float, str, str]]:
    """(score, name, description) of what each capped group lost: rows of their own in every rule
    table (check's, the quarantine's), else the rows add up to more than the score."""
    return [(-removed, f"(cap: {group})", CAP_DESCRIPTION) for group, removed in sorted(capped.items())]


def rule_table(result: Result) -> str:
    """Highest score first, with the evidence that made each rule fire."""
    rows = [" Score | Rule                     | Description",
            "-------+--------------------------+" + "-" * 40]
    for hit in result.hits:
        description = hit.description or "(no description)"
        if hit.evidence:
            description += f" [{hit.evidence}]"
        rows.append(f"{hit.score:6.1f} | {hit.name:<24} | {description}")
    for score, name, description in cap_rows(result.capped):
        rows.append(f"{score:6.1f} | {name:<24} | {description}")
    for name, why in sorted(result.rule_errors.items()):
        rows.append(f"{'-':>6} | {name:<24} | not scored: {why}")
    return "\n".join(rows)
