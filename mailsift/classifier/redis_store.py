"""The shared Bayes token store: Redis, so several mail hosts learn into and score from one model.

Key layout, for a store with prefix P (default "mailsift:"). Every key starts with the hash tag
"{P}", so all keys of one store live in one Redis Cluster slot and the Lua scripts, which touch
many keys at once, stay Cluster safe; stores with different prefixes (per-user Bayes) spread
over the slots.

    {P}schema          string  the layout version; written on first use and checked, so an
                               incompatible mailsift fails with a clear message, not bad counts
    {P}totals          hash    s, h: messages learned as spam / ham
    {P}t:<8 bytes>     hash    s, h: messages of each class the token appeared in; a: unix time
                               last seen. The key ends with the raw `token_key` bytes
    {P}seen:<digest>   string  "spam" or "ham": the class a message was learned as

One small hash per token (rather than one big hash for all) lets Redis expire and evict tokens
one by one. Each token key has a TTL, reset on every learn: `token_ttl`, or the shorter
`hapax_ttl` while the token occurs in one message only. So Redis itself drops tokens unseen
for too long, and `expire()` normally finds nothing to do (see its docstring).

Only token keys carry a TTL; totals, schema and seen records never do. That is why the
recommended policy is `maxmemory-policy volatile-lru`: under memory pressure Redis then evicts
the least recently used tokens, which costs a little accuracy, and never totals or seen
records, whose loss would skew every verdict or make learning non-idempotent. With
`noeviction` a learn over the limit fails with StoreFull, as a whole (see learn_batch.lua). Redis
checks the limit only before a script's first write, so one `learn_batch` script may take
memory up to one chunk past it (SCRIPT_TOKENS tokens, ~3.5 MB).
Seen records are ~80 bytes per learned message and are not evicted: size maxmemory for them.

Round trips: `lookup` is one pipeline (HMGET s h per token, plus the totals); `learn` and
`forget` are one EVALSHA each; `learn_batch` is two per chunk of ~SCRIPT_TOKENS distinct tokens
(an MGET of the seen records, then one atomic learn_batch.lua call that reads and writes each
token of the chunk once), or just the MGET when all its messages were learned already. The
first call on a store adds one round trip to check the schema.

A dead Redis must cost the mail flow little: timeouts are short and there are no retries, so a
lookup against a stopped server fails at once, and BayesFilter stops asking for a while.
Errors become StoreError("redis at HOST:PORT: what"); passwords never appear in them.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from importlib.resources import files
from typing import Any

from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.retry import Retry

from mailsift.batches import batched
from mailsift.classifier.store import (
    COUNT,
    SCHEMA_VERSION,
    BackupToken,
    DumpInfo,
    Label,
    LearnItem,
    Outcome,
    StoreDamaged,
    StoreError,
    StoreFull,
    StoreName,
    StoreSummary,
    TokenCounts,
    Totals,
    backup_token,
    batch_deltas,
    read_count,
    read_label,
    summary,
    token_count,
    unreadable_schema,
)
from mailsift.redis_connect import (
    REDIS_ERRORS,
    SCAN_COUNT,
    RedisSettings,
    RedisSettingsError,
    connector,
    failure_text,
    glob_escaped,
)

log = logging.getLogger(__name__)
DAY = 86400
TTL_REFRESH = 3600  # see learn_batch.lua: a token's TTL may end up to this much early, out of months
# Per learn_batch.lua call, which Redis runs alone: ~60 ms of server work, while lookups of the
# mail flow wait. A batch of 200 real messages (~11,000 distinct tokens) fits in one call.
# Below 65,536: see _pack.
SCRIPT_TOKENS = 20_000
CONFLICT_RETRIES = 3  # then the chunk goes message by message, each message's script reading its own record
SCRIPTS = ("lookup", "learn_batch", "forget", "expire", "report")
# What redis-py and Redis add to an error's text that tells an administrator nothing: the command
# a pipeline failed on (binary token keys and all) and the SHA and line of a failing script.
NOISE = re.compile(r"Command # \d+ \(.*\) of pipeline caused error: |\s*script: [0-9a-f]{40}, "
                   r"on @user_script:\d+\.", re.DOTALL)
# A script's answers, having changed nothing, when what it reads holds what mailsift never
# writes: the message's seen record names no class (and what it holds follows), a key is of
# another type than a hash (its name follows), a total is no count ("s:" or "h:" and it follow).
DAMAGED = b"damaged:"
WRONG_TYPE = b"wrongtype:"
BAD_TOTAL = b"badtotal:"
FULL = ("Redis is full: raise maxmemory, or set maxmemory-policy volatile-lru so that old tokens "
        "make room")


def _total_record(label: str, key: str) -> str:
    """How damage names a field of the totals hash `key`."""
    return f"the {label} total ({key})"


# Scripts that write the totals, which start with the shared check of lua/totals.lua.
WRITES_TOTALS = frozenset({"learn_batch", "forget"})


@functools.cache  # read once a process: the milter makes a store per recipient (see filter.py)
def _script(name: str) -> str:
    """The script's Lua source, after totals.lua's if it writes the totals (Redis scripts
    cannot include one another)."""
    parts = (["totals"] if name in WRITES_TOTALS else []) + [name]
    return "".join(files("mailsift.classifier").joinpath(f"lua/{part}.lua").read_text(encoding="utf-8")
                   for part in parts)


class RedisStore:
    """`TokenStore` on Redis; build it with `from_url`.

    `connect` makes the client (redis.Redis, a Sentinel's master, or RedisCluster) on first
    use, not here: a cluster client asks its nodes for the slot map as it is built, and a store
    must be made while Redis is down, to fail on use like one that died."""

    def __init__(self, connect: Callable[[], Any], where: str, *, prefix: str = "mailsift:",
                 token_ttl: int = 180 * DAY, hapax_ttl: int = 30 * DAY,
                 password: str = "", owns_client: bool = True) -> None:
        if "{" in prefix or "}" in prefix:
            raise StoreError(f"redis at {where}: key prefix {prefix!r} must not contain {{ or }} "
                             "(the store adds its own Cluster hash tag)")
        self._connect = connect
        self._owns_client = owns_client
        self.where = where
        self.prefix = prefix
        self.token_ttl = token_ttl
        self.hapax_ttl = hapax_ttl
        self._password = password  # the one in use, to mask and to know none was given
        self._base = "{" + prefix + "}"
        self._totals_key = f"{self._base}totals"
        self._schema_key = f"{self._base}schema"
        self._token_prefix = f"{self._base}t:".encode()
        self._named = StoreName(f"redis at {where}", prefix)
        self._schema = "unchecked"  # "absent": read and found empty; "ok": written or checked

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "mailsift:", username: str | None = None,
                 password: str | None = None, sentinel: Sequence[tuple[str, int]] = (),
                 sentinel_service: str = "mymaster", cluster: Sequence[tuple[str, int]] = (),
                 ssl_ca_certs: str | None = None, ssl_certfile: str | None = None,
                 ssl_keyfile: str | None = None, ssl_check_hostname: bool = True,
                 connect_timeout: float = 0.5, timeout: float = 1.0, token_ttl: int = 180 * DAY,
                 hapax_ttl: int = 30 * DAY) -> RedisStore:
        """A store for `redis://HOST:PORT/DB`, `rediss://` (TLS) or `unix:///PATH?db=N`, or
        through `sentinel` or in a `cluster` (see mailsift.redis_connect).

        In a cluster every key of the store shares one hash tag, so the store sits on the one
        node that owns that slot (and its replicas). There are no retries: a dead Redis must
        cost the mail flow one short timeout (see the module docstring).
        """
        settings = RedisSettings(
            url, username=username, password=password, sentinels=sentinel,
            sentinel_service=sentinel_service, cluster=cluster, ssl_ca_certs=ssl_ca_certs,
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
            ssl_check_hostname=ssl_check_hostname, connect_timeout=connect_timeout,
            timeout=timeout)
        return cls.from_settings(settings, prefix=prefix, token_ttl=token_ttl, hapax_ttl=hapax_ttl)

    @classmethod
    def from_settings(cls, settings: RedisSettings, *, prefix: str = "mailsift:",
                      token_ttl: int = 180 * DAY, hapax_ttl: int = 30 * DAY) -> RedisStore:
        """The store where `settings` point, without retries whatever they say."""
        try:
            target = connector(replace(settings, retry=Retry(NoBackoff(), 0)))
        except RedisSettingsError as exc:
            raise StoreError(str(exc)) from None
        return cls(target.connect, target.where, prefix=prefix, token_ttl=token_ttl,
                   hapax_ttl=hapax_ttl, password=target.password)

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Redis failures as StoreError (StoreFull for -OOM) naming the server; the cause is
        not chained, so no library message (which might quote a secret) reaches a log through it."""
        try:
            yield
        except REDIS_ERRORS as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: Exception) -> StoreError:
        error = StoreFull if isinstance(exc, OutOfMemoryError) else StoreError
        return error(f"redis at {self.where}: {self._scrub(exc)}")

    def _scrub(self, exc: Exception) -> str:
        """The error's class and text (the class carries what redis-py takes out of the reply,
        e.g. OutOfMemoryError for -OOM, which also gets a hint), with any secret masked and
        without the NOISE."""
        text = NOISE.sub("", failure_text(exc, self._password))
        return f"{text} ({FULL})" if isinstance(exc, OutOfMemoryError) else text

    @functools.cached_property
    def client(self) -> Any:
        """The client, made on first use (see the class docstring); not kept if that fails."""
        with self._errors():
            return self._connect()

    @functools.cached_property
    def _scripts(self) -> dict[str, Script]:
        return {name: self.client.register_script(_script(name)) for name in SCRIPTS}

    def _ready(self, write: bool = True) -> Any:
        """The client, after checking the schema version once per store object; a write first
        writes it. A read of an empty prefix writes nothing: per-recipient Bayes reads the store
        of every recipient domain it sees, and most never learn anything."""
        if self._schema == "ok" or (self._schema == "absent" and not write):
            return self.client
        with self._errors():
            if write:
                pipe = self.client.pipeline(transaction=False)
                pipe.set(self._schema_key, SCHEMA_VERSION, nx=True)
                pipe.get(self._schema_key)
                found = pipe.execute()[1]
            else:
                found = self.client.get(self._schema_key)
        if self._schema == "unchecked" and self._owns_client:
            self._check_eviction()  # once per server: a store sharing its client skips it
        if found is None:
            self._schema = "absent"
            return self.client
        if found != str(SCHEMA_VERSION).encode():
            raise StoreError(unreadable_schema(
                f"redis at {self.where} (keys under prefix {self.prefix!r})",
                found.decode(errors="replace"), "restore your backup from before the upgrade "
                "under another bayes.key_prefix or into an empty database (mailsift learn "
                "--restore FILE)"))
        self._schema = "ok"
        return self.client

    def _check_eviction(self) -> None:
        """Warn when Redis may evict keys that have no TTL: with an allkeys-* policy, memory
        pressure can drop the totals (every verdict skews) or seen records (learning stops
        being idempotent), which volatile-lru never touches. Many Redis servers run allkeys-lru
        because they were set up as a cache; the mail flow keeps working, so only a log line
        would ever tell. A server that denies CONFIG to this user is not asked again."""
        try:
            found = self.client.config_get("maxmemory-policy", **self._home())
        except REDIS_ERRORS:
            return
        policy = next(iter(found.values()), b"")
        policy = policy.decode() if isinstance(policy, bytes) else str(policy)
        if policy.startswith("allkeys-"):
            log.warning("redis at %s: maxmemory-policy %s may evict the Bayes totals and "
                        "learned-message records, not only old tokens; set volatile-lru",
                        self.where, policy)

    # -- for the report digests, kept under the same prefix ------------------------------------

    def errors(self) -> AbstractContextManager[None]:
        return self._errors()

    def script(self, name: str) -> Script:
        """One of the SCRIPTS, for the report digests kept beside the tokens."""
        return self._scripts[name]

    def ready(self, write: bool = True) -> Any:
        return self._ready(write)

    def scan(self, pattern: str) -> Iterator[list[bytes]]:
        """Batches of this store's keys matching `pattern` (after the hash tag)."""
        return self._scan(pattern)

    @property
    def named(self) -> StoreName:
        return self._named

    @property
    def key_base(self) -> str:
        """`{prefix}`: the hash-tagged start of every key of this store."""
        return self._base

    def _token(self, key: bytes) -> bytes:
        return self._token_prefix + key

    def _seen_key(self, digest: str) -> str:
        return f"{self._base}seen:{digest}"

    def _message_keys(self, item: LearnItem) -> list[str | bytes]:
        """KEYS for forget.lua; each token once, whatever the caller sent."""
        return [self._totals_key, self._seen_key(item.digest),
                *(self._token(key) for key in dict.fromkeys(item.keys))]

    def _home(self) -> dict[str, Any]:
        """In a cluster, the node holding this store's slot, as `target_nodes` for a command
        that names no key (SCAN, CONFIG), which the client would otherwise send to every
        primary or to any one of them."""
        if isinstance(self.client, RedisCluster):
            return {"target_nodes": self.client.get_node_from_key(self._totals_key)}
        return {}

    def _scan(self, pattern: str) -> Iterator[list[bytes]]:
        """Batches of this store's keys matching `pattern` (after the hash tag)."""
        return self._scan_keys(glob_escaped(self._base) + pattern, **self._home())

    def _scan_keys(self, match: str, **where: Any) -> Iterator[list[bytes]]:
        """Batches of the keys matching `match`; in a cluster, of the nodes `where` names, by
        default of every primary."""
        with self._errors():
            found = self._ready(write=False).scan_iter(match=match, count=SCAN_COUNT, **where)
            yield from batched(found, SCAN_COUNT)

    # -- classification -----------------------------------------------------------------------

    def lookup(self, keys: Sequence[bytes]) -> tuple[Totals, list[TokenCounts]]:
        client = self._ready(write=False)
        with self._errors():
            flat = self._scripts["lookup"](keys=[self._totals_key, *map(self._token, keys)], client=client)
        if isinstance(flat, bytes):
            self._damage(flat, "")
        # as_count, inlined: this is the mail path (65 us a message of 300 tokens as a call
        # each, 46 us so, 41 us unchecked); a damaged count is named only now
        numbers = [0 if value is None else int(value) if value.isdigit() else -1 for value in flat]
        if -1 in numbers:
            numbers = [read_count(0 if value is None else value, self._named, self._lookup_record(keys, i))
                       for i, value in enumerate(flat)]
        counts = [TokenCounts(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]
        return Totals(counts[0].spam, counts[0].ham), counts[1:]

    def _lookup_record(self, keys: Sequence[bytes], i: int) -> str:
        """What the `i`th number of lookup.lua's answer is: the totals', then each token's."""
        field = "spam" if i % 2 == 0 else "ham"
        if i < 2:
            return _total_record(field, self._totals_key)
        return f"the {field} count of token {keys[i // 2 - 1].hex()}"

    def totals(self) -> Totals:
        with self._errors():
            try:
                spam, ham = self._ready(write=False).hmget(self._totals_key, "s", "h")
            except ResponseError as exc:
                raise self._not_a_hash(exc, self._totals_key, self._named) from None
        return self._checked_totals(self._named, spam, ham, self._totals_key)

    def _not_a_hash(self, exc: ResponseError, key: str, store: StoreName) -> StoreError:
        """What to raise for `exc`, an error of a read of the hash `key`: StoreDamaged when
        the key holds another type (a `SET` over it by hand), which one TYPE more says, on this
        path only; else the error as `_errors` gives it."""
        if not str(exc).startswith("WRONGTYPE"):
            return self._failure(exc)
        return self._wrong_type(store, key, key)

    def _wrong_type(self, store: StoreName, key: str | bytes, shown: str) -> StoreDamaged:
        """The damage of `key` (named `shown`), which holds another type than the hash mailsift
        writes: one TYPE more says which, on this path only."""
        with self._errors():
            kind = self.client.type(key).decode()
        return StoreDamaged(store, f"the key {shown}", f"a {kind}", "a hash")

    @staticmethod
    def _checked_totals(store: StoreName, spam: bytes | None, ham: bytes | None, key: str) -> Totals:
        """The totals hash `key` of `store`, as HMGET s h gives it (None: no such field)."""
        return Totals(read_count(spam or 0, store, _total_record("spam", key)),
                      read_count(ham or 0, store, _total_record("ham", key)))

    def seen(self, digest: str) -> Label | None:
        with self._errors():
            label = self._ready(write=False).get(self._seen_key(digest))
        return self._label(digest, label) if label else None

    def _label(self, digest: str, value: bytes) -> Label:
        return read_label(value, self._named, self._seen_record(digest))

    def _seen_record(self, digest: str) -> str:
        return f"the learned-message record {self._seen_key(digest)}"

    def _outcome(self, reply: bytes, digest: str) -> Outcome:
        """A script's answer about one message."""
        self._damage(reply, digest)
        return Outcome(reply.decode())

    def _damage(self, reply: bytes, digest: str) -> None:
        """Raise StoreDamaged when `reply` is one of a script's answers about damage (see
        DAMAGED); `digest` is the message whose seen record the script read, if any."""
        if reply.startswith(DAMAGED):
            raise StoreDamaged(self._named, self._seen_record(digest), reply[len(DAMAGED):], "spam or ham")
        if reply.startswith(WRONG_TYPE):
            key = reply[len(WRONG_TYPE):]
            raise self._wrong_type(self._named, key, self._key_name(key))
        if reply.startswith(BAD_TOTAL):
            field, _, value = reply[len(BAD_TOTAL):].partition(b":")
            label = "spam" if field == b"s" else "ham"
            raise StoreDamaged(self._named, _total_record(label, self._totals_key), value, COUNT)

    # -- learning -----------------------------------------------------------------------------

    def learn(self, item: LearnItem, label: Label, now: int) -> Outcome:
        """One round trip: learn_batch.lua for a batch of one, reading the seen record itself."""
        client = self._ready()
        with self._errors():
            reply = self._learn_one(item, label, now, client)
        return self._outcome(reply, item.digest)

    def _learn_one(self, item: LearnItem, label: Label, now: int, client: Any) -> Any:
        """learn_batch.lua with "?" for the one message: it cannot conflict. `client` may be a
        pipeline, which queues the call and returns nothing yet."""
        keys = self._message_keys(item)
        ones = _pack([1] * (len(keys) - 2))  # every token after the totals and the seen record
        return self._scripts["learn_batch"](keys, [*self._learn_args(label, now), 1, "?", ones, ones], client)

    def _learn_args(self, label: Label, now: int) -> list[str | int]:
        return [label.value, now, self.token_ttl, self.hapax_ttl, TTL_REFRESH]

    def learn_batch(self, items: Sequence[LearnItem], label: Label, now: int) -> list[Outcome]:
        """One atomic learn_batch.lua call per chunk of ~SCRIPT_TOKENS distinct tokens.

        Each token of a chunk is read and written once, however many of its messages contain
        it (a batch of real mail repeats each token ~3.5 times). The seen records are read
        first, to know what each message was learned as; the script writes nothing if one
        changed meanwhile, and the chunk is read and sent again. If Redis refuses a chunk (say,
        out of memory), StoreError is raised and that chunk counted nothing; chunks before it
        stay learned, and learning is idempotent, so the caller can simply retry the batch."""
        client = self._ready()
        outcomes: list[Outcome] = []
        for chunk in self._script_chunks(items):
            outcomes += self._learn_chunk(client, chunk, label, now)
        return outcomes

    def _learn_chunk(self, client: Any, chunk: list[LearnItem], label: Label,
                     now: int) -> list[Outcome]:
        digests = list(dict.fromkeys(item.digest for item in chunk))
        for _ in range(CONFLICT_RETRIES):
            previous = self._previous(client, digests)
            deltas = batch_deltas(chunk, label, previous)
            if not deltas.changed:
                return deltas.outcomes  # nothing to write: the read alone decides
            tokens = deltas.gains
            keys = [self._totals_key, *map(self._seen_key, digests), *map(self._token, tokens)]
            losses = _pack([deltas.losses[key] for key in tokens]) if deltas.losses else b""
            args = [*self._learn_args(label, now), len(digests),
                    *(previous[digest] or "" for digest in digests),
                    _pack(list(tokens.values())), losses]
            with self._errors():
                reply = self._scripts["learn_batch"](keys, args, client)
            if reply == b"ok":
                return deltas.outcomes
            self._damage(reply, digests[0])  # else a conflict: read and send again
        return self._learn_each(client, chunk, label, now)

    def _previous(self, client: Any, digests: list[str]) -> dict[str, Label | None]:
        """The class each message was learned as, if any (one MGET)."""
        with self._errors():
            found = client.mget(list(map(self._seen_key, digests)))
        return {digest: self._label(digest, value) if value else None
                for digest, value in zip(digests, found, strict=True)}

    def _learn_each(self, client: Any, items: list[LearnItem], label: Label,
                    now: int) -> list[Outcome]:
        """One message per script call, all in one pipeline: for a chunk other hosts keep
        learning into, as each call reads its message's seen record itself (see learn_batch.lua).
        A cluster client refuses scripts in a pipeline, so there it is a round trip each."""
        with self._errors():
            if isinstance(client, RedisCluster):
                replies = [self._learn_one(item, label, now, client) for item in items]
            else:
                pipe = client.pipeline(transaction=False)
                for item in items:
                    self._learn_one(item, label, now, pipe)
                replies = pipe.execute()
        return [self._outcome(reply, item.digest) for reply, item in zip(replies, items, strict=True)]

    @staticmethod
    def _script_chunks(items: Sequence[LearnItem]) -> Iterator[list[LearnItem]]:
        """Runs of messages with about SCRIPT_TOKENS distinct tokens (each message counting as
        one more, for its seen record), so no learn_batch.lua call holds Redis for long: while
        a script runs, Redis answers no one else, lookups of the mail flow included."""
        chunk: list[LearnItem] = []
        tokens: set[bytes] = set()
        for item in items:
            chunk.append(item)
            tokens.update(item.keys)
            if len(tokens) + len(chunk) >= SCRIPT_TOKENS:
                yield chunk
                chunk, tokens = [], set()
        if chunk:
            yield chunk

    def forget(self, item: LearnItem) -> Outcome:
        client = self._ready()
        with self._errors():
            outcome = self._scripts["forget"](self._message_keys(item), [self.hapax_ttl], client)
        return self._outcome(outcome, item.digest)

    # -- maintenance --------------------------------------------------------------------------

    def expire(self, now: int, token_ttl: int, hapax_ttl: int) -> int:
        """Drop tokens due by their last-seen time, and give a TTL to any that lack one.

        Redis already expires tokens by their TTL, so on a live store this normally removes
        nothing. It matters for tokens without a TTL (e.g. loaded by a restore tool of one's
        own, or made persistent by hand) and when the TTL settings were shortened. It scans
        the whole keyspace: a maintenance job, not something for the mail path."""
        removed = 0
        for keys in self._scan("t:*"):
            with self._errors():
                removed += self._scripts["expire"](keys, [now, token_ttl, hapax_ttl], self.client)
        return removed

    def dump_info(self) -> DumpInfo:
        """The token count is of keys as SCAN finds them while mail flows: learning and expiry
        during the scan move it a little (SCAN may even give a key twice while Redis resizes
        its table), which a count of a store's size can bear; an exact one would hold every
        key in memory or lock the store. The totals are one exact read."""
        count, oldest, newest = 0, None, None
        for keys in self._scan("t:*"):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hget(key, "a")
                start = len(self._token_prefix)
                stamps = [token_count(stamp, self._named, "last-seen time", key[start:])
                          for key, stamp in zip(keys, pipe.execute(), strict=True) if stamp is not None]
            if stamps:
                count += len(stamps)
                oldest = min(stamps) if oldest is None else min(oldest, *stamps)
                newest = max(stamps) if newest is None else max(newest, *stamps)
        return DumpInfo(self.totals(), count, oldest, newest)

    def nested_stores(self) -> list[StoreSummary]:
        """One SCAN of the keys whose hash tag starts with this prefix (on every primary of a
        cluster, as the stores' tags spread over its slots), counting each store's token keys,
        then one pipeline for their totals. A tag without a schema key is no Bayes store (the
        pause counts or the quarantine index may use a prefix under ours): left out."""
        tokens: Counter[bytes] = Counter()
        stores: set[bytes] = set()
        own = self.prefix.encode()
        for keys in self._scan_keys("{" + glob_escaped(self.prefix) + "*"):
            for key in keys:
                tag, _, rest = key[1:].partition(b"}")
                if tag == own:  # this store's own keys: the pattern's * matched past its tag
                    continue
                if rest == b"schema":
                    stores.add(tag)
                elif rest.startswith(b"t:"):
                    tokens[tag] += 1
        tags = sorted(stores)
        prefixes = [tag.decode(errors="replace") for tag in tags]
        keys = [f"{{{prefix}}}totals" for prefix in prefixes]
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "s", "h")
            rows = pipe.execute(raise_on_error=False) if keys else []
        found = [summary(prefix, tokens[tag], functools.partial(
                     self._nested_totals, replace(self._named, prefix=prefix), key, row))
                 for tag, prefix, key, row in zip(tags, prefixes, keys, rows, strict=True)]
        return [store for store in found if not store.empty]

    def _key_name(self, key: bytes) -> str:
        """A key of this store as a person reads it: a token's hash in hex."""
        start = len(self._token_prefix)
        if key.startswith(self._token_prefix):
            return key[:start].decode() + key[start:].hex()
        return key.decode(errors="replace")

    def _nested_totals(self, store: StoreName, key: str, row: list[bytes | None] | Exception) -> Totals:
        """The totals of a nested store from its row of nested_stores' pipeline: an error there
        (a totals key of another type) is that store's, not every store's."""
        if isinstance(row, ResponseError):
            raise self._not_a_hash(row, key, store)
        if isinstance(row, Exception):
            raise self._failure(row)
        return self._checked_totals(store, *row, key)

    def clear(self) -> None:
        """Unlink this store's tokens, seen records and totals; the schema key stays."""
        for pattern in ("t:*", "seen:*"):
            for keys in self._scan(pattern):
                with self._errors():
                    self.client.unlink(*keys)
        with self._errors():
            self.client.unlink(self._totals_key)

    def export(self) -> tuple[Totals, dict[str, Label], Iterator[BackupToken]]:
        """Everything, scanned while the store stays live (Redis has no read snapshot): a
        backup taken during learning may be a few messages off between totals and tokens."""
        seen: dict[str, Label] = {}
        start = len(self._seen_key(""))
        for keys in self._scan("seen:*"):
            with self._errors():
                labels = self.client.mget(keys)
            seen.update((key[start:].decode(), self._label(key[start:].decode(), label))
                        for key, label in zip(keys, labels, strict=True) if label)
        return self.totals(), seen, self._stream_tokens()

    def _stream_tokens(self) -> Iterator[BackupToken]:
        start = len(self._token_prefix)
        for keys in self._scan("t:*"):
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, "s", "h", "a")
                rows = pipe.execute()
            for key, (spam, ham, stamp) in zip(keys, rows, strict=True):
                if stamp is not None:  # expired between SCAN and HMGET
                    yield backup_token(key[start:], spam or 0, ham or 0, stamp, self._named)

    def import_(self, totals: Totals, seen: dict[str, Label], tokens: Iterable[BackupToken]) -> None:
        """Write a backup into the (cleared) store, in pipelines of SCAN_COUNT keys.

        Restored tokens get a full TTL from now rather than one counted from their last-seen
        time: restoring an old backup should not make Redis drop most of it at once; `expire`
        trims by last-seen time when wanted. Not atomic, so a failed restore is retried whole."""
        with self._errors():
            self._ready().hset(self._totals_key, mapping={"s": totals.spam, "h": totals.ham})
            for chunk in batched(seen.items(), SCAN_COUNT):
                self.client.mset({self._seen_key(digest): label.value for digest, label in chunk})
            for chunk in batched(tokens, SCAN_COUNT):
                pipe = self.client.pipeline(transaction=False)
                for token in chunk:
                    key = self._token(token.key)
                    pipe.hset(key, mapping={"s": token.spam, "h": token.ham, "a": token.seen})
                    pipe.expire(key, self.token_ttl if token.spam + token.ham > 1 else self.hapax_ttl)
                pipe.execute()

    def with_prefix(self, prefix: str) -> RedisStore:
        return RedisStore(lambda: self.client, self.where, prefix=prefix, token_ttl=self.token_ttl,
                          hapax_ttl=self.hapax_ttl, password=self._password, owns_client=False)

    def close(self) -> None:
        if self._owns_client and "client" in self.__dict__:  # made: closing must not connect
            self.client.close()


def _pack(numbers: list[int]) -> bytes:
    """Numbers as learn_batch.lua reads them: 16-bit big-endian. None exceeds SCRIPT_TOKENS,
    as each message counts towards a chunk's budget."""
    return struct.pack(f">{len(numbers)}H", *numbers)
