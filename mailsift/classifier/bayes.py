"""Robinson's token probabilities combined with Fisher's chi-square method.

This is the maths SpamBayes and SpamAssassin's Bayes use, chosen because it is well studied on
exactly this kind of corpus and because chi-square combining gives honest "unsure" values near
0.5 instead of the overconfident 0/1 of plain naive Bayes. The class is small and returns its
evidence (the tokens that decided), so reports can say why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mailsift.classifier.store import TokenCounts, Totals


@dataclass(frozen=True)
class BayesParams:
    """The tunable constants; their defaults and why live in BayesConfig (config.py)."""

    strength: float  # Robinson's s: how much a rare token is pulled towards x
    unknown_prob: float  # Robinson's x: the prior for a token never seen
    min_distance: float  # tokens with |p - 0.5| below this are noise and ignored
    max_tokens: int  # the most significant tokens used


@dataclass(frozen=True)
class Clue:
    token: str
    prob: float
    spam: int
    ham: int


@dataclass(frozen=True)
class Verdict:
    prob: float  # spam probability 0..1
    clues: list[Clue]  # the tokens used, most significant first
    store: str = ""  # the recipient domain or address whose own store decided; "": site-wide


def chi2_survival(chi2: float, dof: int) -> float:
    """P(X >= chi2) for a chi-square variable with an even number of degrees of freedom."""
    half = chi2 / 2.0
    term = math.exp(-half)
    total = term
    for i in range(1, dof // 2):
        term *= half / i
        total += term
    return min(total, 1.0)


def token_probability(counts: TokenCounts, totals: Totals, params: BayesParams) -> float:
    """Robinson's f(w): the token's spam ratio, shrunk towards the prior by how rarely it was seen."""
    spam_ratio = counts.spam / totals.spam if totals.spam else 0.0
    ham_ratio = counts.ham / totals.ham if totals.ham else 0.0
    if spam_ratio + ham_ratio == 0:
        return params.unknown_prob
    p = spam_ratio / (spam_ratio + ham_ratio)
    n = counts.spam + counts.ham
    return (params.strength * params.unknown_prob + n * p) / (params.strength + n)


def classify(tokens: Sequence[str], counts: Sequence[TokenCounts], totals: Totals,
             params: BayesParams) -> Verdict:
    """Combine the strongest token probabilities into one spam probability."""
    scored = []
    for token, count in zip(tokens, counts, strict=True):
        if count.spam + count.ham == 0:
            continue
        prob = token_probability(count, totals, params)
        if abs(prob - 0.5) >= params.min_distance:
            scored.append(Clue(token, prob, count.spam, count.ham))
    scored.sort(key=lambda c: abs(c.prob - 0.5), reverse=True)
    clues = scored[: params.max_tokens]
    if not clues:
        return Verdict(0.5, [])
    ln_spam = sum(math.log(1.0 - c.prob) for c in clues)
    ln_ham = sum(math.log(c.prob) for c in clues)
    dof = 2 * len(clues)
    spamminess = 1.0 - chi2_survival(-2.0 * ln_spam, dof)
    hamminess = 1.0 - chi2_survival(-2.0 * ln_ham, dof)
    return Verdict((spamminess - hamminess + 1.0) / 2.0, clues)
