"""The worker pool of `mailsift learn` and `eval` (mailsift.training.parallel) when a worker dies,
a message will not finish or the workers cannot start: the run goes on, or stops with the
reason, and nothing hangs (the stdlib pool waited forever for a result that a killed worker
would never send)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label
from mailsift.config import BayesConfig, Config, ScanConfig
from mailsift.training import learn as learning
from mailsift.training import parallel
from mailsift.training.learn import PARALLEL_FROM, LearnReport
from mailsift.training.sources import iter_messages

WORDS = [f"word{n}" for n in range(5000)]


def write_messages(folder: Path, count: int, lines: int) -> None:
    """`count` distinct text messages of `lines` lines of random words each."""
    folder.mkdir()
    rng = random.Random(7)
    for n in range(count):
        body = "\n".join(" ".join(rng.choices(WORDS, k=10)) for _ in range(lines))
        (folder / f"{n}.eml").write_text(f"From: s{n}@example.org\nSubject: note {n}\n\n{body}\n")


def learn_folder(folder: Path, tmp_path: Path) -> LearnReport:
    config = Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite"),
                    scan=ScanConfig(max_bytes=64 * 1024 * 1024))
    items = list(iter_messages([str(folder)]))
    bayes = BayesFilter(config.bayes, open_store(config.bayes))
    return learning.learn(items, Label.SPAM, config, bayes, expected=len(items))


def kill_a_busy_worker(after: float) -> threading.Thread:
    """SIGKILL one worker of the pool `after` seconds after the pool appeared, as the kernel's
    OOM killer would."""
    def run() -> None:
        deadline = time.monotonic() + 30
        while not multiprocessing.active_children() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(after)
        pids = [child.pid for child in multiprocessing.active_children() if child.pid]
        if pids:  # never pid 0: that would be this whole process group
            os.kill(pids[0], signal.SIGKILL)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(60)
def test_a_killed_worker_costs_nothing_its_messages_are_analysed_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    count = PARALLEL_FROM + 8
    write_messages(tmp_path / "spam", count, lines=4000)  # ~0.2 MB, some ms each to analyse
    killer = kill_a_busy_worker(after=0.3)
    report = learn_folder(tmp_path / "spam", tmp_path)
    killer.join()
    assert (report.examined, report.changed, report.failed) == (count, count, [])
    assert "failed (its process died (exit code -9)); trying them one by one" in caplog.text


@pytest.mark.timeout(60)
def test_a_message_that_overruns_the_budget_is_named_and_the_rest_learned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "TASK_SECONDS", 0.3)
    count = PARALLEL_FROM + 8
    write_messages(tmp_path / "spam", count, lines=10)
    big = tmp_path / "spam" / "big.eml"
    with big.open("w") as out:  # ~20 MB of text: about a second to analyse here, never 0.3 s
        rng = random.Random(8)
        out.write("From: big@example.org\nSubject: big\n\n")
        out.writelines(" ".join(rng.choices(WORDS, k=12)) + "\n" for _ in range(200_000))
    report = learn_folder(tmp_path / "spam", tmp_path)
    assert (report.examined, report.changed) == (count + 1, count)
    assert report.failed == [(str(big), "analysis failed: took longer than 0.3 s")]


def cannot_start() -> None:
    raise RuntimeError("rules do not load")


def double(value: int) -> int:
    return 2 * value


@pytest.mark.timeout(60)
def test_workers_that_cannot_start_stop_the_run_with_the_reason() -> None:
    """Not an endless restart of workers that die in their initializer, nor a wait for tasks
    that no worker will ever take (seen with pebble alone in 2 of 3 runs)."""
    with pytest.raises(parallel.WorkerStartError, match="RuntimeError: rules do not load"), \
            parallel.SurvivingPool(double, cannot_start, ()) as pool:
        list(pool.map(range(40)))


def test_the_pool_gives_results_in_item_order() -> None:
    with parallel.SurvivingPool(double, lambda: None, ()) as pool:
        assert list(pool.map(range(100))) == [(n, 2 * n) for n in range(100)]
