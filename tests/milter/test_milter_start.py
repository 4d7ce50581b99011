"""`mailsift milter` start-up failures: one line naming the key, as systemd's journal shows it."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from contextlib import closing, suppress
from pathlib import Path

from tests.support.milter_process import MilterProcess, mailsift_command, merge
from tests.support.ports import LOOPBACK


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or one that ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def refused_start(tmp_path: Path, settings: dict[str, dict[str, object]]) -> list[str]:
    """What `mailsift milter` says, other than INFO lines, when it refuses to start (exit 2)
    before any scoring worker starts."""
    milter = MilterProcess(merge({"milter": {"workers": 1},
                                  "bayes": {"enabled": False},
                                  "quarantine": {"dir": str(tmp_path / "quarantine")}}, settings),
                           tmp_path)
    done = subprocess.run([*mailsift_command(), "--config", str(milter.config_path), "milter"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "scoring workers" not in done.stderr, "refused only after starting the workers"
    return [line for line in done.stderr.splitlines() if " INFO " not in line]


def test_a_metrics_port_in_use_stops_the_milter_with_one_line(tmp_path: Path) -> None:
    """It used to end as "internal error: OSError: [Errno 98] Address already in use", and
    then, after a fix, came only once the scoring workers had started (~3 s)."""
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        address = f"{LOOPBACK}:{taken.getsockname()[1]}"
        errors = refused_start(tmp_path, {"milter": {"metrics_listen": address}})
    assert errors == [f"mailsift: milter.metrics_listen {address}: address already in use"]


def test_a_rule_line_with_a_mistake_is_named_when_the_milter_starts(tmp_path: Path) -> None:
    """The milter starts without the line (mail keeps flowing), but it used to say nothing:
    after a restart for a local.cf edit, the rule simply never hit."""
    local_cf = tmp_path / "local.cf"
    local_cf.write_text("body LOCAL_TYPO /(unclosed/\nscore LOCAL_TYPO 3.0\n")
    milter = MilterProcess({"milter": {"workers": 1},
                            "rules": {"local_cf": str(local_cf)},
                            "bayes": {"enabled": False},
                            "quarantine": {"dir": str(tmp_path / "quarantine")}}, tmp_path)
    with milter:
        warnings = [line for line in milter.lines if "rule skipped" in line]
    assert warnings == [f"mailsift: WARNING mailsift.milter: rule skipped: {local_cf}:1 LOCAL_TYPO: "
                        "bad regex: missing ) at position 9"]


def test_an_unreadable_pause_store_password_stops_the_milter_with_one_line(tmp_path: Path) -> None:
    """It ended in a traceback; refused before the scoring workers start, naming key and file."""
    missing = tmp_path / "no-such-password"
    errors = refused_start(tmp_path, {"outbound": {"pause_store": "redis://127.0.0.1:6379/0",
                                                   "password_file": str(missing)}})
    assert errors == [f"mailsift: outbound.password_file: {missing}: cannot read the Redis password: "
                      "No such file or directory"]


def test_a_quarantine_index_it_cannot_use_is_named_when_the_milter_starts(tmp_path: Path) -> None:
    """An index a newer mailsift wrote (after a rollback) makes every message to quarantine meet
    milter.on_error; the milter still starts (other mail needs no index), and now says why at
    once instead of only in an error per message."""
    folder = tmp_path / "quarantine"
    folder.mkdir()
    with closing(sqlite3.connect(folder / "index.sqlite")) as db:
        db.execute("PRAGMA user_version=2")
    milter = MilterProcess({"milter": {"workers": 1, "on_error": "tempfail"},
                            "bayes": {"enabled": False}, "quarantine": {"dir": str(folder)}},
                           tmp_path)
    with milter:
        errors = [line for line in milter.lines if " ERROR " in line]
    assert errors == [f"mailsift: ERROR mailsift.milter: quarantine index {folder / 'index.sqlite'}: "
                      "schema version 2 (written by a newer mailsift; this one reads version 1): "
                      "run that mailsift again, or put back the index's copy from before the "
                      "upgrade (README: Backups and upgrades); until it is mended, a message to "
                      "quarantine gets milter.on_error (tempfail)"]


def test_the_milter_makes_its_quarantine_folder_at_its_start(tmp_path: Path) -> None:
    """The folder came with the first message held, so a new install's expire and digest
    timers met none; as what only looks at a quarantine no longer makes one (a mistyped
    quarantine.dir made an empty one), the milter makes it at its start."""
    folder = tmp_path / "var" / "quarantine"
    milter = MilterProcess({"milter": {"workers": 1}, "bayes": {"enabled": False},
                            "quarantine": {"dir": str(folder)}}, tmp_path)
    with milter:
        assert folder.is_dir()
        assert [line for line in milter.lines if " ERROR " in line] == []


def test_scoring_workers_that_cannot_start_stop_the_milter_with_one_line(tmp_path: Path) -> None:
    """Every worker killed as it starts (the OOM killer taking each, say) stops the start-up, as
    it should; but it ended as "internal error: WorkerStartError: ...", which reads as a bug in
    mailsift, not as the worker's fate. Each grandchild of the milter (a worker, forked by the
    fork server) is killed until the milter exits."""
    milter = MilterProcess({"milter": {"workers": 1}, "bayes": {"enabled": False},
                            "quarantine": {"dir": str(tmp_path / "quarantine")}}, tmp_path)
    with subprocess.Popen([*mailsift_command(), "--config", str(milter.config_path), "milter"],
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path) as started:
        deadline = time.monotonic() + 60
        while started.poll() is None and time.monotonic() < deadline:
            for worker in (w for server in children(started.pid) for w in children(server)):
                with suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGKILL)
            time.sleep(0.02)
        started.kill()  # if it did not end by itself: the assertions below say so
        errors = [line for line in started.stderr.read().splitlines() if " INFO " not in line]
    assert started.returncode == 2, errors
    assert errors[-1].startswith("mailsift: a scoring worker could not start: "), errors
    assert not [line for line in errors if "trying again" in line], "no try comes: it exits"
