"""Real mail for tests: messages of the shared SpamAssassin corpus, picked by folder and position."""

from __future__ import annotations

from bench.corpus import CORPUS_ROOT


def corpus_sample(folder: str, count: int, start: int = 0) -> list[bytes]:
    """`count` messages of `folder` (spam, easy_ham, ...) from position `start` in name order."""
    files = sorted(p for p in (CORPUS_ROOT / folder).iterdir() if p.is_file())
    return [p.read_bytes() for p in files[start:start + count]]
