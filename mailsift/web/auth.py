"""Who is logged in, what they may see, and how guessing passwords is made slow.

Passwords are checked against argon2 hashes from the config (`mailsift web hash-password` makes
them); the password itself is never stored, logged or accepted on a command line. An unknown user
costs the same hash check as a known one, so timing does not reveal who exists.

The session lives in a signed cookie, which alone cannot be withdrawn: a copy of it would stay
valid until it expires. So a session also names its login (`sid`), which logout revokes in the
quarantine index, and the password it was opened with (`key`, a digest of the hash), which a
password change in the config no longer matches.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailsift.config import ReviewAction, WebConfig, WebUser
from mailsift.domains import NO_SUBADDRESSES, Subaddressing, ascii_address
from mailsift.quarantine.model import addressed_to
from mailsift.quarantine.store import Backend

HASHER = PasswordHasher()
_LOGOUTS = "web-logouts:"  # + user name: the index mark of their ended logins (see Revoked)
# Verified when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


@dataclass(frozen=True)
class Viewer:
    """The logged-in user as the pages need them."""

    name: str
    admin: bool
    addresses: tuple[str, ...]
    actions: frozenset[str]  # what they may do to a message they see (web.user_actions)
    subaddressing: Subaddressing = NO_SUBADDRESSES  # her subaddresses are hers (see `owns`)

    @classmethod
    def of(cls, user: WebUser, config: WebConfig,
           subaddressing: Subaddressing = NO_SUBADDRESSES) -> Viewer:
        admin = user.role == "admin"
        actions = get_args(ReviewAction) if admin else config.user_actions
        return cls(user.name, admin, tuple(user.addresses), frozenset(actions), subaddressing)

    def scope(self) -> list[str] | None:
        """The recipients whose mail this viewer may see: None = all (admin)."""
        return None if self.admin else list(self.addresses)

    @cached_property
    def _owned(self) -> list[str]:
        return [ascii_address(a) for a in self.addresses]

    def owns(self, recipient: str) -> bool:
        """Whether `recipient` (as Postfix gave it) is one of this viewer's addresses (as the
        config writes them), by the test her list, search and digest make (`addressed_to`), so
        she may open exactly the mail they show her: jane@example.com owns mail to
        Jane@Example.COM and jane@example.com., jörg@bücher.example mail to
        jörg@xn--bcher-kva.example and jörg@ｂücher.example. A look-alike (a Cyrillic letter)
        is another address, and a domain IDNA refuses (or a DNS escape) equals no configured
        one. Under milter.recipient_delimiter jane@example.com owns jane+shop@example.com too,
        as her search finds it; janet@, +jane@ and another login's address stay others'."""
        return any(addressed_to(wanted, recipient, self.subaddressing) for wanted in self._owned)

    def may_see(self, record: dict[str, object]) -> bool:
        recipients: list[str] = record.get("recipients") or []  # type: ignore[assignment]
        return self.admin or any(self.owns(a) for a in recipients)

    def shown(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as this viewer may read it. A user sees only their own addresses among
        the recipients (and among those a release not recorded may have gone to), and what
        others did to the message without its detail ("released to ADDRESSES"): the other
        recipients may have been Bcc'd, or be another customer."""
        if self.admin:
            return record
        events = [e if e.get("user") == self.name else {**e, "detail": ""}
                  for e in record.get("events", [])]
        own = [a for a in record.get("recipients", []) if self.owns(a)]
        releasing = {a: t for a, t in (record.get("releasing") or {}).items() if self.owns(a)}
        return {**record, "recipients": own, "events": events, "releasing": releasing}

    def release_to(self, record: dict[str, object]) -> list[str] | None:
        """Where a release by this viewer goes: every recipient (admin), else only their own."""
        if self.admin:
            return None
        return [a for a in record.get("recipients") or [] if self.owns(a)]  # type: ignore[union-attr]


def check_password(config: WebConfig, name: str, password: str) -> WebUser | None:
    user = next((u for u in config.users if u.name == name), None)
    try:
        HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def logged_name(config: WebConfig, name: str) -> str:
    """A login name as the log shows it: quoted when it is a user's, else "an unknown name" —
    what is typed into the name field is now and then the password itself."""
    return repr(name) if any(u.name == name for u in config.users) else "an unknown name"


def password_key(user: WebUser) -> str:
    """Names the password a session was opened with, without revealing it or its hash (the
    cookie is signed, not encrypted): a new hash in the config ends the sessions of the old."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


class Revoked:
    """Logins ended by logout, kept in the quarantine index until they would have expired anyway.

    In the index, not in memory: a restart of the UI forgot them (a copied cookie worked again),
    and a second UI on the same index (another worker or host behind the proxy) never knew them.
    One mark per user holds their ended logins; two logouts of one user in the same instant
    could lose one, which leaves a copied cookie working as it did before."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # Logins the index last said were not ended, until their cookie expires: what the 503
        # page goes by while the index cannot be read (see `seen_live`).
        self._live: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, user: str, sid: str, expires: float) -> None:
        with self._lock:
            self._live.pop((user, sid), None)  # first: the index may not take the logout
        now = time.time()
        ended = {s: t for s, t in self._ended(user).items() if t > now}
        self.backend.set_mark(_LOGOUTS + user, json.dumps({**ended, sid: expires}))

    def ended(self, user: str, sid: object, expires: float) -> bool:
        """Whether the login `sid` of `user` was logged out; one that was not is remembered
        until `expires` (see `seen_live`)."""
        if not isinstance(sid, str):
            return False
        if sid in self._ended(user):
            return True
        with self._lock:
            now = time.time()
            for key in [k for k, t in self._live.items() if t <= now]:
                del self._live[key]
            self._live[(user, sid)] = expires
        return False

    def seen_live(self, user: str, sid: object) -> bool:
        """Whether the index, when last asked in this process, said this login was not logged
        out, and it was not logged out here since. Reads no store: for the pages shown while
        the index cannot be read. A logout made by another process since that answer is not
        known here; a login this process never checked is not taken for live."""
        with self._lock:
            return isinstance(sid, str) and self._live.get((user, sid), 0.0) > time.time()

    def _ended(self, user: str) -> dict[str, float]:
        return dict(json.loads(self.backend.mark(_LOGOUTS + user) or "{}"))


def same_token(expected: object, given: object) -> bool:
    """CSRF token comparison in constant time; a missing token never matches."""
    return isinstance(expected, str) and isinstance(given, str) and bool(expected) \
        and hmac.compare_digest(expected.encode(), given.encode())


# A throttle's failures by key: count, until when the key waits, last failure; the least recently
# failing first (a failure moves its key to the end).
Counts = dict[Hashable, tuple[int, float, float]]


class LoginThrottle:
    """Slows password guessing: after `attempts` wrong passwords for one name from one address,
    or `CLIENT_FACTOR` times as many from one address over all names, each try must wait.

    The wait starts at `delay` seconds and doubles with every further failure; while it runs no
    password is even checked. The per-name count alone never slowed password spraying (one
    common password tried against every name, once each); the per-address count does. Its
    numbers: an address may be an office or a provider's NAT, where several people mistype their
    own passwords, so it gets four times a name's allowance (20 with the default 5) before it
    waits. A sprayer then gets 20 guesses, about 7 more in the next hour (waits of 30 s, 60 s,
    ... 32 min), and 20 again only after a further two hours of silence: some ten names an hour,
    where a spray needs thousands. A success ends only that name's count: a customer with a
    login of their own must not be able to clear their address's count by logging in between
    guesses.

    Counts are forgotten after `FORGET` (an hour) without a failure once their wait is over, so
    typos do not add up over weeks. An IPv6 client counts by its /64, the block one subscriber
    or server gets: counted per address, any host could take a fresh allowance for every guess.
    The counts are kept in memory (a restart forgives, which an attacker cannot force), at most
    `MAX_COUNTS` of each kind: the least recently failing are dropped first, so guesses from
    ever new addresses cannot grow the process without bound, and an attacker who fills the
    table forgets only quiet counts before their own.
    """

    CLIENT_FACTOR = 4
    FORGET = 3600.0
    MAX_COUNTS = 100_000  # of each kind, some 20 MB together at most

    def __init__(self, attempts: int, delay: float) -> None:
        self.attempts = attempts
        self.delay = delay
        self.clock = time.monotonic
        self.lock = threading.Lock()
        self.names: Counts = {}  # by (name, address block)
        self.clients: Counts = {}  # by address block

    def wait(self, name: str, client: str) -> float:
        """Seconds until this name may try again from this address (0: now)."""
        block = client_block(client)
        with self.lock:
            now = self.clock()
            _, until, _ = _count(self.names, (name.lower(), block), now)
            _, client_until, _ = _count(self.clients, block, now)
        return max(0.0, until - now, client_until - now)

    def failed(self, name: str, client: str) -> None:
        block = client_block(client)
        with self.lock:
            now = self.clock()
            self._fail(self.names, (name.lower(), block), self.attempts, now)
            self._fail(self.clients, block, self.attempts * self.CLIENT_FACTOR, now)

    def succeeded(self, name: str, client: str) -> None:
        with self.lock:
            self.names.pop((name.lower(), client_block(client)), None)

    def _fail(self, counts: Counts, key: Hashable, allowed: int, now: float) -> None:
        """Count one more failure of `key`, moving it to the end (the most recent)."""
        count, _, _ = _count(counts, key, now)
        counts.pop(key, None)
        over = count + 1 - allowed
        counts[key] = (count + 1, now + self.delay * 2 ** over if over >= 0 else 0.0, now)
        while len(counts) > self.MAX_COUNTS:
            del counts[next(iter(counts))]


def _count(counts: Counts, key: Hashable, now: float) -> tuple[int, float, float]:
    """The count of `key`, dropped once it has been quiet for LoginThrottle.FORGET."""
    count, until, last = counts.get(key, (0, 0.0, 0.0))
    if count and now - max(until, last) >= LoginThrottle.FORGET:
        del counts[key]
        return 0, 0.0, 0.0
    return count, until, last


def client_block(client: str) -> str:
    """What the throttle counts a client by: its IPv4 address, or its IPv6 /64."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client  # not an address (a test client, a socket): counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d from a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
