"""The Postfix lines in README.md: what an admin pastes into main.cf/master.cf must be valid there.

Postfix reads `#` only at the start of a line: after a value it becomes part of the value
(`postconf -h milter_content_timeout` once gave `50s # longer than milter.timeout`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer

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


@pytest.fixture
def redis_password_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password="Readme-Pa55 word#")
    yield server
    server.stop()


def configtest_as_the_units_run_it(markdown: str) -> str:
    """README's command (in a subshell, written the same at install and at upgrade) that runs
    configtest as the units do: their user, their cache, their secrets.env."""
    [command] = set(re.findall(r"^\(set -a;.*?runuser -u mailsift .*? configtest\)$", markdown,
                               re.MULTILINE | re.DOTALL))
    return command


@pytest.mark.skipif(os.geteuid() != 0, reason="runuser is for root")
def test_readmes_configtest_as_the_mailsift_user_gets_the_password_of_secrets_env(
        tmp_path: Path, redis_password_server: RedisServer) -> None:
    """README said `sudo -u mailsift mailsift configtest`: Debian 12 need not have sudo, and the
    password the units read from the root-only secrets.env never reached the check, which then
    failed on a Redis that the milter itself reaches. Run as README writes it, with this test's
    files for the system's, and root for `mailsift`: the interpreter of a venv may live where
    no other user can reach (pyenv under /root, here); test_ownership covers the permissions."""
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"MAILSIFT_REDIS_PASSWORD='{redis_password_server.password}'\n")
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[bayes]\nstore = "{redis_password_server.url}"\n'
                      f'[quarantine]\ndir = "{tmp_path}/quarantine"\n')
    command = (configtest_as_the_units_run_it(README.read_text())
               .replace("/etc/mailsift/secrets.env", str(secrets))
               .replace("/etc/mailsift/mailsift.toml", str(config))
               .replace("XDG_CACHE_HOME=/var/cache", f"XDG_CACHE_HOME={tmp_path}")
               .replace("runuser -u mailsift", "runuser -u root")
               .replace("/usr/local/bin/mailsift", str(Path(sys.executable).with_name("mailsift"))))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"127.0.0.1:{redis_password_server.port}" in done.stdout
