"""Recipients in the quarantine, in every spelling Postfix may give: a search, `quarantine list
--to` and a digest find mail to jörg@bücher.example, jörg@xn--bcher-kva.example, a fullwidth
jörg@ｂücher.example or JÖRG@bücher.example. alike, on every backend, and no look-alike's,
while the records keep the address as Postfix gave it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.domains import ascii_address
from mailsift.quarantine.local import LocalBackend
from mailsift.quarantine.model import Query
from mailsift.quarantine.redis_backend import RedisBackend
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.quarantine.test_digest import HASH
from tests.support.milter_process import to_toml
from tests.support.sink import SmtpSink

UTF8 = "jörg@bücher.example"
ASCII = "anna@xn--bcher-kva.example"


@pytest.fixture
def digest_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def _ids(store: QuarantineStore, *to: str) -> set[str]:
    return {r["id"] for r in store.search(Query(to=list(to)))[0]}


def test_search_finds_a_recipient_in_either_spelling(store: QuarantineStore) -> None:
    utf8 = store.put(make_message("u"), make_meta([UTF8], subject="u"))
    ascii_ = store.put(make_message("a"), make_meta([ASCII], subject="a"))
    other = store.put(make_message("o"), make_meta(["jörg@bucher.example"], subject="o"))
    assert _ids(store, "jörg@xn--bcher-kva.example") == {utf8}
    assert _ids(store, "anna@bücher.example") == {ascii_}
    assert _ids(store, "@BÜCHER.example") == {utf8, ascii_}
    assert _ids(store, "@xn--bcher-kva.example") == {utf8, ascii_}
    assert _ids(store, "@bucher.example") == {other}
    assert store.meta(utf8)["recipients"] == [UTF8]  # stored and shown as it came


# Spellings Postfix may hand over of jörg@bücher.example, one mailbox (see `addressed_to`)
JOERGS = ["jörg@ｂücher.example",  # a fullwidth ｂ, which IDNA (UTS 46) maps to b
          "jörg@bücher.example.",  # a final dot: the DNS root, the same domain
          "jörg@ｂüｃｈｅｒ｡ｅｘａｍｐｌｅ",  # fullwidth letters and an ideographic full stop
          "JÖRG@XN--BCHER-KVA.EXAMPLE.",  # capitals: Postfix folds the local part's case too
          "Jörg@Bücher.Example"]
# Addresses that look like his and are not: his mail must never be theirs, nor theirs his
OTHER_DOMAINS = ["jörg@bü\\099her.example",  # a DNS escape (\\099 is c), which no mail system reads
                 "jörg@bücher.example.org", "jörg@bucher.example"]
OTHER_MAILBOXES = ["jоrg@bücher.example",  # a Cyrillic о: the local part's letters are kept
                   "ｊörg@bücher.example"]  # a fullwidth ｊ in the local part: another mailbox


@pytest.mark.parametrize("spelled", JOERGS)
def test_any_spelling_of_an_address_is_found_by_every_filter_on_every_backend(
        store: QuarantineStore, spelled: str) -> None:
    """A fullwidth letter or a final dot was found by no filter (SQLite looked recipients up by
    the two spellings IDNA writes back, Redis by the same sets), so such mail was missing from
    its owner's list, search and digest and only an admin saw it."""
    held = store.put(make_message(), make_meta([spelled]))
    for wanted in ("jörg@bücher.example", "JÖRG@xn--bcher-kva.example", "@bücher.example",
                   "@xn--bcher-kva.example."):
        assert _ids(store, wanted) == {held}, wanted
    assert store.meta(held)["recipients"] == [spelled.lower()]  # stored and shown as it came


@pytest.mark.parametrize("spelled", OTHER_DOMAINS + OTHER_MAILBOXES)
def test_a_look_alike_address_is_found_by_no_filter_for_the_real_one(
        store: QuarantineStore, spelled: str) -> None:
    held = store.put(make_message(), make_meta([spelled]))
    others = ["@bücher.example", "@xn--bcher-kva.example"] if spelled in OTHER_DOMAINS else []
    for wanted in ["jörg@bücher.example", "JÖRG@xn--bcher-kva.example.", *others]:
        assert _ids(store, wanted) == set(), wanted
    assert _ids(store, spelled) == {held}
    assert {r["id"] for r in store.search(Query())[0]} == {held}  # an admin's list shows it


def _as_an_older_mailsift_filed_it(store: QuarantineStore, held: str) -> None:
    """File `held` in the index under its recipients as Postfix gave them only, as a mailsift
    before the compared form did (and one rolled back to does)."""
    given = store.meta(held)["recipients"]
    compared = {ascii_address(r) for r in given} - set(given)
    backend = store.backend
    if isinstance(backend, LocalBackend):
        with closing(sqlite3.connect(backend.index_path)) as db, db:
            db.executemany("DELETE FROM recipients WHERE address = ? AND id = ?",
                           [(key, held) for key in compared])
    else:
        assert isinstance(backend, RedisBackend)
        for key in compared:
            backend.client.srem(backend._key("rcpt", key), held)


def test_mail_held_before_the_upgrade_is_found_by_its_owners_address(store: QuarantineStore) -> None:
    """The index has the spellings Postfix gave: the first search files them in the compared
    form, once, so mail held before reaches its owner's list and digest as new mail does."""
    held = [store.put(make_message(s), make_meta([s], subject=s)) for s in JOERGS]
    for message_id in held:
        _as_an_older_mailsift_filed_it(store, message_id)
    assert _ids(store, "jörg@bücher.example") == set(held)
    assert _ids(store, "@xn--bcher-kva.example") == set(held)


def test_expire_files_what_a_rolled_back_mailsift_held_meanwhile(store: QuarantineStore) -> None:
    """After a rollback and a new upgrade the first search does not file again (its mark says
    it was done): mail held meanwhile is an admin's only until the daily expire, which files it."""
    assert _ids(store, "jörg@bücher.example") == set()
    held = store.put(make_message(), make_meta([JOERGS[0]]))
    _as_an_older_mailsift_filed_it(store, held)
    store.expire(datetime(2000, 1, 1, tzinfo=UTC))
    assert _ids(store, "jörg@bücher.example") == {held}


def test_quarantine_list_to_takes_either_spelling(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    held = store.put(make_message(), make_meta([UTF8]))
    config = tmp_path / "m.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")}}))
    for wanted in ("jörg@xn--bcher-kva.example", "xn--bcher-kva.example", "JÖRG@bücher.example"):
        done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "list", "--to", wanted])
        assert done.exit_code == 0 and held in done.output, (wanted, done.output)


def test_quarantine_list_to_finds_every_spelling_postfix_gave_and_no_look_alike(
        tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    his = [store.put(make_message(s), make_meta([s], subject=s)) for s in JOERGS]
    others = [store.put(make_message(s), make_meta([s], subject=s)) for s in OTHER_MAILBOXES]
    config = tmp_path / "m.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")}}))
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "list", "--to",
                                    "jörg@bücher.example"])
    assert done.exit_code == 0, done.output
    assert all(held in done.output for held in his) and not any(o in done.output for o in others)


def test_a_digest_lists_mail_to_the_other_spelling_of_the_users_address(
        tmp_path: Path, digest_sink: SmtpSink) -> None:
    """Anna's address is configured in A-labels; SMTPUTF8 mail to her came as anna@bücher.example
    and was missing from her digest, as was mail to a fullwidth or capitalised spelling with a
    final dot."""
    users = [{"name": "anna", "password_hash": HASH, "addresses": [ASCII]},
             {"name": "jörg", "password_hash": HASH, "addresses": ["jörg@bucher.example"]}]
    config = tmp_path / "m.toml"
    config.write_text(to_toml({
        "quarantine": {"dir": str(tmp_path / "q"), "release_via": f"127.0.0.1:{digest_sink.port}"},
        "web": {"users": users}}))
    store = QuarantineStore(tmp_path / "q")
    annas = [store.put(make_message(s), make_meta([s], subject=s))
             for s in ("anna@bücher.example", "anna@ｂücher.example", "Anna@XN--BCHER-KVA.example.")]
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "digest"])
    assert done.exit_code == 0, done.output
    [mail] = digest_sink.wait_for(1)
    assert mail.recipients == (ASCII,)
    assert all(held in mail.message.get_content() for held in annas)
