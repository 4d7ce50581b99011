"""Per-rule hit rates on the benchmark TRAIN split, for tuning the shipped ruleset.

    python -m bench.rule_stats [--limit N] [--processes 2] [--show-fp] [--show-fn N]

Prints, for every rule that hit: hits in ham, hits in spam, ham%, spam%, then the ruleset's FP%
and FN% at the required score and its 1-AUC. Rules are scored alone (no Bayes, no network), the
way the ruleset's targets are stated. Only the train split is read: tuning on the test split
would make the benchmark figures meaningless.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

from bench.corpus import Sample, stratified_subset, train_set
from mailsift.training.metrics import fn_percent, fp_percent, one_minus_auc_percent

_scanner = None  # one per worker process: building it compiles every rule


@dataclass(frozen=True)
class Scored:
    path: Path
    is_spam: bool
    score: float
    rules: tuple[tuple[str, float], ...]


def _init_worker() -> None:
    global _scanner
    from mailsift.config import Config
    from mailsift.scanner import Scanner

    _scanner = Scanner(Config())


def _score(sample: Sample) -> Scored:
    path, is_spam = sample
    assert _scanner is not None
    result = _scanner.scan(path.read_bytes())
    return Scored(path, is_spam, result.score, tuple((h.name, h.score) for h in result.hits))


def scan_all(samples: Sequence[Sample], processes: int) -> list[Scored]:
    """Score every sample with `processes` workers; the order of `samples` is kept."""
    with Pool(processes, initializer=_init_worker) as pool:
        return pool.map(_score, samples, chunksize=32)


def rule_table(scored: Sequence[Scored]) -> list[tuple[str, int, int, float, float, float]]:
    """(rule, ham hits, spam hits, ham%, spam%, score) for every rule that hit, noisiest in ham first."""
    hams = sum(not s.is_spam for s in scored) or 1
    spams = sum(s.is_spam for s in scored) or 1
    ham_hits: Counter[str] = Counter()
    spam_hits: Counter[str] = Counter()
    weights: dict[str, float] = {}
    for s in scored:
        for name, score in s.rules:
            (spam_hits if s.is_spam else ham_hits)[name] += 1
            weights[name] = score
    rows = [(name, ham_hits[name], spam_hits[name], 100 * ham_hits[name] / hams,
             100 * spam_hits[name] / spams, weights[name]) for name in weights]
    rows.sort(key=lambda r: (-r[3], -r[4], r[0]))
    return rows


def _print_misses(title: str, scored: Sequence[Scored], limit: int) -> None:
    print(f"\n{title}")
    for s in scored[:limit]:
        rules = " ".join(f"{n}={v:g}" for n, v in s.rules)
        print(f"  {s.score:6.2f} {s.path.parent.name}/{s.path.name[:12]} {rules}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="stratified subset of this many messages")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=5.0)
    parser.add_argument("--show-fp", action="store_true", help="list ham at or above the threshold")
    parser.add_argument("--show-fn", type=int, default=0, help="list this many missed spam")
    args = parser.parse_args(argv)

    samples = train_set()
    if args.limit:
        samples = stratified_subset(samples, args.limit)
    started = time.perf_counter()
    scored = scan_all(samples, args.processes)
    elapsed = time.perf_counter() - started

    print(f"{'rule':28} {'ham':>5} {'spam':>5} {'ham%':>7} {'spam%':>7} {'score':>6}")
    for name, ham, spam, ham_pct, spam_pct, weight in rule_table(scored):
        print(f"{name:28} {ham:5d} {spam:5d} {ham_pct:7.2f} {spam_pct:7.2f} {weight:6.2f}")

    labels = [s.is_spam for s in scored]
    scores = [s.score for s in scored]
    verdicts = [score >= args.threshold for score in scores]
    print(f"\n{len(scored)} messages ({sum(labels)} spam) in {elapsed:.1f}s with {args.processes} "
          f"processes: {len(scored) / elapsed / args.processes:.0f} msg/s per process")
    print(f"FP% {fp_percent(labels, verdicts):.2f}  FN% {fn_percent(labels, verdicts):.2f}  "
          f"1-AUC% {one_minus_auc_percent(labels, scores):.3f}  (threshold {args.threshold})")
    if args.show_fp:
        fps = sorted((s for s in scored if not s.is_spam and s.score >= args.threshold),
                     key=lambda s: -s.score)
        _print_misses("ham at or above the threshold:", fps, len(fps))
    if args.show_fn:
        fns = sorted((s for s in scored if s.is_spam and s.score < args.threshold), key=lambda s: s.score)
        _print_misses("missed spam, lowest scores first:", fns, args.show_fn)


if __name__ == "__main__":
    main()
