"""`mailsift eval`: the benchmark protocol on anyone's mail, from four directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsift.config import BayesConfig, Config, ScanConfig
from mailsift.training import parallel
from mailsift.training.evaluate import EvalError, evaluate
from tests.support.corpus import corpus_sample
from tests.training.test_learn_command import mailsift

KEYS = {"fp_pct", "fn_pct", "one_minus_auc_pct", "fn_at_zero_fp_pct", "learn_msgs_per_s",
        "score_msgs_per_s"}


def fill(folder: Path, messages: list[bytes]) -> str:
    folder.mkdir(parents=True)
    for n, raw in enumerate(messages):
        (folder / f"{n}.eml").write_bytes(raw)
    return str(folder)


@pytest.fixture
def split(tmp_path: Path) -> list[str]:
    """--train-spam, --train-ham, --test-spam, --test-ham with real corpus mail."""
    return ["--train-spam", fill(tmp_path / "train/spam", corpus_sample("spam", 40)),
            "--train-ham", fill(tmp_path / "train/ham", corpus_sample("easy_ham", 40)),
            "--test-spam", fill(tmp_path / "test/spam", corpus_sample("spam", 10, start=40)),
            "--test-ham", fill(tmp_path / "test/ham", corpus_sample("easy_ham", 20, start=40))]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mailsift.toml"
    path.write_text('[bayes]\nmin_spam = 20\nmin_ham = 20\n')
    return path


def test_eval_prints_the_protocol_figures_as_one_json_object(config: Path, split: list[str],
                                                            tmp_path: Path) -> None:
    done = mailsift(config, "eval", *split, "--json", "--plot", str(tmp_path / "roc.png"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.keys() >= KEYS
    assert (report["spam"], report["ham"]) == (10, 20)
    assert 0 <= report["fp_pct"] <= 100 and 0 <= report["fn_pct"] <= 100
    assert report["learn_msgs_per_s"] > 0 and report["score_msgs_per_s"] > 0
    assert report["bayes_silent"] == ""  # 40 and 40 learned; the config asks for 20 each
    assert (tmp_path / "roc.png").read_bytes().startswith(b"\x89PNG")


def test_eval_names_a_missing_directory_in_one_line(config: Path, split: list[str],
                                                    tmp_path: Path) -> None:
    split[split.index("--test-ham") + 1] = str(tmp_path / "nowhere")
    done = mailsift(config, "eval", *split)
    assert done.returncode != 0
    assert done.stderr.strip() == f"mailsift: eval: {tmp_path / 'nowhere'}: not a directory"


@pytest.mark.parametrize("option", ["--train-spam", "--train-ham", "--test-spam", "--test-ham"])
def test_eval_names_an_empty_folder_in_one_line(config: Path, split: list[str], tmp_path: Path,
                                                option: str) -> None:
    """An empty test folder used to end in "internal error: ValueError" from scikit-learn, an
    empty test ham or spam folder in exit 0 with "1-AUC: nan%"."""
    empty = tmp_path / "empty"
    empty.mkdir()
    split[split.index(option) + 1] = str(empty)
    done = mailsift(config, "eval", *split)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"mailsift: eval {option}: {empty}: no message in it (each of the "
                           "train and test spam and ham folders needs at least one)\n")


@pytest.mark.timeout(120)
def test_eval_stops_naming_a_message_it_cannot_score(split: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures that silently left a message out would be wrong: the run stops and says which."""
    monkeypatch.setattr(parallel, "TASK_SECONDS", 0.3)
    big = tmp_path / "test/ham/big.eml"
    with big.open("w") as out:  # ~20 MB of text: about a second to score here, never 0.3 s
        out.write("From: big@example.org\nSubject: big\n\n")
        out.writelines(f"line {n} of a very long report\n" for n in range(700_000))
    args = dict(zip(split[::2], split[1::2], strict=True))
    config = Config(bayes=BayesConfig(min_spam=20, min_ham=20),
                    scan=ScanConfig(max_bytes=64 * 1024 * 1024))
    with pytest.raises(EvalError, match=rf"scoring {big} failed: took longer than 0.3 s"):
        evaluate(config, args["--train-spam"], args["--train-ham"], args["--test-spam"],
                 args["--test-ham"])


def test_eval_refuses_a_store_that_holds_anything_and_leaves_it_as_it_was(
        config: Path, split: list[str], tmp_path: Path) -> None:
    """`--store` once cleared the store it named: pointed at the site's Redis, eval wiped the model."""
    store = f"sqlite:///{tmp_path}/site.sqlite"
    site = tmp_path / "site.toml"
    site.write_text(f'[bayes]\nstore = "{store}"\n')
    assert mailsift(site, "learn", "--spam", split[split.index("--train-spam") + 1]).returncode == 0
    dump = mailsift(site, "learn", "--dump").stdout
    done = mailsift(config, "eval", *split, "--store", store)
    assert done.returncode == 2
    assert done.stderr == (f"mailsift: eval: --store {store} (key prefix 'mailsift:') already holds "
                           "40 spam, 0 ham; eval learns into an empty store: name another one, or "
                           "another bayes.key_prefix\n")
    assert mailsift(site, "learn", "--dump").stdout == dump
    empty = f"sqlite:///{tmp_path}/empty.sqlite"
    assert mailsift(config, "eval", *split, "--store", empty).returncode == 0


def test_eval_says_when_bayes_learned_too_little_to_speak(split: list[str], tmp_path: Path) -> None:
    """With fewer than bayes.min_spam/min_ham learned, the figures were the rules' alone, silently."""
    defaults = tmp_path / "defaults.toml"
    defaults.write_text("")
    done = mailsift(defaults, "eval", *split)
    assert done.returncode == 0, done.stderr
    assert ("warning:          Bayes stayed silent: it learned 40 spam and 40 ham, and speaks from "
            "bayes.min_spam = 200 and min_ham = 200; these are the figures of the rules alone") in done.stdout


def test_files_that_are_not_mail_are_named_and_not_scored(config: Path, split: list[str]) -> None:
    """A README or an empty file in a test folder counted as a test message (32 spam from 30)."""
    test_spam = Path(split[split.index("--test-spam") + 1])
    (test_spam / "README").write_text("Spam collected in March; see the ticket.\n")
    (test_spam / "empty.eml").write_bytes(b"")
    done = mailsift(config, "eval", *split, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["spam"], report["ham"]) == (10, 20)
    assert sorted(Path(name).name for name in report["not_mail"]) == ["README", "empty.eml"]
    text = mailsift(config, "eval", *split).stdout
    assert "not scored:       2 file(s) that are not mail, e.g. " in text
