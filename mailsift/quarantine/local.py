"""The single-host quarantine: one file per message, an SQLite index beside them.

Each message is one file, `ID.msg`: the record as it arrived (one line of JSON), then the message
byte for byte. It is written under a temporary name, synced to disk and renamed: one disk sync
per message, the step a quarantine under load waits on (Postfix syncs its queue files on the
same disk). The index row is inserted last and is what makes a message visible to the list, the
CLI and the digest: a crash at any point leaves either nothing visible or a complete message.
The row also carries what happens later (state, history), which the immutable file does not.

The index commit itself is not synced (`synchronous=NORMAL`): a power cut may lose the last rows,
never the messages, and `expire` (the daily timer) indexes a file whose row is missing again
from its first line, and removes temporary files that a crash left behind. A message file whose
first line it cannot read (damaged, or written by a newer mailsift before a rollback) is moved to
`unreadable/`, never deleted: it may be the only copy of someone's mail.

SQLite because it needs no server, answers the reviewer's searches with indexes, and survives
several writers (the milter's threads, the web UI, the CLI) through WAL and a busy timeout.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.ownership import access_hint, adopt_folder_owner, make_folders, settle_new_file
from mailsift.quarantine.model import (
    COMPARED_MARK,
    Deleted,
    IndexUnavailable,
    NoSuchMessage,
    Purged,
    QuarantineError,
    Query,
    ServerFailed,
    UserLists,
    addressed_to,
    compared_only,
    folded,
    index_keys,
    note_filing,
    now,
    record_problem,
    refiling_since,
    unreadable_schema,
    valid_id,
)
from mailsift.sqlite_wal import use_wal

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
SUFFIX = ".msg"
STRAY_AGE_S = 3600  # a temporary file older than this is a crash's leftover, not a write in progress
UNREADABLE = "unreadable"  # where expire sets aside message files whose record it cannot read
INDEXED, SET_ASIDE = "indexed", "set aside"  # what the sweep did with a message file lacking its row
WRITER_IDLE_S = 5.0  # an index writer with nothing to do this long closes its connection and ends
INDEX_WRITER = "quarantine-index"  # the writer thread's name
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, time TEXT NOT NULL, mail_from TEXT NOT NULL, sender TEXT NOT NULL,
    subject TEXT NOT NULL, score REAL NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_time ON messages(time);
CREATE INDEX IF NOT EXISTS messages_score ON messages(score);
CREATE TABLE IF NOT EXISTS recipients (address TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (address, id));
CREATE INDEX IF NOT EXISTS recipients_id ON recipients(id);
CREATE TABLE IF NOT EXISTS lists (address TEXT NOT NULL, kind TEXT NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (address, kind, entry));
CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEX_LOCK = threading.RLock()  # see LocalBackend._db
# By sender: the From header, else the envelope sender, as the list shows the sender and the
# Redis index sorts (model.sort_value); by From alone, a message without one came first.
SORT_COLUMNS = {"time": "time", "score": "score", "subject": "folded(subject)",
                "sender": "folded(CASE WHEN sender = '' THEN mail_from ELSE sender END)"}
AFTER_ALL = "\U0010ffff"  # sorts after any text that continues a prefix: the end of its range


def _list_order(query: Query) -> str:
    """ORDER BY as model.in_list_order sorts on Redis: by the key, among equals the newest
    first, then by id. Equals were listed by id alone, the reverse of Redis's order in a
    descending sort."""
    column = SORT_COLUMNS.get(query.sort, "time")
    newest = "" if column == "time" else "time DESC, "
    return f"{column} {'DESC' if query.descending else 'ASC'}, {newest}id"


def _record_line(record: dict[str, Any]) -> bytes:
    """The first line of a message file: JSON escapes newlines, so the record is one line."""
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def _as_stored(when: datetime) -> str:
    """A time as the `time` column holds them (UTC ISO text), so comparing the text compares the
    instants: a --since with another offset compared as text was off by that offset."""
    return when.astimezone(UTC).isoformat()


def _escaped(text: str) -> str:
    """`text` lower-cased, its LIKE wildcards made plain characters (with ESCAPE '\\')."""
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_suffix(text: str) -> str:
    return "%" + _escaped(text)


def _subaddresses(addresses: list[str], delimiter: str) -> tuple[list[str], list[str]]:
    """The SQL (and its arguments) that finds the recipients that are subaddresses of
    `addresses` under `delimiter` (jane+shop@ and jane-a+b@ for jane@ with "+-"). An owner's
    local part is followed by a delimiter in each of them, so each is in the recipients' index
    under one of those prefixes (jane+, jane-): a range of it, usually a few rows, each then
    judged by `addressed_to`, which knows the rest of Postfix's rule (the domain, the names
    never cut, a web user's address that is its own). Nothing is filed for it, so what a
    search finds follows the delimiter and the logins as they are now, for mail held before
    either changed too."""
    clauses: list[str] = []
    args: list[str] = []
    for wanted in addresses:
        local = wanted.rpartition("@")[0]
        for sign in dict.fromkeys(delimiter):
            clauses.append("(address >= ? AND address < ? AND addressed_to(?, address))")
            args += [local + sign, local + sign + AFTER_ALL, wanted]
    return clauses, args


def _check_id(message_id: str) -> None:
    """Refuse an id that is not ours (from a URL or a command line) before any file is opened."""
    if not valid_id(message_id):
        raise QuarantineError(f"not a quarantine id: {message_id!r}")


class UnreadableRecord(Exception):
    """A message file's first line is not a record this mailsift can index; the text says why."""


def _file_record(path: Path) -> dict[str, Any]:
    """The record line of a message file, checked for everything the index row takes from it."""
    with path.open("rb") as file:
        line = file.readline()
    try:
        record = json.loads(line)
    except ValueError:
        raise UnreadableRecord("its first line is not a mailsift record") from None
    problem = record_problem(record, path.stem)
    if problem:
        raise UnreadableRecord(problem)
    return record


class _GroupCommit:
    """Index rows of concurrent `add`s, committed together by one thread on one connection.

    Under load every commit is slow (the writer shares the CPU with Postfix), and rows committed
    one after the other, each on a new connection, made each quarantining milter thread wait
    behind the others: 94 ms median in bench/milter.py, where a quarantine's own work took
    15 ms. One writer commits what has queued meanwhile in one transaction, and each caller
    still returns only once its row is committed (or with its error), so a message is listed
    before the milter answers Postfix. The writer closes its connection and ends when idle."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.pending: queue.SimpleQueue[tuple[dict[str, Any], Future[None]]] = queue.SimpleQueue()
        self.writer_pid = 0  # the process whose writer thread serves `pending`; 0: none

    def index(self, record: dict[str, Any]) -> None:
        done: Future[None] = Future()
        with self.lock:
            if self.writer_pid != os.getpid():  # none yet, ended when idle, or we were forked
                self.pending = queue.SimpleQueue()
                threading.Thread(target=self._run, args=(self.pending,), name=INDEX_WRITER,
                                 daemon=True).start()
                self.writer_pid = os.getpid()
            self.pending.put((record, done))
        done.result()

    def _run(self, pending: queue.SimpleQueue[tuple[dict[str, Any], Future[None]]]) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                try:
                    batch = [pending.get(timeout=WRITER_IDLE_S)]
                except queue.Empty:
                    with self.lock:  # `index` enqueues under this lock: nothing slips in between
                        if pending.empty():
                            self.writer_pid = 0
                            return
                    continue
                with suppress(queue.Empty):
                    while True:
                        batch.append(pending.get_nowait())
                db = self.backend._commit_rows(db, batch)
        finally:
            if db is not None:
                db.close()


class LocalBackend:
    def __init__(self, directory: str | Path, index_path: str | Path | None = None,
                 subaddressing: Subaddressing = NO_SUBADDRESSES) -> None:
        """`subaddressing`: whose mail to a subaddress is (milter.recipient_delimiter): a search
        for jane@ finds jane+shop@'s (see `_subaddresses`)."""
        self.directory = Path(directory)
        self.index_path = Path(index_path) if index_path else self.directory / "index.sqlite"
        self.subaddressing = subaddressing
        self._group = _GroupCommit(self)
        self._compared_filed = False  # see _file_compared_once

    @property
    def where(self) -> str:
        return str(self.index_path)

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One connection per operation: safe from any thread, and cheap next to the disk sync.

        Threads of one process take turns through a lock: SQLite's own busy handler makes a
        waiting writer sleep and poll (up to 100 ms a nap), which gave the milter's quarantine
        writes a p99 of 340 ms with 20 threads at once; the lock hands over as soon as the
        previous commit is done. Other processes (web UI, CLI) still meet the busy timeout."""
        with _INDEX_LOCK, self._connected() as db:
            yield db

    @contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(self._open()) as db, db:
                yield db
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def _open(self) -> sqlite3.Connection:
        make_folders(self.index_path.parent, 0o750)
        new = not self.index_path.exists()
        db = sqlite3.connect(self.index_path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        if new:  # see mailsift.ownership: root's CLI may create it before the milter does
            settle_new_file(self.index_path)
        db.execute("PRAGMA synchronous=NORMAL")  # see the module docstring
        db.create_function("addressed_to", 2, self._addressed_to, deterministic=True)
        db.create_function("folded", 1, folded, deterministic=True)  # see _where
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:  # new (or made by a process that stopped before its first commit)
            use_wal(db, BUSY_TIMEOUT_MS / 1000)
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            # Any other version was rewritten as ours: after a rollback, even configtest marked
            # a newer mailsift's index version 1 and called it reachable.
            db.close()
            raise QuarantineError(unreadable_schema(str(self.index_path), str(version),
                                                    str(SCHEMA_VERSION)))
        return db

    def _error(self, exc: OSError | sqlite3.Error) -> IndexUnavailable:
        """The index file could not be opened, read or written (locked past the busy timeout,
        damaged, a full disk, no permission): no answer about any message, as a Redis index that
        is down, so the review UI says so (a 503) and shows a user neither the file's path nor
        "No such message" for mail that is there; it was a plain QuarantineError, which a user's
        release reported with the path and a message's page took for a missing message."""
        hint = access_hint(self.index_path, exc) if isinstance(exc, sqlite3.Error) else ""
        return IndexUnavailable(f"quarantine index {self.index_path}: "
                                f"{getattr(exc, 'strerror', None) or exc}{hint}")

    def _file(self, message_id: str) -> Path:
        _check_id(message_id)
        return self.directory / f"{message_id}{SUFFIX}"

    def _write(self, path: Path, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-", delete=False) as tmp:
            try:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
                adopt_folder_owner(Path(tmp.name))  # see mailsift.ownership; it is mode 0600
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, path)

    # --- messages ------------------------------------------------------------------------------

    def add(self, message_id: str, raw: bytes, record: dict[str, Any]) -> None:
        try:
            make_folders(self.directory, 0o750)
            self._write(self._file(message_id), _record_line(record) + raw)
            self._group.index(record)
        except (OSError, QuarantineError) as exc:
            self._remove_files(message_id)
            raise QuarantineError(f"cannot store in {self.directory}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None

    @staticmethod
    def _index(db: sqlite3.Connection, record: dict[str, Any]) -> None:
        db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (record["id"], record["time"], record["mail_from"], record["from"],
                    record["subject"], record["score"], record["state"],
                    json.dumps(record, ensure_ascii=False)))
        db.executemany("INSERT OR IGNORE INTO recipients VALUES (?, ?)",
                       [(key, record["id"]) for key in index_keys(record["recipients"])])

    def _remove_files(self, message_id: str) -> None:
        with suppress(OSError):
            self._file(message_id).unlink()

    def raw(self, message_id: str) -> bytes:
        self.record(message_id)  # only indexed (complete, not deleted) messages have bytes to give
        try:
            return self._file(message_id).read_bytes().partition(b"\n")[2]
        except FileNotFoundError:
            raise Deleted(message_id) from None
        except OSError as exc:  # not "deleted": it is there, and an admin can mend the access
            raise ServerFailed(f"quarantine message file {self._file(message_id)}: "
                               f"{exc.strerror or exc}") from None

    def record(self, message_id: str) -> dict[str, Any]:
        _check_id(message_id)
        if self._unmade():  # a message page opened by URL made the folder (see _unmade)
            raise NoSuchMessage(message_id)
        with self._db() as db:
            return self._stored(db, message_id)

    @staticmethod
    def _stored(db: sqlite3.Connection, message_id: str) -> dict[str, Any]:
        """The record of `message_id` as the index holds it; QuarantineError when there is none."""
        row = db.execute("SELECT record FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NoSuchMessage(message_id)
        record: dict[str, Any] = json.loads(row[0])
        return record

    def change(self, message_id: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Store the record as `edit` changes it, read and written in one write transaction
        (BEGIN IMMEDIATE): another process's change waits for it (within the busy timeout)
        and then reads what it wrote. Read and written apart, two changes at once (the web UI's
        release and the CLI's, a release's record and a learning's event) both read the same
        record and the last write undid the other's: a history line lost, or two releases
        that each saw "held" and each sent. If `edit` raises, nothing is written."""
        _check_id(message_id)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock before the read: see the docstring
            record = self._stored(db, message_id)
            edit(record)
            db.execute("UPDATE messages SET state = ?, record = ? WHERE id = ?",
                       (record["state"], json.dumps(record, ensure_ascii=False), message_id))
        return record

    def delete(self, message_id: str) -> None:
        """Remove the bytes; the record stays (state deleted) so the history outlives the message."""
        with suppress(FileNotFoundError):
            self._file(message_id).unlink()

    def _unmade(self) -> bool:
        """Nothing was ever stored here: neither the folder nor the index exists. Looking (a
        search, an expire, a mark or a record read) makes neither: a mistyped quarantine.dir
        made an empty quarantine of its own for `quarantine list`, `expire` and the web UI
        (its list, a message page opened by URL), which then showed nothing, as if nothing
        were held (see store.unmade_folder)."""
        return not self.directory.exists() and not self.index_path.exists()

    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        if self._unmade():
            return [], 0
        if query.to is not None:
            self._file_compared_once()
        where, args = self._where(query, self.subaddressing)
        order = _list_order(query)
        limit = "" if query.limit is None else f" LIMIT {int(query.limit)} OFFSET {int(query.offset)}"
        with self._db() as db:
            total = db.execute(f"SELECT count(*) FROM messages WHERE {where}", args).fetchone()[0]
            rows = db.execute(f"SELECT record FROM messages WHERE {where} ORDER BY {order}{limit}",
                              args).fetchall()
        return [json.loads(r[0]) for r in rows], total

    @staticmethod
    def _where(query: Query, subaddressing: Subaddressing) -> tuple[str, list[Any]]:
        clauses, args = ["1"], []
        if not query.include_deleted:
            clauses.append("state != 'deleted'")
        if query.to is not None:
            # Recipients are filed in the form `query.to` is in too (`index_keys`).
            addresses = [a for a in query.to if not a.startswith("@")]
            domains = [_like_suffix(d) for d in query.to if d.startswith("@")]
            extensions, extension_args = _subaddresses(addresses, subaddressing.delimiter)
            wanted = [f"address IN ({','.join('?' * len(addresses))})",
                      *["address LIKE ? ESCAPE '\\'"] * len(domains), *extensions]
            clauses.append(f"id IN (SELECT id FROM recipients WHERE {' OR '.join(wanted)})")
            args += addresses + domains + extension_args
        # Sender and subject compare as `Query.matches` does, through `folded`: SQLite's lower()
        # and LIKE fold ASCII letters only, so `--subject Счёт` missed 'Счёт за услуги'. A
        # function, not a folded column: no new schema, which an older mailsift (a rollback)
        # refuses. For 30,000 messages it adds 10 to 20 ms to a search by either and 10 to
        # 50 ms to a sort by either (medians of 15, two busy cores); a page took 15 to 50 ms.
        if query.sender:
            clauses.append("(instr(folded(mail_from), ?) OR instr(folded(sender), ?))")
            args += [folded(query.sender)] * 2
        if query.subject:
            clauses.append("instr(folded(subject), ?)")
            args.append(folded(query.subject))
        for column, op, value in (("score", ">=", query.min_score), ("score", "<=", query.max_score),
                                  ("time", ">=", query.since), ("time", "<", query.until)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(_as_stored(value) if isinstance(value, datetime) else value)
        return " AND ".join(clauses), args

    def _addressed_to(self, wanted: str, address: str) -> bool:
        """`addressed_to` for the SQL of `_subaddresses`: the one test of whose mail is whose."""
        return addressed_to(wanted, address, self.subaddressing)

    def purge(self, before: datetime) -> Purged:
        """Forget every message that arrived before `before`, and sweep crash leftovers."""
        if self._unmade():
            return Purged(0)
        with self._db() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM messages WHERE time < ?",
                                            (_as_stored(before),))]
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM recipients WHERE id = ?", [(i,) for i in ids])
            # Rows an older mailsift wrote since the last filing. In the purge's transaction: a
            # failure undoes both (no purged message's file outlives its row, for the next sweep
            # to index again), and the mark moves only with what was filed.
            self._file_compared(db)
        for message_id in ids:
            self._remove_files(message_id)
        reindexed, set_aside = self._sweep()
        return Purged(len(ids), reindexed, set_aside)

    def _file_compared_once(self) -> None:
        """Before the first search by recipient: file the recipients of messages an older
        mailsift indexed as Postfix gave them only in their compared form as well, once per
        index (COMPARED_MARK says it was done), so that mail held before an upgrade to
        Jane@Example.COM or jane@ｂücher.example reaches Jane's list and digest too. A query
        cannot find them otherwise: the spellings that map to one address are countless."""
        if self._compared_filed:
            return
        with self._db() as db:
            if self._mark(db, COMPARED_MARK) is None:
                self._file_compared(db)
        self._compared_filed = True

    def _file_compared(self, db: sqlite3.Connection) -> None:
        """Add the compared form of each recipient row that lacks it (idempotent), reading the
        rows of the messages that arrived since the last filing (`refiling_since`), or all of
        them when there was none, and record when this filing began in the same transaction:
        the mark never says more was filed than was committed. `began` is taken before the
        rows are read, so a row committed after the read is stamped at most REFILE_MARGIN
        before it, and the next filing reads it. Two processes filing at once each cover what
        was committed when they began, so the mark either of them leaves is true.

        `expire` runs this daily from a timer, inside its write transaction, where the milter's
        quarantine writes wait for it: reading every row (as it did until the mark held a time)
        took 0.65 to 1.0 s for 210,000 rows (200,000 messages over 30 days; medians of 5 on two
        busy cores), and 1.5 to 2 s for 500,000; the rows of a day's arrivals and REFILE_MARGIN
        take 28 ms. The first filing of an index, by the first search by recipient or expire,
        still reads every row, once."""
        began = now()
        since = refiling_since(self._mark(db, COMPARED_MARK))
        if since is None:
            rows = db.execute("SELECT address, id FROM recipients").fetchall()
        else:
            rows = db.execute("SELECT r.address, r.id FROM messages m JOIN recipients r "
                              "ON r.id = m.id WHERE m.time >= ?", (_as_stored(since),)).fetchall()
        filed = db.executemany("INSERT OR IGNORE INTO recipients VALUES (?, ?)",
                               [(key, message_id) for address, message_id in rows
                                for key in compared_only([address])]).rowcount
        db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (COMPARED_MARK, began.isoformat()))
        note_filing(self.where, since, len({message_id for _, message_id in rows}), max(filed, 0))

    def _commit_rows(self, db: sqlite3.Connection | None,
                     batch: list[tuple[dict[str, Any], Future[None]]]) -> sqlite3.Connection | None:
        """Commit `batch` in one transaction on `db` (opened if None), or, if that fails, one by
        one so that a bad row fails alone. Returns the connection to use next time."""
        try:
            with _INDEX_LOCK:
                db = db or self._open()
                with db:
                    for record, _ in batch:
                        self._index(db, record)
        except Exception as exc:  # whatever it is, the callers must hear of it, never hang
            if db is not None:
                db.close()
                db = None
            if len(batch) == 1:
                batch[0][1].set_exception(self._commit_error(exc))
                return None
            for item in batch:
                db = self._commit_rows(db, [item])
            return db
        for _, done in batch:
            done.set_result(None)
        return db

    def _commit_error(self, exc: Exception) -> QuarantineError:
        """What a failed commit tells its caller: one line naming the index, as any other error."""
        if isinstance(exc, OSError | sqlite3.Error):
            return self._error(exc)
        if isinstance(exc, QuarantineError):  # it names the index already (an unknown schema)
            return exc
        return QuarantineError(f"quarantine index {self.index_path}: {exc!r}")

    def _sweep(self) -> tuple[int, int]:
        """After crashes: index again a message whose row was lost (see the module docstring),
        and remove temporary files. Only files older than STRAY_AGE_S: no writer is still
        between its rename and its commit. An index that fails here raises (expire ends with
        its one line) rather than let a file it could not index look unreadable. Returns how
        many files it indexed and how many it set aside."""
        done: Counter[str] = Counter()
        if not self.directory.is_dir():
            return 0, 0
        with self._db() as db:
            indexed = {r[0] for r in db.execute("SELECT id FROM messages")}
        stale = time.time() - STRAY_AGE_S
        for path in self.directory.glob(".tmp-*"):
            with suppress(OSError):
                if path.stat().st_mtime < stale:
                    path.unlink()
        for path in self.directory.glob(f"*{SUFFIX}"):
            with suppress(FileNotFoundError):  # deleted meanwhile (a reviewer, another expire)
                if path.stem not in indexed and path.stat().st_mtime < stale:
                    done[self._reindex(path)] += 1
        return done[INDEXED], done[SET_ASIDE]

    def _reindex(self, path: Path) -> str:
        """Index a message file again from its record line, or set it aside if that line is
        not one this mailsift can read; says which (INDEXED, SET_ASIDE, or "": left as it is)."""
        try:
            record = _file_record(path)
        except UnreadableRecord as exc:
            return self._set_aside(path, str(exc))
        except FileNotFoundError:  # deleted meanwhile
            return ""
        except OSError as exc:
            log.warning("quarantine file %s: cannot read it (%s); kept where it is", path,
                        exc.strerror or exc)
            return ""
        with self._db() as db:
            self._index(db, record)
        return INDEXED

    def _set_aside(self, path: Path, why: str) -> str:
        """Move an unreadable message file to UNREADABLE/, where expire no longer meets it (each
        run would warn again) and an admin can read it by hand or with a newer mailsift."""
        folder = self.directory / UNREADABLE
        make_folders(folder, 0o750)
        try:
            os.replace(path, folder / path.name)
        except OSError as exc:
            log.warning("quarantine file %s: %s; kept where it is (cannot move it to %s: %s)",
                        path, why, folder, exc.strerror or exc)
            return ""
        log.warning("quarantine file %s: %s; moved to %s (the message is kept; no list shows "
                    "it)", path, why, folder)
        return SET_ASIDE

    # --- users' lists and marks ------------------------------------------------------------------

    def all_lists(self) -> dict[str, UserLists]:
        if not self.index_path.exists():
            return {}
        found: dict[str, UserLists] = {}
        with self._db() as db:
            for address, kind, entry in db.execute("SELECT address, kind, entry FROM lists"):
                found.setdefault(address, UserLists()).entries(kind).add(entry)
        return found

    def set_listed(self, address: str, kind: str, entry: str, present: bool) -> None:
        with self._db() as db:
            if present:
                db.execute("INSERT OR IGNORE INTO lists VALUES (?, ?, ?)", (address, kind, entry))
            else:
                db.execute("DELETE FROM lists WHERE address = ? AND kind = ? AND entry = ?",
                           (address, kind, entry))

    def mark(self, name: str) -> str | None:
        if self._unmade():
            return None
        with self._db() as db:
            return self._mark(db, name)

    @staticmethod
    def _mark(db: sqlite3.Connection, name: str) -> str | None:
        row = db.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_mark(self, name: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (name, value))
