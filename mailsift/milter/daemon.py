"""`mailsift milter`: start the scoring workers, then serve Postfix until told to stop.

The workers are started and warmed up before the milter listens, so the first message after a
restart is not held up by rule loading, and so no worker is ever forked from the threaded
libmilter process.
"""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import Milter

from mailsift.config import Config, QuarantineConfig, host_port
from mailsift.configtest import quarantine_check
from mailsift.milter.metrics import Metrics
from mailsift.milter.reload import Reloader, block_reload_signal
from mailsift.milter.sender_hold import sender_hold
from mailsift.milter.session import MailsiftMilter, Service
from mailsift.milter.workers import STOP_GRACE_S, STOP_SIGNALS, WorkerPool, start_process_helpers
from mailsift.ownership import make_folders
from mailsift.quarantine.store import QuarantineStore, open_quarantine, unmade_folder
from mailsift.rules.lint import warn_rule_mistakes
from mailsift.rules.patterns import prune_cache
from mailsift.scanner import Scanner

log = logging.getLogger("mailsift.milter")

MTA_IO_TIMEOUT = 600  # seconds libmilter waits on a silent MTA connection
# At a stop, once the workers are closed (WorkerPool.close), the longest wait for the messages
# in flight to be answered and logged: milliseconds unless a quarantine write or DNS holds one.
ANSWER_WAIT_S = 1.0


def libmilter_socket(listen: str) -> str:
    """Postfix writes inet:HOST:PORT, libmilter wants inet:PORT@HOST (inet6 for IPv6 hosts)."""
    kind, _, rest = listen.partition(":")
    if kind == "unix":
        return listen
    host, port = host_port(rest)
    family = "inet6" if ":" in host else "inet"
    return f"{family}:{port}@{host}"


class ListenError(Exception):
    """milter.listen is taken by another process; the message names the key and the address."""


def check_listen_free(listen: str) -> None:
    """Refuse an address another process serves, before any worker starts.

    libmilter removes an existing unix socket and binds its own: a second `mailsift milter`
    (a unit started twice, a test run beside production) silently cut the running milter off
    from Postfix, and its readiness probe, reaching the first milter, even said "ready". A
    socket file nobody answers on is left from a crash and is replaced, as before."""
    kind, _, rest = listen.partition(":")
    if kind == "unix":
        if not os.path.exists(rest):
            return
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(rest)
            except OSError:
                return  # stale: nobody listens
        raise ListenError(f"milter.listen {listen}: another process is listening there "
                          "(a milter already running?)")
    host, port = host_port(rest)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libmilter binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ListenError(f"milter.listen {listen}: {exc.strerror or exc}") from None


def _announce_when_listening(listen: str, socket_mode: str) -> None:
    """Say "ready" once the socket accepts connections: scripts and tests wait for that line.

    A unix socket first gets `socket_mode`: libmilter creates it with the process umask."""
    kind, _, rest = listen.partition(":")
    for _ in range(600):
        try:
            if kind == "unix":
                os.chmod(rest, int(socket_mode, 8))
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(rest)
            else:
                socket.create_connection(host_port(rest), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        print(f"mailsift milter: ready on {listen}", file=sys.stderr, flush=True)
        return


def _log_without_blocking() -> logging.handlers.QueueListener:
    """Hand log records to one writer thread: a libmilter thread must never wait on stderr.

    Under load, a slow reader of stderr (journald, or the process a test runs the milter
    under) blocked the writing thread while it held the handler's lock, and every other thread
    that logged queued behind it: one stall for all the messages in flight."""
    root = logging.getLogger()
    listener = logging.handlers.QueueListener(queue.SimpleQueue(), *root.handlers,
                                              respect_handler_level=True)
    root.handlers = [logging.handlers.QueueHandler(listener.queue)]
    listener.start()
    return listener


def _warn_quarantine_trouble(config: Config, quarantine: QuarantineStore) -> None:
    """Name a quarantine index the milter cannot use (one another mailsift wrote, a wrong Redis
    password) once at start, as configtest does. The milter runs on, since only mail it would
    quarantine needs it; but that mail met `milter.on_error` with an error per message, and
    nothing at start said why. A local quarantine's folder is made here (`_made_folder`)."""
    detail = _made_folder(config.quarantine)
    if detail is None:
        check = quarantine_check(config, quarantine)
        detail = None if check.ok else check.detail
    if detail is not None:
        log.error("%s; until it is mended, a message to quarantine gets milter.on_error (%s)",
                  detail, config.milter.on_error)


def _made_folder(quarantine: QuarantineConfig) -> str | None:
    """Make a local quarantine's folder at start, not with the first message held: what only
    looks at the quarantine (list, expire, digest, the web UI) makes none (store.unmade_folder),
    so the timers of a new install meet one, and a folder the milter cannot make is named now,
    not at the first spam. What stopped it, or None."""
    if unmade_folder(quarantine) is None:
        return None
    try:
        make_folders(Path(quarantine.dir), 0o750)  # as the local index makes it (LocalBackend)
    except OSError as exc:
        return f"quarantine.dir {quarantine.dir}: cannot make it: {exc.strerror or exc}"
    return None


def start_service(config: Config, metrics: Metrics, running: Service | None = None) -> Service:
    """Compile the rules, start and warm up a pool of scoring workers, open the quarantine.

    The rules are read and compiled here once, into the on-disk cache: every worker, a
    replacement too, scores with these (not the files as edited since) and loads their patterns
    in milliseconds instead of each compiling the same ones at once. `running`, on a reload:
    the outbound pause counts carry over while its settings are unchanged. The pause comes first:
    a pause_store that cannot be used stops start-up before any worker starts."""
    hold = sender_hold(config.outbound, running.hold if running is not None else None)
    ruleset = Scanner(config).ruleset
    warn_rule_mistakes(ruleset, log)
    prune_cache(config.rules.cache_path())  # after the compile: it marked what is in use
    pool = WorkerPool(config, replaced=metrics.worker_restarts.inc, ruleset=ruleset)
    log.info("starting %d scoring workers", pool.size)
    try:
        pool.warm_up()
        quarantine = open_quarantine(config.quarantine, subaddressing=config.subaddressing)
        _warn_quarantine_trouble(config, quarantine)
    except BaseException:
        pool.close()
        raise
    metrics.rules_loaded(ruleset)  # once the service surely starts: a refused reload adds none
    return Service(config, pool, quarantine, metrics, hold)


def run(config: Config, config_file: str | None = None) -> None:
    """Serve until SIGTERM; SIGUSR1 reloads `config_file` (see mailsift.milter.reload)."""
    block_reload_signal()
    check_listen_free(config.milter.listen)
    # Before any thread exists (the pool starts some): every thread inherits the blocked mask, so
    # SIGTERM reaches libmilter's signal thread and stops the milter cleanly, workers included.
    start_process_helpers()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    # Before the workers, so a taken port is refused at once rather than after their start-up;
    # after the signal mask, as the server's thread must not take SIGTERM from libmilter.
    metrics = Metrics()
    if config.milter.metrics_listen:
        metrics.serve(config.milter.metrics_listen)
    MailsiftMilter.current = start_service(config, metrics)
    reloader = Reloader(config_file, config, lambda new, running: start_service(new, metrics, running))
    # Everything so far lives as long as the milter: out of the collector's sight, a full
    # collection scans what messages leave behind instead of ~65,000 startup objects (a 23 ms
    # stall of every thread, measured in bench/milter.py; 0.6-3 ms after freezing).
    gc.freeze()
    Milter.factory = MailsiftMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.DELRCPT)
    threading.Thread(target=_announce_when_listening,
                     args=(config.milter.listen, config.milter.socket_mode), daemon=True).start()
    listener = _log_without_blocking()
    reloader.start()
    try:
        Milter.runmilter("mailsift", libmilter_socket(config.milter.listen), MTA_IO_TIMEOUT)
    finally:
        grace_until = time.monotonic() + STOP_GRACE_S  # one for every pool: see WorkerPool.close
        reloader.close(grace_until)
        MailsiftMilter.current.pool.close(grace_until)
        MailsiftMilter.in_flight.wait_answered(ANSWER_WAIT_S)
        log.info("stopped")
        listener.stop()  # writes out what is queued
