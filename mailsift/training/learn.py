"""Bulk learning, as `sa-learn` does it, but fast: analysis runs in worker processes, the store
receives whole batches of messages per round trip.

Reading, parsing and tokenising is the CPU-heavy part (~0.7 ms a message on the corpus, in one
process), so it is spread over the cores; the store work is then a few round trips per batch
instead of one per message.

A message whose analysis kills its worker, overruns its time or raises is reported as unusable
and the run goes on (see mailsift.training.parallel).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mailsift.analysis.parse import analyse
from mailsift.classifier.digest import ReportDigests, report_digests
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.store import Label, LearnItem, Outcome, StoreError
from mailsift.config import Config
from mailsift.training.parallel import Failure, SurvivingPool
from mailsift.training.sources import Item, looks_like_mail

BATCH = 200
PARALLEL_FROM = 64  # below this many messages a worker pool costs more than it saves


@dataclass
class LearnReport:
    examined: int = 0
    changed: int = 0  # learned, relearned or forgotten
    already: int = 0  # already learned as that class (or, for forget, never learned)
    failed: list[tuple[str, str]] = field(default_factory=list)  # unreadable or not mail
    shared: int = 0  # messages whose report digests were added (report) or withdrawn (revoke)

    def summary(self, verb: str) -> str:
        lines = [f"{verb} tokens from {self.changed} message(s) ({self.examined} messages examined)"]
        if self.already:
            what = "never learned" if verb == "Forgot" else "already learned"
            lines.append(f"Skipped {self.already} message(s) {what}")
        if self.failed:
            lines.append(f"Could not use {len(self.failed)} file(s):")
            lines += [f"  {name}: {why}" for name, why in self.failed]
        return "\n".join(lines)


class LearnStopped(Exception):
    """The store failed part-way through a run: `report` counts what was stored before (which
    stays learned; learning again skips it), `cause` says why."""

    def __init__(self, report: LearnReport, cause: StoreError) -> None:
        super().__init__(str(cause))
        self.report = report
        self.cause = cause


@dataclass(frozen=True)
class Prepared:
    name: str
    item: LearnItem | None  # None when the file could not be used
    error: str = ""
    digests: ReportDigests | None = None  # only when the run shares reports


_worker_filter: BayesFilter | None = None
_worker_config: Config | None = None
_worker_digests = False


def _init_worker(config: Config, bayes: BayesFilter, digests: bool) -> None:
    global _worker_filter, _worker_config, _worker_digests
    _worker_filter, _worker_config, _worker_digests = bayes, config, digests


def _prepare(item: Item) -> Prepared:
    """In a worker: read the message and turn it into what the store needs (digest, token keys,
    report digests)."""
    assert _worker_filter is not None and _worker_config is not None
    raw, error = item.content()
    if raw is None:
        return Prepared(item.name, None, error)
    if not looks_like_mail(raw):
        return Prepared(item.name, None, "not a mail message")
    msg = analyse(raw, _worker_config)
    return Prepared(item.name, _worker_filter.item(msg), "",
                    report_digests(msg) if _worker_digests else None)


def prepared(items: Iterable[Item], config: Config, bayes: BayesFilter, expected: int,
             digests: bool = False) -> Iterator[Prepared]:
    """Analyse messages, in worker processes when there are enough of them to pay for it;
    results come in the order of `items`."""
    if expected < PARALLEL_FROM or (os.cpu_count() or 1) == 1:
        _init_worker(config, bayes, digests)
        yield from map(_prepare, items)
        return
    # The store connection is not used in the workers; only the tokenizer settings are.
    with SurvivingPool(_prepare, _init_worker, (config, bayes, digests)) as pool:
        for item, done in pool.map(items):
            if isinstance(done, Failure):
                done = Prepared(item.name, None, f"analysis failed: {done.why}")
            yield done


def learn(items: Iterable[Item], label: Label | None, config: Config, bayes: BayesFilter,
          expected: int = 0, progress: object = None, share: str = "") -> LearnReport:
    """Learn every message as `label`, or forget them when `label` is None.

    `share`: "report" also shares each message's digests, "revoke" withdraws them."""
    report = LearnReport()
    batch: list[Prepared] = []
    try:
        for done in prepared(items, config, bayes, expected, digests=bool(share)):
            report.examined += 1
            if progress is not None:
                progress.update(1)  # type: ignore[attr-defined]
            if done.item is None:
                report.failed.append((done.name, done.error))
            elif label is None:
                _count(report, bayes.store.forget(done.item))
            else:
                batch.append(done)
                if len(batch) >= BATCH:
                    _flush(report, batch, label, bayes, share)
        if batch and label is not None:
            _flush(report, batch, label, bayes, share)
    except StoreError as exc:
        # examined, but whether the store took them is unknown: the batch, or the one forgotten
        report.examined -= len(batch) if label is not None else 1
        raise LearnStopped(report, exc) from exc
    return report


def _flush(report: LearnReport, batch: list[Prepared], label: Label, bayes: BayesFilter,
           share: str) -> None:
    """Store a batch; it is counted only once all of it is done, sharing included, so that a
    failing store leaves the batch uncounted (see learn)."""
    items = [done.item for done in batch if done.item is not None]
    outcomes = bayes.store.learn_batch(items, label, int(time.time()))
    if share:
        reports = bayes.reports
        for done in batch:
            assert done.item is not None and done.digests is not None
            if share == "report":
                report.shared += reports.report(done.item.digest, done.digests)
            else:
                report.shared += reports.revoke(done.item.digest)
    for outcome in outcomes:
        _count(report, outcome)
    batch.clear()


def _count(report: LearnReport, outcome: Outcome) -> None:
    if outcome in (Outcome.ALREADY, Outcome.UNKNOWN):
        report.already += 1
    else:
        report.changed += 1
