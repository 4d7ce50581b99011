"""`systemctl reload mailsift-milter` (SIGUSR1): take a new config and rules without a gap.

A restart left Postfix without its filter for the seconds the rules take to load, and every
message meanwhile met milter_default_action: deferred (tempfail) or passed unfiltered (accept).
A reload instead builds the new service beside the running one (config read and checked, rules
compiled, a fresh pool of scoring workers warmed up) and only then hands new messages to it; the
old workers finish what they hold and are closed. If anything about the new configuration
fails, the running one stays and the log says why: an edit with a typo never stops mail.

Settings bound to the listening socket cannot change while libmilter holds it; a reload names
them when they differ, and a restart applies them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from mailsift.config import Config, ConfigError, load_config
from mailsift.milter.session import MailsiftMilter, Service
from mailsift.milter.workers import WorkerPool

log = logging.getLogger("mailsift.milter")

RELOAD_SIGNAL = signal.SIGUSR1
RESTART_ONLY = ("listen", "socket_mode", "metrics_listen")  # keys of [milter]
# After the switch, a message that took the old service just before it still has up to
# milter.timeout to be scored by the old workers; they are closed once that is surely over.
DRAIN_MARGIN_S = 5.0


def block_reload_signal() -> None:
    """Hold SIGUSR1 for the reload thread's sigwait. Called first thing: its default action is to
    end the process, and a reload sent while the rules still load must not kill the milter."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {RELOAD_SIGNAL})


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [f"milter.{key}" for key in RESTART_ONLY
            if getattr(old.milter, key) != getattr(new.milter, key)]


class Reloader:
    """Waits for SIGUSR1 in a thread of its own and swaps `MailsiftMilter.current` on each."""

    def __init__(self, config_file: str | None, config: Config,
                 start_service: Callable[[Config, Service], Service]) -> None:
        """`start_service(config, running)` builds a ready service (workers warmed up) or raises."""
        self.config_file = config_file
        self.config = config
        self.start_service = start_service
        self.draining: list[tuple[threading.Timer, WorkerPool]] = []  # replaced, not yet closed

    def start(self) -> None:
        threading.Thread(target=self._wait, name="mailsift-reload", daemon=True).start()

    def close(self, grace_until: float) -> None:
        """At shutdown: close the workers of replaced services that are still draining, their
        messages being scored given until `grace_until` (see WorkerPool.close)."""
        for timer, pool in self.draining:
            timer.cancel()
            pool.close(grace_until)  # closing twice is harmless

    def _wait(self) -> None:
        while True:
            signal.sigwait({RELOAD_SIGNAL})
            self.reload()

    def reload(self) -> bool:
        """Switch to the configuration on disk; False (and the old one kept) if it cannot start."""
        log.info("reload: reading the configuration and rules again")
        try:
            config = load_config(self.config_file)
        except ConfigError as exc:
            log.error("reload refused, still running the previous configuration: %s", exc)
            return False
        except Exception as exc:  # raised out of here, it ended the only thread waiting for
            # SIGUSR1, and every later reload did nothing, without a word
            log.error("reload failed reading the configuration, still running the previous one: "
                      "%s: %s", type(exc).__name__, exc)
            return False
        running = MailsiftMilter.current
        try:
            service = self.start_service(config, running)
        except Exception as exc:  # whatever keeps the new one from starting, the old one serves on
            log.error("reload failed, still running the previous configuration: %s: %s",
                      type(exc).__name__, exc)
            return False
        for key in restart_only_changes(self.config, config):
            log.warning("reload: %s changed; it takes effect when the milter restarts", key)
        MailsiftMilter.current = service
        running.pool.drain()
        self.config = config
        drain = running.config.milter.timeout + DRAIN_MARGIN_S
        closer = threading.Timer(drain, running.pool.close)
        closer.daemon = True
        closer.start()
        self.draining = [(t, p) for t, p in self.draining if t.is_alive()] + [(closer, running.pool)]
        log.info("reloaded: new messages go to %d scoring workers on the new configuration",
                 service.pool.size)
        return True
