"""Rules + Bayes accuracy and speed: mailsift vs SpamAssassin (stock rules + sa-learn) vs bogofilter.

All filters run in ONE run because speeds drift between machines and loads (ANCHORS.md): the targets
compare them with each other, so they must be measured side by side. Each filter starts from an empty
learned state, learns the train half of the benchmark split (bench.corpus) and scores the test half,
with network tests off:

* mailsift through `mailsift eval --json`, the same protocol users run on their own mail, twice: into
  its default temporary SQLite store and into a private redis-server (no persistence), because Redis
  is the store a cluster of milters shares and its learning speed is a target;
* SpamAssassin: `sa-learn --local` into a private Bayes DB (start-up of its two processes included),
  then a private spamd with 2 children fed by 2 concurrent spamc clients (bench.spamassassin);
* bogofilter: `-s`/`-n` with `-B` to learn, one `-T -b` process to score (names on stdin), so that
  process start-up does not dominate; "unsure" counts as ham at its default cut-offs, and the
  spamicity is the numeric score for 1-AUC and FN at zero FP.

The split is materialised as directories of symlinks because `mailsift eval`, sa-learn and bogofilter
all take directories or file lists, and a link farm gives all three exactly the same messages.

Run from the repository root:

    .venv/bin/python bench/bayes.py [--skip-sa] [--skip-bogofilter] [--skip-redis] [--json FILE] [--write]
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import json
import os
import pwd
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from bench import corpus, score, sections, spamassassin
from bench.sections import markers
from mailsift.training.metrics import Metrics, summarize

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = markers("bayes.py")
MAILSIFT = Path(sys.executable).with_name("mailsift")
REDIS_SERVER = "redis-server"
SA_LEARN = "sa-learn"
BOGOFILTER = "bogofilter"
HOST = "127.0.0.1"
WORKERS = 2
REDIS_STARTUP_TIMEOUT_S = 30.0
FN_TARGET_PCT = 2.0
REDIS_LEARN_RATIO_TARGET = 20.0
KEYS = ("train/spam", "train/ham", "test/spam", "test/ham")
# bogofilter -T letters; "U" (unsure) is a ham verdict here, as a mail server would deliver it
BOGO_SPAM, BOGO_LETTERS = "S", frozenset("SHU")


# --- the split as directories ------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitDirs:
    """train/spam, train/ham, test/spam, test/ham under `root`; `files` lists each one's links in
    split order, so scores can be matched to labels without listing the directories again."""

    root: Path
    files: dict[str, list[Path]]

    def dir(self, key: str) -> Path:
        return self.root / key

    def test_samples(self) -> tuple[list[Path], list[bool]]:
        spam, ham = self.files["test/spam"], self.files["test/ham"]
        return spam + ham, [True] * len(spam) + [False] * len(ham)


def materialise(train: Sequence[corpus.Sample], test: Sequence[corpus.Sample], root: Path) -> SplitDirs:
    """Symlink every sample into its directory. The link name is prefixed with the corpus folder
    because two folders could hold the same file name (names are content MD5s: a message in both)."""
    files: dict[str, list[Path]] = {key: [] for key in KEYS}
    for key in KEYS:
        (root / key).mkdir(parents=True)
    for half, samples in (("train", train), ("test", test)):
        for path, is_spam in samples:
            key = f"{half}/{'spam' if is_spam else 'ham'}"
            link = root / key / f"{path.parent.name}.{path.name}"
            link.symlink_to(path)
            files[key].append(link)
    return SplitDirs(root, files)


# --- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterResult:
    """One filter's figures; `metrics.msgs_per_s` is the scoring speed."""

    name: str
    kind: str  # mailsift-sqlite, mailsift-redis, spamassassin or bogofilter: what the targets look up
    metrics: Metrics
    fp_count: int
    learn_msgs_per_s: float
    notes: list[str] = field(default_factory=list)


def measured(name: str, kind: str, labels: Sequence[bool], scores: Sequence[float],
             verdicts: Sequence[bool], score_seconds: float, learn_msgs_per_s: float,
             notes: Sequence[str] = ()) -> FilterResult:
    fp_count = sum(verdict and not label for label, verdict in zip(labels, verdicts, strict=True))
    return FilterResult(name, kind, summarize(labels, scores, verdicts, score_seconds), fp_count,
                        learn_msgs_per_s, list(notes))


# --- mailsift ----------------------------------------------------------------------------------------


def from_eval_json(name: str, kind: str, report: dict[str, float]) -> FilterResult:
    """A FilterResult from `mailsift eval --json`, which reports percentages and class sizes only."""
    metrics = Metrics(report["fp_pct"], report["fn_pct"], report["one_minus_auc_pct"],
                      report["fn_at_zero_fp_pct"], report["score_msgs_per_s"])
    fp_count = round(report["fp_pct"] * report["ham"] / 100)
    return FilterResult(name, kind, metrics, fp_count, report["learn_msgs_per_s"])


def run_mailsift(dirs: SplitDirs, store: str | None, name: str, kind: str) -> FilterResult:
    cmd = [str(MAILSIFT), "eval", "--train-spam", str(dirs.dir("train/spam")),
           "--train-ham", str(dirs.dir("train/ham")), "--test-spam", str(dirs.dir("test/spam")),
           "--test-ham", str(dirs.dir("test/ham")), "--json"]
    if store:
        cmd += ["--store", store]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mailsift eval failed ({done.returncode}): {done.stderr.strip()}")
    return from_eval_json(name, kind, json.loads(done.stdout.strip().splitlines()[-1]))


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_version() -> str:
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\S+)", out)
    return match.group(1) if match else "?"


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of this run only, on a free loopback port, nothing saved to disk; yields its URL
    and is always stopped, so a benchmark never touches a Redis someone else relies on."""
    port = spamassassin.free_port()
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [REDIS_SERVER, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(log)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + REDIS_STARTUP_TIMEOUT_S
        while not _redis_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- SpamAssassin ------------------------------------------------------------------------------------

SA_LEARNED = re.compile(r"Learned tokens from (\d+) message\(s\) \((\d+) message\(s\) examined\)")


def sa_bayes_lines(db_dir: Path) -> tuple[str, ...]:
    """The `--cf` lines shared by sa-learn and spamd: Bayes on, in the private DB; no auto-learning
    and no auto-expiry, so that scoring never changes the DB that later messages are scored with."""
    return ("use_bayes 1", "bayes_auto_learn 0", "bayes_auto_expire 0", f"bayes_path {db_dir / 'bayes'}")


def parse_sa_learn(stdout: str) -> tuple[int, int]:
    """(learned, examined) from sa-learn's summary; fewer learned than examined means duplicates."""
    match = SA_LEARNED.search(stdout)
    if match is None:
        raise RuntimeError(f"unexpected sa-learn output: {stdout.strip()!r}")
    return int(match.group(1)), int(match.group(2))


def sa_learn(directory: Path, label: str, lines: Sequence[str], home: Path) -> tuple[int, int]:
    """Learn one directory as `label` (spam or ham). HOME and an empty prefs file point at `home`, so
    root's own ~/.spamassassin is neither read nor written; --max-size 0 learns big spam too."""
    prefs = home / "user_prefs"
    prefs.touch()
    cmd = [SA_LEARN, "--local", f"--{label}", "--max-size", "0", f"--prefspath={prefs}",
           *(f"--cf={line}" for line in lines), str(directory)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "HOME": str(home)})
    if done.returncode != 0:
        raise RuntimeError(f"sa-learn --{label} failed ({done.returncode}): {done.stderr.strip()}")
    return parse_sa_learn(done.stdout)


def hand_to_spamd_user(path: Path) -> None:
    """As root, spamd's children run as nobody (bench.spamassassin) and must open the DB sa-learn
    wrote as root; SpamAssassin also writes token access times to a journal while scanning."""
    if os.geteuid() != 0:
        return
    nobody = pwd.getpwnam("nobody")
    for item in [path, *path.rglob("*")]:
        os.chown(item, nobody.pw_uid, nobody.pw_gid)


def run_spamassassin(dirs: SplitDirs, workdir: Path) -> FilterResult:
    db_dir, home = workdir / "sa-bayes", workdir / "sa-home"
    db_dir.mkdir()
    home.mkdir()
    lines = sa_bayes_lines(db_dir)
    started = time.perf_counter()
    spam = sa_learn(dirs.dir("train/spam"), "spam", lines, home)
    ham = sa_learn(dirs.dir("train/ham"), "ham", lines, home)
    learn_seconds = time.perf_counter() - started
    hand_to_spamd_user(db_dir)
    paths, labels = dirs.test_samples()
    with spamassassin.Spamd(children=WORKERS, config_lines=lines) as spamd:
        bayes_rules = [r for r in spamassassin.hit_rules(paths[0], spamd.port) if r.startswith("BAYES_")]
        if not bayes_rules:
            raise RuntimeError(f"spamd scored without Bayes (no BAYES_ rule hit):\n{spamd.log_tail()}")
        verdicts, seconds = spamassassin.score_messages(paths, spamd.port, clients=WORKERS)
    name = spamassassin.spamd_version().replace("Server version ", "") + " (rules + Bayes)"
    notes = [f"sa-learn learned {spam[0]} of {spam[1]} spam and {ham[0]} of {ham[1]} ham "
             "(it skips what it takes for duplicates); learn msg/s counts every message offered"]
    return measured(name, "spamassassin", labels, [v.score for v in verdicts],
                    [v.is_spam for v in verdicts], seconds, (spam[1] + ham[1]) / learn_seconds, notes)


# --- bogofilter --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BogoVerdict:
    letter: str  # S spam, H ham, U unsure
    spamicity: float


def parse_bogofilter(stdout: str) -> dict[str, BogoVerdict]:
    """`bogofilter -T -b` prints "path letter spamicity" per message; the path may contain spaces, the
    other two fields never do."""
    verdicts: dict[str, BogoVerdict] = {}
    for line in stdout.splitlines():
        path, letter, spamicity = line.rsplit(" ", 2)
        if letter not in BOGO_LETTERS:
            raise RuntimeError(f"unexpected bogofilter line: {line!r}")
        verdicts[path] = BogoVerdict(letter, float(spamicity))
    return verdicts


def _bogofilter(db_dir: Path, args: Sequence[str], stdin: str | None = None) -> str:
    """Run bogofilter with `-C` (no config file: its compiled-in defaults) on the private DB. Exit
    codes 0/1/2 are spam/ham/unsure (of the last message in bulk mode); 3 is an error."""
    done = subprocess.run([BOGOFILTER, "-C", "-d", str(db_dir), *args], input=stdin,
                          capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 2) or done.stderr.strip():
        raise RuntimeError(f"bogofilter {' '.join(args[:2])} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def bogofilter_version() -> str:
    return subprocess.run([BOGOFILTER, "-V"], capture_output=True, text=True,
                          check=True).stdout.split()[2]


def run_bogofilter(dirs: SplitDirs, workdir: Path) -> FilterResult:
    db_dir = workdir / "bogofilter"
    db_dir.mkdir()
    started = time.perf_counter()
    _bogofilter(db_dir, ["-s", "-B", *map(str, dirs.files["train/spam"])])
    _bogofilter(db_dir, ["-n", "-B", *map(str, dirs.files["train/ham"])])
    learn_seconds = time.perf_counter() - started
    paths, labels = dirs.test_samples()
    started = time.perf_counter()
    out = _bogofilter(db_dir, ["-T", "-b"], stdin="".join(f"{path}\n" for path in paths))
    seconds = time.perf_counter() - started
    by_path = parse_bogofilter(out)
    verdicts = [by_path[str(path)] for path in paths]
    learned = len(dirs.files["train/spam"]) + len(dirs.files["train/ham"])
    unsure = sum(v.letter == "U" for v in verdicts)
    return measured(f"bogofilter {bogofilter_version()}", "bogofilter", labels,
                    [v.spamicity for v in verdicts], [v.letter == BOGO_SPAM for v in verdicts],
                    seconds, learned / learn_seconds,
                    [f"bogofilter: {unsure} test messages unsure, counted as ham"])


# --- report ------------------------------------------------------------------------------------------


def results_table(results: Sequence[FilterResult]) -> str:
    lines = [
        "| filter | FP% (count) | FN% | 1-AUC% | FN% at zero FP | learn msg/s | score msg/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.metrics
        lines.append(f"| {r.name} | {m.fp_pct:.2f} ({r.fp_count}) | {m.fn_pct:.2f} "
                     f"| {m.one_minus_auc_pct:.3f} | {m.fn_at_zero_fp_pct:.2f} "
                     f"| {r.learn_msgs_per_s:.0f} | {m.msgs_per_s:.0f} |")
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def target_lines(results: Sequence[FilterResult], test_ham: int) -> list[str]:
    """The issue's targets for every mailsift run; the relative ones only when the reference ran."""
    by_kind = {r.kind: r for r in results}
    bogo, sa = by_kind.get("bogofilter"), by_kind.get("spamassassin")
    lines: list[str] = []
    for r in (r for r in results if r.kind.startswith("mailsift")):
        m = r.metrics
        lines.append(f"- {r.name}: {r.fp_count} false positives among {test_ham} test ham "
                     f"(target 0): {_verdict(r.fp_count == 0)}")
        lines.append(f"- {r.name}: FN {m.fn_pct:.2f}% (target <= {FN_TARGET_PCT:g}%): "
                     f"{_verdict(m.fn_pct <= FN_TARGET_PCT)}")
        if bogo is not None:
            ok = m.one_minus_auc_pct <= bogo.metrics.one_minus_auc_pct
            lines.append(f"- {r.name}: 1-AUC {m.one_minus_auc_pct:.3f}% (target no worse than "
                         f"bogofilter's {bogo.metrics.one_minus_auc_pct:.3f}%): {_verdict(ok)}")
    redis = by_kind.get("mailsift-redis")
    if redis is not None and sa is not None:
        ratio = redis.learn_msgs_per_s / sa.learn_msgs_per_s
        lines.append(f"- learning into Redis {redis.learn_msgs_per_s:.0f} msg/s = {ratio:.1f}x sa-learn's "
                     f"{sa.learn_msgs_per_s:.0f} msg/s (target >= {REDIS_LEARN_RATIO_TARGET:g}x): "
                     f"{_verdict(ratio >= REDIS_LEARN_RATIO_TARGET)}")
    return lines


def load_note(samples: Sequence[float]) -> str:
    """The 1-minute load average sampled before and after each filter: other engineers share these
    2 cores, so the speeds of this run are only comparable with each other."""
    return (f"1-min load average {samples[0]:.2f} at start, {min(samples):.2f}-{max(samples):.2f} "
            f"during the run, on {os.cpu_count()} cores")


def section(results: Sequence[FilterResult], test_ham: int, test_spam: int, load: str) -> str:
    """The BENCHMARKS.md section between this script's markers, so --write can replace it in place."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    notes = [f"- {note}" for r in results for note in r.notes]
    return "\n".join([
        BEGIN,
        "## Rules + Bayes: mailsift vs SpamAssassin vs bogofilter",
        "",
        f"`bench/bayes.py --write`, {today}, {score.machine()}, mailsift at commit {score.git_revision()}; "
        f"{load} (other jobs on the machine: compare speeds within this table only). "
        f"Each filter learns the train split from empty and scores the test split ({test_ham} ham / "
        f"{test_spam} spam), no network tests. mailsift: `mailsift eval --json`, into a temporary SQLite "
        "file and into a private redis-server (no persistence), scoring in a pool of "
        f"{WORKERS} processes. SpamAssassin: `sa-learn --local` (spam then ham, two processes, start-up "
        f"included), then spamd with {WORKERS} children (`use_bayes 1`, `bayes_auto_learn 0`, "
        f"`bayes_auto_expire 0`, `--local`) and {WORKERS} concurrent spamc, size cap raised. bogofilter: "
        "`-s`/`-n -B` to learn, one `-T -b` process to score, default cut-offs, unsure counted as ham. "
        "msg/s is wall clock; mailsift's and spamd's start-up are excluded from scoring.",
        "",
        results_table(results),
        "",
        *notes,
        "",
        "Targets:",
        "",
        *target_lines(results, test_ham),
        END,
    ])


def write_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    sections.write_section(text, BEGIN, END, path, score.intro())


def dump_json(path: Path, results: Sequence[FilterResult], load: str) -> None:
    path.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": score.machine(),
        "load": load,
        "commit": score.git_revision(),
        "results": [asdict(r) for r in results],
    }, indent=1) + "\n")


# --- command line ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--skip-sa", action="store_true", help="leave out SpamAssassin (the slow part)")
    parser.add_argument("--skip-bogofilter", action="store_true", help="leave out bogofilter")
    parser.add_argument("--skip-redis", action="store_true", help="mailsift with SQLite only")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures to FILE")
    parser.add_argument("--write", action="store_true",
                        help=f"update the rules + Bayes section of {BENCHMARKS_MD.name}")
    args = parser.parse_args(argv)
    if args.write and (args.skip_sa or args.skip_bogofilter or args.skip_redis):
        parser.error("--write records the full side-by-side run: drop the --skip options")
    return args


def run_all(args: argparse.Namespace, dirs: SplitDirs, workdir: Path,
            load: list[float]) -> list[FilterResult]:
    """Each filter in turn, never two at once: they would compete for the same 2 cores."""
    def step(result: FilterResult) -> FilterResult:
        load.append(os.getloadavg()[0])
        print(results_table([result]).splitlines()[-1], flush=True)
        return result

    results = [step(run_mailsift(dirs, None, "mailsift rules + Bayes (SQLite)", "mailsift-sqlite"))]
    if not args.skip_redis:
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        with private_redis(redis_dir) as url:
            name = f"mailsift rules + Bayes (Redis {redis_version()})"
            results.append(step(run_mailsift(dirs, url, name, "mailsift-redis")))
    if not args.skip_sa:
        results.append(step(run_spamassassin(dirs, workdir)))
    if not args.skip_bogofilter:
        results.append(step(run_bogofilter(dirs, workdir)))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    train, test = corpus.split()
    test_spam = sum(is_spam for _, is_spam in test)
    test_ham = len(test) - test_spam
    print(f"train {len(train)} / test {test_ham} ham + {test_spam} spam; {score.machine()}", flush=True)
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="mailsift-bench-bayes-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # spamd's children (nobody) open the Bayes DB below it
        dirs = materialise(train, test, workdir / "split")
        results = run_all(args, dirs, workdir, load)
    note = load_note(load)
    print(results_table(results))
    print("\n".join([note, *(n for r in results for n in r.notes), *target_lines(results, test_ham)]))
    if args.json:
        dump_json(args.json, results, note)
    if args.write:
        write_section(section(results, test_ham, test_spam, note))
        print(f"updated {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
