"""The one narrow interface every Bayes token store implements (SQLite embedded, Redis shared).

Why this shape:
- Classification needs the totals and the counts of ~100-1000 tokens at once: `lookup` is one call
  (one Redis round trip), never a call per token.
- Learning is keyed by a digest of the message, so it is idempotent and reversible: learning the
  same message twice is a no-op, learning it as the other class moves its counts, forgetting
  takes exactly its counts back. Counts never go negative. Each call is atomic: a crash mid-learn
  leaves no half-counted message.
- `learn_batch` exists so bulk training can send many messages per round trip, and so a store
  can sum a batch's changes per token (`batch_deltas`) and touch each token once per batch.
- Tokens are stored by a short hash (`token_key`), never as text: constant size per token, and no
  message words sit in the store in clear.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # reports.py builds on this module
    from mailsift.classifier.reports import DigestStore

TOKEN_KEY_BYTES = 8  # 64 bits: collisions stay negligible up to billions of tokens
SCHEMA_VERSION = 1
BACKUP_FORMAT = "mailsift-bayes-backup"


class Label(StrEnum):
    SPAM = "spam"
    HAM = "ham"


class Outcome(StrEnum):
    LEARNED = "learned"  # counted for the first time
    RELEARNED = "relearned"  # was counted as the other class; moved
    ALREADY = "already"  # already counted as this class; nothing changed
    FORGOTTEN = "forgotten"
    UNKNOWN = "unknown"  # forget of a message that was never learned


class StoreError(Exception):
    """The store cannot be reached or refused the operation; the message says which and why."""


def unreadable_schema(where: str, found: str, instead: str) -> str:
    """The one line for a Bayes store another mailsift wrote, which this one neither reads nor
    rewrites: whose it is and what the admin does, as the quarantine index's says. It gave the
    two versions only, and after a rollback the admin could not tell that this was the store
    README's Rollback has them replace ("if it names a store written by the newer version")."""
    newer = found.isdigit() and int(found) > SCHEMA_VERSION
    whose = "written by a newer mailsift" if newer else "not one this mailsift reads"
    again = "run that mailsift again, or " if newer else ""
    return (f"{where}: Bayes schema version {found} ({whose}; this one reads version "
            f"{SCHEMA_VERSION}): {again}{instead} (README: Backups and upgrades)")


class StoreFull(StoreError):
    """The store answered but has no room for a write (Redis at maxmemory with noeviction).

    It still answers reads, so the milter keeps scoring with Bayes: only learning stops, and
    the store must not be taken for down (see `autolearn`)."""


class BackupError(StoreError):
    """A backup that cannot be restored (named, with the line); the store was left unchanged."""


class StoreDamaged(StoreError):
    """A record holds what mailsift never writes: a count that is no whole number from 0, a
    learned-message record naming no class, a key of another type (a hand edit, another
    program writing under our prefix).

    The store answers, so it must not be taken for down (that would stop Bayes for every
    message, and flap as the next lookup succeeds): only what reads the record fails, and the
    message names the store, the record and the way out. The way out names the store by
    `--prefix` until the command that knows how the administrator names it (`--for NAME`, or
    nothing for the site-wide store) says so with `named_by`."""

    def __init__(self, store: StoreName, record: str, value: object, wanted: str,
                 clear: str = "--clear", option: str | None = None) -> None:
        self.store, self.record, self.value, self.wanted, self.clear = store, record, value, wanted, clear
        self.option = f"--prefix {store.prefix!r}" if option is None else option
        shown = value.decode(errors="replace") if isinstance(value, bytes) else value
        restore = " ".join(filter(None, ("mailsift learn", self.option, "--restore FILE")))
        super().__init__(f"{store}: {record} holds {shown!r}, not {wanted}, which mailsift never "
                         "writes (a hand edit, or another program using this prefix?); restore a "
                         f"backup of this store or empty it and learn again ({restore}, or {clear})")

    def named_by(self, option: str) -> StoreDamaged:
        """The same damage, its repair naming the store by `option` ("" for none)."""
        return StoreDamaged(self.store, self.record, self.value, self.wanted, self.clear, option)

    def __reduce__(self) -> tuple[type[StoreDamaged], tuple[object, ...]]:
        """Pickled by its parts (it crosses from a worker process like any error)."""
        return StoreDamaged, (self.store, self.record, self.value, self.wanted, self.clear, self.option)


@dataclass(frozen=True)
class StoreName:
    """A store as errors about its data name it."""

    where: str  # "sqlite PATH", "redis at HOST:PORT"
    prefix: str

    def __str__(self) -> str:
        return f"{self.where}, store {self.prefix!r}"


COUNT = "a whole number from 0"  # what every count mailsift writes is


def as_count(value: object) -> int | None:
    """`value` as a count mailsift writes it (an int from SQLite, ASCII digits from Redis), or
    None when it is none: text, a fraction, a negative number. SQLite hands over whatever a
    column holds, and Lua's tonumber took "lots" as 0 and "-4" as -4, so a damaged count was
    read, or learned over, as if it were one."""
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, bytes) and value.isdigit():  # ASCII only: no "+5", " 5", "1_0"
        return int(value)
    return None


def read_count(value: object, store: StoreName, record: str, clear: str = "--clear") -> int:
    """A count as a backend gives it (see `as_count`); `clear` is the `learn` option that empties
    what holds the record (the shared spam reports have their own, as --clear keeps them)."""
    found = as_count(value)
    if found is None:
        raise StoreDamaged(store, record, value, COUNT, clear)
    return found


def token_count(value: object, store: StoreName, field: str, key: bytes) -> int:
    """One number of a token (`field`: "spam count", ...), its record named only when damaged:
    a backup or dump reads millions of them, and a lookup hundreds per message."""
    found = as_count(value)
    if found is None:
        return read_count(value, store, f"the {field} of token {key.hex()}")
    return found


def backup_token(key: bytes, spam: object, ham: object, seen: object, store: StoreName) -> BackupToken:
    """A token as a backend reads it, checked: a backup must restore, and a restore reads
    numbers only."""
    return BackupToken(key, token_count(spam, store, "spam count", key),
                       token_count(ham, store, "ham count", key),
                       token_count(seen, store, "last-seen time", key))


def read_label(value: str | bytes, store: StoreName, record: str) -> Label:
    """The class a learned-message record holds."""
    try:
        return Label(value.decode() if isinstance(value, bytes) else value)
    except (UnicodeDecodeError, ValueError):
        raise StoreDamaged(store, record, value, "spam or ham") from None


# Most of a message's tokens are common words seen in many messages: 89% of the lookups while
# learning the corpus's train split hit this cache, which halves the hashing (75 -> 38 us a
# message). Full, the 65,536 entries take ~10 MB a process (tracemalloc).
@functools.lru_cache(maxsize=1 << 16)
def token_key(token: str) -> bytes:
    return hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=TOKEN_KEY_BYTES).digest()


@dataclass(frozen=True)
class Totals:
    spam: int  # messages learned as spam
    ham: int


@dataclass(frozen=True)
class TokenCounts:
    spam: int
    ham: int


@dataclass(frozen=True)
class LearnItem:
    digest: str  # hex digest of the message (see mailsift.classifier.digest)
    keys: Sequence[bytes]  # token keys, each once (a token counts once per message)


@dataclass(frozen=True)
class BatchDeltas:
    """What learning a batch changes: the sum of learning its messages one by one."""

    outcomes: list[Outcome]  # per message, in the order given
    changed: list[str]  # digests to record as the batch's class, each once
    moved: int  # how many of them were counted as the other class (relearned)
    gains: Counter[bytes]  # per token: messages now counted as the batch's class
    losses: Counter[bytes]  # per token: relearned messages taken from the other class


def batch_deltas(items: Sequence[LearnItem], label: Label,
                 previous: Mapping[str, Label | None]) -> BatchDeltas:
    """The per-token changes of learning `items` as `label`, given the class each digest was
    learned as before the batch (`previous`; a digest missing from it was never learned).

    A digest that comes twice counts once: the later copy is "already", as when learned one by
    one. Summing is exact even though counts are clamped at zero: every message of a batch
    goes to the same class, so a token's count for that class only grows and its count for
    the other class only shrinks, and clamping a sum of same-signed steps once equals clamping
    after each step. So a store can read and write each token once per batch instead of once
    per message, which is most of the saving: a batch of real mail repeats each token ~3.5
    times.
    """
    known = dict(previous)
    outcomes: list[Outcome] = []
    changed: list[str] = []
    gains: Counter[bytes] = Counter()
    losses: Counter[bytes] = Counter()
    for item in items:
        before = known.get(item.digest)
        if before == label:
            outcomes.append(Outcome.ALREADY)
            continue
        known[item.digest] = label
        changed.append(item.digest)
        # a token counts once per message, whatever the caller sent; keys() rather than a set
        # keeps the order, so a batch is sent to the store the same way each time
        tokens = dict.fromkeys(item.keys).keys()
        gains.update(tokens)
        if before is None:
            outcomes.append(Outcome.LEARNED)
        else:
            outcomes.append(Outcome.RELEARNED)
            losses.update(tokens)
    return BatchDeltas(outcomes, changed, outcomes.count(Outcome.RELEARNED), gains, losses)


@dataclass(frozen=True)
class DumpInfo:
    totals: Totals
    tokens: int
    oldest: int | None  # unix time of the least recently seen token
    newest: int | None


@dataclass(frozen=True)
class StoreSummary:
    """One store nested under another's prefix (per-recipient Bayes), and what it holds.

    `damage` is what reading its totals raised (they are then None): one store holding what
    mailsift never writes must not hide every other store from the list."""

    prefix: str
    totals: Totals | None
    tokens: int
    damage: StoreDamaged | None = None

    @property
    def empty(self) -> bool:
        """Nothing learned: the milter falls back to the site-wide store as if there were none."""
        if self.totals is None:
            return False
        return not (self.tokens or self.totals.spam or self.totals.ham)


def summary(prefix: str, tokens: int, totals: Callable[[], Totals]) -> StoreSummary:
    """A nested store as `nested_stores` lists it, its damaged totals kept as its `damage`."""
    try:
        return StoreSummary(prefix, totals(), tokens)
    except StoreDamaged as exc:
        return StoreSummary(prefix, None, tokens, exc)


@dataclass(frozen=True)
class BackupToken:
    key: bytes
    spam: int
    ham: int
    seen: int  # unix time last seen


class TokenStore(Protocol):
    prefix: str  # what its keys (Redis) or its namespace (SQLite) are named by

    def lookup(self, keys: Sequence[bytes]) -> tuple[Totals, list[TokenCounts]]:
        """Totals and the counts of each key (zeros when unknown), in one round trip."""

    def learn(self, item: LearnItem, label: Label, now: int) -> Outcome:
        """Count the message as `label` (atomic; see the module docstring for the semantics)."""

    def learn_batch(self, items: Sequence[LearnItem], label: Label, now: int) -> list[Outcome]:
        """`learn` for many messages, fewer round trips; each message still all-or-nothing."""

    def forget(self, item: LearnItem) -> Outcome:
        """Take back exactly what learning this message added."""

    def seen(self, digest: str) -> Label | None:
        """The class a message was learned as, if it was."""

    def totals(self) -> Totals: ...

    def dump_info(self) -> DumpInfo: ...

    def expire(self, now: int, token_ttl: int, hapax_ttl: int) -> int:
        """Drop tokens unseen for `token_ttl` s, and single-occurrence ones unseen for `hapax_ttl` s.

        SQLite: in the per-recipient stores under this prefix too; Redis expires theirs by TTL.
        Returns how many tokens were removed."""

    def nested_stores(self) -> list[StoreSummary]:
        """The stores whose prefix extends this one's (bayes.per_recipient: prefix + NAME + ':'),
        by prefix, each with its totals and token count; a store holding nothing is left out, as
        the milter treats it as none, and one whose totals are damaged is listed with its
        `damage`. One pass over the store, like `expire`: for maintenance."""

    def clear(self) -> None:
        """Remove every token, total and seen record of this store (its key prefix only)."""

    def export(self) -> tuple[Totals, dict[str, Label], Iterator[BackupToken]]:
        """Everything, for `backup`: totals, seen records, tokens (streamed)."""

    def import_(self, totals: Totals, seen: dict[str, Label], tokens: Iterable[BackupToken]) -> None:
        """Replace the contents with a backup (after `clear`)."""

    def close(self) -> None: ...

    @property
    def where(self) -> str:
        """The store for messages: a file path, or the Redis without any secret."""

    def with_prefix(self, prefix: str) -> TokenStore:
        """The same backend under another key prefix (per-recipient Bayes), sharing this store's
        connection where the backend can (Redis); closing it never closes this store's."""


def write_backup(store: TokenStore, out: IO[str], reports: DigestStore | None = None) -> int:
    """A portable, line-oriented JSON backup: one header line, then seen records, then the
    report digests (when `reports` is given), then tokens, then an end line with the counts,
    by which a restore tells a whole backup from a cut one."""
    import json

    # first: a SQLite export holds its read transaction open while the tokens stream
    reported = reports.export() if reports is not None else None
    totals, seen, tokens = store.export()
    out.write(json.dumps({"format": BACKUP_FORMAT, "version": SCHEMA_VERSION,
                          "spam": totals.spam, "ham": totals.ham, "ends": True}) + "\n")
    for digest, label in seen.items():
        out.write(json.dumps({"m": digest, "c": label.value}) + "\n")
    for message, digests in (reported or {}).items():
        out.write(json.dumps({"r": message, "d": digests}) + "\n")
    count = 0
    for token in tokens:
        out.write(json.dumps({"t": token.key.hex(), "s": token.spam, "h": token.ham, "a": token.seen}) + "\n")
        count += 1
    end = {"seen": len(seen), "tokens": count}
    if reported is not None:
        end["reports"] = len(reported)
    out.write(json.dumps({"end": end}) + "\n")
    return count


def read_backup(store: TokenStore, source: IO[str], name: str,
                reports: DigestStore | None = None) -> int:
    """Restore a backup written by `write_backup`; a wrong file stops with a clear message.

    `source` must be seekable: it is read twice, first to check every line (a bad line anywhere,
    or a backup cut short, changes nothing), then to load the tokens as they are read. A store of
    millions of tokens is so never held in memory whole; holding it took ~200 MB per million
    tokens. Backups written before the end line existed (no "ends" in the header) cannot be
    checked for completeness and are restored as they are.

    `reports` are replaced by the backup's when it carries them (its end line counts them):
    a backup made without them, or before they were backed up, leaves them as they are."""
    seen: dict[str, Label] = {}
    reported: dict[str, list[str]] = {}
    try:  # nothing is changed before every line was read: each refusal says so
        header = _backup_header(source, name)
        body = source.tell()
        end: dict[str, int] = {}
        count = sum(1 for _ in _backup_tokens(source, name, seen, end, reported))
        if header.get("ends"):
            found = {"seen": len(seen), "tokens": count}
            _check_end(name, end, found | ({"reports": len(reported)} if "reports" in end else {}))
    except BackupError as exc:
        raise BackupError(f"{exc}; the store was left unchanged") from None
    source.seek(body)
    store.totals()  # a store down from the start fails here, unchanged, as "unavailable"
    try:
        store.clear()
        store.import_(Totals(int(header["spam"]), int(header["ham"])), seen,
                      _backup_tokens(source, name, {}, {}, {}))
        if reports is not None and "reports" in end:
            reports.replace(reported)
    except StoreError as exc:  # neither step is one transaction on Redis, nor both on SQLite
        raise BackupError(f"{name}: the restore stopped part-way, so the store holds only part "
                          f"of the backup; run it again once the store is fixed ({exc})") from exc
    return count


def _backup_header(source: IO[str], name: str) -> dict[str, Any]:
    """The first line, if it is a backup's of the version this mailsift reads. A newer one's
    (a rollback) is named as such: "backup version 2 is not 1" left the admin to guess."""
    import json

    try:
        header = json.loads(_next_line(source, name, 1) or "{}")
    except (json.JSONDecodeError, BackupError):
        header = {}
    if not isinstance(header, dict) or header.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{name}: not a mailsift Bayes backup")
    version = header.get("version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise BackupError(f"{name}: a backup of format version {version} "
                          f"({'written by a newer mailsift' if newer else 'not one this mailsift reads'}"
                          f"); this one reads version {SCHEMA_VERSION}: restore it with the mailsift "
                          "that wrote it")
    return header


def _check_end(name: str, end: dict[str, int], found: dict[str, int]) -> None:
    if not end:
        raise BackupError(f"{name}: incomplete backup: its end line is missing (cut short in a "
                          f"copy?)")
    if end != found:
        raise BackupError(f"{name}: incomplete backup: the end line counts {end['seen']} "
                          f"message(s) and {end['tokens']} token(s), the file holds "
                          f"{found['seen']} and {found['tokens']}")


def _backup_tokens(source: IO[str], name: str, seen: dict[str, Label], end: dict[str, int],
                   reported: dict[str, list[str]]) -> Iterator[BackupToken]:
    """The token lines from the current position on; seen records go into `seen`, reported
    messages into `reported`, the end line's counts into `end`. Read with readline, not
    iteration: a text file forbids tell() once iterated, and read_backup seeks."""
    import json

    number = 1
    while line := _next_line(source, name, number + 1):
        number += 1
        if end:
            raise BackupError(f"{name}:{number}: a line after the end line")
        try:
            row = json.loads(line)
            if "m" in row:
                seen[row["m"]] = Label(row["c"])
            elif "r" in row:
                reported[str(row["r"])] = [str(digest) for digest in row["d"]]
            elif "end" in row:
                counts = row["end"]
                end.update(seen=int(counts["seen"]), tokens=int(counts["tokens"]))
                if "reports" in counts:
                    end["reports"] = int(counts["reports"])
            else:
                yield BackupToken(bytes.fromhex(row["t"]), int(row["s"]), int(row["h"]), int(row["a"]))
        except (ValueError, KeyError, TypeError) as exc:
            if not line.endswith("\n"):  # the file ends inside a line: a copy cut short
                raise BackupError(f"{name}:{number}: incomplete backup: the file ends inside "
                                  "this line (cut short in a copy?)") from None
            raise BackupError(f"{name}:{number}: bad backup line: {exc}") from None


def _next_line(source: IO[str], name: str, number: int) -> str:
    """A line, or "" at the end; a file that is not UTF-8, or a compressed one cut short, is a
    bad backup, not an internal error."""
    try:
        return source.readline()
    except EOFError:  # gzip's "Compressed file ended before the end-of-stream marker was reached"
        raise BackupError(f"{name}:{number}: incomplete backup: the compressed file ends early "
                          "(cut short in a copy?)") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise BackupError(f"{name}:{number}: unreadable backup: {exc}") from None
