"""The shipped Bayes bands: every probability falls in exactly one band, and more spam-like
verdicts never score less. A gap would silently drop the Bayes verdict for the messages in it."""

from __future__ import annotations

from itertools import pairwise

from mailsift.config import Config
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.registry import load_checks
from mailsift.scanner import rule_paths

BAYES_SETS = (2, 3)  # score sets with Bayes (without and with network tests)
# The rule files as the scanner reads them, without compiling an engine: only definitions matter.
RULES = load_rule_files(rule_paths(Config()), load_checks()).rules.values()
BANDS = sorted((r for r in RULES if r.eval_name == "bayes"), key=lambda r: float(r.eval_args[0]))


def test_bands_cover_zero_to_one_without_gap_or_overlap() -> None:
    edges = [(float(r.eval_args[0]), float(r.eval_args[1])) for r in BANDS]
    assert edges[0][0] == 0.0
    assert edges[-1][1] > 1.0  # a probability of exactly 1 still lands in the top band
    for (_, high), (low, _) in pairwise(edges):
        assert high == low


def test_band_scores_rise_with_the_spam_probability() -> None:
    for score_set in BAYES_SETS:
        scores = [r.score_for(score_set) for r in BANDS]
        assert scores == sorted(scores), f"score set {score_set}: {scores}"
        assert scores[0] < 0 < scores[-1]
