"""Options of the `mailsift` command as a whole: --version, and --config after every subcommand."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.milter_process import mailsift_command, to_toml


def mailsift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailsift", *args], capture_output=True, text=True,
                          timeout=120)


def test_version_prints_the_installed_version() -> None:
    done = mailsift("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f"mailsift, version {version('mailsift')}\n", "")


def leaf_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command line that runs something: the commands, and groups that run without one."""
    found = [path] if path and group.invoke_without_command else []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


CONFIGLESS = {("web", "hash-password")}  # hashes a password: nothing of the config is read


@pytest.mark.parametrize("command", [c for c in leaf_commands() if c not in CONFIGLESS], ids=" ".join)
def test_every_command_takes_config_after_it(command: tuple[str, ...], tmp_path: Path) -> None:
    """`quarantine ...`, `rules lint` and `web` refused it ("No such option: --config")."""
    done = CliRunner().invoke(cli, [*command, "--config", str(tmp_path / "x.toml"), "--help"])
    assert done.exit_code == 0, done.output


def test_leaf_commands_are_found() -> None:
    assert {("check",), ("quarantine", "list"), ("rules", "lint"), ("web",),
            ("web", "hash-password")} <= set(leaf_commands())


def test_quarantine_list_and_rules_lint_read_the_config_given_after_them(tmp_path: Path) -> None:
    local_cf = tmp_path / "local.cf"
    local_cf.write_text("body MY_PILLS /cheap pills/\nscore MY_PILLS 2.0\n")
    config = tmp_path / "mailsift.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")},
                               "rules": {"shipped": False, "local_cf": str(local_cf)}}))
    held = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    # after the subcommand it wins over the one before it, as it did for `check` and the others
    listed = mailsift("--config", str(tmp_path / "missing.toml"), "quarantine", "list",
                      "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert held in listed.stdout and "1 of 1 message(s)" in listed.stdout
    linted = mailsift("rules", "lint", "--config", str(config))
    assert linted.returncode == 0, linted.stderr
    assert linted.stdout.startswith(f"{local_cf}: body 1; skipped 0\n")


@pytest.mark.parametrize(("args", "line"), [
    (["learn", "--bogus"], "mailsift learn: No such option '--bogus'. Did you mean '--mbox'? "
                           "(see 'mailsift learn --help')"),
    (["quarantine", "list", "--limit", "0"], "mailsift quarantine list: Invalid value for "
     "'--limit': 0 is not in the range 1<=x<=999999999 (see 'mailsift quarantine list --help')"),
    (["frob"], "mailsift: No such command 'frob' (see 'mailsift --help')"),
    # an option given no value: click raises it without its command, so the line named the
    # top-level help ("mailsift: Option '--backup' ... (see 'mailsift --help')")
    (["learn", "--backup"], "mailsift learn: Option '--backup' requires an argument "
                            "(see 'mailsift learn --help')"),
    (["quarantine", "list", "--since"], "mailsift quarantine list: Option '--since' requires an "
                                        "argument (see 'mailsift quarantine list --help')"),
])
def test_a_mistyped_command_line_is_one_error_line(args: list[str], line: str) -> None:
    """click printed its usage block, a "Try ... --help" line and the error: three lines and a
    blank, where every other mailsift error is one line."""
    done = subprocess.run([*mailsift_command(), *args], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")
