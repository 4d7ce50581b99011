"""`mailsift check` as an administrator runs it on one message: exit 0 ham, 1 spam, 2 an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.corpus import corpus_sample
from tests.training import test_learn_command

SPAM = corpus_sample("spam", 1, 3)[0]  # 18 points of rules alone
HAM = corpus_sample("easy_ham", 1)[0]  # none
config = test_learn_command.config  # the fixture: a config with a private SQLite store


def check(config: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "check", *args],
                          input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def test_exit_status_says_ham_or_spam_and_the_table_explains(config: Path, tmp_path: Path) -> None:
    (tmp_path / "spam.eml").write_bytes(SPAM)
    spam = check(config, str(tmp_path / "spam.eml"))
    assert spam.returncode == 1, spam.stderr
    assert spam.stdout.startswith("X-Spam-Flag: YES\n")
    ham = check(config, stdin=HAM)
    assert ham.returncode == 0, ham.stderr
    assert ham.stdout.startswith("X-Spam-Flag: NO\n")


def test_empty_input_is_refused_not_scored(config: Path, tmp_path: Path) -> None:
    """It was scored as spam (5.2, missing headers), exit 1: a wrong file looked like a verdict."""
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"\n\n")
    done = check(config, str(empty))
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"mailsift: {empty}: empty, no message to check\n")
    piped = check(config, stdin=b"")
    assert (piped.returncode, piped.stderr) == (2, "mailsift: standard input: empty, no message to check\n")


def test_a_missing_file_is_one_line(config: Path, tmp_path: Path) -> None:
    done = check(config, str(tmp_path / "nowhere.eml"))
    assert (done.returncode, done.stderr) == (
        2, f"mailsift: {tmp_path / 'nowhere.eml'}: cannot read message: No such file or directory\n")


def test_table_shows_informational_scores_and_keeps_columns_with_long_rule_names(
        tmp_path: Path) -> None:
    """A 0.001-point rule (SpamAssassin's score for a rule that only informs) read 0.0, as if it
    were off, and a rule name over 24 characters pushed its row's Description out of line."""
    rules = tmp_path / "site.cf"
    rules.write_text("header TINY_INFORMATIONAL Subject =~ /offer/\nscore TINY_INFORMATIONAL 0.001\n"
                     "header FREEMAIL_FORGED_REPLYTO_AND_DISPLAY_NAME Subject =~ /offer/\n"
                     "score FREEMAIL_FORGED_REPLYTO_AND_DISPLAY_NAME 2.5\n")
    path = tmp_path / "mailsift.toml"
    path.write_text(f'[bayes]\nstore = "sqlite:///{tmp_path}/bayes.sqlite"\n[rules]\nshipped = false\n'
                    f'paths = ["{rules}"]\nlocal_cf = "{tmp_path}/none.cf"\n')
    done = check(path, stdin=b"From: a@example.org\nSubject: an offer\n\nhello\n")
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index(" Score |"):].splitlines()
    rows = {row.split("|")[1].strip(): row for row in table[2:]}
    assert rows["TINY_INFORMATIONAL"].split("|")[0].strip() == "0.001"
    assert rows["FREEMAIL_FORGED_REPLYTO_AND_DISPLAY_NAME"].split("|")[0].strip() == "2.5"
    assert len({row.index("|", 8) for row in table if "|" in row}) == 1  # one Description column


def test_a_rule_line_with_a_mistake_is_named_when_checking(config: Path, tmp_path: Path) -> None:
    """`check` is where an admin tries a new rule; a line skipped for a mistake (here a regex
    left open) was scored without, in silence, so the rule only seemed not to hit. The milter
    names it at start; check now names it on stderr too, and still scores."""
    local_cf = tmp_path / "local.cf"
    local_cf.write_text("body LOCAL_TYPO /(unclosed/\nscore LOCAL_TYPO 3.0\n")
    config.write_text(config.read_text() + f'[rules]\nlocal_cf = "{local_cf}"\n')
    done = check(config, stdin=HAM)
    assert done.returncode == 0 and done.stdout.startswith("X-Spam-Flag: NO\n"), done.stderr
    assert done.stderr == (f"mailsift: WARNING mailsift.check: rule skipped: {local_cf}:1 "
                           "LOCAL_TYPO: bad regex: missing ) at position 9\n")
