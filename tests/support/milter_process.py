"""`mailsift milter` as a child process, the way systemd runs it: own config file, stderr log.

Tests talk to it only through Postfix (and read its stderr), so what is tested is the shipped
command line, config loading, worker start-up and shutdown — not an in-process shortcut.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from tests.support.ports import LOOPBACK, free_port
from tests.support.procs import alive, descendants

READY_TIMEOUT_S = 60.0  # the scanner compiles the rules in every worker (cached on disk later)
STOP_TIMEOUT_S = 15.0


def mailsift_command() -> list[str]:
    """The installed console script next to this Python, else the CLI run through this Python."""
    script = Path(sys.executable).parent / "mailsift"
    if script.exists():
        return [str(script)]
    found = shutil.which("mailsift")
    if found:
        return [found]
    return [sys.executable, "-c", "from mailsift.cli import main; main()"]


def _without_none(value: Any) -> Any:
    """TOML has no null: a None in a test's overrides means "leave the key out"."""
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


def to_toml(config: Mapping[str, Any]) -> str:
    return tomli_w.dumps(_without_none(config))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied one level deep per section (a section dict is merged)."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


class MilterProcess:
    """One `mailsift --config FILE milter`; collects its stderr lines for assertions."""

    READY = re.compile(r"mailsift milter: ready on (\S+)")

    def __init__(self, config: Mapping[str, Any], directory: Path, *, port: int | None = None,
                 env: Mapping[str, str] | None = None, args: Sequence[str] = (),
                 unix_socket: Path | None = None) -> None:
        """`config`: the TOML content as a dict; `milter.listen` is set to our port, or to
        `unix_socket` when given (no TCP on the milter link: see bench/milter.py)."""
        self.port = port or free_port()
        self.unix_socket = unix_socket
        self.listen = f"unix:{unix_socket}" if unix_socket else f"inet:{LOOPBACK}:{self.port}"
        self.directory = directory
        self.config = merge(config, {"milter": {"listen": self.listen}})
        self.config_path = directory / "mailsift.toml"
        self.config_path.write_text(to_toml(self.config))
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._lines: list[str] = []
        self._ended = False
        self.killed = False  # True when stop() had to SIGKILL it
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def postfix_address(self) -> str:
        """The same socket in Postfix's notation (for smtpd_milters)."""
        return self.listen

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = READY_TIMEOUT_S) -> MilterProcess:
        # A second start would orphan the first process (`with p.start():` did: __enter__
        # starts too), leaving a milter running after the tests.
        assert self.process is None, "this MilterProcess was started already"
        cmd = [*mailsift_command(), "--config", str(self.config_path), "milter", *self.args]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=self.env,
                                        cwd=self.directory)
        self._reader = threading.Thread(target=self._read, name=f"milter-stderr-{self.pid}",
                                        daemon=True)
        self._reader.start()
        try:
            self.wait_for_log(self.READY, timeout)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"mailsift milter did not print its ready line in {timeout:.0f} s; "
                               f"exit status {self.returncode}; stderr:\n{self.log}") from None
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True  # wake waiters: the stream ended
            self._changed.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 15.0,
                     start: int = 0) -> re.Match[str]:
        """Wait for a stderr line (from line index `start` on) matching `pattern`; return the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = start
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = len(self._lines)
                left = deadline - time.monotonic()
                exited = self.process is not None and self.process.poll() is not None
                if left <= 0 or (exited and self._ended):
                    raise TimeoutError(f"no stderr line matching {regex.pattern!r} in "
                                       f"{timeout:.0f} s; stderr:\n{self.log}")
                self._changed.wait(min(left, 0.2))

    def mark(self) -> int:
        """Index of the next stderr line: pass as `start` to look only at what comes later."""
        with self._changed:
            return len(self._lines)

    def workers(self) -> set[int]:
        """PIDs of the scoring processes: children (and grandchildren) of the milter process."""
        return descendants(self.pid)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _poke(self) -> None:
        """libmilter re-checks for a stop only every ~5 s unless a connection wakes it."""
        try:
            if self.unix_socket is not None:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.settimeout(0.5)
                    probe.connect(str(self.unix_socket))
            else:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    pass
        except OSError:
            pass

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wake the listener, wait; SIGKILL (and report) only if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                self._poke()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.3)
            if self.process.poll() is None:
                workers = self.workers()
                self.process.kill()
                self.process.wait(timeout=10)
                for pid in workers:
                    if alive(pid):
                        os.kill(pid, signal.SIGKILL)
                with self._changed:
                    self._lines.append(f"[harness] milter ignored SIGTERM for {timeout:.0f} s; "
                                       "killed")
                self.killed = True
        self.returncode = self.process.returncode
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.returncode

    def __enter__(self) -> MilterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
