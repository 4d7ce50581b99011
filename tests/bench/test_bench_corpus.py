"""Fast checks of the benchmark split and metrics (no spamd): a wrong split or formula would silently
make every figure in BENCHMARKS.md incomparable with ANCHORS.md."""

from pathlib import Path

import pytest

from bench import corpus, score
from mailsift.training import metrics

pytestmark = pytest.mark.skipif(not corpus.CORPUS_ROOT.is_dir(), reason="shared corpus not present")


def _counts(samples: list[corpus.Sample]) -> tuple[int, int]:
    spam = sum(is_spam for _, is_spam in samples)
    return len(samples) - spam, spam


def test_split_sizes_match_readme() -> None:
    train, test = corpus.split()
    assert _counts(train) == (3113, 1422)
    assert _counts(test) == (1037, 474)


def test_split_positions_and_disjointness() -> None:
    train, test = corpus.split()
    assert not {p for p, _ in train} & {p for p, _ in test}
    # position 3 of the sorted easy_ham names is the first test message
    easy_ham = sorted(p.name for p in (corpus.CORPUS_ROOT / "easy_ham").iterdir())
    assert test[0] == (corpus.CORPUS_ROOT / "easy_ham" / easy_ham[3], False)


def test_stratified_subset_keeps_both_classes() -> None:
    subset = corpus.stratified_subset(corpus.test_set(), 100)
    ham, spam = _counts(subset)
    assert ham + spam == 100
    assert 25 <= spam <= 37  # 474/1511 = 31%


LABELS = [False, False, False, True, True]


def test_perfect_separation() -> None:
    scores = [-1.0, 0.0, 2.0, 5.0, 9.0]
    verdicts = [s >= 5.0 for s in scores]
    m = metrics.summarize(LABELS, scores, verdicts, seconds=2.0)
    assert m == metrics.Metrics(fp_pct=0.0, fn_pct=0.0, one_minus_auc_pct=0.0,
                                fn_at_zero_fp_pct=0.0, msgs_per_s=2.5)


def test_overlapping_scores() -> None:
    # ham 6.0 is judged spam; spam 3.0 is judged ham and sits below the ham ceiling, spam 6.0 ties it
    scores = [0.0, 1.0, 6.0, 3.0, 6.0]
    verdicts = [s >= 5.0 for s in scores]
    assert metrics.fp_percent(LABELS, verdicts) == pytest.approx(100 / 3)
    assert metrics.fn_percent(LABELS, verdicts) == pytest.approx(50.0)
    # pairs (spam > ham): 3.0 beats 2 of 3 hams, 6.0 beats 2 and ties 1 -> (2 + 2.5) / 6
    assert metrics.one_minus_auc_percent(LABELS, scores) == pytest.approx(100 * (1 - 4.5 / 6))
    # nothing scores strictly above the highest ham (6.0): all spam missed at zero FP
    assert metrics.fn_at_zero_fp_percent(LABELS, scores) == pytest.approx(100.0)


def test_write_section_keeps_other_sections(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    score.write_section(f"{score.BEGIN}\nFIRST-RUN\n{score.END}", target)
    target.write_text(target.read_text() + "\n<!-- other.py:begin -->\nkept\n<!-- other.py:end -->\n")
    score.write_section(f"{score.BEGIN}\nSECOND-RUN\n{score.END}", target)
    text = target.read_text()
    assert text.startswith("# mailsift benchmarks")
    assert "SECOND-RUN" in text and "FIRST-RUN" not in text and "kept" in text
    assert text.count(score.BEGIN) == 1
