"""Bayes store figures for BENCHMARKS.md: Redis memory per token, learn_batch messages/s.

    .venv/bin/python -m bench.redis_memory [--tokens 20000] [--messages 1000]

starts a private redis-server (no persistence, loopback, free port) and a SQLite file in a
temporary directory, so it measures nothing but the stores. Memory per token is the growth of
`used_memory` over N distinct tokens, each learned once (so each carries its TTL, as in
production), divided by N. Learning speed is for ready-made token keys: tokenising is not in it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make `bench` and `mailsift` importable the same way
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from bench import sections
from mailsift.classifier.redis_store import RedisStore
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import Label, LearnItem, TokenStore, token_key

NOW = 1_700_000_000
BATCH = 200  # what `mailsift learn` hands to learn_batch
VOCABULARY = 60_000  # synthetic messages share tokens, as real ones do


def used_memory(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.info("memory")["used_memory"])


def memory_per_token(url: str, count: int = 20_000, per_message: int = 100) -> float:
    """Bytes of Redis memory per stored token (key, hash, TTL entry and dict overhead)."""
    store = RedisStore.from_url(url)  # the default prefix: key length is part of the cost
    try:
        store.clear()
        store.learn(LearnItem("warm-up", [token_key("warm-up")]), Label.SPAM, NOW)  # schema, totals
        before = used_memory(url)
        items = [LearnItem(f"m{start}", [token_key(f"t{n}") for n in range(start, start + per_message)])
                 for start in range(0, count, per_message)]
        store.learn_batch(items, Label.SPAM, NOW)
        grown = used_memory(url) - before
        seen_records = len(items) * _seen_record_bytes(url, items[0].digest)
        store.clear()
    finally:
        store.close()
    return (grown - seen_records) / count


def _seen_record_bytes(url: str, digest: str) -> int:
    """What one seen record costs, so it is not counted as token memory."""
    with redis.Redis.from_url(url) as client:
        return int(client.memory_usage("{mailsift:}seen:" + digest) or 0)


def synthetic_messages(count: int, tokens: int, seed: int = 1) -> list[LearnItem]:
    """Messages of distinct tokens drawn from a shared vocabulary, with unique digests."""
    rng = random.Random(seed)
    keys = [token_key(f"word{n}") for n in range(VOCABULARY)]
    return [LearnItem(f"{seed:08x}{n:032x}", rng.sample(keys, tokens)) for n in range(count)]


def learn_rate(store: TokenStore, items: list[LearnItem]) -> float:
    """Messages per second through learn_batch, in batches as `mailsift learn` sends them."""
    started = time.perf_counter()
    for start in range(0, len(items), BATCH):
        store.learn_batch(items[start:start + BATCH], Label.SPAM, NOW)
    return len(items) / (time.perf_counter() - started)


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--save", "", "--appendonly",
         "no", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)],
        stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with redis.Redis.from_url(url) as client:
                client.ping()
                return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def section(lines: list[str], tokens: int, server: str) -> str:
    begin, end = sections.markers("redis_memory.py")
    return "\n".join([
        begin, "## Bayes store: memory per token and raw learning rate", "",
        f"`bench/redis_memory.py --write`, {time.strftime('%Y-%m-%d')}, {server}. {tokens} distinct "
        "tokens learned into an empty private redis-server (no persistence); memory is the growth "
        "of `used_memory`, seen records subtracted. Learning rates are the stores alone "
        "(synthetic messages, no parsing), batches of 200.", "",
        *(f"- {line}" for line in lines), end])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--per-message", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="update its section of BENCHMARKS.md")
    args = parser.parse_args()
    items = synthetic_messages(args.messages, args.per_message)
    lines = []
    with tempfile.TemporaryDirectory() as directory, private_redis(Path(directory)) as url:
        with redis.Redis.from_url(url) as client:
            server = f"Redis {client.info('server')['redis_version']}"
        lines.append(f"redis memory per token: {memory_per_token(url, args.tokens):.1f} bytes")
        stores = {"redis": RedisStore.from_url(url), "sqlite": SQLiteStore(f"{directory}/bayes.sqlite")}
        for name, store in stores.items():
            rate = learn_rate(store, items)
            store.close()
            lines.append(f"{name} learn_batch: {rate:.0f} msg/s "
                         f"({args.messages} messages x {args.per_message} tokens)")
    print("\n".join(lines))
    if args.write:
        begin, end = sections.markers("redis_memory.py")
        sections.write_section(section(lines, args.tokens, server), begin, end)


if __name__ == "__main__":
    main()
