"""The Postfix lines in README.md: what an admin pastes into main.cf/master.cf must be valid there.

Postfix reads `#` only at the start of a line: after a value it becomes part of the value
(`postconf -h milter_content_timeout` once gave `50s # longer than milter.timeout`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
MAIN_CF_SETTING = re.compile(r"^[a-z][a-z0-9_]*\s*=")  # parameter = value
MASTER_CF_SERVICE = re.compile(r"^\S+\s+(inet|unix|unix-dgram|fifo|pass)\s+[-yn]\s")


def postfix_blocks(markdown: str) -> list[list[str]]:
    """The lines of each fenced block without a language that holds main.cf or master.cf lines
    (`sh` and `toml` blocks are shell and mailsift config, where `#` comments may follow)."""
    blocks = []
    for fence in FENCE.finditer(markdown):
        lines = fence["body"].splitlines()
        if fence["info"].strip() == "" and any(
                MAIN_CF_SETTING.match(line) or MASTER_CF_SERVICE.match(line) for line in lines):
            blocks.append(lines)
    return blocks


def trailing_comments(lines: list[str]) -> list[str]:
    """Lines where a `#` follows a value (a comment line starts with `#`, after no indent)."""
    return [line for line in lines if line.strip() and not line.startswith("#") and "#" in line]


def mailsift_postfix(tmp_path: Path, config: str) -> str:
    path = tmp_path / "mailsift.toml"
    path.write_text(config)
    done = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(path), "postfix"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_the_readme_has_postfix_blocks_to_check() -> None:
    assert postfix_blocks(README.read_text())


def test_no_readme_postfix_line_has_a_comment_after_its_value() -> None:
    for lines in postfix_blocks(README.read_text()):
        assert trailing_comments(lines) == []


@pytest.mark.parametrize("config", ["", '[milter]\nlisten = "unix:/var/spool/postfix/mailsift/m.sock"\n'])
def test_no_line_of_mailsift_postfix_has_a_comment_after_its_value(tmp_path: Path, config: str) -> None:
    assert trailing_comments(mailsift_postfix(tmp_path, config).splitlines()) == []


def test_the_readme_shows_what_mailsift_postfix_prints_for_the_defaults(tmp_path: Path) -> None:
    printed = mailsift_postfix(tmp_path, "")
    for lines in postfix_blocks(README.read_text()):
        assert "\n".join(lines) in printed
