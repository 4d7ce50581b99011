"""Matching many regex rules against one text in linear time, with a budget for the rest.

Hyperscan scans the text once for every pattern it can compile, so a ruleset's cost hardly grows
with its size and a pathological pattern such as `(a+)+$` cannot backtrack. A hyperscan hit is then
confirmed by the `regex` module, which gives the exact Python/Perl semantics and the matched text
for the report. Patterns hyperscan rejects even as a prefilter (rare constructs) run on `regex`
alone, under the message's time budget; a rule that overruns is logged by name and counts as no hit.

The text is scanned as UTF-8. `\\w`, `\\d` and `\\b` are ASCII in hyperscan, so the confirming
`regex` uses ASCII semantics too for ASCII patterns — the same as SpamAssassin matching bytes —
which keeps the two engines in agreement and the fast path free of false negatives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import hyperscan
import regex

from mailsift.rules.model import RuleDef

log = logging.getLogger(__name__)

EVIDENCE_CHARS = 60

# Modes a compiled rule can be in: hyperscan decides alone (exact), hyperscan narrows the candidates
# that `regex` decides (prefilter), or `regex` alone under the time budget.
EXACT, PREFILTER, REGEX_ONLY = "exact", "prefilter", "regex"


class Budget:
    """Seconds left for the slow path of one message; shared by every pattern set and header rule."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()


@dataclass
class Match:
    count: int
    evidence: str


def regex_flags(rule: RuleDef, multiline: bool) -> int:
    flags = regex.V0
    if "i" in rule.flags:
        flags |= regex.IGNORECASE
    if "s" in rule.flags:
        flags |= regex.DOTALL
    if "x" in rule.flags:
        flags |= regex.VERBOSE
    if multiline or "m" in rule.flags:
        flags |= regex.MULTILINE
    if _is_ascii_pattern(rule.pattern or ""):
        flags |= regex.ASCII
    return flags


def _is_ascii_pattern(pattern: str) -> bool:
    """True when the pattern names only ASCII characters, so ASCII class semantics lose nothing."""
    return pattern.isascii() and not regex.search(r"\\(?:x\{|u|U|N\{|p\{|P\{|x[89a-fA-F])", pattern)


def _hyperscan_source(rule: RuleDef, multiline: bool) -> tuple[bytes, int]:
    """The rule's pattern and flags as hyperscan (PCRE syntax, UTF-8 mode) expects them."""
    pattern = (rule.pattern or "").replace("(?P<", "(?<")
    pattern = regex.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1\\z", pattern)
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_ALLOWEMPTY
    if "i" in rule.flags:
        flags |= hyperscan.HS_FLAG_CASELESS
    if "s" in rule.flags:
        flags |= hyperscan.HS_FLAG_DOTALL
    if multiline or "m" in rule.flags:
        flags |= hyperscan.HS_FLAG_MULTILINE
    if "x" in rule.flags:
        pattern = "(?x)" + pattern
    if not _is_ascii_pattern(pattern):
        flags |= hyperscan.HS_FLAG_UCP
    return pattern.encode("utf-8"), flags


def _compiles(expression: bytes, flags: int) -> bool:
    try:
        hyperscan.Database().compile(expressions=[expression], ids=[0], elements=1, flags=[flags])
    except hyperscan.error:
        return False
    return True


def _hyperscan_mode(expression: bytes, flags: int) -> tuple[str, int]:
    if _compiles(expression, flags):
        return EXACT, flags
    # Case-insensitive non-ASCII text needs UCP, which refuses \b: such patterns stay on `regex`.
    prefilter = flags | hyperscan.HS_FLAG_PREFILTER
    if _compiles(expression, prefilter):
        return PREFILTER, prefilter
    return REGEX_ONLY, flags


@dataclass
class _Entry:
    rule: RuleDef
    compiled: regex.Pattern[str]
    mode: str
    multiple: bool


class PatternSet:
    """All enabled rules of one kind (body, rawbody, uri or full), matched together."""

    def __init__(self, kind: str, rules: Iterable[tuple[RuleDef, regex.Pattern[str]]],
                 multiline: bool) -> None:
        self.kind = kind
        self.entries: list[_Entry] = []
        expressions: list[bytes] = []
        hs_flags: list[int] = []
        ids: list[int] = []
        for rule, compiled in rules:
            expression, flags = _hyperscan_source(rule, multiline)
            mode, flags = _hyperscan_mode(expression, flags)
            entry = _Entry(rule, compiled, mode, "multiple" in rule.tflags)
            if mode != REGEX_ONLY:
                ids.append(len(self.entries))
                expressions.append(expression)
                hs_flags.append(flags)
            self.entries.append(entry)
        self.database: hyperscan.Database | None = None
        if expressions:
            self.database = hyperscan.Database()
            self.database.compile(expressions=expressions, ids=ids, elements=len(ids), flags=hs_flags)
            self.scratch = hyperscan.Scratch(self.database)
        self.slow = [e for e in self.entries if e.mode == REGEX_ONLY]

    def counts(self) -> dict[str, int]:
        """How many rules run in each mode: for lint and the start-up log."""
        found = {EXACT: 0, PREFILTER: 0, REGEX_ONLY: 0}
        for entry in self.entries:
            found[entry.mode] += 1
        return found

    def match(self, text: str, budget: Budget, errors: dict[str, str]) -> dict[str, Match]:
        hits: dict[str, Match] = {}
        for entry in self._candidates(text):
            found = _confirm(entry, text, budget, errors)
            if found is not None:
                hits[entry.rule.name] = found
        return hits

    def _candidates(self, text: str) -> list[_Entry]:
        candidates: set[int] = set()
        if self.database is not None and text:

            def on_match(rule_id: int, _start: int, _end: int, _flags: int, _ctx: object) -> None:
                candidates.add(rule_id)

            self.database.scan(text.encode("utf-8", "replace"), match_event_handler=on_match,
                               scratch=self.scratch)
        return [self.entries[i] for i in sorted(candidates)] + self.slow


def _confirm(entry: _Entry, text: str, budget: Budget, errors: dict[str, str]) -> Match | None:
    """Run the exact regex for a candidate; decide what a budget overrun means for its mode."""
    remaining = budget.remaining()
    if remaining <= 0:
        return _overrun(entry, errors, "time budget for slow rules already spent")
    try:
        if entry.multiple:
            found = list(_limited(entry.compiled.finditer(text, timeout=remaining), entry.rule.maxhits))
            if not found:
                return None
            return Match(len(found), _evidence(found[0].group(0)))
        m = entry.compiled.search(text, timeout=remaining)
    except TimeoutError:
        return _overrun(entry, errors, "exceeded the per-message time budget")
    return Match(1, _evidence(m.group(0))) if m else None


def _overrun(entry: _Entry, errors: dict[str, str], why: str) -> Match | None:
    """An exact hyperscan hit stands without evidence; otherwise the rule counts as not hit."""
    if entry.mode == EXACT:
        return Match(1, "")
    log.warning("rule %s: %s; counted as not hit", entry.rule.name, why)
    errors[entry.rule.name] = why
    return None


def _limited(matches: Iterable[regex.Match[str]], limit: int) -> Iterable[regex.Match[str]]:
    for count, m in enumerate(matches, 1):
        yield m
        if limit and count >= limit:
            return


def _evidence(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"
