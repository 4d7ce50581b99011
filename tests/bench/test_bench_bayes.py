"""Fast checks of bench/bayes.py's parts that need no learning run: a wrong link farm, a misread
bogofilter or sa-learn line, or a wrong target verdict would silently falsify the BENCHMARKS.md table."""

from pathlib import Path

import pytest

from bench import bayes, corpus, spamassassin
from mailsift.training.metrics import Metrics

needs_corpus = pytest.mark.skipif(not corpus.CORPUS_ROOT.is_dir(), reason="shared corpus not present")


@needs_corpus
def test_materialise_gives_the_split_counts(tmp_path: Path) -> None:
    train, test = corpus.split()
    dirs = bayes.materialise(train, test, tmp_path)
    counts = {key: len(list(dirs.dir(key).iterdir())) for key in bayes.KEYS}
    assert counts == {"train/spam": 1422, "train/ham": 3113, "test/spam": 474, "test/ham": 1037}
    assert {key: len(files) for key, files in dirs.files.items()} == counts
    paths, labels = dirs.test_samples()
    assert labels == [True] * 474 + [False] * 1037
    assert paths[0].resolve() == next(path for path, is_spam in test if is_spam)
    last_ham = [path for path, is_spam in test if not is_spam][-1]
    assert paths[-1].name == f"hard_ham.{last_ham.name}"


def test_parse_bogofilter_bulk_output() -> None:
    out = ("/tmp/split/test/spam/spam.00060.ec71 S 0.999796\n"
           "/tmp/odd dir/easy_ham.00062.009f U 0.5\n")
    assert bayes.parse_bogofilter(out) == {
        "/tmp/split/test/spam/spam.00060.ec71": bayes.BogoVerdict("S", 0.999796),
        "/tmp/odd dir/easy_ham.00062.009f": bayes.BogoVerdict("U", 0.5),
    }


def test_parse_bogofilter_rejects_other_formats() -> None:
    with pytest.raises(RuntimeError):
        bayes.parse_bogofilter("/tmp/m Y 0.99\n")  # -t letters, not -T


def test_parse_sa_learn_counts_skipped_duplicates() -> None:
    out = "Learned tokens from 1410 message(s) (1422 message(s) examined)\n"
    assert bayes.parse_sa_learn(out) == (1410, 1422)
    with pytest.raises(RuntimeError):
        bayes.parse_sa_learn("ERROR: the Bayes learn function returned an error\n")


def test_eval_json_gives_false_positive_count() -> None:
    report = {"fp_pct": 100 * 2 / 1037, "fn_pct": 1.5, "one_minus_auc_pct": 0.01,
              "fn_at_zero_fp_pct": 3.0, "learn_msgs_per_s": 900.0, "score_msgs_per_s": 500.0,
              "ham": 1037, "spam": 474}
    result = bayes.from_eval_json("mailsift", "mailsift-sqlite", report)
    assert result.fp_count == 2
    assert result.metrics.msgs_per_s == 500.0 and result.learn_msgs_per_s == 900.0


def _result(kind: str, fp: int, fn_pct: float, auc: float, learn: float) -> bayes.FilterResult:
    return bayes.FilterResult(kind, kind, Metrics(100 * fp / 1037, fn_pct, auc, 5.0, 100.0), fp, learn)


def test_targets() -> None:
    results = [_result("mailsift-redis", 0, 2.0, 0.012, 1000.0),
               _result("spamassassin", 2, 4.6, 0.07, 50.0),
               _result("bogofilter", 0, 16.9, 0.012, 2600.0)]
    lines = bayes.target_lines(results, test_ham=1037)
    assert len(lines) == 4 and all(line.endswith("PASS") for line in lines)
    results[0] = _result("mailsift-redis", 1, 2.1, 0.013, 999.0)
    assert all(line.endswith("FAIL") for line in bayes.target_lines(results, test_ham=1037))


def test_targets_without_references_check_absolute_ones_only() -> None:
    lines = bayes.target_lines([_result("mailsift-sqlite", 0, 1.0, 0.5, 800.0)], test_ham=1037)
    assert len(lines) == 2


def test_spamd_config_lines_default_to_rules_only(tmp_path: Path) -> None:
    rules_only, with_bayes = spamassassin.Spamd(), spamassassin.Spamd(
        config_lines=bayes.sa_bayes_lines(tmp_path))
    try:
        assert "--cf=use_bayes 0" in rules_only.command()
        assert "--cf=use_bayes 1" in with_bayes.command()
        assert f"--cf=bayes_path {tmp_path / 'bayes'}" in with_bayes.command()
    finally:
        rules_only.stop()
        with_bayes.stop()


def test_write_section_keeps_other_sections(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# mailsift benchmarks\n\n<!-- score.py:begin -->\nkept\n<!-- score.py:end -->\n")
    bayes.write_section(f"{bayes.BEGIN}\nFIRST\n{bayes.END}", target)
    bayes.write_section(f"{bayes.BEGIN}\nSECOND\n{bayes.END}", target)
    text = target.read_text()
    assert "kept" in text and "SECOND" in text and "FIRST" not in text
    assert text.count(bayes.BEGIN) == 1
