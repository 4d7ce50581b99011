"""`quarantine expire` files in their compared form (model.index_keys) the recipients of mail an
older mailsift stored (after a rollback, or on a host not yet upgraded), reading only the mail
that arrived since the last filing began, less REFILE_MARGIN. It read the whole index every day:
on SQLite inside the purge's write transaction, where the milter's quarantine writes waited
(0.65 to 1.0 s for 210,000 recipient rows), on Redis every summary (14 MB for 50,000
messages).

Mail "held by an older host" is stored, then taken out of its compared form's index entry as an
older mailsift would have filed it (`_as_an_older_mailsift_filed_it`). A message stamped before
the last filing's margin and left so stands for mail that filing covered: the next expire must
not read it again, so it stays unfiled."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from mailsift.quarantine.local import LocalBackend
from mailsift.quarantine.model import COMPARED_MARK, REFILE_MARGIN, QuarantineError, now
from mailsift.quarantine.redis_backend import RedisBackend
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.quarantine.test_idn_recipients import JOERGS, _as_an_older_mailsift_filed_it, _ids

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # expires nothing: what these expires do is the filing
HIS = "jörg@bücher.example"  # what Jörg's list asks for; JOERGS are spellings Postfix gives of it
COMPARED = "jörg@xn--bcher-kva.example"  # the form the index files each of them under too
FILINGS = "mailsift.quarantine.model"  # the logger of note_filing


def _held_by_an_older_host(store: QuarantineStore, ago: timedelta, spelled: str = JOERGS[0]) -> str:
    """A message that arrived `ago`, filed under `spelled` only, as a mailsift before the
    compared form stored it."""
    held = store.put(make_message(str(ago)), make_meta([spelled], subject=f"{spelled} {ago}",
                                                       time=(now() - ago).isoformat()))
    _as_an_older_mailsift_filed_it(store, held)
    return held


def _filed_last(store: QuarantineStore, ago: timedelta) -> datetime:
    """The index as a filing that began `ago` left it (yesterday's expire, say)."""
    began = now() - ago
    store.backend.set_mark(COMPARED_MARK, began.isoformat())
    return began


def _filings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What each filing said it read (note_filing), oldest first; then forgets them."""
    said = [r.getMessage() for r in caplog.records
            if r.name == FILINGS and "in their compared form" in r.getMessage()]
    caplog.clear()
    return said


@contextmanager
def _refusing_the_compared_form(store: QuarantineStore) -> Iterator[None]:
    """The index refuses to file anything under COMPARED, as a full disk or a Redis out of
    memory would refuse a write midway through a filing: SQLite through a trigger, Redis
    through a key of another type there (WRONGTYPE)."""
    backend = store.backend
    if isinstance(backend, LocalBackend):
        with closing(sqlite3.connect(backend.index_path)) as db, db:
            db.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON recipients WHEN NEW.address = "
                       f"'{COMPARED}' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        yield
        with closing(sqlite3.connect(backend.index_path)) as db, db:
            db.execute("DROP TRIGGER refuse")
    else:
        assert isinstance(backend, RedisBackend)
        backend.client.set(backend._key("rcpt", COMPARED), "not a set")
        yield
        backend.client.delete(backend._key("rcpt", COMPARED))


def test_expire_reads_only_the_mail_that_arrived_since_the_last_filing(
        store: QuarantineStore, caplog: pytest.LogCaptureFixture) -> None:
    """Each daily expire read every message held to find an older host's few: seconds for a
    hosting provider's 500,000, with the milter's SQLite writes waiting, or a Redis read that
    timed out and failed the expire. Mail that arrived before yesterday's filing, less its
    margin, was covered by that filing and is not read again."""
    began = _filed_last(store, timedelta(days=1))
    covered = [_held_by_an_older_host(store, timedelta(days=1) + 2 * REFILE_MARGIN + timedelta(days=d))
               for d in range(3)]
    since_then = _held_by_an_older_host(store, timedelta(hours=2))
    caplog.set_level(logging.DEBUG, logger=FILINGS)
    store.expire(EPOCH)
    assert _ids(store, HIS) == {since_then}, covered  # reading the others, it filed them too
    assert _filings(caplog) == [
        f"quarantine index {store.backend.where}: filing recipients in their compared form read "
        f"1 message(s), those that arrived since "
        f"{(began - REFILE_MARGIN).isoformat(timespec='seconds')}; 1 filed"]


def test_mail_an_older_host_stores_after_a_filing_is_filed_by_the_next_expire(
        store: QuarantineStore) -> None:
    """A rolling upgrade or a rollback: mail a host running an older mailsift stores after the
    first filing is its owner's at the next expire, also when stamped minutes before that
    filing began and committed after it (a slow client's DATA, another host's clock): what
    REFILE_MARGIN is for."""
    store.directory.mkdir(parents=True, exist_ok=True)  # as the milter's start makes it: a
    # search of a quarantine never made makes nothing, and files nothing
    assert _ids(store, HIS) == set()  # the first search by recipient files the index
    late = _held_by_an_older_host(store, timedelta(minutes=10))
    new = _held_by_an_older_host(store, timedelta(0), JOERGS[1])
    assert _ids(store, HIS) == set()  # only an admin sees them until then
    store.expire(EPOCH)
    assert _ids(store, HIS) == {late, new}


def test_the_first_expire_files_mail_held_before_the_upgrade_once(
        store: QuarantineStore, caplog: pytest.LogCaptureFixture) -> None:
    """Without a mark the first expire reads every message, as the first search by recipient
    does, and leaves the mark: the search after it, and the next expire, do not read them all
    again (the search did, once more, after each expire of an index never searched by
    recipient)."""
    held = [_held_by_an_older_host(store, timedelta(days=days), spelled)
            for days, spelled in enumerate(JOERGS, start=2)]
    caplog.set_level(logging.DEBUG, logger=FILINGS)
    store.expire(EPOCH)
    _as_an_older_mailsift_filed_it(store, held[0])  # a probe: a full pass would file it again
    assert _ids(store, HIS) == set(held[1:])  # filed by the expire; the search read nothing
    store.expire(EPOCH)
    assert _ids(store, HIS) == set(held[1:])
    first, second = _filings(caplog)
    assert f"read {len(JOERGS)} message(s), every one held (the first filing)" in first
    assert "read 0 message(s), those that arrived since" in second


def test_a_mark_that_is_no_time_makes_expire_read_every_message(store: QuarantineStore) -> None:
    """A mark edited by hand, or without its offset, says nothing of what was covered: the
    filing reads everything, slow once but never missing mail."""
    store.backend.set_mark(COMPARED_MARK, now().replace(tzinfo=None).isoformat())
    held = _held_by_an_older_host(store, timedelta(days=5))
    store.expire(EPOCH)
    assert _ids(store, HIS) == {held}
    store.backend.set_mark(COMPARED_MARK, "done")
    _as_an_older_mailsift_filed_it(store, held)
    store.expire(EPOCH)
    assert _ids(store, HIS) == {held}


def test_a_filing_that_fails_midway_is_done_again_from_where_the_last_one_began(
        store: QuarantineStore) -> None:
    """The mark moves only once the filing is stored: had the failed expire moved it to when
    it began, the next would read from an hour before then and miss the message, stamped
    three hours ago, for good."""
    _filed_last(store, timedelta(days=1))
    held = _held_by_an_older_host(store, 3 * REFILE_MARGIN)
    with _refusing_the_compared_form(store), pytest.raises(QuarantineError):
        store.expire(EPOCH)
    assert _ids(store, HIS) == set()
    store.expire(EPOCH)
    assert _ids(store, HIS) == {held}
