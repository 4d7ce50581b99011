"""`milter.listen` taken by another process: a second milter must refuse, not cut the first off.

libmilter removes an existing unix socket and binds its own, so a second `mailsift milter` on
the same path used to leave the running milter listening on a socket nobody can reach (and its
own readiness probe, reaching the first milter, printed "ready")."""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

from tests.support.milter_process import MilterProcess, mailsift_command
from tests.support.ports import LOOPBACK


def quiet_config(tmp_path: Path) -> dict[str, Any]:
    return {"milter": {"workers": 1}, "bayes": {"enabled": False},
            "quarantine": {"dir": str(tmp_path / "quarantine")}}


def second_milter(config_path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mailsift_command(), "--config", str(config_path), "milter"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if " INFO " not in line]


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def test_a_second_milter_on_a_running_milters_socket_refuses(tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    (tmp_path / "first").mkdir()
    first = MilterProcess({**quiet_config(tmp_path), "milter": {"workers": 1, "socket_mode": "0660"}},
                          tmp_path / "first", unix_socket=path).start()
    try:
        (tmp_path / "second").mkdir()
        second = MilterProcess(quiet_config(tmp_path), tmp_path / "second", unix_socket=path)
        done = second_milter(second.config_path, tmp_path / "second")
        assert done.returncode == 2, done.stderr
        assert errors(done) == [f"mailsift: milter.listen unix:{path}: another process is listening "
                                "there (a milter already running?)"]
        assert answers(path), "the running milter was cut off"
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
    finally:
        first.stop()


def test_a_socket_left_by_a_crash_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # the file stays; nobody listens
    milter = MilterProcess(quiet_config(tmp_path), tmp_path, unix_socket=path).start()
    try:
        assert answers(path)
    finally:
        milter.stop()


def test_a_taken_tcp_port_stops_the_milter_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        milter = MilterProcess(quiet_config(tmp_path), tmp_path, port=port)
        done = second_milter(milter.config_path, tmp_path)
    assert done.returncode == 2, done.stderr
    assert errors(done) == [f"mailsift: milter.listen inet:{LOOPBACK}:{port}: Address already in use"]
