"""Running a ruleset against an analysed message and adding up the score.

The engine is built once per process. For each score set (Bayes and network available or not) it
prepares a plan: which rules are enabled, their pattern sets compiled for hyperscan, header rules,
Python checks and metas in dependency order. Scoring a message is then one pass over that plan.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import regex

from mailsift.analysis.model import Message
from mailsift.config import ScanConfig
from mailsift.rules.header_sources import header_texts
from mailsift.rules.meta import MetaExpr, parse_meta
from mailsift.rules.model import RuleDef, RuleSet
from mailsift.rules.patterns import Budget, Match, PatternSet, regex_flags
from mailsift.rules.registry import Check, CheckContext
from mailsift.rules.result import Hit, Result

log = logging.getLogger(__name__)

PATTERN_KINDS = ("body", "rawbody", "uri", "full")
# SpamAssassin matches body rules per paragraph and uri rules per URI: with the lines joined by
# newlines, multi-line mode gives `^` and `$` that meaning. rawbody rules see each text part whole
# (SpamAssassin's chunks are 2-4 KB), so there `^` is the part's start unless the rule says /m.
MULTILINE_KINDS = frozenset({"body", "uri"})
# stdlib `re`, not `regex`: a plain split on every message's text, where `re` is ~20% faster.
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
DEFAULT_MAXHITS = 1000
# Where a text part past scan.body_part_scan_size / rawbody_part_scan_size is cut: at the first
# of these marks (in this order of preference) within CUT_SLACK characters past the limit, else
# at the limit, as SpamAssassin's Message.pm cuts (rendered text at a line or word end; raw text
# also after an HTML tag's `>`), so a phrase is not cut in half where a boundary is near.
BODY_CUT_MARKS = "\n "
RAWBODY_CUT_MARKS = "\n> "
CUT_SLACK = 1024


def _enabled(rule: RuleDef, score_set: int) -> bool:
    net, bayes = score_set & 1, score_set & 2
    if "net" in rule.tflags and not net:
        return False
    if "learn" in rule.tflags and not bayes:
        return False
    return rule.is_sub_rule or rule.score_for(score_set) != 0


@dataclass
class Plan:
    """What runs for one score set, prepared once."""

    score_set: int
    patterns: dict[str, PatternSet]
    headers: list[tuple[RuleDef, regex.Pattern[str] | None]]
    evals: list[RuleDef]
    metas: list[tuple[RuleDef, MetaExpr]]
    scores: dict[str, float] = field(default_factory=dict)


class Engine:
    def __init__(self, ruleset: RuleSet, checks: dict[str, Check], cache: Path | None = None) -> None:
        self.checks = checks
        self.cache = cache
        self.group_caps = dict(ruleset.group_caps)
        self.rules = ruleset.rules
        self.skipped = list(ruleset.skipped)
        self._regexes = self._compile_regexes()
        self._plans: dict[int, Plan] = {}

    def _compile_regexes(self) -> dict[str, regex.Pattern[str]]:
        compiled = {}
        for rule in self.rules.values():
            if rule.pattern is None or rule.eval_name:
                continue
            compiled[rule.name] = regex.compile(
                rule.pattern, regex_flags(rule, rule.kind in MULTILINE_KINDS))
        return compiled

    def plan(self, score_set: int) -> Plan:
        if score_set not in self._plans:
            self._plans[score_set] = self._build_plan(score_set)
        return self._plans[score_set]

    def _build_plan(self, score_set: int) -> Plan:
        started = time.perf_counter()
        enabled = [r for r in self.rules.values() if _enabled(r, score_set)]
        tests = [r for r in enabled if r.kind != "meta"]
        patterns = {
            kind: PatternSet(kind, ((r, self._regexes[r.name]) for r in tests
                                    if r.kind == kind and r.name in self._regexes),
                             multiline=kind in MULTILINE_KINDS, cache=self.cache)
            for kind in PATTERN_KINDS
        }
        plan = Plan(
            score_set=score_set,
            patterns=patterns,
            headers=[(r, self._regexes.get(r.name)) for r in tests
                     if r.kind == "header" and not r.eval_name],
            evals=[r for r in tests if r.eval_name],
            metas=_meta_order([r for r in enabled if r.kind == "meta"]),
            scores={r.name: r.score_for(score_set) for r in enabled},
        )
        log.info("score set %d: %d rules enabled, built in %.2fs; pattern modes %s", score_set,
                 len(enabled), time.perf_counter() - started,
                 {k: p.counts() for k, p in patterns.items()})
        return plan

    def run(self, ctx: CheckContext, score_set: int, required: float, budget_seconds: float) -> Result:
        started = time.perf_counter()
        errors: dict[str, str] = {}
        hits = self.all_hits(ctx, score_set, budget_seconds, errors)
        result = self._result(self.plan(score_set), hits, required, errors)
        result.elapsed = time.perf_counter() - started
        return result

    def all_hits(self, ctx: CheckContext, score_set: int, budget_seconds: float,
                 errors: dict[str, str]) -> dict[str, Match]:
        """Every rule that hit, `__` sub-rules and zero scores included (a `Result` lists only
        what scored): what bench/sa_rule_agreement.py compares with SpamAssassin's hits."""
        plan = self.plan(score_set)
        budget = Budget(budget_seconds)
        texts = RuleTexts(ctx.msg, ctx.config.scan)
        hits: dict[str, Match] = {}
        for kind, patterns in plan.patterns.items():
            for text in texts.segments(kind):
                _add_hits(hits, patterns.match(text, budget, errors), self.rules)
        hits.update(_header_hits(ctx.msg, plan.headers, budget, errors))
        hits.update(self._eval_hits(ctx, plan.evals, errors))
        _meta_hits(plan.metas, hits)
        return hits

    def _eval_hits(self, ctx: CheckContext, rules: list[RuleDef], errors: dict[str, str]
                   ) -> dict[str, Match]:
        hits = {}
        for rule in rules:
            check = self.checks[rule.eval_name or ""]
            try:
                outcome = check.func(ctx, *rule.eval_args)
            except Exception as exc:  # a broken check must not lose the message
                log.exception("rule %s: check %s raised; counted as not hit", rule.name, check.name)
                errors[rule.name] = f"check {check.name} raised {type(exc).__name__}: {exc}"
                continue
            if outcome:
                hits[rule.name] = Match(1, outcome if isinstance(outcome, str) else "")
        return hits

    def _result(self, plan: Plan, hits: dict[str, Match], required: float,
                errors: dict[str, str]) -> Result:
        scored = []
        for name, match in hits.items():
            rule = self.rules[name]
            score = plan.scores.get(name, 0.0)
            if rule.is_sub_rule or score == 0:
                continue
            scored.append(Hit(name, score, rule.describe, match.evidence, rule.group,
                              frozenset(rule.tflags)))
        scored.sort(key=lambda h: (-h.score, h.name))
        total, capped = _apply_group_caps(scored, self.group_caps)
        return Result(score=round(total, 3), required_score=required, hits=scored,
                      score_set=plan.score_set, rule_errors=errors, capped=capped)


class RuleTexts:
    """The text each rule kind matches, derived from the message once and only when needed.

    `body` and `rawbody` rules see the first scan.body_part_scan_size (50,000) and
    scan.rawbody_part_scan_size (500,000) characters of each text part, as in SpamAssassin, whose
    stock rules are written for that much. 78 of its body rules run on the `regex` engine
    (hyperscan cannot compile them, or not within patterns.PROBE_SECONDS), each over all of
    that text. Over whole parts, messages of 110 KB to 430 KB of text or HTML needed 2 to
    9 s of CPU with the stock rules loaded (the corpus' largest, synthetic plain and HTML mail);
    scan.rule_budget stopped them at 1 s and 29 to 40 rules, `uri` rules included, counted as
    not hit: a verdict that depended on the message's length and the host's load. A cut part
    still costs them about 1 s, and each further such part as much (six __FILL_THIS_FORM_*
    rules 0.6 s of it; Perl runs those 1.3 to 10 times faster). Links (`uri` rules), `full`
    rules, Bayes and Python checks see the whole message: they are linear or bounded.
    """

    def __init__(self, msg: Message, scan: ScanConfig) -> None:
        self.msg = msg
        self.scan = scan

    def for_kind(self, kind: str) -> str:
        return getattr(self, kind)

    def segments(self, kind: str) -> list[str]:
        """The texts a rule kind is matched against one by one: each text part for rawbody."""
        if kind == "rawbody":
            return [part_scan(part.raw_text, self.scan.rawbody_part_scan_size, RAWBODY_CUT_MARKS)
                    for part in self.msg.text_parts]
        return [self.for_kind(kind)]

    @cached_property
    def body(self) -> str:
        """One line per paragraph, like SpamAssassin's body: a phrase wrapped over lines still matches."""
        limit = self.scan.body_part_scan_size
        paragraphs = [p for part in self.msg.text_parts
                      for p in PARAGRAPH_BREAK.split(part_scan(part.text, limit, BODY_CUT_MARKS))]
        # split() + join: whitespace runs become one space, ends trimmed, 3x faster than a sub
        return "\n".join(filter(None, (" ".join(p.split()) for p in [self.msg.subject, *paragraphs])))

    @cached_property
    def uri(self) -> str:
        forms = dict.fromkeys(form for u in self.msg.uris for form in (u.url, u.raw))
        return "\n".join(forms)

    @cached_property
    def full(self) -> str:
        """The message as the milter holds it (CRLF), so a big file is read no further than it:
        all of it when the body went on past scan.max_bytes, which the milter then holds the
        headers and first scan.max_bytes of, else its first scan.max_bytes. Cut at scan.max_bytes
        of the whole message, a copy with more headers than the milter's (delivery's, the
        quarantine's Received) lost as much of the body's end, and a rule the milter hit there."""
        held = self.msg.held
        text = held if self.msg.body_truncated else held[: self.scan.max_bytes]
        return text.decode("utf-8", "replace")


def part_scan(text: str, limit: int, marks: str) -> str:
    """The start of a text part that rules see: all of it up to `limit` characters (0: no
    limit), else up to and including the first of `marks` found, in their order, within
    CUT_SLACK characters past the limit, else the first `limit` characters."""
    if not limit or len(text) <= limit:
        return text
    for mark in marks:
        at = text.find(mark, limit, limit + CUT_SLACK + 1)
        if at >= 0:
            return text[: at + 1]
    return text[:limit]


def _header_hits(msg: Message, rules: Iterable[tuple[RuleDef, regex.Pattern[str] | None]],
                 budget: Budget, errors: dict[str, str]) -> dict[str, Match]:
    hits: dict[str, Match] = {}
    values: dict[tuple[str, str], list[str | None]] = {}
    for rule, compiled in rules:
        header = rule.header or ""
        key = (header, rule.header_mod)
        if key not in values:
            values[key] = header_texts(msg, header, rule.header_mod)
        texts = values[key]
        if rule.exists:  # as SpamAssassin: a pseudo-header (ToCc...) exists when it has a value
            if any(text is not None for text in texts):
                hits[rule.name] = Match(1, header)
            continue
        found = _search_header(rule, compiled, texts, budget, errors)
        if found is not None:
            hits[rule.name] = found
    return hits


def _add_hits(hits: dict[str, Match], found: dict[str, Match], rules: dict[str, RuleDef]) -> None:
    """Merge one segment's hits: counts add up to the rule's maxhits, the first evidence stays."""
    for name, match in found.items():
        earlier = hits.get(name)
        if earlier is None:
            hits[name] = match
            continue
        count = earlier.count + match.count
        limit = rules[name].maxhits
        hits[name] = Match(min(count, limit) if limit else count, earlier.evidence)


def _search_header(rule: RuleDef, compiled: regex.Pattern[str] | None, texts: list[str | None],
                   budget: Budget, errors: dict[str, str]) -> Match | None:
    """The first text the pattern matches (each MIME part's for a mimeheader rule) is the hit;
    with `!~`, the rule hits when none matches."""
    if compiled is None:
        return None
    default = rule.if_unset if rule.if_unset is not None else ""
    for text in texts:
        try:
            m = compiled.search(default if text is None else text,
                                timeout=max(budget.remaining(), 0.001))
        except TimeoutError:
            log.warning("rule %s: exceeded the per-message time budget; counted as not hit", rule.name)
            errors[rule.name] = "exceeded the per-message time budget"
            return None
        if m:
            return None if rule.negate else Match(1, f"{rule.header}: {m.group(0)[:60]}")
    return Match(1, "") if rule.negate else None


def _meta_order(metas: list[RuleDef]) -> list[tuple[RuleDef, MetaExpr]]:
    """Metas sorted so that a meta on other metas runs after them; a cycle is dropped and logged."""
    compiled = {r.name: (r, parse_meta(r.meta_expr or "")) for r in metas}
    ordered: list[tuple[RuleDef, MetaExpr]] = []
    state: dict[str, int] = {}  # 1 = being visited, 2 = done

    def visit(name: str, trail: tuple[str, ...]) -> bool:
        if state.get(name) == 2:
            return True
        if state.get(name) == 1:
            log.warning("meta rule %s is part of a cycle (%s); disabled", name, " -> ".join(trail))
            return False
        state[name] = 1
        rule, expr = compiled[name]
        ok = all(visit(dep, (*trail, dep)) for dep in expr.names if dep in compiled)
        state[name] = 2
        if ok:
            ordered.append((rule, expr))
        return ok

    for name in compiled:
        visit(name, (name,))
    return ordered


def _meta_hits(metas: list[tuple[RuleDef, MetaExpr]], hits: dict[str, Match]) -> None:
    counts = {name: m.count for name, m in hits.items()}
    for rule, expr in metas:
        if expr.evaluate(counts):
            hits[rule.name] = Match(1, "")
            counts[rule.name] = 1


def _apply_group_caps(hits: list[Hit], caps: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Sum the hits, limiting each capped group's total: one noisy family cannot decide alone."""
    by_group: dict[str, float] = {}
    total = 0.0
    for hit in hits:
        if hit.group in caps:
            by_group[hit.group] = by_group.get(hit.group, 0.0) + hit.score
        else:
            total += hit.score
    capped = {}
    for group, subtotal in by_group.items():
        limit = caps[group]
        if subtotal > limit:
            capped[group] = round(subtotal - limit, 3)
            subtotal = limit
        total += subtotal
    return total, capped
