"""The shared quarantine: messages, index, history and users' lists in one Redis.

Why Redis rather than PostgreSQL for the store several mail hosts share: a site with more than one
mail host already runs Redis for the shared Bayes model (`bayes.store`), and the index is reached
the same way (mailsift.redis_connect: ACL user, password file, TLS files, Sentinel); PostgreSQL
would be one more server to install, back up and secure for a store that holds a few weeks of
mail. A message is written with one MULTI/EXEC transaction — bytes, record and index entries
together — so no host ever sees half of it.

In a Redis Cluster the prefix becomes a hash tag (`{mailsift:quarantine:}`), so every key of the
quarantine is in one slot, where a transaction and SUNION may touch them together: the whole
quarantine lives on the primary owning that slot (and its replicas), as one Bayes store does. A
single Redis keeps the plain prefix, so the keys an existing quarantine was written under stay.

What that costs: Redis keeps the quarantine in memory (size it for keep_days of quarantined
mail), and a search narrows by time and recipient with sorted sets and sets, then filters sender,
subject and score in Python over each message's summary (the few fields a search reads, one
HMGET for thousands), and reads whole records for the page it shows only: reading every record
made each list page of a 30,000-message quarantine take 1.2 s.

Layout (every key under the prefix; `{p}version` holds the schema version):
    {p}msg:ID        hash: raw (the message, byte-exact), record (JSON)
    {p}time          sorted set: ID -> arrival (epoch seconds)
    {p}rcpt:ADDRESS  set of IDs addressed to ADDRESS, as Postfix gave it and in the form a
                     search compares (model.index_keys); messages stored by a mailsift before
                     that are filed so at the first search by recipient or expire, and those
                     stored since by one (a rollback, a rolling upgrade) at each expire, which
                     reads the arrivals since the last filing (mark COMPARED_MARK: its start)
    {p}rcpt:D OWNER  set of IDs addressed to a subaddress of OWNER under the recipient delimiter
                     D (model.extension_key): "+ jane@example.com" holds jane+shop@'s; filed
                     as above, under the mark of D (model.compared_mark) once D is set
    {p}summary       hash: ID -> the record's summary (JSON, model.summary); a message stored
                     without one (by a mailsift before it) gets it at its first search
    {p}list:KIND:ADDRESS  set of welcome/block entries of ADDRESS; {p}listed: addresses with lists
    {p}mark:NAME     string (e.g. when the last digest was sent)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import cached_property, partial
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from mailsift.breaker import RETRY_AFTER, Breaker
from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.log_throttle import ThrottledWarning
from mailsift.quarantine.model import (
    LIST_KINDS,
    Deleted,
    IndexTimeout,
    IndexUnavailable,
    NoSuchMessage,
    Purged,
    QuarantineError,
    Query,
    UserLists,
    compared_mark,
    compared_only,
    in_list_order,
    index_keys,
    note_filing,
    now,
    record_problem,
    refiling_since,
    summary,
    unreadable_schema,
    valid_id,
)
from mailsift.redis_connect import REDIS_ERRORS, RedisSettings, RedisSettingsError, connector, failure_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
BATCH = 500
SUMMARY_BATCH = 5000  # summaries per HMGET: about 1 MB a reply
TIMEOUT_S = 5.0  # a read or write: storing a large message takes a while
CONNECT_TIMEOUT_S = 2.0  # far more than a LAN needs; a blackholed index costs this twice
# One immediate retry: a pooled connection that a Redis restart or fail-over broke is opened
# again, but a dead index costs a message to quarantine little before milter.on_error applies.
# (redis-py's default, three retries with backoff, held each such message about 4 s.)
RETRIES = 1
# The longest RedisBackend.change goes on trying (see there). Under CLIENT PAUSE WRITE, which a
# fail-over (FAILOVER, CLUSTER FAILOVER) or an admin may hold for long, reads are answered and
# each EXEC waits out TIMEOUT_S: redis-py takes that for a lost watch and runs the change again,
# for as long as the pause lasts. Two such tries, and the one under way: 15 s at most.
CHANGE_S = 2 * TIMEOUT_S
# What a search that could not tidy the index leaves undone (see RedisBackend._tidy), and until
# when. The filing is not tried again in that process (see _file_compared_once), and a list
# without --to files nothing, where the warning named it as the command that would.
SUMMARIES_LEFT = ("the summaries it drops or makes again stay as they are, and each search reads "
                  "those records again, until a client that may write there does it (mailsift "
                  "quarantine list with the milter's config)")
FILING_LEFT = ("messages an older mailsift held are not filed under every form of their "
               "recipients, and a search by recipient may miss those addressed in another "
               "spelling, until a client that may write there files them: the daily mailsift "
               "quarantine expire, or mailsift quarantine list --to ADDRESS, with the milter's "
               "config")


class RedisBackend:
    def __init__(self, connect: Callable[[], redis.Redis | RedisCluster],
                 prefix: str = "mailsift:quarantine:", where: str = "redis", password: str = "",
                 subaddressing: Subaddressing = NO_SUBADDRESSES) -> None:
        """`connect` makes the client on first use: a cluster client reads the slot map as it is
        made, and the milter must start (and meet milter.on_error per message) while the index
        is down. `where` and `password` (the one in use): for messages, as RedisStore's.
        `subaddressing`: whose mail to a subaddress is (milter.recipient_delimiter); the index
        files jane+shop@'s under jane@'s `extension_key` for the delimiter, where a search for
        jane@ finds it."""
        self._connect = connect
        self.subaddressing = subaddressing
        self.delimiter = subaddressing.delimiter
        self.where = where
        self.password = password
        self.prefix = prefix
        self._checked = False
        self._compared_filed = False  # see _file_compared_once
        # For `add`, which the milter's threads call: a hung index cost each message to
        # quarantine this module's timeouts (10 s), not one message per RETRY_AFTER. Only a
        # timeout trips it: a refused connection costs a millisecond, and trying each message
        # quarantines again the moment a restarted index is back.
        self.health = Breaker("quarantine index", "mail to quarantine gets milter.on_error until "
                              "it is back", "quarantining resumes", log)
        # A damaged record is met by every list page that reaches it, and a tidying refused by
        # every search of a user that may only read: each is said once per interval, with the
        # count of repeats (the web UI keeps one backend for its life).
        self.warnings = ThrottledWarning(log)

    @classmethod
    def from_settings(cls, settings: RedisSettings, prefix: str = "mailsift:quarantine:",
                      timeout: float = TIMEOUT_S,
                      subaddressing: Subaddressing = NO_SUBADDRESSES) -> RedisBackend:
        """The index the settings name (a URL, Sentinels or a cluster), with this module's
        retry and `timeout` (a shorter one for a small read in the mail path)."""
        if settings.cluster:
            prefix = "{" + prefix + "}"
        try:
            target = connector(replace(settings, connect_timeout=min(CONNECT_TIMEOUT_S, timeout),
                                       timeout=timeout, retry=Retry(NoBackoff(), RETRIES)))
        except RedisSettingsError as exc:
            raise QuarantineError(f"quarantine index: {exc}") from None
        return cls(target.connect, prefix, target.where, target.password, subaddressing)

    @cached_property
    def client(self) -> redis.Redis | RedisCluster:
        return self._connect()

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @contextmanager
    def _call(self, write: bool = False) -> Iterator[None]:
        with _Guard(self):
            self._check_version(write)
            yield

    def _tidy(self, write: Callable[[], object], left: str = SUMMARIES_LEFT) -> None:
        """For a write that a search makes to keep the index tidy (summaries dropped or made
        again from their records, the filing of `_file_compared_once`), which the search's
        answer can do without. A site may give the web UI an ACL user that may only read, and its
        every list failed on NOPERM for the HDEL of a damaged record's summary, and its every
        search by recipient for the mark of the filing; a write refused or failed (that user, a
        replica, a Redis gone meanwhile) now leaves the index as it was, and the search is
        answered, with a warning once per interval saying what is `left` undone."""
        try:
            with self._call(write=True):
                write()
        except IndexUnavailable as exc:
            self.warnings.warn(f"tidying: {left}", "a quarantine search was answered without "
                               "tidying the index, which did not take the write (%s): %s", exc,
                               left)

    def _check_version(self, write: bool) -> None:
        """Refuse a store written by another schema instead of misreading it, on every path: only
        `add` checked, so after a rollback the web UI, the CLI and configtest ("reachable") read
        a newer mailsift's index as their own. A write marks a store nobody wrote yet as ours;
        a read leaves it as it is (configtest writes nothing), and asks again next time."""
        if self._checked:
            return
        key = self._key("version")
        found = self.client.set(key, SCHEMA_VERSION, nx=True, get=True) if write else self.client.get(key)
        if found is not None and found.decode() != SCHEMA_VERSION:
            raise QuarantineError(unreadable_schema(f"redis at {self.where} (keys {self.prefix}*)",
                                                    found.decode(errors="replace"), SCHEMA_VERSION))
        self._checked = write or found is not None

    # --- messages ------------------------------------------------------------------------------

    def add(self, message_id: str, raw: bytes, record: dict[str, Any]) -> None:
        """Store one message, or fail at once while the index is taken for hung (see `health`)."""
        if self.health.skip():
            raise QuarantineError(f"quarantine store unavailable: redis at {self.where} did not "
                                  f"answer in time less than {RETRY_AFTER:g}s ago; not asked again yet")
        try:
            with self._call(write=True):
                pipe = self.client.pipeline(transaction=True)
                pipe.hset(self._key("msg", message_id),
                          mapping={"raw": raw, "record": json.dumps(record, ensure_ascii=False)})
                pipe.hset(self._key("summary"), message_id, _summary_json(record))
                pipe.zadd(self._key("time"),
                          {message_id: datetime.fromisoformat(record["time"]).timestamp()})
                for address in index_keys(record["recipients"], self.delimiter):
                    pipe.sadd(self._key("rcpt", address), message_id)
                pipe.execute()
        except IndexTimeout as exc:
            self.health.failed(exc.reason)
            raise
        self.health.ok()

    def raw(self, message_id: str) -> bytes:
        """The message, also when its record is damaged: it may be the only copy of someone's
        mail, and `quarantine show ID --raw` is how the administrator saves it."""
        with self._call():
            data, record = self.client.hmget(self._message_key(message_id), "raw", "record")
        if record is None:
            raise NoSuchMessage(message_id)
        if data is None:
            raise Deleted(message_id)
        return bytes(data)

    def record(self, message_id: str) -> dict[str, Any]:
        with self._call():
            data = self.client.hget(self._message_key(message_id), "record")
        return self._readable(data, message_id)

    def _readable(self, data: bytes | None, message_id: str) -> dict[str, Any]:
        """The record stored as `data`; QuarantineError when there is none or it is damaged."""
        if data is None:
            raise NoSuchMessage(message_id)
        record, problem = self._parsed(data, message_id)
        if problem:
            raise QuarantineError(self._damaged(message_id, problem))
        return record

    def _message_key(self, message_id: str) -> str:
        """The key of a message whose id came from a URL or a command line."""
        if not valid_id(message_id):
            raise QuarantineError(f"not a quarantine id: {message_id!r}")
        return self._key("msg", message_id)

    @staticmethod
    def _parsed(data: bytes, message_id: str) -> tuple[dict[str, Any], str]:
        """A record or summary as stored, and what is wrong with it ("" when nothing is): a
        hand edit with redis-cli, or a restore from the wrong backup, leaves what no page can
        show, and one such message must not stop the list of every other."""
        try:
            record = json.loads(data)
        except ValueError:
            return {}, "it is not JSON"
        return record, record_problem(record, message_id)

    def _damaged(self, message_id: str, problem: str, effect: str = "") -> str:
        """The line that names a damaged record, what that does (`effect`) and the way out;
        the message's bytes are kept."""
        return (f"quarantine index redis at {self.where}: the record of message {message_id} (field "
                f"record of key {self._key('msg', message_id)}) is not one mailsift writes: {problem}"
                f"{effect}; save the message with mailsift quarantine show {message_id} --raw, then "
                "put back the record from a backup of the index or delete the key")

    def change(self, message_id: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Store the record as `edit` changes it: read under WATCH, written (record and summary)
        by MULTI/EXEC, which Redis refuses if another client wrote the record in between; then
        it is read, edited and written again (redis-py's `transaction`), so `edit` may run more
        than once, each time on the record as it is then. Read and written apart, two changes
        at once (the web UI's release and the CLI's, a release's record and a learning's event)
        both read the same record and the last write undid the other's: a history line lost,
        or two releases that each saw "held" and each sent. The record and the summary share
        the quarantine's hash tag in a cluster (see the module docstring), so one primary runs
        the whole transaction. If `edit` raises, nothing is written.

        Redis refuses the EXEC when another client changed the record in between, so such a
        retry follows a change that was made; a connection lost or timed out while watching
        ends the watch (redis-py resets it), and the next WATCH raises, as IndexUnavailable or
        IndexTimeout, within this module's timeouts (a Redis gone failed a change in 0.1 s, a
        hung one in 15 s, `edit` run once). But a Redis that pauses writes (CLIENT PAUSE WRITE:
        a fail-over, or an admin) answers the WATCH and the read, and holds each EXEC: redis-py
        took every EXEC that timed out for a lost watch and ran the change again, one
        TIMEOUT_S apart, for as long as the pause lasted, and a release or a delete waited as
        long. No try starts once CHANGE_S have gone by: the change raises IndexTimeout, within
        CHANGE_S + TIMEOUT_S (15 s).

        An EXEC whose answer comes after the timeout may still have been run (a Redis that
        stalled with the transaction read): redis-py then runs `edit` again, on the record that
        EXEC wrote, or the change raises IndexTimeout with the record written. An edit that
        must not be made twice recognises its own write (review.release's attempt)."""
        key = self._message_key(message_id)
        give_up = time.monotonic() + CHANGE_S

        def changed(pipe: Any) -> dict[str, Any]:  # a Pipeline or a ClusterPipeline, watching
            if time.monotonic() > give_up:  # tried for CHANGE_S: the index takes no writes
                raise IndexTimeout(f"redis at {self.where}: the change was not taken within "
                                   f"{CHANGE_S:g}s (are writes paused, as in a fail-over?)")
            record = self._readable(pipe.hget(key, "record"), message_id)
            edit(record)
            pipe.multi()
            pipe.hset(key, "record", json.dumps(record, ensure_ascii=False))
            pipe.hset(self._key("summary"), message_id, _summary_json(record))
            return record

        with self._call(write=True):
            changed_record: dict[str, Any] = self.client.transaction(changed, key,
                                                                     value_from_callable=True)
        return changed_record

    def delete(self, message_id: str) -> None:
        with self._call(write=True):
            self.client.hdel(self._key("msg", message_id), "raw")

    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """A page is chosen from summaries and read whole; without a limit (stats, digests)
        every record that matches is read anyway, so it is chosen from the records."""
        if query.to is not None:
            self._file_compared_once()
        ids = self._candidates(query)
        rows = self._records(ids) if query.limit is None else self._summaries(ids)
        found = [r for r in rows if query.matches(r, self.subaddressing)]
        in_list_order(found, query.sort, query.descending)
        if query.limit is None:
            return found[query.offset:], len(found)
        return self._page(found, query.offset, query.limit)

    def _page(self, found: list[dict[str, Any]], offset: int,
              limit: int) -> tuple[list[dict[str, Any]], int]:
        """The records of one page of `found` (summaries, in order) and the total of what can be
        listed. A summary can be intact where its record is damaged (a redis-cli edit of the
        record alone): such a message is left out of the page (with its warning), and was still
        counted in the total, so the list said "2 of 3" with one named unreadable. It is taken
        out of `found` and the page filled from the next, and its summary dropped: every later
        search then reads its record (see `_summaries`) and leaves it out before counting."""
        records: dict[str, dict[str, Any]] = {}
        while True:
            ids = [r["id"] for r in found[offset:offset + limit]]
            damaged: list[str] = []
            records.update((r["id"], r) for r in self._records([i for i in ids if i not in records],
                                                                damaged))
            if not damaged:
                return [records[i] for i in ids if i in records], len(found)
            self._tidy(partial(self.client.hdel, self._key("summary"), *damaged))
            unreadable = set(damaged)
            found = [r for r in found if r["id"] not in unreadable]

    def _candidates(self, query: Query) -> list[str]:
        low = query.since.timestamp() if query.since else "-inf"
        high = f"({query.until.timestamp()}" if query.until else "+inf"
        with self._call():
            ids = [i.decode() for i in self.client.zrangebyscore(self._key("time"), low, high)]
            if query.to is None or any(wanted.startswith("@") for wanted in query.to):
                return ids  # a domain has no set: query.matches picks its recipients out
            # Recipients are filed in the form `query.to` is in too (`index_keys`).
            keys = [self._key("rcpt", address) for address in query.index_addresses(self.delimiter)]
            addressed = {i.decode() for i in self.client.sunion(keys)} if keys else set()
        return [i for i in ids if i in addressed]

    def _records(self, ids: list[str], damaged: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """The records of `ids` that are readable; each damaged one is left out with a warning
        naming it (see `_damaged`), and its id added to `damaged`."""
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            with self._call():
                pipe = self.client.pipeline(transaction=False)
                for message_id in chunk:
                    pipe.hget(self._key("msg", message_id), "record")
                values = pipe.execute()
            for message_id, value in zip(chunk, values, strict=True):
                if value is not None:
                    record, problem = self._parsed(value, message_id)
                    if problem:  # once per interval: each list page meeting it came here
                        self.warnings.warn(f"damaged {message_id}: {problem}", "%s", self._damaged(
                            message_id, problem, ", so lists and expire leave the message out"))
                        if damaged is not None:
                            damaged.append(message_id)
                    else:
                        yield record

    def _summaries(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(ids), SUMMARY_BATCH):
            chunk = ids[start:start + SUMMARY_BATCH]
            with self._call():
                values = self.client.hmget(self._key("summary"), chunk)
            missing, damaged = [], []  # each made again from its record
            for message_id, value in zip(chunk, values, strict=True):
                if value is None:
                    missing.append(message_id)
                    continue
                found, problem = self._parsed(value, message_id)
                if problem:
                    damaged.append(message_id)
                else:
                    yield found
            if missing or damaged:
                yield from self._summarise(missing, damaged)

    def _summarise(self, ids: list[str], damaged: list[str]) -> list[dict[str, Any]]:
        """Summaries made from the records of messages stored without one, or with a `damaged`
        one, which goes first. HSETNX: a summary that an update wrote meanwhile is newer than
        the record read here."""
        records = list(self._records(ids + damaged))

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            if damaged:
                pipe.hdel(self._key("summary"), *damaged)
            for record in records:
                pipe.hsetnx(self._key("summary"), record["id"], _summary_json(record))
            pipe.execute()

        self._tidy(write)
        return [summary(r) for r in records]

    def purge(self, before: datetime) -> Purged:
        with self._call():
            ids = [i.decode() for i in self.client.zrangebyscore(self._key("time"), "-inf",
                                                                 f"({before.timestamp()}")]
        expired = 0
        for start in range(0, len(ids), BATCH):
            # a message whose record is damaged is kept (with its warning), as the local
            # backend keeps its file: it may be the only copy of someone's mail
            batch, damaged = ids[start:start + BATCH], []
            records = list(self._records(batch, damaged))
            chunk = [i for i in batch if i not in damaged]
            if not chunk:
                continue
            with self._call(write=True):
                pipe = self.client.pipeline(transaction=True)
                for record in records:
                    for address in index_keys(record["recipients"], self.delimiter):
                        pipe.srem(self._key("rcpt", address), record["id"])
                pipe.delete(*[self._key("msg", i) for i in chunk])
                pipe.hdel(self._key("summary"), *chunk)
                pipe.zrem(self._key("time"), *chunk)
                pipe.execute()
            expired += len(chunk)
        self._file_compared()  # messages an older mailsift stored since the last filing
        return Purged(expired)

    def _file_compared_once(self) -> None:
        """Before the first search by recipient: file the recipients of messages an older
        mailsift stored under the addresses Postfix gave only in their compared form (and,
        under a delimiter, their owner's) as well, once per index and delimiter (the mark
        `compared_mark` names says it was done), so that mail held before an upgrade to
        Jane@Example.COM or jane@ｂücher.example reaches Jane's list and digest too. A query
        cannot find them otherwise: the spellings that map to one address are countless."""
        if self._compared_filed:
            return
        if self.mark(compared_mark(self.delimiter)) is None:
            # Not again in this process if the write fails (a mark that cannot be read fails the
            # search, and the next one tries): the first filing reads every summary (0.5 to 0.9 s
            # for 50,000 messages), which a user that may only read would repeat for nothing at
            # each search. The expire timer files them daily, and each digest run tries too.
            self._tidy(self._file_compared, FILING_LEFT)
        self._compared_filed = True

    def _file_compared(self) -> None:
        """Add each message that arrived since the last filing (`refiling_since`; every one
        when there was none) to the sets of its recipients' compared forms (idempotent),
        reading the summaries a list page reads, then record when this filing began: only once
        all of it is stored, so a filing that fails midway is done again from the same point.
        `began` is taken before the ids are read, so a message stored after the read is
        stamped at most REFILE_MARGIN before it (clocks' skew included), and the next filing
        reads it. Two processes filing at once each cover what was stored when they began, so
        whichever mark is written last is true.

        `expire` runs this daily from a timer: reading every summary (as it did until the mark
        held a time) took 0.5 to 0.9 s and 14 MB from the server for 50,000 small messages over
        30 days (medians of 5 on two busy cores), about 150 MB for 500,000, and a read that
        timed out failed the expire; those of a day's arrivals and REFILE_MARGIN take 15 to
        30 ms and 0.5 MB. The first filing, by the first search by recipient or expire, still
        reads every summary, once."""
        began = now()
        since = refiling_since(self.mark(compared_mark(self.delimiter)))
        with self._call():
            ids = [i.decode() for i in self.client.zrangebyscore(
                self._key("time"), "-inf" if since is None else since.timestamp(), "+inf")]
        missing = [(key, s["id"]) for s in self._summaries(ids)
                   for key in compared_only(s["recipients"], self.delimiter)]
        filed = 0
        if missing:
            with self._call(write=True):
                pipe = self.client.pipeline(transaction=False)
                for key, message_id in missing:
                    pipe.sadd(self._key("rcpt", key), message_id)
                filed = sum(pipe.execute())  # each SADD says whether the id was new there
        self.set_mark(compared_mark(self.delimiter), began.isoformat())
        note_filing(self.where, since, len(ids), filed)

    # --- users' lists and marks ------------------------------------------------------------------

    def all_lists(self) -> dict[str, UserLists]:
        with self._call():
            addresses = sorted(a.decode() for a in self.client.smembers(self._key("listed")))
            pipe = self.client.pipeline(transaction=False)
            for address in addresses:
                for kind in LIST_KINDS:
                    pipe.smembers(self._key("list", kind, address))
            values = iter(pipe.execute())
        return {a: UserLists(*({e.decode() for e in next(values)} for _ in LIST_KINDS))
                for a in addresses}

    def set_listed(self, address: str, kind: str, entry: str, present: bool) -> None:
        with self._call(write=True):
            pipe = self.client.pipeline(transaction=True)
            if present:
                pipe.sadd(self._key("list", kind, address), entry)
                pipe.sadd(self._key("listed"), address)
            else:
                pipe.srem(self._key("list", kind, address), entry)
            pipe.execute()

    def mark(self, name: str) -> str | None:
        with self._call():
            value = self.client.get(self._key("mark", name))
        return value.decode() if value is not None else None

    def set_mark(self, name: str, value: str) -> None:
        with self._call(write=True):
            self.client.set(self._key("mark", name), value)


def _summary_json(record: dict[str, Any]) -> str:
    return json.dumps(summary(record), ensure_ascii=False)


class _Guard:
    """Turns a Redis failure into the one error type the milter and the commands handle, naming
    the server and what failed as the Bayes store's errors do: a site may run the index and the
    Bayes store on different Redis servers, and "invalid username-password pair" alone does not
    say which password file to fix."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> bool:
        if not isinstance(exc, REDIS_ERRORS):
            return False
        reason = f"redis at {self.backend.where}: {failure_text(exc, self.backend.password)}"
        if isinstance(exc, redis.TimeoutError):
            raise IndexTimeout(reason) from None
        raise IndexUnavailable(f"quarantine store unavailable: {reason}") from None
