"""Rules-only accuracy and speed: mailsift against SpamAssassin, side by side in one run.

Both filters score the test half of the benchmark split (bench.corpus) with no training at all, each
with 2 workers on this 2-core machine: mailsift in a process pool with one Scanner per process,
SpamAssassin as a private spamd with 2 children fed by 2 concurrent spamc clients (bench.spamassassin).
Speeds are measured in the same run because they drift between machines and loads (ANCHORS.md);
start-up (rule loading) is excluded for both. The targets: mailsift at least 20x SpamAssassin's msg/s,
FP below 1%, and 1-AUC below SpamAssassin's rules-only 1-AUC.

Run from the repository root:

    .venv/bin/python bench/score.py [--limit N] [--skip-sa | --skip-mailsift] [--json FILE] [--write]

or `.venv/bin/python -m bench.score ...`. Run as a file, this script puts the repository root on
sys.path before its first project import, so that `bench` and `mailsift` import the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import multiprocessing
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING

from bench import corpus, sections, spamassassin
from bench.sections import markers
from mailsift.training.metrics import Metrics, summarize

if TYPE_CHECKING:
    from mailsift.scanner import Scanner

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = markers("score.py")
WORKERS = 2
WORKER_STARTUP_TIMEOUT_S = 300.0
SPEED_RATIO_TARGET = 20.0
FP_TARGET_PCT = 1.0


@dataclass(frozen=True)
class FilterRun:
    """One filter's per-message output over the samples, in sample order, and its scoring time."""

    name: str
    scores: list[float]
    verdicts: list[bool]
    seconds: float

    def metrics(self, labels: Sequence[bool]) -> Metrics:
        return summarize(labels, self.scores, self.verdicts, self.seconds)


# --- mailsift: one Scanner per worker process -------------------------------------------------------

_scanner: Scanner | None = None


def _init_worker(ready: Barrier) -> None:
    """Build this process's Scanner, then wait until every worker and the parent are ready, so that
    the parent starts its clock only once all rules are loaded.

    mailsift is imported here, not at the top, so that --skip-mailsift runs without importing it.
    """
    global _scanner
    from mailsift.config import load_config
    from mailsift.scanner import Scanner

    _scanner = Scanner(load_config(None))
    ready.wait(timeout=WORKER_STARTUP_TIMEOUT_S)


def _scan_file(path: str) -> tuple[float, bool]:
    assert _scanner is not None, "worker initializer did not run"
    result = _scanner.scan(Path(path).read_bytes())
    return result.score, result.is_spam


def run_mailsift(paths: Sequence[Path]) -> FilterRun:
    ready = multiprocessing.Barrier(WORKERS + 1)
    with multiprocessing.Pool(WORKERS, initializer=_init_worker, initargs=(ready,)) as pool:
        ready.wait(timeout=WORKER_STARTUP_TIMEOUT_S)
        started = time.perf_counter()
        results = pool.map(_scan_file, [str(p) for p in paths], chunksize=4)
        seconds = time.perf_counter() - started
    return FilterRun("mailsift (rules only)", [s for s, _ in results], [v for _, v in results], seconds)


# --- SpamAssassin ------------------------------------------------------------------------------------


def run_spamassassin(paths: Sequence[Path]) -> FilterRun:
    with spamassassin.Spamd(children=WORKERS) as spamd:
        verdicts, seconds = spamassassin.score_messages(paths, spamd.port, clients=WORKERS)
    name = spamassassin.spamd_version().replace("Server version ", "") + " (rules only)"
    return FilterRun(name, [v.score for v in verdicts], [v.is_spam for v in verdicts], seconds)


# --- report ------------------------------------------------------------------------------------------


def results_table(runs: Sequence[FilterRun], labels: Sequence[bool]) -> str:
    lines = [
        "| filter | FP% | FN% | 1-AUC% | FN% at zero FP | msg/s |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        m = run.metrics(labels)
        lines.append(f"| {run.name} | {m.fp_pct:.2f} | {m.fn_pct:.2f} | {m.one_minus_auc_pct:.3f} "
                     f"| {m.fn_at_zero_fp_pct:.2f} | {m.msgs_per_s:.1f} |")
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def target_lines(mailsift_run: FilterRun, sa_run: FilterRun | None, labels: Sequence[bool]) -> list[str]:
    """The project's targets for the rules-only engine; the two relative ones need SpamAssassin's run."""
    ms = mailsift_run.metrics(labels)
    fp_ok = ms.fp_pct < FP_TARGET_PCT
    lines = [f"- mailsift FP {ms.fp_pct:.2f}% (target < {FP_TARGET_PCT:g}%): {_verdict(fp_ok)}"]
    if sa_run is not None:
        sa = sa_run.metrics(labels)
        ratio = ms.msgs_per_s / sa.msgs_per_s
        lines.insert(0, f"- speed ratio mailsift / SpamAssassin: {ratio:.1f}x "
                        f"(target >= {SPEED_RATIO_TARGET:g}x): {_verdict(ratio >= SPEED_RATIO_TARGET)}")
        lines.append(f"- mailsift 1-AUC {ms.one_minus_auc_pct:.3f}% (target below SpamAssassin's "
                     f"{sa.one_minus_auc_pct:.3f}%): {_verdict(ms.one_minus_auc_pct < sa.one_minus_auc_pct)}")
    return lines


def split_description(labels: Sequence[bool]) -> str:
    spam = sum(labels)
    return f"{len(labels) - spam} ham / {spam} spam"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False).stdout.strip()


def git_revision() -> str:
    """HEAD, marked when mailsift/ has uncommitted changes: others edit the tree while benchmarks run,
    so the commit alone may not be what was measured."""
    revision = _git("rev-parse", "--short", "HEAD") or "unknown"
    return revision + (" + uncommitted changes" if _git("status", "--porcelain", "--", "mailsift") else "")


def section(runs: Sequence[FilterRun], labels: Sequence[bool]) -> str:
    """The BENCHMARKS.md section, between its markers, so that --write can replace it in place."""
    mailsift_run, sa_run = runs
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return "\n".join([
        BEGIN,
        "## Rules only: mailsift vs SpamAssassin",
        "",
        f"`bench/score.py --write`, {today}, {machine()}, mailsift at commit {git_revision()}. "
        f"Test split ({split_description(labels)}), no training, no network tests; both filters with "
        f"{WORKERS} workers (mailsift: process pool, one Scanner each; SpamAssassin: spamd with "
        f"{WORKERS} children, `use_bayes 0`, `--local`, {WORKERS} concurrent spamc). msg/s is wall clock "
        "over the whole test split, start-up excluded.",
        "",
        results_table(runs, labels),
        "",
        *target_lines(mailsift_run, sa_run, labels),
        END,
    ])


def intro() -> str:
    """Written once, when BENCHMARKS.md does not exist yet; other scripts add their own sections."""
    return "\n".join([
        "# mailsift benchmarks",
        "",
        "Figures measured by the scripts in `bench/`. Each section sits between HTML comment markers",
        "named after the script that rewrites it (`score.py:begin` ... `score.py:end`): edit outside them.",
        "",
        f"- Machine: {machine()} (file created {datetime.now(UTC):%Y-%m-%d}; each section names its run).",
        "- Corpus: the SpamAssassin public corpus in /work/shared/corpus/spamassassin, with the benchmark",
        "  split of /work/shared/corpus/README.md (train 3113 ham / 1422 spam, test 1037 ham / 474 spam).",
        "- Protocol: from an empty learned state, learn the train half (where the benchmark learns), score",
        "  every test message; report FP% (ham judged spam), FN% (spam judged ham), 1-AUC% of the numeric",
        "  scores (spam positive), FN% at the threshold just above the highest ham score, and msg/s.",
        "  Network tests are off everywhere. Reference filters: /work/shared/corpus/ANCHORS.md; speeds are",
        "  compared only within one run.",
        "",
    ])


def write_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    sections.write_section(text, BEGIN, END, path, intro())


def dump_json(path: Path, samples: Sequence[corpus.Sample], runs: Sequence[FilterRun]) -> None:
    records = [
        {"path": str(msg), "is_spam": is_spam,
         **{run.name: {"score": run.scores[i], "is_spam": run.verdicts[i]} for run in runs}}
        for i, (msg, is_spam) in enumerate(samples)
    ]
    path.write_text(json.dumps(records, indent=1) + "\n")


# --- command line ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--limit", type=int, help="score a stratified subset of about N test messages")
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument("--skip-sa", action="store_true", help="run mailsift only")
    skip.add_argument("--skip-mailsift", action="store_true", help="run SpamAssassin only")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write per-message scores to FILE")
    parser.add_argument("--write", action="store_true",
                        help=f"update the rules-only section of {BENCHMARKS_MD.name}")
    args = parser.parse_args(argv)
    if args.write and (args.limit or args.skip_sa or args.skip_mailsift):
        parser.error("--write records the full side-by-side run: drop --limit, --skip-sa, --skip-mailsift")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    samples = corpus.test_set()
    if args.limit:
        samples = corpus.stratified_subset(samples, args.limit)
    paths = [path for path, _ in samples]
    labels = [is_spam for _, is_spam in samples]
    print(f"test split: {split_description(labels)}; {machine()}", flush=True)

    mailsift_run = None if args.skip_mailsift else run_mailsift(paths)
    sa_run = None if args.skip_sa else run_spamassassin(paths)
    runs = [run for run in (mailsift_run, sa_run) if run is not None]

    print(results_table(runs, labels))
    if mailsift_run is not None:
        print("\n".join(target_lines(mailsift_run, sa_run, labels)))
    if args.json:
        dump_json(args.json, samples, runs)
    if args.write:
        write_section(section(runs, labels))
        print(f"updated {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
