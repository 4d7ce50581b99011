"""The benchmark split of the shared SpamAssassin corpus, in one place.

Every accuracy figure in BENCHMARKS.md must come from the same split as the reference figures in
/work/shared/corpus/ANCHORS.md, otherwise the comparison means nothing. The rule (from the corpus
README): within each folder, sort the file names; position i (0-based) goes to test when i % 4 == 3,
else to train.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CORPUS_ROOT = Path("/work/shared/corpus/spamassassin")

# folder -> is_spam
FOLDERS: dict[str, bool] = {
    "easy_ham": False,
    "easy_ham_2": False,
    "hard_ham": False,
    "spam": True,
    "spam_2": True,
}

Sample = tuple[Path, bool]  # (message file, is_spam)


def _is_test_position(index: int) -> bool:
    return index % 4 == 3


def split(root: Path = CORPUS_ROOT) -> tuple[list[Sample], list[Sample]]:
    """Return (train, test), each in folder order then sorted file-name order.

    The order is deterministic so that per-message outputs of two runs can be compared line by line.
    """
    train: list[Sample] = []
    test: list[Sample] = []
    for folder, is_spam in FOLDERS.items():
        names = sorted(p.name for p in (root / folder).iterdir() if p.is_file())
        for index, name in enumerate(names):
            target = test if _is_test_position(index) else train
            target.append((root / folder / name, is_spam))
    return train, test


def train_set(root: Path = CORPUS_ROOT) -> list[Sample]:
    return split(root)[0]


def test_set(root: Path = CORPUS_ROOT) -> list[Sample]:
    return split(root)[1]


def stratified_subset(samples: Sequence[Sample], limit: int) -> list[Sample]:
    """Pick about `limit` samples, keeping the ham/spam proportion and spreading picks over each class.

    A quick run on the first N files would see only easy_ham; taking every k-th file of each class
    keeps the subset's mix (and so its FP/FN figures) close to the full split's.
    """
    if limit >= len(samples):
        return list(samples)
    chosen: list[Sample] = []
    for is_spam in (False, True):
        members = [s for s in samples if s[1] == is_spam]
        quota = max(1, round(limit * len(members) / len(samples)))
        step = len(members) / quota
        chosen.extend(members[int(i * step)] for i in range(min(quota, len(members))))
    return chosen
