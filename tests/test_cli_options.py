"""Options of the `mailsift` command as a whole: --version, and --config after every subcommand."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def mailsift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailsift", *args], capture_output=True, text=True,
                          timeout=120)


def test_version_prints_the_installed_version() -> None:
    done = mailsift("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f"mailsift, version {version('mailsift')}\n", "")
