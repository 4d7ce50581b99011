"""SpamAssassin rules-only as a reference: a private spamd scored through spamc, as a mail server would.

Why this setup: ANCHORS.md measured "spamd 2 children, spamc x2", and the speed comparison with
mailsift is only fair on the same footing (2 workers on this 2-core machine, warm rules in resident
processes, one request per message). The spamd here never touches the system's state:

* stock rules and Debian's site config (/etc/spamassassin: its .pre files load the plugins) are used
  as installed; what this benchmark changes is given with `--cf` lines instead of edits to /etc;
* `--local` turns off DNS, Razor, Pyzor and the other network tests (there is no DNS here, and timeouts
  would measure the network, not the filter);
* `use_bayes 0` and `bayes_auto_learn 0`: rules only, and scoring must not change what is scored later
  (the default of `Spamd`; bench/bayes.py passes other `config_lines` to score with a learned Bayes DB);
* `--nouser-config` and a throw-away `--helper-home-dir`: no per-user prefs are read or written;
* as root, spamd would fall back to `nobody` per message with a warning; `-u nobody` says so up front.

spamc runs with `-x` (errors are errors, not a silent "0/0" pass) and `-s` above the largest message,
because its default 500 KB cap lets big spam through unscanned.
"""

from __future__ import annotations

import contextlib
import email.parser
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SPAMD = "/usr/sbin/spamd"
SPAMC = "spamc"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0
MESSAGE_TIMEOUT_S = 300
SPAMC_MAX_SIZE = 256 * 1024 * 1024  # spamc's own ceiling; far above any corpus message
CONFIG_LINES = ("use_bayes 0", "bayes_auto_learn 0")


@dataclass(frozen=True)
class SaVerdict:
    score: float
    is_spam: bool


def free_port() -> int:
    """A loopback port nobody listens on now, so runs can coexist with a system spamd or each other."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def spamd_version() -> str:
    out = subprocess.run([SPAMD, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def _ping(port: int) -> bool:
    """True when a spamd child answers a SPAMC PING: the port alone opens before children serve."""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(b"PING SPAMC/1.5\r\n\r\n")
            return b"PONG" in sock.recv(256)
    except OSError:
        return False


class Spamd:
    """A private spamd for the duration of a `with` block; always stopped on exit, also on error."""

    def __init__(self, children: int = 2, config_lines: Sequence[str] = CONFIG_LINES) -> None:
        """`config_lines` are passed as `--cf` lines, i.e. site settings that override /etc without
        editing it; the default is rules only."""
        self.children = children
        self.config_lines = tuple(config_lines)
        self.port = free_port()
        self._home = Path(tempfile.mkdtemp(prefix="mailsift-bench-spamd-"))
        self._log_path = self._home / "spamd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            SPAMD, "--local", "--nouser-config", f"--helper-home-dir={self._home}",
            f"--listen={HOST}:{self.port}", f"--max-children={self.children}",
            f"--min-children={self.children}", "--syslog=stderr",
        ]
        cmd += [f"--cf={line}" for line in self.config_lines]
        if os.geteuid() == 0:
            cmd += ["--username=nobody"]
        return cmd

    def __enter__(self) -> Spamd:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self._home, nobody.pw_uid, nobody.pw_gid)
        with self._log_path.open("wb") as log:
            # own session: stop() can signal spamd and its children as one group
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"spamd exited with {self._proc.returncode}:\n{self.log_tail()}")
            if _ping(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"spamd not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no spamd log)"

    def stop(self) -> None:
        """SIGTERM spamd, which stops and reaps its children; then SIGKILL whatever is left of its
        process group, so that no child outlives the benchmark even if spamd died abnormally."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self._home, ignore_errors=True)


def _parse_check(stdout: str) -> float:
    """spamc -c prints "score/threshold", e.g. "9.4/5.0"."""
    return float(stdout.strip().split("/", 1)[0])


def _spamc(path: Path, port: int, *mode: str) -> subprocess.CompletedProcess[str]:
    """One spamc run on a message: exit status 1 means spam, 0 ham, anything else is a failure.
    No `mode`: spamd returns the message with its headers added."""
    cmd = [SPAMC, "-d", HOST, "-p", str(port), *mode, "-x", "-s", str(SPAMC_MAX_SIZE),
           "-t", str(MESSAGE_TIMEOUT_S)]
    with path.open("rb") as message:
        done = subprocess.run(cmd, stdin=message, capture_output=True, text=True, errors="replace",
                              check=False, timeout=MESSAGE_TIMEOUT_S + 30)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"spamc {mode} failed ({done.returncode}) on {path}: {done.stderr.strip()}")
    return done


def check_message(path: Path, port: int) -> SaVerdict:
    """Score one message with spamc."""
    done = _spamc(path, port, "-c")
    return SaVerdict(score=_parse_check(done.stdout), is_spam=done.returncode == 1)


def hit_rules(path: Path, port: int) -> list[str]:
    """The names of the rules one message hits (`spamc -y`): lets a benchmark check that a setting
    took effect, e.g. that BAYES_ rules fire, instead of silently measuring something else."""
    return [name for name in _spamc(path, port, "-y").stdout.strip().split(",") if name]


# Headers naming every rule hit, `__` sub-rules included (spamc -y lists only the scoring ones);
# space-separated so that SpamAssassin can fold them. For a Spamd's config_lines.
HIT_HEADER_LINES = ("report_safe 0", "add_header all Tests _TESTS( )_",
                    "add_header all Subtests _SUBTESTS( )_")


def all_hit_rules(path: Path, port: int) -> set[str]:
    """Every rule one message hits, sub-rules included; the spamd needs HIT_HEADER_LINES."""
    processed = _spamc(path, port).stdout
    headers = email.parser.HeaderParser().parsestr(processed.split("\n\n", 1)[0] + "\n\n")
    names: set[str] = set()
    for header in ("X-Spam-Tests", "X-Spam-Subtests"):
        value = headers.get(header)
        if value is None:
            raise RuntimeError(f"spamd added no {header} header to {path}: HIT_HEADER_LINES missing?")
        names.update(name for name in str(value).split() if name != "none")
    return names


def score_messages(paths: Sequence[Path], port: int, clients: int = 2) -> tuple[list[SaVerdict], float]:
    """Score every message with `clients` concurrent spamc runs; return verdicts in input order and
    the wall-clock seconds the scoring took (spamd start-up excluded)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        verdicts = list(pool.map(lambda path: check_message(path, port), paths))
    return verdicts, time.perf_counter() - started
