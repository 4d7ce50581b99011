"""Every shipped scoring rule hits its example message and misses its near miss.

One module-level Scanner (building it compiles the whole ruleset, about a second) serves every
case. `test_every_shipped_rule_has_a_case` keeps the table in step with the rule files: a new
rule without an example fails the suite instead of going untested.
"""

from __future__ import annotations

import pytest

from mailsift.config import Config
from mailsift.rules import patterns
from mailsift.scanner import Scanner
from tests.ruleset.cases import CASES, PLAIN

SCANNER = Scanner(Config())
RULES_ONLY = 0  # score set without Bayes and network tests: the one the ruleset is tuned for


# Checks whose answer comes from a store: shared spam reports (Bayes store, tested in
# tests/training/test_bayes_behaviour.py) and users' welcome/block lists (quarantine index,
# tested in tests/quarantine/test_userlists.py).
STORE_CHECKS = {"reported", "user_listed"}
# Checks that score only with a setting this table's default Config leaves empty: returned mail
# needs network.outbound_relays (tests/rules/test_returned_mail.py), the site's lists [lists]
# entries or whitelist_from lines (tests/network/test_site_lists.py).
CONFIGURED_CHECKS = {"returned_mail", "site_listed"}


def shipped_scoring_rules() -> set[str]:
    """Rules that score in the rules-only score set; Bayes bands (tflags learn) are tested elsewhere."""
    plan = SCANNER.engine.plan(RULES_ONLY)
    rules = SCANNER.engine.rules
    return {name for name, score in plan.scores.items()
            if score and not name.startswith("__") and "learn" not in rules[name].tflags
            and rules[name].eval_name not in STORE_CHECKS | CONFIGURED_CHECKS}


def test_every_shipped_rule_has_a_case() -> None:
    missing = sorted(shipped_scoring_rules() - CASES.keys())
    assert not missing, f"shipped rules without a hit/miss example in tests/ruleset/cases.py: {missing}"


def test_no_case_for_a_rule_that_does_not_exist() -> None:
    stale = sorted(CASES.keys() - shipped_scoring_rules())
    assert not stale, f"cases for rules that are not shipped (renamed or dropped?): {stale}"


def test_ruleset_is_large_enough() -> None:
    assert len(shipped_scoring_rules()) >= 100


def test_plain_letter_scores_nothing() -> None:
    result = SCANNER.scan(PLAIN)
    assert result.rule_names == []
    assert result.rule_errors == {}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_hits_its_example(rule: str) -> None:
    result = SCANNER.scan(CASES[rule][0])
    assert rule in result.rule_names, f"{rule} missed; hits were {result.rule_names}"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_misses_its_near_miss(rule: str) -> None:
    result = SCANNER.scan(CASES[rule][1])
    assert rule not in result.rule_names, f"{rule} hit the near miss: {result.hits}"


def test_every_rule_has_a_description() -> None:
    undocumented = sorted(name for name in shipped_scoring_rules() if not SCANNER.engine.rules[name].describe)
    assert not undocumented


# Lookarounds hyperscan cannot run exactly: it finds the candidates, `regex` confirms them.
PREFILTERED = {"HTML_BOGUS_TAG_IN_WORD", "URI_ODD_PORT"}


def test_shipped_patterns_run_on_the_linear_time_engine() -> None:
    """Every message meets every body rule: one that only compiles as a prefilter (a \\b beside
    a non-ASCII word, as __PASSWORD_GIVEN had) is confirmed by the slower `regex` engine each
    time its candidates turn up."""
    modes = {entry.rule.name: entry.mode for group in SCANNER.engine.plan(RULES_ONLY).patterns.values()
             for entry in group.entries}
    assert {name for name, mode in modes.items() if mode != patterns.EXACT} == PREFILTERED
