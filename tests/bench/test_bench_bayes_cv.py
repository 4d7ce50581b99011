"""Fast checks of bench/bayes_cv.py's folds and target counts: a fold that leaks a learned message
into its scored ones, or a miscounted target, would silently flatter the BENCHMARKS.md figures."""

from pathlib import Path

from bench import bayes, bayes_cv, corpus
from mailsift.training.metrics import Metrics


def test_each_message_is_scored_in_exactly_one_fold_and_never_where_it_was_learned() -> None:
    samples = [(Path(f"/corpus/{i}"), i % 3 == 0) for i in range(23)]
    folds = bayes_cv.folds(samples)
    assert len(folds) == bayes_cv.FOLDS
    scored = [path for _, held_out in folds for path, _ in held_out]
    assert sorted(scored) == sorted(path for path, _ in samples)
    for learn, held_out in folds:
        assert not {path for path, _ in learn} & {path for path, _ in held_out}
        assert len(learn) + len(held_out) == len(samples)
        assert {is_spam for _, is_spam in held_out} == {True, False}


def result(kind: str, fp: int, fn: float, auc: float, fn_at_zero_fp: float) -> bayes.FilterResult:
    return bayes.FilterResult(kind, kind, Metrics(fp / 6.23, fn, auc, fn_at_zero_fp, 100.0), fp, 1000.0)


def test_target_counts_per_fold() -> None:
    table = [
        [result("mailsift", 0, 1.9, 0.02, 1.5), result("bogofilter", 0, 20.0, 0.03, 4.0)],
        [result("mailsift", 1, 1.0, 0.05, 9.0), result("bogofilter", 0, 18.0, 0.04, 2.0)],
        [result("mailsift", 0, 2.5, 0.01, 3.0), result("bogofilter", 1, 22.0, 0.01, 100.0)],
    ]
    assert bayes_cv.target_lines(table) == [
        "- mailsift: no false positive in 2 of 3 folds; FN <= 2% in 2; both at once in 1",
        "- mailsift's 1-AUC no worse than bogofilter's in 2 of 3 folds",
        "- folds where any filter, at its own best threshold, has FN <= 2% with no false positive "
        "(FN% at zero FP): 2 of 6 filter-folds",
    ]


def test_the_folds_of_the_train_split_keep_its_mix() -> None:
    train = corpus.train_set()
    for _, held_out in bayes_cv.folds(train):
        spam = sum(is_spam for _, is_spam in held_out)
        assert abs(spam / len(held_out) - 1422 / 4535) < 0.01
