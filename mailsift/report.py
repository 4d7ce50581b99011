"""Presenting a verdict: SpamAssassin-compatible headers and the `Score | Rule | Description` table.

The header format matches SpamAssassin's so that existing Sieve scripts, procmail recipes and
mail-client filters on `X-Spam-Flag` / `X-Spam-Status` keep working after the switch.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from mailsift import __version__
from mailsift.rules.result import Result

if TYPE_CHECKING:
    from mailsift.config import Config  # which imports this module's users (quarantine.model)

MAX_LEVEL = 50
LEVEL_CHAR = "*"
CAP_DESCRIPTION = "group total limited to its cap"
# X-Spam-Report's longest value in bytes: far above any real message's report (a few hundred),
# far below the 64 KiB libmilter passes even once folded, and readable in a mail client.
REPORT_BYTES = 16_000
LEFT_OUT = "and {} more rules"
# Control characters other than the whitespace fold() turns into spaces: a rule's evidence
# quotes the sender's text, and a NUL in a header value made pymilter raise (milter.on_error).
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
AUTH_RESULTS_NAME = "Authentication-Results"  # added_headers names ours so; the milter puts it on top


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


def added_headers(result: Result, config: Config, outbound: bool, extra: str = ""
                  ) -> list[tuple[str, str]]:
    """The headers the milter adds to a message it passes on, as the keys deciding them say:
    the X-Spam headers (`extra` as for spam_headers), X-Spam-Report with actions.report_header,
    and Authentication-Results with the network checks on; none for outbound mail without
    outbound.add_headers. One list for the milter and `mailsift check`, so that check shows an
    admin the headers the milter adds, not headers it keeps back."""
    if outbound and not config.outbound.add_headers:
        return []
    headers = spam_headers(result, extra)
    if config.actions.report_header:
        headers.append(("X-Spam-Report", report_text(result)))
    if result.auth_results:
        headers.append((AUTH_RESULTS_NAME, result.auth_results))
    return headers


def with_evidence(text: str, evidence: str) -> str:
    """A rule's text followed by what made it fire, in brackets, as every report writes it."""
    return f"{text} [{evidence}]" if evidence else text


def report_text(result: Result) -> str:
    """The X-Spam-Report value: every rule that hit, its score and evidence, in one line, within
    REPORT_BYTES once written. A site's own rule files can make hundreds of rules hit one crafted
    message, and a value over libmilter's 64 KiB is refused, which met milter.on_error on every
    retry; the rules left out are counted (the score and X-Spam-Status still name them all).
    Measured as written: control characters escaped, as `fold` shows them, UTF-8 bytes."""
    parts = [escaped(with_evidence(f"{h.name}={h.score:.1f}", h.evidence)) for h in result.hits]
    text = "; ".join(parts) or "none"
    if len(text.encode()) <= REPORT_BYTES:
        return text
    kept, used = 0, len(LEFT_OUT) + 8  # room for the count of those left out
    for part in parts:
        used += len(part.encode()) + 2
        if used > REPORT_BYTES:
            break
        kept += 1
    return "; ".join([*parts[:kept], LEFT_OUT.format(len(parts) - kept)])


def escaped(text: str) -> str:
    """`text` with its control characters shown escaped (\\x00): no header may carry them, and
    the evidence quotes whatever the sender wrote."""
    return CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


def fold(name: str, value: str, width: int = 78) -> str:
    """One header as it would be written, folded at commas and spaces so no line is too long;
    control characters are shown escaped (\\x00), as no header may carry them."""
    value = escaped(value)
    lines = textwrap.wrap(value, width=width - 1, initial_indent=" " * (len(name) + 2),
                          subsequent_indent="\t", break_long_words=False, break_on_hyphens=False)
    first = lines[0][len(name) + 2:] if lines else ""
    return "\n".join([f"{name}: {first}", *lines[1:]])


def cap_rows(capped: dict[str, float]) -> list[tuple[float, str, str]]:
    """(score, name, description) of what each capped group lost: rows of their own in every rule
    table (check's, the quarantine's), else the rows add up to more than the score."""
    return [(-removed, f"(cap: {group})", CAP_DESCRIPTION) for group, removed in sorted(capped.items())]


def score_text(score: float) -> str:
    """A rule's score as a rules file would write it: one decimal, or as many (up to three, as
    `Result.as_dict` keeps) as it takes not to hide it. SpamAssassin gives rules that only inform
    0.001, and shown as 0.0 such a rule reads as one that was turned off."""
    text = f"{score:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def score_table(rows: list[tuple[float | None, str, str]], rule_heading: str = "Rule") -> str:
    """The `Score | Rule | Description` table of (score, rule, description) rows, for `check` and
    `quarantine show`. The columns widen to the longest score and rule name: SpamAssassin's own
    names run past 40 characters, and a fixed width pushed those rows' descriptions out of line.
    A row whose score is None was not scored (its description says why)."""
    scores = [score_text(score) if score is not None else "-" for score, _, _ in rows]
    score_width = max([len(" Score"), *map(len, scores)])
    name_width = max([24, len(rule_heading), *(len(name) for _, name, _ in rows)])
    lines = [f"{'Score':>{score_width}} | {rule_heading:<{name_width}} | Description",
             f"{'-' * (score_width + 1)}+{'-' * (name_width + 2)}+{'-' * 40}"]
    lines += [f"{score:>{score_width}} | {name:<{name_width}} | {description}"
              for score, (_, name, description) in zip(scores, rows, strict=True)]
    return "\n".join(lines)


def rule_table(result: Result) -> str:
    """Highest score first, with the evidence that made each rule fire."""
    rows: list[tuple[float | None, str, str]] = [
        (hit.score, hit.name, with_evidence(hit.description or "(no description)", hit.evidence))
        for hit in result.hits]
    rows += cap_rows(result.capped)
    rows += [(None, name, f"not scored: {why}") for name, why in sorted(result.rule_errors.items())]
    return score_table(rows)
