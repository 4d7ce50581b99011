"""`mailsift rules lint PATH` on what is not a rule file: said so, exit 1, not "all loaded"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailsift", "rules", "lint", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


# Each read as lines whose first word looks like a SpamAssassin setting, so each line was noted as
# "not used by mailsift" and lint ended "Loaded 0 of 0 rules (100.0%)" with exit 0.
NOT_RULES = {
    "bin.eml": (b"data \x00\x01\x02\xff\xfe\nmore \x00\x00\x89\n\n", " file: a binary file, not a rule file"),
    "notes.cf": (b"hello world\nthanks for all\n", ": no line of it is a rule or a directive mailsift knows"),
}


@pytest.mark.parametrize("name", NOT_RULES)
def test_a_file_nothing_is_read_from_is_named_and_fails(name: str, tmp_path: Path) -> None:
    content, why = NOT_RULES[name]
    path = tmp_path / name
    path.write_bytes(content)
    done = lint(path)
    assert done.returncode == 1, done.stdout
    assert f"  {path}{why}\n" in done.stdout
    assert "\nLoaded no rules: none found\n" in done.stdout


def test_a_directory_without_rule_files_is_named(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("body X /x/\n")  # not *.cf: never loaded
    done = lint(tmp_path)
    assert done.returncode == 1
    assert f"  {tmp_path}: a directory without a *.cf file\n" in done.stdout


def test_a_rule_file_beside_them_still_counts(tmp_path: Path) -> None:
    (tmp_path / "good.cf").write_text("body MY_PILLS /cheap pills/\nscore MY_PILLS 2.0\n")
    (tmp_path / "scores.cf").write_text("score MY_PILLS 3.0\n")  # a local.cf of scores only
    (tmp_path / "local.cf").write_text("# add your own rules here\n\n")  # as shipped: no mistake
    done = lint(tmp_path / "good.cf", tmp_path / "scores.cf", tmp_path / "local.cf")
    assert done.returncode == 0, done.stdout
    assert "Nothing read" not in done.stdout and "Loaded 1 of 1 rules (100.0%)" in done.stdout


def test_linting_local_cf_alone_knows_the_rules_it_rescores(tmp_path: Path) -> None:
    """`rules lint /etc/mailsift/local.cf` read the file alone, so every rescore of a shipped
    rule (`score MISSING_DATE 2.0`, the very thing local.cf is for) was noted as "rule is not
    defined", as a real typo is. The rules loaded beside it count as defined."""
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[rules]\nlocal_cf = "{tmp_path}/none.cf"\n')
    local = tmp_path / "local.cf"
    local.write_text("score MISSING_DATE 2.0\nmeta LOCAL_NO_DATE_SPAM MISSING_DATE && MISSING_MSGID\n"
                     "score NO_SUCH_RULE 1.0\n")
    done = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "rules", "lint",
                           "--verbose", str(local)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{local}:3 score: NO_SUCH_RULE: rule is not defined" in done.stdout
    assert "MISSING_DATE" not in done.stdout and "MISSING_MSGID" not in done.stdout
