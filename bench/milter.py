"""Through real Postfix: mailsift's milter against spamass-milter + spamd, and Postfix with no milter.

What users feel of a milter is what it adds to each SMTP transaction and how many messages per second
the MTA still takes, so this benchmark measures it where users run it: the test split of the benchmark
corpus (bench.corpus) goes three times through one private Postfix (tests.support.postfix), each time
with 20 concurrent SMTP sessions, one message per connection:

1. the smtpd without any milter: the baseline;
2. the smtpd with `smtpd_milters` -> `mailsift milter` (2 workers, rules only: Bayes and autolearn
   off, default action thresholds, quarantine in a temporary directory);
3. the same smtpd pointed at spamass-milter (Debian package) -> a private spamd with 2 children,
   network tests and Bayes off (bench.spamassassin), rejecting at mailsift's reject threshold (-r);
   `-m` keeps it from rewriting Subject and body, which mailsift never does either.

Every message goes to its own recipient `u<N>@bench.example`, so its fate is known without changing a
header: at the SMTP sink (delivered), in mailsift's quarantine (its metadata lists the recipient), or
refused with 5xx at the client. mailsift's outcomes must equal what the same config predicts offline
(Scanner.scan + actions.decide, with the envelope and arrival time the milter has), and no message
may be lost in any pass. Postfix leaves the headers as sent, as it does for inbound mail from remote
clients (`local_header_rewrite_clients` empty), so the milter scans the corpus bytes. Latency is
per transaction, from connect to the final DATA reply; "added" is a message's time minus its own time
in the baseline pass. msg/s is the wall clock of a pass (warm-up excluded).

Run from the repository root (as root: Postfix is started privately, /etc/postfix is never read):

    .venv/bin/python bench/milter.py [--limit N] [--skip-spamass] [--write]
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bench import corpus, score, sections, spamassassin
from bench.sections import markers
from mailsift.analysis.model import Envelope
from mailsift.config import Config, load_config
from mailsift.milter.actions import Decision, decide
from mailsift.quarantine.store import QuarantineStore
from mailsift.scanner import Scanner
from tests.support import postfix as postfix_support
from tests.support.milter_process import MilterProcess
from tests.support.ports import LOOPBACK, free_port, wait_for_port
from tests.support.postfix import PostfixInstance
from tests.support.sink import SINK_HOSTNAME
from tests.support.smtp_client import Sent, send

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = markers("milter.py")
SPAMASS_MILTER = Path("/usr/sbin/spamass-milter")
SMTP_SINK = "/usr/sbin/smtp-sink"  # in Debian's postfix package
SINK_BACKLOG = 256
RCPT_LINE = b"X-Rcpt-Args: <"  # how a smtp-sink dump names a recipient

CLIENTS = 20
WORKERS = 2
WARMUP = 40  # messages per pass before the clock starts: smtpd processes forked, milter connected
SENDER = "bench@sender.example"
RCPT_DOMAIN = "bench.example"
RCPT = re.compile(rf"^u(\d+)@{re.escape(RCPT_DOMAIN)}$")
CLIENT_HELO = "client.test.invalid"  # what tests.support.smtp_client says in EHLO
CLIENT_NAME = "localhost"  # Postfix's name for 127.0.0.1 (from /etc/hosts), as the milter logs it
SETTLE_TIMEOUT_S = 300.0  # for the queue to drain to the sink after a pass
MILTER_STOP_TIMEOUT_S = 15.0

SPEED_RATIO_TARGET = 10.0
ADDED_P99_TARGET_MS = 100.0

BASELINE, MAILSIFT, SPAMASS = "Postfix, no milter", "mailsift milter", "spamass-milter + spamd"
FLOOR = "null pymilter (adds 4 headers)"


class Outcome(StrEnum):
    """Where one message ended up. The first three are the only places a message may be."""

    DELIVERED = "delivered"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    TEMPFAIL = "tempfail"  # 4xx: the client would retry, but this run does not
    LOST = "lost"  # accepted (or the session failed) and found nowhere
    DUPLICATED = "duplicated"  # found in more than one place, or twice in one


ACCOUNTED = (Outcome.DELIVERED, Outcome.QUARANTINED, Outcome.REJECTED)


# --- pure helpers ----------------------------------------------------------------------------------


def recipient(index: int) -> str:
    """The envelope recipient that identifies message `index` wherever it ends up."""
    return f"u{index}@{RCPT_DOMAIN}"


def index_of(address: str) -> int | None:
    """The message index a recipient address names, None for any other address (e.g. warm-up)."""
    found = RCPT.match(address.strip().strip("<>").lower())
    return int(found.group(1)) if found else None


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile with linear interpolation between ranks (numpy's default method).

    Interpolated rather than nearest-rank because p99 of 1511 values falls between two of them."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def predicted_outcome(decision: Decision) -> Outcome:
    """What the milter does with a one-recipient message: reject, quarantine (discard) or deliver."""
    if decision.reject:
        return Outcome.REJECTED
    if decision.quarantine and not decision.deliver:
        return Outcome.QUARANTINED
    return Outcome.DELIVERED


def observed_outcome(code: int, delivered: int, quarantined: int) -> Outcome:
    """One message's fate from the client's final reply code and how often it was found where.

    A 5xx counts as a place the message went (the sender holds it), so a refused message that also
    turns up at the sink is a duplicate, not a reject."""
    refused = 500 <= code < 600
    places = delivered + quarantined + refused
    if places > 1:
        return Outcome.DUPLICATED
    if places == 0:
        return Outcome.TEMPFAIL if 400 <= code < 500 else Outcome.LOST
    if refused:
        return Outcome.REJECTED
    return Outcome.DELIVERED if delivered else Outcome.QUARANTINED


def per_index(addresses: Mapping[str, int]) -> Counter[int]:
    """Counts by recipient address -> counts by message index; other addresses are dropped."""
    counts: Counter[int] = Counter()
    for address, count in addresses.items():
        index = index_of(address)
        if index is not None:
            counts[index] += count
    return counts


def outcomes(codes: Sequence[int], delivered: Mapping[str, int],
             quarantined: Mapping[str, int]) -> list[Outcome]:
    """Every message's outcome, in message order, from the client codes and the places found."""
    at_sink, in_quarantine = per_index(delivered), per_index(quarantined)
    return [observed_outcome(code, at_sink[i], in_quarantine[i]) for i, code in enumerate(codes)]


def mismatches(predicted: Sequence[Outcome], observed: Sequence[Outcome]) -> list[int]:
    """Indexes of the messages whose observed outcome differs from the prediction."""
    return [i for i, (want, got) in enumerate(zip(predicted, observed, strict=True)) if want != got]


def lost(observed: Sequence[Outcome]) -> int:
    """Messages not accounted for exactly once (tempfailed, lost or duplicated)."""
    return sum(outcome not in ACCOUNTED for outcome in observed)


def added_latencies(times: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per message: its time in this pass minus its own time in the no-milter pass."""
    return [t - b for t, b in zip(times, baseline, strict=True)]


# --- the SMTP sink ---------------------------------------------------------------------------------------


class SinkTool:
    """Postfix's own `smtp-sink` as the next hop, dumping each transaction to a file.

    The sink runs on the same two cores as the system under test, so its CPU is taken from
    Postfix and the milter. The first version used tests.support.sink (aiosmtpd, Python) in a
    child process: it took ~1 ms of CPU per delivered message in the mailsift pass, about an
    eighth of the whole machine's work, and every pass paid it. smtp-sink is the C test server
    that ships with Postfix for exactly this kind of measurement. What the bench needs from
    the sink is only who received what: the envelope lines at the top of each dump file.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "sink"
        self.counted: set[Path] = set()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SinkTool:
        self.dir.mkdir()
        self.dir.chmod(0o777)  # smtp-sink drops to nobody before it writes
        # The greeting name must differ from Postfix's myhostname, or Postfix sees a mail loop.
        self._process = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-h", SINK_HOSTNAME, "-d", f"{self.dir}/",
             f"{LOOPBACK}:{self.port}", str(SINK_BACKLOG)])
        wait_for_port(self.port, timeout=30)
        return self

    def drain(self) -> Counter[str]:
        """Recipient addresses (lower case) of what arrived since the last drain, with counts."""
        received: Counter[str] = Counter()
        for path in sorted(set(self.dir.iterdir()) - self.counted):
            self.counted.add(path)
            received.update(dump_recipients(path.read_bytes()))
        return received

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


def dump_recipients(dump: bytes) -> list[str]:
    """The envelope recipients of one smtp-sink dump: its `X-Rcpt-Args: <addr> [args]` lines.
    The envelope is the run of X- lines that opens the file; the message follows it."""
    found = []
    for line in dump.split(b"\n"):
        if not line.startswith(b"X-"):
            break
        if line.startswith(RCPT_LINE):
            found.append(line[len(RCPT_LINE):].partition(b">")[0].decode("ascii", "replace").lower())
    return found


# --- one pass ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassResult:
    name: str
    sent: list[Sent]  # in message order
    seconds: float  # wall clock of the timed part
    outcomes: list[Outcome]
    other_deliveries: int  # sink deliveries to addresses that are no bench message (bounces?)

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.sent]

    @property
    def msgs_per_s(self) -> float:
        return len(self.sent) / self.seconds

    def counts(self) -> Counter[Outcome]:
        return Counter(self.outcomes)


def _send_one(port: int, rcpt: str, raw: bytes) -> Sent:
    """One transaction; a broken session is recorded (code 0) instead of ending the benchmark."""
    try:
        return send(port, SENDER, [rcpt], raw, timeout=120.0)
    except (OSError, smtplib.SMTPException) as exc:
        return Sent(0, f"{type(exc).__name__}: {exc}", "error")


def _send_all(port: int, rcpts: Sequence[str], raws: Sequence[bytes]) -> tuple[list[Sent], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        sent = list(pool.map(lambda pair: _send_one(port, *pair), zip(rcpts, raws, strict=True)))
    return sent, time.perf_counter() - started


def run_pass(name: str, port: int, raws: Sequence[bytes], postfix: PostfixInstance,
             sink: SinkTool, quarantine: QuarantineStore | None = None) -> PassResult:
    """Warm up, send every message with CLIENTS concurrent sessions, wait for delivery, account."""
    warm = [f"warm{i}@{RCPT_DOMAIN}" for i in range(min(WARMUP, len(raws)))]
    _send_all(port, warm, raws[:len(warm)])
    postfix.wait_queue_empty(SETTLE_TIMEOUT_S)
    sink.drain()
    before = quarantined_recipients(quarantine)
    print(f"{name}: sending {len(raws)} messages with {CLIENTS} sessions", flush=True)
    sent, seconds = _send_all(port, [recipient(i) for i in range(len(raws))], raws)
    postfix.wait_queue_empty(SETTLE_TIMEOUT_S)
    delivered = sink.drain()
    held = quarantined_recipients(quarantine) - before
    found = outcomes([s.code for s in sent], delivered, held)
    other = sum(n for address, n in delivered.items() if index_of(address) is None)
    return PassResult(name, sent, seconds, found, other)


def quarantined_recipients(store: QuarantineStore | None) -> Counter[str]:
    """Recipient addresses (lower case) over every quarantined message, with counts."""
    if store is None:
        return Counter()
    return Counter(r.lower() for qid in store.ids() for r in store.meta(qid)["recipients"])


# --- mailsift ------------------------------------------------------------------------------------------


def mailsift_config(directory: Path) -> dict[str, Any]:
    """Rules only, like spamd without Bayes; default thresholds; every path under `directory`.

    on_error = tempfail, so that a scoring failure shows up as a 4xx (lost here) and not as an
    unscanned delivery that might happen to match the prediction."""
    return {
        "rules": {"local_cf": str(directory / "local.cf"), "cache_dir": str(directory / "cache")},
        "bayes": {"enabled": False, "store": f"sqlite:///{directory / 'bayes.sqlite'}"},
        "autolearn": {"enabled": False},
        "milter": {"workers": WORKERS, "on_error": "tempfail", "socket_mode": "0666"},
        "quarantine": {"dir": str(directory / "quarantine")},
    }


def predict(config: Config, raws: Sequence[bytes]) -> tuple[list[Outcome], list[float]]:
    """Offline outcome and score of each message under `config`, with what the milter adds to it.

    The envelope: the milter puts the connecting client (127.0.0.1, its HELO, MAIL FROM) at the head
    of the relay chain, which relay-based rules read. The arrival time: the milter measures Date
    against now, so a 2002 corpus message gets DATE_PAST_30D there; offline, without an arrival,
    the date rules measure against the message's own newest Received header instead."""
    scanner = Scanner(config)
    arrival = datetime.now(UTC)
    predicted, scores = [], []
    for index, raw in enumerate(raws):
        rcpt = recipient(index)
        envelope = Envelope(client_ip=LOOPBACK, client_name=CLIENT_NAME, helo=CLIENT_HELO,
                            mail_from=SENDER, rcpt_to=[rcpt])
        result = scanner.scan(raw, envelope, arrival)
        predicted.append(predicted_outcome(decide(result.score, [rcpt], config, outbound=False)))
        scores.append(result.score)
    return predicted, scores


MILTER_LOG = re.compile(r"to=<([^>]*)> score=(\S+) action=(\S+)")


def same_scores(predicted: Sequence[float], logged: Mapping[int, str]) -> int:
    """How many messages the milter scored exactly as predicted (it logs one decimal).

    Outcomes can agree while scores drift; this shows whether the prediction is really the same
    computation."""
    return sum(logged.get(i) == f"{score:.1f}" for i, score in enumerate(predicted))


def milter_scores(lines: Sequence[str]) -> dict[int, str]:
    """Message index -> the score the milter logged for it: shows why an outcome differed."""
    scores: dict[int, str] = {}
    for line in lines:
        found = MILTER_LOG.search(line)
        if found and (index := index_of(found.group(1))) is not None:
            scores[index] = found.group(2)
    return scores


TRACEBACK_FRAME = re.compile(r'^\s+File "([^"]+)", line (\d+), in (\S+)')
EXCEPTION_LINE = re.compile(r"^(\w+(?:Error|Exception))\b")


def milter_errors(lines: Sequence[str]) -> Counter[str]:
    """Exceptions in the milter's stderr, by type and innermost frame, with counts.

    A message the milter could not handle comes back to the client as a 451 from pymilter, which
    says nothing about why; the traceback in the milter's stderr does."""
    errors: Counter[str] = Counter()
    frame = ""
    for line in lines:
        if found := TRACEBACK_FRAME.match(line):
            path, number, function = found.groups()
            frame = f"{Path(path).name}:{number} in {function}"
        elif found := EXCEPTION_LINE.match(line):
            errors[f"{found.group(1)} at {frame or '?'}"] += 1
            frame = ""
    return errors


# --- spamass-milter ------------------------------------------------------------------------------------


class SpamassMilter:
    """spamass-milter on a unix socket, handing each message to spamc -> our private spamd.

    Every milter in this benchmark listens on a unix socket, as on a single host it should: over
    loopback TCP the milter protocol's small packets meet Nagle and delayed ACKs (the null milter
    ran at 213 msg/s over TCP and 473 over a unix socket). The socket lies in the run's own
    directory (the private Postfix runs without chroot; nothing system-wide is touched). `-m`: no
    Subject/body rewriting (mailsift only adds headers); `-r`: reject at mailsift's reject
    threshold; spamc's size cap is raised as in bench.spamassassin, so no large message passes
    unscanned."""

    def __init__(self, spamd_port: int, reject_at: float, log_path: Path, socket_path: Path) -> None:
        self.spamd_port = spamd_port
        self.reject_at = reject_at
        self.log_path = log_path
        self.socket_path = socket_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def postfix_address(self) -> str:
        return f"unix:{self.socket_path}"

    def command(self) -> list[str]:
        return [str(SPAMASS_MILTER), "-p", f"unix:{self.socket_path}", "-m",
                "-r", f"{self.reject_at:g}", "--", "-d", LOOPBACK, "-p", str(self.spamd_port),
                "-s", str(spamassassin.SPAMC_MAX_SIZE)]

    def __enter__(self) -> SpamassMilter:
        with self.log_path.open("wb") as log:
            # umask 0: the socket must be writable by Postfix's smtpd (user postfix)
            self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, umask=0)
        try:
            wait_for_socket(self.socket_path, 30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"spamass-milter did not listen: {self.log_path.read_text()}") from None
        return self

    def stop(self) -> None:
        """SIGTERM, and connect once: libmilter notices a stop only every ~5 s unless woken."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        poke_unix(self.socket_path)
        try:
            process.wait(MILTER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_socket(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {path}")
        time.sleep(0.05)


def poke_unix(path: Path) -> None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.5)
        probe.connect(str(path))


def spamass_version() -> str:
    """The Debian package version: spamass-milter has no --version."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "spamass-milter"], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "unknown version"


# --- report -------------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def table(runs: Sequence[PassResult], baseline: PassResult) -> str:
    lines = [
        "| pass | msg/s | p50 ms | p99 ms | added p50 ms | added p99 ms | delivered | quarantined "
        "| rejected | unaccounted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        added = added_latencies(run.times, baseline.times)
        added_cells = ("-", "-") if run is baseline else (_ms(percentile(added, 50)),
                                                          _ms(percentile(added, 99)))
        counts = run.counts()
        lines.append(
            f"| {run.name} | {run.msgs_per_s:.1f} | {_ms(percentile(run.times, 50))} "
            f"| {_ms(percentile(run.times, 99))} | {added_cells[0]} | {added_cells[1]} "
            f"| {counts[Outcome.DELIVERED]} | {counts[Outcome.QUARANTINED]} "
            f"| {counts[Outcome.REJECTED]} | {lost(run.outcomes)} |")
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def target_lines(runs: Mapping[str, PassResult], predicted: Sequence[Outcome]) -> list[str]:
    """The Done-when targets, plus the zero-lost check of every pass."""
    baseline, ours = runs[BASELINE], runs[MAILSIFT]
    lines = []
    if SPAMASS in runs:
        ratio = ours.msgs_per_s / runs[SPAMASS].msgs_per_s
        lines.append(f"- msg/s mailsift / spamass-milter: {ratio:.1f}x (target >= "
                     f"{SPEED_RATIO_TARGET:g}x): {_verdict(ratio >= SPEED_RATIO_TARGET)}")
    p99 = percentile(added_latencies(ours.times, baseline.times), 99) * 1000
    lines.append(f"- mailsift p99 added latency {p99:.0f} ms (target < {ADDED_P99_TARGET_MS:g} ms): "
                 f"{_verdict(p99 < ADDED_P99_TARGET_MS)}")
    wrong = mismatches(predicted, ours.outcomes)
    lines.append(f"- mailsift outcomes as `mailsift check` predicts: {len(predicted) - len(wrong)} of "
                 f"{len(predicted)}: {_verdict(not wrong)}")
    for run in runs.values():
        missing = lost(run.outcomes)
        lines.append(f"- {run.name}: {missing} of {len(run.sent)} not delivered, quarantined or "
                     f"rejected exactly once{unaccounted_detail(run.outcomes)}, "
                     f"{run.other_deliveries} other deliveries (target: zero lost): "
                     f"{_verdict(missing == 0 and run.other_deliveries == 0)}")
    return lines


def unaccounted_detail(observed: Sequence[Outcome]) -> str:
    """The breakdown after the count, e.g. ' (tempfail 7)'. A 451 is no silent loss (the sender
    keeps the message) but it is never delivered either, so it fails zero-lost too; the reader
    should see which it was."""
    counts = Counter(o for o in observed if o not in ACCOUNTED)
    return f" ({', '.join(f'{o} {n}' for o, n in sorted(counts.items()))})" if counts else ""


def mismatch_lines(predicted: Sequence[Outcome], predicted_scores: Sequence[float],
                   run: PassResult, logged: Mapping[int, str], paths: Sequence[Path]) -> list[str]:
    """One line per message whose outcome or logged score differed: file, prediction, what
    happened, both scores."""
    differing = set(mismatches(predicted, run.outcomes)) | {
        i for i, found in logged.items() if found != f"{predicted_scores[i]:.1f}"}
    return [f"  {paths[i].parent.name}/{paths[i].name}: predicted {predicted[i]} "
            f"(score {predicted_scores[i]:.2f}), got {run.outcomes[i]} (milter score "
            f"{logged.get(i, '-')}, reply {run.sent[i].reply})"
            for i in sorted(differing)]


def thresholds(config: Config) -> str:
    def show(value: float | None) -> str:
        return "off" if value is None else f"{value:g}"

    actions = config.actions
    return (f"subject tag {show(actions.rewrite_subject)}, quarantine {show(actions.quarantine)}, "
            f"reject {show(actions.reject)}")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@dataclass(frozen=True)
class RunInfo:
    """What the section says about the conditions of the run."""

    uptime_before: str
    uptime_after: str
    spamass_version: str
    split: str
    thresholds: str


def diagnostics(predicted_scores: Sequence[float], milter_lines: Sequence[str]) -> list[str]:
    """What explains a FAIL of the outcome check: how close the scores were, and why the milter
    answered 451 (its exceptions), for the section as well as the terminal."""
    same = same_scores(predicted_scores, milter_scores(milter_lines))
    lines = [f"- mailsift milter scored {same} of {len(predicted_scores)} messages exactly as "
             "predicted (to the one decimal it logs)"]
    lines += [f"- mailsift milter stderr: {count}x {error} (pymilter answers 451 4.3.0)"
              for error, count in milter_errors(milter_lines).items()]
    return lines


def latency_by_outcome(run: PassResult, baseline: PassResult) -> str:
    """Added p99 per outcome: which action the tail comes from (a quarantine writes to disk)."""
    added = added_latencies(run.times, baseline.times)
    parts = []
    for outcome in ACCOUNTED:
        mine = [a for a, o in zip(added, run.outcomes, strict=True) if o == outcome]
        if mine:
            parts.append(f"{outcome} {_ms(percentile(mine, 99))} ms ({len(mine)})")
    return f"- {run.name} added p99 by outcome: " + ", ".join(parts)


def section(runs: Mapping[str, PassResult], predicted: Sequence[Outcome], info: RunInfo,
            notes: Sequence[str]) -> str:
    """The BENCHMARKS.md section, between its markers, so that --write can replace it in place."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    baseline = runs[BASELINE]
    return "\n".join([
        BEGIN,
        "## Through Postfix: mailsift milter vs spamass-milter",
        "",
        f"`bench/milter.py --write`, {today}, {score.machine()}, mailsift at commit "
        f"{score.git_revision()}. Test split ({info.split}) sent four times through one private "
        "Postfix 3.7 (relaying to Postfix's C `smtp-sink`, which dumps each message) by "
        f"{CLIENTS} concurrent SMTP sessions, one message per connection, one recipient per "
        "message: no milter; a null pymilter that only adds the four X-Spam headers "
        "(`bench/null_milter.py`: what any Python milter costs here before doing any work); mailsift "
        f"milter ({WORKERS} workers, rules only, autolearn off, default thresholds: "
        f"{info.thresholds}); spamass-milter {info.spamass_version} (`-m -r`, rejecting at the same "
        f"score) with spamd ({WORKERS} children, `--local`, `use_bayes 0`). Latency: connect to the "
        "final DATA reply; added = a message's time minus its own time in the no-milter pass. "
        f"msg/s: wall clock of the pass, after {WARMUP} warm-up messages. mailsift's outcomes are "
        "checked one by one against the offline prediction (`Scanner.scan` + `actions.decide` with the "
        "milter's envelope and arrival time); spamass-milter's only for zero lost. Postfix leaves "
        "headers as sent, as for inbound mail (`local_header_rewrite_clients` empty).",
        "",
        f"Load: before `{info.uptime_before}`; after `{info.uptime_after}` (other jobs share the "
        "machine: compare within this table).",
        "",
        table(list(runs.values()), baseline),
        "",
        *target_lines(runs, predicted),
        "",
        "Notes:",
        "",
        *notes,
        END,
    ])


def write_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    sections.write_section(text, BEGIN, END, path, score.intro())


# --- orchestration --------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_postfix(sink_port: int, root: Path) -> Iterator[PostfixInstance]:
    """The test Postfix, treating our loopback client as the Internet MX it stands for.

    Postfix rewrites the headers of local clients (e.g. From: a@b@c.example becomes
    "a@b"@c.example, which drops FROM_NO_ADDRESS) before the milter sees them; inbound mail from
    remote clients is left as sent, and that is what a spam filter gets in production."""
    instance = PostfixInstance(sink_port, root=root)
    instance.postconf(local_header_rewrite_clients="")
    try:
        instance.start()
        yield instance
    finally:
        instance.cleanup()


def run_mailsift(milter: MilterProcess, raws: Sequence[bytes], postfix: PostfixInstance,
                 sink: SinkTool) -> PassResult:
    with milter:
        postfix.set_milter(milter.postfix_address, "tempfail")
        store = QuarantineStore(milter.config["quarantine"]["dir"])
        return run_pass(MAILSIFT, postfix.smtpd_port, raws, postfix, sink, store)


def run_floor(raws: Sequence[bytes], postfix: PostfixInstance, sink: SinkTool,
              workdir: Path) -> PassResult:
    """The null milter: what a Python milter costs here before it does any work."""
    path = workdir / "null.sock"
    # As a module from the repository root: run as a file, bench/ would come first on sys.path
    # and this very script would shadow pymilter's `milter` extension.
    command = [sys.executable, "-m", "bench.null_milter", f"unix:{path}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO, umask=0) as null:
        try:
            wait_for_socket(path, 30)
            postfix.set_milter(f"unix:{path}", "tempfail")
            return run_pass(FLOOR, postfix.smtpd_port, raws, postfix, sink)
        finally:
            null.terminate()


def run_spamass(raws: Sequence[bytes], postfix: PostfixInstance, sink: SinkTool, workdir: Path,
                reject_at: float) -> PassResult:
    with spamassassin.Spamd(children=WORKERS) as spamd, \
            SpamassMilter(spamd.port, reject_at, workdir / "spamass-milter.log",
                          workdir / "spamass.sock") as milter:
        postfix.set_milter(milter.postfix_address, "tempfail")
        return run_pass(SPAMASS, postfix.smtpd_port, raws, postfix, sink)


def preflight(skip_spamass: bool) -> str | None:
    """Why the benchmark cannot run here, or None."""
    if os.geteuid() != 0:
        return "run as root: the private Postfix needs to start its daemons as postfix/nobody"
    if not postfix_support.available():
        return "Postfix is not installed: apt-get install postfix"
    if not Path(SMTP_SINK).exists():
        return f"{SMTP_SINK} is missing: it comes with Debian's postfix package"
    if not skip_spamass and not SPAMASS_MILTER.exists():
        return (f"{SPAMASS_MILTER} is missing: apt-get install spamass-milter "
                "(or pass --skip-spamass to measure mailsift alone)")
    if not skip_spamass and not shutil.which(spamassassin.SPAMC):
        return "spamc is missing: apt-get install spamc"
    return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--limit", type=int, help="send a stratified subset of about N test messages")
    parser.add_argument("--skip-spamass", action="store_true", help="no spamass-milter pass")
    parser.add_argument("--write", action="store_true",
                        help=f"update the milter section of {BENCHMARKS_MD.name}")
    args = parser.parse_args(argv)
    if args.write and (args.limit or args.skip_spamass):
        parser.error("--write records the full three-pass run: drop --limit and --skip-spamass")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problem = preflight(args.skip_spamass)
    if problem:
        print(f"bench/milter.py: {problem}", file=sys.stderr)
        return 2
    samples = corpus.test_set()
    if args.limit:
        samples = corpus.stratified_subset(samples, args.limit)
    paths = [path for path, _ in samples]
    raws = [path.read_bytes() for path in paths]
    labels = [is_spam for _, is_spam in samples]
    split = score.split_description(labels)
    before = uptime()
    print(f"{split}; {score.machine()}; {before}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="mailsift-bench-milter-"))
    workdir.chmod(0o755)  # Postfix's daemons traverse it
    try:
        (workdir / "mailsift").mkdir()
        milter = MilterProcess(mailsift_config(workdir / "mailsift"), workdir / "mailsift",
                               unix_socket=workdir / "mailsift.sock")
        config = load_config(str(milter.config_path))  # the file the milter will read
        reject_at = config.actions.reject
        assert reject_at is not None, "the benchmark keeps mailsift's default reject threshold"
        print("predicting outcomes offline", flush=True)
        predicted, predicted_scores = predict(config, raws)
        with SinkTool(workdir) as sink, private_postfix(sink.port, workdir) as postfix:
            runs: dict[str, PassResult] = {}
            runs[BASELINE] = run_pass(BASELINE, postfix.plain_port, raws, postfix, sink)
            runs[FLOOR] = run_floor(raws, postfix, sink, workdir)
            runs[MAILSIFT] = run_mailsift(milter, raws, postfix, sink)
            if not args.skip_spamass:
                runs[SPAMASS] = run_spamass(raws, postfix, sink, workdir, reject_at)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    info = RunInfo(before, uptime(), spamass_version(), split, thresholds(config))
    print(table(list(runs.values()), runs[BASELINE]))
    print("\n".join(target_lines(runs, predicted)))
    notes = [*diagnostics(predicted_scores, milter.lines),
             latency_by_outcome(runs[MAILSIFT], runs[BASELINE])]
    print("\n".join(notes))
    for line in mismatch_lines(predicted, predicted_scores, runs[MAILSIFT],
                               milter_scores(milter.lines), paths):
        print(line)
    print(f"load: before `{info.uptime_before}`; after `{info.uptime_after}`")
    if args.write:
        write_section(section(runs, predicted, info, notes))
        print(f"updated {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
