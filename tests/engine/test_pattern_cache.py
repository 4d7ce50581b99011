"""Probing a pattern's hyperscan mode is cached per pattern: with SpamAssassin's rules loaded the
probes take close to a minute, and a cache keyed by the whole set made every edit of one rule
file pay all of it again, at the next start and at every reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config import Config
from mailsift.rules import patterns
from mailsift.rules.engine import Engine
from mailsift.rules.model import RuleDef, RuleSet
from mailsift.rules.registry import CheckContext
from tests.engine.test_engine import message, rule

RULES = [rule("WORD_ONE", "body", r"\bcheap\s+watches\b"), rule("WORD_TWO", "body", r"lottery\s+win"),
         rule("A_URL", "uri", r"example\.test/x")]


def build(rules: list[RuleDef], cache: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Build an engine's plan; return the patterns it had to probe."""
    probed: list[bytes] = []
    real = patterns._hyperscan_mode

    def counting(expression: bytes, flags: int) -> tuple[str, int]:
        probed.append(expression)
        return real(expression, flags)

    monkeypatch.setattr(patterns, "_hyperscan_mode", counting)
    engine = Engine(RuleSet(rules={r.name: r for r in rules}), {}, cache)
    engine.plan(0)
    return probed


def test_an_added_rule_probes_that_rule_only_and_a_restart_probes_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(build(RULES, tmp_path, monkeypatch)) == 3
    assert build(RULES, tmp_path, monkeypatch) == []
    added = [*RULES, rule("WORD_THREE", "body", r"act\s+now")]
    assert build(added, tmp_path, monkeypatch) == [rb"act\s+now"]
    engine = Engine(RuleSet(rules={r.name: r for r in added}), {}, tmp_path)
    result = engine.run(CheckContext(message("please act now for cheap watches"), Config()), 0, 5.0, 1.0)
    assert {"WORD_ONE", "WORD_THREE"} <= set(result.rule_names)  # the cached modes work


def test_an_unreadable_cache_is_probed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(RULES, tmp_path, monkeypatch)
    [modes] = tmp_path.glob("modes-*")
    modes.write_text("garbage\n")
    assert len(build(RULES, tmp_path, monkeypatch)) == 3
