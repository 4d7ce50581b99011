"""Pausing a sender whose outbound mail keeps scoring as spam.

A compromised customer account sends thousands of messages an hour. Each one over the outbound
quarantine or reject threshold is stopped, but the rest, scored a little lower, still leaves and
gets the provider's relays listed. So once a sender has sent `limit` such messages within
`minutes`, all their mail is deferred (451) until the oldest of them falls out of that window:
nothing is lost, a legitimate user sees their client retry, and a spam run stalls. A sender is the
SASL login, the client address for hosts in trusted_networks, or, for mail a local program handed
to Postfix's sendmail command, the envelope sender (see `sender_name`).

The moving window comes from the `limits` library (Flask-Limiter's engine). By default a milter
host counts in its own memory: all a site with one host needs, and a restart forgives, as it does
for the web UI's login throttle. A provider with N milter hosts behind one name would let a
compromised account send up to N x limit before every host paused it, each at its own moment, so
`outbound.pause_store` keeps the counts in a Redis the hosts share (reached like the Bayes store
and the quarantine index: mailsift.redis_connect), and the account stalls everywhere at once.

Why limits' `RedisStorage` is handed our client (`ClientStorage`): limits 5.8 makes its own client
from a URL, or from one connection pool, and its cluster storage makes a RedisCluster from a URL of
its own form. Neither takes a site's Sentinels, ACL user, password file and TLS files as [bayes]
and [quarantine] do, and a cluster client has no single pool to pass. Everything else of limits is
kept: its Lua scripts (atomic on the server, so hosts counting at once never lose a hit) and its
key layout, PREFIX + "LIMITER/SENDER/LIMIT/SECONDS/second", a list of the times (each host's clock:
keep them in NTP) of the sender's latest spam, trimmed to LIMIT and expiring with the window.
No schema version key: a key lives one window at most, so a layout change would cost one window
of counts, never a misread.

`mailsift outbound list` and `lift` work on that Redis: they find the senders by SCANning for the
keys limits makes for the configured window, read them with limits' moving-window script (`list`
pipelines it, SCAN_COUNT senders a round trip) and lift a pause with limits' `clear` (the key
goes). `_key_ends` is the one place that knows a key holds its
sender. Without a shared store the counts are in each milter process's memory, out of reach.

That Redis must never hold mail up: each call waits `TIMEOUT_S` at most, without retries, and a
failure (down, hung, refusing writes) opens a breaker (mailsift.breaker): for its RETRY_AFTER the
host counts in its own memory without asking, with one warning for the outage and one when the
Redis is back. What the host counted meanwhile still adds to the shared count until it leaves the
window, so a spam run that spans the outage is paused at the same total.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from ipaddress import ip_address, ip_network
from typing import Any, TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.retry import Retry

from mailsift.analysis.relays import canonical_ip
from mailsift.batches import batched
from mailsift.breaker import Breaker
from mailsift.config import OutboundConfig
from mailsift.redis_connect import (
    REDIS_ERRORS,
    SCAN_COUNT,
    RedisSettings,
    RedisSettingsError,
    connector,
    failure_text,
    glob_escaped,
    settings_for,
)
from mailsift.secrets import REDIS_PASSWORD_ENV, SecretError, read_secret

log = logging.getLogger("mailsift.milter")

# Connect and read, per call: a Redis on the LAN answers in a millisecond, and the one message
# that meets a dead or hung one waits this long, once per breaker period.
TIMEOUT_S = 0.25
# How a sender is named, in its key, in the milter's log and to `mailsift outbound`.
LOGIN, CLIENT, LOCAL = "SASL login ", "client ", "local sender "
SENDER_MARK = "\0"  # stands for the sender in a key made to find where the sender goes

T = TypeVar("T")


class PauseStoreError(Exception):
    """outbound.pause_store cannot be used as configured (the text names the key), or, for
    `mailsift outbound`, its Redis failed (the text names the server, never the password)."""


@dataclass(frozen=True)
class PauseSettings:
    """What a SenderHold is made of; a reload keeps the running one while these stay equal."""

    limit: int  # spam messages in the window that pause a sender; 0: never
    minutes: float  # the window
    store: RedisSettings | None = None  # the Redis the milter hosts share; None: this host's memory
    key_prefix: str = "mailsift:pause:"
    ipv6_prefix: int = 64  # an IPv6 client is counted by its network of this length (client_group)


@dataclass(frozen=True)
class Standing:
    """A sender's spam counted in the shared window, as `mailsift outbound` shows it."""

    sender: str
    count: int
    limit: int
    until: float  # Unix time at which the oldest counted message leaves the window

    @property
    def paused(self) -> bool:
        return self.count >= self.limit

    def until_text(self) -> str:
        return datetime.fromtimestamp(self.until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def state(self) -> str:
        return f"paused until {self.until_text()}" if self.paused else "not paused"

    def line(self) -> str:
        """State, count and sender, the sender last as it may hold spaces and is what an admin
        copies into `outbound lift`."""
        return f"{self.state():<36}  {self.count:>4} of {self.limit:<4}  {self.sender}"


def sender_name(login: str, client_ip: str, ipv6_prefix: int, local_sender: str | None = None) -> str:
    """Who a message is counted for: the SASL login, else, for local submission (`local_sender`
    not None), its envelope sender, else the (trusted) client's address, or for IPv6 its
    network (`client_group`).

    Local submission is counted per envelope sender, not per client: Postfix hands every message
    of the sendmail command to the milter as from localhost[127.0.0.1], so one compromised web
    site would pause every site on the host. The Unix user who ran sendmail is what an admin
    would want counted, but Postfix never tells a milter (its "from userid N" Received header is
    not among the headers the milter sees). Without -f the envelope sender is that user's login
    at $myorigin; with -f it is whatever the script chose, unless the site ties senders to logins
    with Postfix's local_login_sender_maps (README, outbound)."""
    if login:
        return LOGIN + login
    if local_sender is not None:
        return LOCAL + (local_sender or "<>")
    return CLIENT + client_group(client_ip, ipv6_prefix)


def client_group(address: str, ipv6_prefix: int) -> str:
    """What a client address is counted as: an IPv4 address alone, an IPv6 one as its network of
    `ipv6_prefix` bits ("2001:db8:7:1::/64"; 128: the address). A server holds a whole IPv6
    network, a /64 at least, and can send each message from another of its addresses: counted
    per address, a spam run that rotates them would never reach pause_after. The cost is that
    hosts sharing one such network are paused together, which is why the prefix is the site's.
    An IPv4-mapped address (::ffff:192.0.2.1) is the IPv4 client it is (`canonical_ip`): read as
    IPv6, every such client fell in ::/64 and shared one count."""
    address = ip_address(canonical_ip(address))
    if address.version == 4 or ipv6_prefix == address.max_prefixlen:
        return str(address)
    return str(ip_network(f"{address}/{ipv6_prefix}", strict=False))


def named_sender(text: str, ipv6_prefix: int) -> str:
    """The sender an admin means: as the milter's log and `outbound list` name it, or by the
    bare login, address or network, as Postfix's log shows them (`alice`, `192.0.2.7`). An IPv6
    address, bare or as "client 2001:db8:7:1::5", means the network it is counted in, so any
    address of it, as the log line of one of its messages writes it, lifts the pause. A local
    sender is named in full (`local sender web1@host.example`): a login may be an address too."""
    if text.startswith((LOGIN, LOCAL)):
        return text
    address = text.removeprefix(CLIENT)
    try:
        return CLIENT + client_group(address.partition("/")[0], ipv6_prefix)  # as the milter names it
    except ValueError:
        return text if address != text else LOGIN + text


def pause_settings(config: OutboundConfig) -> PauseSettings:
    """The settings [outbound] names, with the Redis password read now (again on each reload,
    so a changed password is taken up)."""
    if not config.pause_store:
        return PauseSettings(config.pause_after, config.pause_minutes,
                             ipv6_prefix=config.pause_ipv6_prefix)
    try:
        password = read_secret(config.password_file, REDIS_PASSWORD_ENV, "Redis password")
    except SecretError as exc:
        raise PauseStoreError(f"outbound.password_file: {exc}") from None
    return PauseSettings(config.pause_after, config.pause_minutes,
                         settings_for(config, config.pause_store, password), config.pause_key_prefix,
                         config.pause_ipv6_prefix)


class SenderHold:
    """`held(sender)` before scoring; `spam(sender)` for each outbound message stopped as spam."""

    def __init__(self, settings: PauseSettings) -> None:
        self.settings = settings
        self.window = RateLimitItemPerSecond(max(settings.limit, 1), max(round(settings.minutes * 60), 1))
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.shared = SharedCounts(settings.store, settings.key_prefix) if settings.store else None

    def held(self, sender: str) -> bool:
        return self.settings.limit > 0 and self._count(sender) >= self.settings.limit

    def spam(self, sender: str, message: str = "") -> None:
        """Count one message of `sender` stopped as spam; `message` names it for the line that
        says the sender is paused ("QUEUE-ID from client NAME[IP]"): an abuse desk wants the
        address a compromised login sends from, and the queue id finds the rest in Postfix's log."""
        if self.settings.limit <= 0:
            return
        counted = self.shared.hit(self.window, sender) if self.shared else None
        if counted is None:  # no shared store, or it failed: this host counts
            counted = self.local.hit(self.window, sender)
        count = self._count(sender) if counted else 0
        if count >= self.settings.limit:
            log.warning("outbound mail of %s paused: %d messages in %g minutes scored as spam%s; "
                        "their mail is deferred until the window lets one go", sender, count,
                        self.settings.minutes, f", the last {message}" if message else "")

    def _count(self, sender: str) -> int:
        """The sender's spam in the window: what this host counted in memory (everything, without
        a shared store) plus the shared count, while the shared store answers."""
        shared = self.shared.count(self.window, sender) if self.shared else None
        return count_in(self.local, self.window, sender) + (shared or 0)


class SharedCounts:
    """The moving window in the Redis the milter hosts share; a call answers None while it fails."""

    def __init__(self, settings: RedisSettings, key_prefix: str) -> None:
        try:
            self.target = connector(replace(settings, connect_timeout=TIMEOUT_S, timeout=TIMEOUT_S,
                                            retry=Retry(NoBackoff(), 0)))
        except RedisSettingsError as exc:
            raise PauseStoreError(f"outbound.pause_store: {exc}") from None
        # In a cluster every count sits in the slot of one hash tag, as the quarantine does: a
        # site's pause counts are found (and a pause lifted) on one node.
        self.key_prefix = "{" + key_prefix + "}" if settings.cluster else key_prefix
        self.health = Breaker("outbound pause store", "this host counts senders' spam in its own "
                              "memory until it is back", "senders' spam is counted there again", log)

    @cached_property
    def storage(self) -> ClientStorage:
        """Made on first use: a cluster client reads the slot map as it is made, and the milter
        must start (and count in memory) while the store is down."""
        return ClientStorage(self.target.connect(), self.key_prefix)

    @cached_property
    def limiter(self) -> MovingWindowRateLimiter:
        return MovingWindowRateLimiter(self.storage)

    def count(self, window: RateLimitItem, sender: str) -> int | None:
        return self._ask(lambda limiter: count_in(limiter, window, sender), writes=False)

    def hit(self, window: RateLimitItem, sender: str) -> bool | None:
        """True: counted; False: the window is full already; None: not counted, store failing."""
        return self._ask(lambda limiter: limiter.hit(window, sender), writes=True)

    def check(self) -> str | None:
        """Why the store cannot be used now, None if it answers (for configtest)."""
        try:
            self.storage.get_connection().ping()
        except REDIS_ERRORS as exc:
            return self._reason(exc)
        return None

    # What `mailsift outbound` asks. These raise PauseStoreError where the calls above answer
    # None: mail must flow while the store fails, but a command must say that it failed.

    def standings(self, window: RateLimitItem) -> list[Standing]:
        """Every sender with spam in `window`, paused ones first, then by count. SCAN, never
        KEYS: KEYS stops a Redis, which the milter hosts and the Bayes store may share, while it
        walks every key."""
        def read() -> list[Standing]:
            head, tail = self._key_ends(window)
            home = self._home(head)
            keys = home.scan_iter(match=glob_escaped(head) + "*" + glob_escaped(tail), count=SCAN_COUNT)
            senders = {key.decode()[len(head):-len(tail)] for key in keys}
            found = (standing for batch in batched(senders, SCAN_COUNT)
                     for standing in self._standings_of(window, batch, home.pipeline(transaction=False)))
            counted = [s for s in found if s.count]  # a key outlives its entries by up to a window
            return sorted(counted, key=lambda s: (not s.paused, -s.count, s.sender))
        return self._admin(read)

    def _standings_of(self, window: RateLimitItem, senders: list[str], pipe: Pipeline) -> list[Standing]:
        """`standing_in` for many senders in one round trip: a provider's list counts thousands,
        and one call each took 1.6 s for 10,000 on loopback (a round trip is ~0.15 ms there,
        ten times that across a LAN). limits asks one at a time, so its moving-window script is
        queued here as `RedisStorage.get_moving_window` runs it, and read as
        `get_window_stats` reads it."""
        now, expiry = time.time(), window.get_expiry()
        for sender in senders:
            self.storage.lua_moving_window([self.storage.prefixed_key(window.key_for(sender))],
                                           [now - expiry, window.amount], client=pipe)
        return [Standing(sender, int(answer[1]) if answer else 0, window.amount,
                         (float(answer[0]) if answer else now) + expiry)
                for sender, answer in zip(senders, pipe.execute(), strict=True)]

    def _home(self, key: str) -> Any:
        """The client of the Redis holding `key`. Every count sits in the slot of our hash tag:
        in a cluster, that node's own client scans only it (the cluster client's SCAN walks every
        primary, Bayes tokens and all) and takes scripts into its pipelines (the cluster's does not)."""
        client = self.storage.get_connection()
        if isinstance(client, RedisCluster):
            return client.get_redis_connection(client.get_node_from_key(key))
        return client

    def lift(self, window: RateLimitItem, sender: str) -> Standing:
        """Forget the sender's count, so no host pauses them; the standing it had (count 0:
        nothing was counted, nothing done). The caller records who did (mailsift.audit)."""
        def clear() -> Standing:
            standing = standing_in(self.limiter, window, sender)
            if standing.count:
                self.limiter.clear(window, sender)
            return standing
        return self._admin(clear)

    def _key_ends(self, window: RateLimitItem) -> tuple[str, str]:
        """What comes before and after the sender in a key of `window`: limits' layout
        (`key_for`) under our prefix (`prefixed_key`), asked of limits rather than copied."""
        head, tail = self.storage.prefixed_key(window.key_for(SENDER_MARK)).split(SENDER_MARK)
        return head, tail

    def _admin(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except REDIS_ERRORS as exc:
            raise PauseStoreError(self._reason(exc)) from None

    def _ask(self, call: Callable[[MovingWindowRateLimiter], T], writes: bool) -> T | None:
        """`call`'s answer, or None while the store fails. Only a write that worked says the store
        is back: a Redis refusing writes (a replica, out of memory) still answers reads, and would
        otherwise be logged as back and as failing again every RETRY_AFTER."""
        if self.health.skip():
            return None
        try:
            answer = call(self.limiter)
        except REDIS_ERRORS as exc:
            self.health.failed(self._reason(exc))
            return None
        if writes:
            self.health.ok()
        return answer

    def _reason(self, exc: Exception) -> str:
        """The error for the log, naming the server but never a password."""
        return f"redis at {self.target.where}: {failure_text(exc, self.target.password)}"


class ClientStorage(RedisStorage):
    """limits' Redis storage on a client made by mailsift.redis_connect (see the module docstring).

    `RedisStorage.__init__` is skipped, as limits' own cluster storage skips it, because it makes a
    client; everything else reaches the client through `get_connection`, which returns ours."""

    def __init__(self, client: Any, key_prefix: str) -> None:
        super(RedisStorage, self).__init__()
        self.storage = client
        self.key_prefix = key_prefix
        self.initialize_storage("")

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return REDIS_ERRORS

    def prefixed_key(self, key: str) -> str:
        """PREFIX + key: our prefixes end in ':' as [bayes] key_prefix does (limits adds one)."""
        return self.key_prefix + key


def sender_hold(config: OutboundConfig, running: SenderHold | None = None) -> SenderHold:
    """The hold [outbound] asks for: the `running` one while its settings are the same, as a
    reload must not forgive the senders this host counted in memory."""
    wanted = pause_settings(config)
    if running is not None and running.settings == wanted:
        return running
    return SenderHold(wanted)


def count_in(limiter: MovingWindowRateLimiter, window: RateLimitItem, sender: str) -> int:
    return standing_in(limiter, window, sender).count


def standing_in(limiter: MovingWindowRateLimiter, window: RateLimitItem, sender: str) -> Standing:
    """limits' `reset_time` of a moving window is when its oldest entry leaves it."""
    stats = limiter.get_window_stats(window, sender)
    return Standing(sender, window.amount - stats.remaining, window.amount, stats.reset_time)

