"""The figures every mailsift benchmark reports, defined once so that all tables compare like with like.

Definitions follow the shared corpus README (../shared/corpus/README.md): spam is the positive
class; FP% is the share of ham judged spam, FN% the share of spam judged ham, both in percent of
their own class. `mailsift eval` and the scripts in bench/ all use these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class Metrics:
    fp_pct: float
    fn_pct: float
    one_minus_auc_pct: float
    fn_at_zero_fp_pct: float
    msgs_per_s: float


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def fp_percent(labels: Sequence[bool], verdicts: Sequence[bool]) -> float:
    """Share of ham (label False) judged spam, in percent of all ham."""
    hams = [v for label, v in zip(labels, verdicts, strict=True) if not label]
    return _percent(sum(hams), len(hams))


def fn_percent(labels: Sequence[bool], verdicts: Sequence[bool]) -> float:
    """Share of spam (label True) judged ham, in percent of all spam."""
    spams = [v for label, v in zip(labels, verdicts, strict=True) if label]
    return _percent(sum(not v for v in spams), len(spams))


def one_minus_auc_percent(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """100 * (1 - ROC AUC) of the numeric scores, spam positive.

    Reported as 1-AUC because good filters sit at AUC 0.99+, where the missing part is what differs.
    """
    return 100.0 * (1.0 - float(roc_auc_score(list(labels), list(scores))))


def fn_at_zero_fp_percent(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """FN% with the threshold set just above the highest ham score, so that no ham is judged spam.

    This is the spam a filter still catches when its threshold is tuned never to block a good mail:
    a spam counts as caught only when it scores strictly above every ham.
    """
    pairs = list(zip(labels, scores, strict=True))
    ham_scores = [score for label, score in pairs if not label]
    spam_scores = [score for label, score in pairs if label]
    ceiling = max(ham_scores, default=float("-inf"))
    return _percent(sum(score <= ceiling for score in spam_scores), len(spam_scores))


def msgs_per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def summarize(
    labels: Sequence[bool], scores: Sequence[float], verdicts: Sequence[bool], seconds: float
) -> Metrics:
    return Metrics(
        fp_pct=fp_percent(labels, verdicts),
        fn_pct=fn_percent(labels, verdicts),
        one_minus_auc_pct=one_minus_auc_percent(labels, scores),
        fn_at_zero_fp_pct=fn_at_zero_fp_percent(labels, scores),
        msgs_per_s=msgs_per_second(len(labels), seconds),
    )
