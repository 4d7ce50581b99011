"""A breaker for a store the mail flow depends on: after a failure, leave it alone for a while.

A Redis that is down refuses at once, but one that hangs (overloaded, stopped by a debugger or
SIGSTOP, a host gone without a reset) costs every call its socket timeout. After a failure the
store is not asked again for `RETRY_AFTER` seconds: one message pays the timeout and those after
it get the fallback at once, and one of them tries again when the time is up. The first failure
and the recovery are each logged once, not once per message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

RETRY_AFTER = 10.0


class Breaker:
    """When the store may be tried again (0: it is healthy), shared by processes if need be.

    `shared` is a `multiprocessing.Value("d")` made before the workers start; without one the
    state is this process's own (its threads share it). CLOCK_MONOTONIC is system-wide, so
    processes agree on "now". `name`, `meanwhile` and `back` make the two log lines:
    "NAME unavailable (ERROR); MEANWHILE" and "NAME is back; BACK".
    """

    def __init__(self, name: str, meanwhile: str, back: str, logger: logging.Logger,
                 shared: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._name, self._meanwhile, self._back, self._log = name, meanwhile, back, logger
        self._shared = shared
        self._local = 0.0
        self._local_lock = threading.Lock()
        self._clock = clock

    @property
    def retry_at(self) -> float:
        return self._shared.value if self._shared is not None else self._local

    def _set(self, value: float) -> None:
        if self._shared is not None:
            self._shared.value = value
        else:
            self._local = value

    def skip(self) -> bool:
        return self._clock() < self.retry_at

    def failed(self, reason: object) -> None:
        with self._lock():
            first = self.retry_at == 0
            self._set(self._clock() + RETRY_AFTER)
        if first:
            self._log.warning("%s unavailable (%s); %s", self._name, reason, self._meanwhile)

    def ok(self) -> None:
        if self.retry_at == 0:
            return
        with self._lock():
            recovered = self.retry_at != 0
            self._set(0.0)
        if recovered:
            self._log.warning("%s is back; %s", self._name, self._back)

    def _lock(self) -> AbstractContextManager[object]:
        return self._shared.get_lock() if self._shared is not None else self._local_lock
