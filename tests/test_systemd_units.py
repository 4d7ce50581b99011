"""The shipped systemd units pass `systemd-analyze verify` without a single complaint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailsift.milter.reload import RELOAD_SIGNAL

UNITS = Path(__file__).resolve().parents[1] / "systemd"
INSTALLED_PATH = "/usr/local/bin/mailsift"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify_clean(tmp_path: Path) -> None:
    # The units name the installed command; point them at this checkout's one, which exists.
    command = str(Path(sys.executable).with_name("mailsift"))
    units = []
    for unit in sorted(UNITS.glob("mailsift-*")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED_PATH, command))
        units.append(str(copy))
    assert len(units) >= 3
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize(("unit", "own"), [
    ("mailsift-milter.service", "RuntimeDirectory=mailsift"),  # for its unix socket
    ("mailsift-web.service", f"ExecStart={INSTALLED_PATH} --config /etc/mailsift/mailsift.toml web"),
])
def test_units_harden_the_daemons(unit: str, own: str) -> None:
    """Both daemons run as the milter's user: the web UI changes the milter's quarantine."""
    service = (UNITS / unit).read_text()
    for setting in ("Restart=always", own):
        assert setting in service


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("mailsift-*.service")))
def test_every_service_runs_hardened_as_the_milters_user(unit: str) -> None:
    """The timers' runs create files too (a first `learn --expire` creates the SQLite store):
    without UMask=0027 those were readable by every local user."""
    service = (UNITS / unit).read_text().splitlines()
    for setting in ("User=mailsift", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                    "StateDirectory=mailsift", "UMask=0027"):
        assert setting in service


@pytest.mark.parametrize("unit", ["mailsift-milter.service", "mailsift-web.service"])
def test_daemons_come_back_after_the_clean_exit_a_sighup_causes(unit: str) -> None:
    """libmilter treats SIGHUP as a stop and the milter exits 0 (the web UI dies of it, which
    systemd counts as clean too), so Restart=on-failure left them down: a `kill -HUP` meant as
    a reload left mail unfiltered until someone noticed. Restart whatever the exit status."""
    service = (UNITS / unit).read_text().splitlines()
    assert [line for line in service if line.startswith("Restart=")] == ["Restart=always"]


def test_systemctl_reload_sends_the_signal_the_milter_reloads_on() -> None:
    service = (UNITS / "mailsift-milter.service").read_text().splitlines()
    reload = [line for line in service if line.startswith("ExecReload=")]
    assert reload == [f"ExecReload=/bin/kill -{RELOAD_SIGNAL.name.removeprefix('SIG')} $MAINPID"]
