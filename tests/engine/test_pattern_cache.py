"""Probing a pattern's hyperscan mode is cached per pattern: with SpamAssassin's rules loaded the
probes take close to a minute, and a cache keyed by the whole set made every edit of one rule
file pay all of it again, at the next start and at every reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import hyperscan
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
    real = patterns._probe_all

    def counting(sources: list[tuple[bytes, int]]) -> list[tuple[str, int]]:
        probed.extend(expression for expression, _ in sources)
        return real(sources)

    monkeypatch.setattr(patterns, "_probe_all", counting)
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


# Bounded gaps between alternations, caseless in UTF-8/UCP mode: hyperscan compiles this for
# over 30 s (it then works); three such gaps are common in SpamAssassin's phrase rules.
SLOW = rb"(?:click|visit|go)[^<]{0,300}(?:here|now)[^<]{0,300}(?:free|win)[^<]{0,300}(?:prize|cash)"
SLOW_FLAGS = (hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_UTF8
              | hyperscan.HS_FLAG_UCP)


def test_a_pattern_hyperscan_compiles_too_slowly_is_given_up_on_time() -> None:
    """pebble's SIGTERM waited for the compile to return (its handler runs in Python), then up
    to 3 s for SIGKILL: SpamAssassin's stock rules took 65 s to start instead of 22."""
    fast = [(f"word{i}".encode(), hyperscan.HS_FLAG_SINGLEMATCH) for i in range(16)]
    started = time.monotonic()
    modes = patterns._probe_all([(SLOW, SLOW_FLAGS), *fast])
    assert time.monotonic() - started < 2.5
    assert modes[0] == (patterns.REGEX_ONLY, SLOW_FLAGS)
    assert {mode for mode, _ in modes[1:]} == {patterns.EXACT}


def test_probing_beside_other_threads_works_from_the_fork_server() -> None:
    """A reload probes new patterns in the threaded milter, where plain fork is unsafe."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert patterns._probe_all([(SLOW, SLOW_FLAGS), (b"word", hyperscan.HS_FLAG_SINGLEMATCH)]) == [
            (patterns.REGEX_ONLY, SLOW_FLAGS), (patterns.EXACT, hyperscan.HS_FLAG_SINGLEMATCH)]
    finally:
        stop.set()
        other.join()



def test_one_slow_rule_added_to_a_site_file_is_given_up_on_time(tmp_path: Path) -> None:
    """Sets of fewer than 16 new patterns were probed in-process, without a limit: one such rule
    added to local.cf (or changed by sa-update) held the start, or a reload, for 30 s and more."""
    # SLOW with a non-ASCII word, so that the rule compiles in UTF-8/UCP mode as SLOW does
    slow = rule("SLOW_PHRASE", "body", SLOW.decode().replace("cash", "cash|\u00e9t\u00e9"),
                flags="i")
    engine = Engine(RuleSet(rules={slow.name: slow}), {}, tmp_path)
    started = time.monotonic()
    engine.plan(0)
    assert time.monotonic() - started < 2.5
    result = engine.run(CheckContext(message("click here, a free prize"), Config()), 0, 5.0, 1.0)
    assert result.rule_names == ["SLOW_PHRASE"]  # on `regex`, under the message budget
