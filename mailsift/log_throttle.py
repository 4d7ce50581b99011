"""Warnings about a lasting condition, said once per interval instead of once per message.

A list that refuses our queries, or a resolver that never answers in time, is the same news for
every message: a warning each time wrote tens of thousands of identical lines a day (one per link
domain, for a URI list) and buried everything else in the log. The first occurrence is said at
once; repeats within the interval are counted, and the count rides on the next warning, so the
log still shows that the condition lasted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

WARN_EVERY_S = 600.0


class ThrottledWarning:
    """`warn(key, message, *args)` logs at most once per `every` seconds per key."""

    def __init__(self, logger: logging.Logger, every: float = WARN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self.lock = threading.Lock()
        self.said: dict[str, float] = {}
        self.repeats: Counter[str] = Counter()

    def warn(self, key: str, message: str, *args: object) -> None:
        with self.lock:
            now = self.clock()
            if key in self.said and now - self.said[key] < self.every:
                self.repeats[key] += 1
                return
            self.said[key] = now
            repeats = self.repeats.pop(key, 0)
        if repeats:
            message += " (%d more time(s) since the last such warning)"
            args = (*args, repeats)
        self.logger.warning(message, *args)
