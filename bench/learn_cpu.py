"""Where the CPU of `mailsift learn` goes: per message, in the parent, the workers and Redis.

    .venv/bin/python bench/learn_cpu.py [--write]

Learns the train split of the benchmark corpus (spam, then ham, as `mailsift eval` does) into an
empty private redis-server and reads three CPU clocks around it: this process (the parent:
listing, batching, the store's round trips), its finished children (the worker pool: reading,
analysing, tokenising, hashing) and the server's own `used_cpu_*`. Then, in one process, the
single steps of a worker for the same messages. On a machine whose cores are all busy, the sum per
message bounds the learning rate: cores / CPU seconds per message.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from bench import corpus, sections
from bench.redis_memory import private_redis
from bench.score import git_revision, machine
from mailsift.analysis.parse import analyse
from mailsift.classifier.digest import learn_digest
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, token_key
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import Config
from mailsift.training.evaluate import private_config
from mailsift.training.learn import learn
from mailsift.training.sources import Item

BEGIN, END = sections.markers("learn_cpu.py")
In = TypeVar("In")
Out = TypeVar("Out")


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def redis_cpu_seconds(url: str) -> float:
    with redis.Redis.from_url(url) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def learn_split(config: Config, samples: Sequence[corpus.Sample]) -> tuple[int, float]:
    """Learn spam then ham from an empty store; (messages examined, wall seconds)."""
    bayes = BayesFilter(config.bayes, open_store(config.bayes))
    bayes.store.clear()
    examined, started = 0, time.perf_counter()
    for label, is_spam in ((Label.SPAM, True), (Label.HAM, False)):
        items = [Item(str(path), path=path) for path, spam in samples if spam == is_spam]
        examined += learn(items, label, config, bayes, expected=len(items)).examined
    return examined, time.perf_counter() - started


def per_message_ms(step: Callable[[In], Out], inputs: Sequence[In]) -> tuple[list[Out], float]:
    started = time.process_time()
    outputs = [step(value) for value in inputs]
    return outputs, (time.process_time() - started) / len(inputs) * 1000


def single_steps(config: Config, samples: Sequence[corpus.Sample]) -> list[tuple[str, float]]:
    """A worker's steps one by one, in this process, with the token-key cache starting cold as
    in a fresh worker (the pool run filled only the workers' caches)."""
    raws, read_ms = per_message_ms(Path.read_bytes, [path for path, _ in samples])
    messages, analyse_ms = per_message_ms(lambda raw: analyse(raw, config), raws)
    tokens, tokenize_ms = per_message_ms(tokenize, messages)
    _, keys_ms = per_message_ms(lambda found: [token_key(token) for token in found], tokens)
    _, digest_ms = per_message_ms(learn_digest, messages)
    return [("read the file", read_ms), ("analyse", analyse_ms), ("tokenize", tokenize_ms),
            ("hash the tokens", keys_ms), ("message digest", digest_ms)]


def report(examined: int, seconds: float, parent: float, workers: float, server: float,
           steps: list[tuple[str, float]]) -> list[str]:
    ms = [1000 * value / examined for value in (parent, workers, server)]
    total = sum(ms)
    cores = os.cpu_count() or 1
    return [
        f"learned {examined} messages into Redis at {examined / seconds:.0f} msg/s (wall clock)",
        f"CPU per message: parent {ms[0]:.3f} ms, workers {ms[1]:.3f} ms, redis-server "
        f"{ms[2]:.3f} ms; {total:.3f} ms in all",
        f"bound on {cores} busy cores: {cores * 1000 / total:.0f} msg/s",
        "a worker's steps in one process, per message: "
        + ", ".join(f"{name} {value:.3f} ms" for name, value in steps),
    ]


def section(lines: list[str]) -> str:
    return "\n".join([
        BEGIN, "## Where learning time goes", "",
        f"`bench/learn_cpu.py --write`, {time.strftime('%Y-%m-%d')}, {machine()}, mailsift at "
        f"commit {git_revision()}. The train split (spam, then ham) learned from empty into a "
        "private redis-server on the same machine, as `bench/bayes.py` does; CPU from getrusage "
        "(parent, and the worker pool once it has exited) and Redis's `INFO cpu`.", "",
        *(f"- {line}" for line in lines), END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update its section of BENCHMARKS.md")
    args = parser.parse_args()
    train = corpus.train_set()
    with tempfile.TemporaryDirectory() as directory, private_redis(Path(directory)) as url:
        config = private_config(Config(), url, directory)
        before = (cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN),
                  redis_cpu_seconds(url))
        examined, seconds = learn_split(config, train)
        after = (cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN),
                 redis_cpu_seconds(url))
    used = [end - start for start, end in zip(before, after, strict=True)]
    lines = report(examined, seconds, *used, single_steps(config, train))
    print("\n".join(lines))
    if args.write:
        sections.write_section(section(lines), BEGIN, END)


if __name__ == "__main__":
    main()
