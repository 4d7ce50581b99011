"""The text of `mailsift rules lint`: what was loaded from each rule file, what was not, and why.

Admins point mailsift at SpamAssassin rule sets they did not write; the lint output tells them,
per file, how many rules mailsift will run, which lines it could not use (with `file:line` and the
reason), and which directives it read but does not act on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from mailsift.rules.cf_parser import CHECK_SOURCE, UNKNOWN_EVAL, load_rule_files
from mailsift.rules.model import KINDS, LintItem, RuleSet


def kind_shares(rules: RuleSet) -> dict[str, tuple[int, int]]:
    """(loaded, total) rules per kind; a rule skipped and then defined again counts as loaded once."""
    shares: dict[str, tuple[int, int]] = {}
    for kind in KINDS:
        loaded = {name for name, rule in rules.rules.items()
                  if rule.kind == kind and not rule.source.startswith(CHECK_SOURCE)}
        skipped = {item.rule for item in rules.skipped if item.kind == kind} - loaded
        shares[kind] = (len(loaded), len(loaded) + len(skipped))
    return shares


def loaded_share(rules: RuleSet) -> tuple[int, int]:
    """(loaded, total) over the six rule kinds (header, body, rawbody, uri, full, meta)."""
    shares = kind_shares(rules).values()
    return sum(loaded for loaded, _ in shares), sum(total for _, total in shares)


def lint_errors(rules: RuleSet) -> list[LintItem]:
    """The skipped lines that are mistakes in a rule file (a bad regex, a score that is no
    number...), which fail `configtest` as `spamassassin --lint` fails. A rule calling an eval
    check mailsift does not have is left out: SpamAssassin's own rule set has hundreds (its
    plugins), so a site loading it would otherwise never pass; `rules lint` lists those too,
    and exits 1 for any skipped line."""
    return [item for item in rules.skipped if not item.message.startswith(UNKNOWN_EVAL)]


def warn_rule_mistakes(rules: RuleSet, log: logging.Logger) -> None:
    """Name every rule line skipped as a mistake (scoring goes on without it), where the rules
    are loaded to score: the milter's start, and `mailsift check`. A restart after a bad edit to
    local.cf said nothing, and `check`, where an admin tries a new rule, still said nothing: the
    rule simply never hit."""
    for item in lint_errors(rules):
        log.warning("rule skipped: %s", item_text(item))


def unapplied_settings(rules: RuleSet, configured: Mapping[str, float]) -> list[LintItem]:
    """The notes on SpamAssassin settings that change verdicts and that mailsift does not apply
    (`LintItem.verdict`), the files loaded last (the site's own) first. `configured`: the values
    mailsift.toml gives such settings, by their SpamAssassin names; a line giving the same value
    changes nothing (SpamAssassin's own defaults file sets required_score 5, and a local.cf may
    write out body_part_scan_size 50000) and is left out."""
    order = {name: index for index, name in enumerate(rules.files)}
    found = [item for item in rules.notes if item.verdict
             and not (item.rule in configured and _number(item.value) == configured[item.rule])]
    return sorted(found, key=lambda item: -order.get(file_of(item.source), -1))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def item_text(item: LintItem) -> str:
    """`file:line RULE: why`, as lint lists a skipped line or a note (with its value, if kept)."""
    value = f" {item.value}" if item.value else ""
    return f"{item.source} {item.rule}{value}: {item.message}"


def lint_report(paths: list[Path], checks: dict[str, object], verbose: bool = False,
                beside: list[Path] | None = None) -> tuple[str, int]:
    """Load the rule files and describe the outcome; exit code 0 if nothing was skipped and
    something was read from every file, else 1 (`rules lint photo.jpg` is a mistake).

    `beside`: the other rule files the milter loads with `paths`, read only for their rule names
    so that a local.cf linted alone may rescore them without a note.
    Notes are summarised per directive (count and first place) unless `verbose`, because stock
    SpamAssassin files carry thousands of settings mailsift does not use.
    """
    others = [path for path in beside or [] if path not in paths]
    known = load_rule_files(others, checks).rules.keys() if others else ()
    rules = load_rule_files(paths, checks, known)
    lines = [_file_line(rules, name) for name in rules.files]
    if rules.skipped:
        lines += ["", f"Skipped ({len(rules.skipped)}):"]
        lines += [f"  {item_text(item)}" for item in rules.skipped]
    if rules.notes:
        lines += ["", f"Notes ({len(rules.notes)}):"]
        lines += _verbose_notes(rules.notes) if verbose else _summarised_notes(rules.notes)
    if rules.unread:
        lines += ["", f"Nothing read ({len(rules.unread)}):"]
        lines += [f"  {path}: {why}" for path, why in rules.unread.items()]
    lines += ["", _total_line(rules)]
    return "\n".join(lines) + "\n", 1 if rules.skipped or rules.unread else 0


def file_of(source: str) -> str:
    return source.rsplit(":", 1)[0]


def _file_line(rules: RuleSet, name: str) -> str:
    """`file: body 120, meta 40; skipped 2` for one file (rules overridden later count there)."""
    kinds = Counter(rule.kind for rule in rules.rules.values() if file_of(rule.source) == name)
    skipped = sum(1 for item in rules.skipped if file_of(item.source) == name)
    loaded = ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS if kinds[kind]) or "no rules"
    return f"{name}: {loaded}; skipped {skipped}"


def _verbose_notes(notes: list[LintItem]) -> list[str]:
    return [f"  {item_text(item)}" for item in notes]


def _summarised_notes(notes: list[LintItem]) -> list[str]:
    """One line per directive: how many lines, what it means, where the first one is."""
    first: dict[str, LintItem] = {}
    counts: Counter[str] = Counter()
    for item in notes:
        first.setdefault(item.rule, item)
        counts[item.rule] += 1
    return [
        f"  {directive} x{count}: {first[directive].message} (first at {first[directive].source})"
        for directive, count in counts.most_common()
    ]


def _total_line(rules: RuleSet) -> str:
    loaded, total = loaded_share(rules)
    if not total:  # "0 of 0 rules (100.0%)" read as all well
        return "Loaded no rules: none found"
    percent = 100.0 * loaded / total
    per_kind = ", ".join(
        f"{kind} {done}/{count}" for kind, (done, count) in kind_shares(rules).items() if count
    )
    return f"Loaded {loaded} of {total} rules ({percent:.1f}%): {per_kind or 'none'}"
