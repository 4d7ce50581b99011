"""Internationalised recipients in the quarantine: a search, `quarantine list --to` and a digest
find mail to jörg@bücher.example and to jörg@xn--bcher-kva.example alike, on every backend,
while the records keep the address as Postfix gave it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.quarantine.model import Query
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


@pytest.mark.parametrize("spelled", ["jörg@ｂücher.example", "jörg@bü\\099her.example"])
def test_a_spelling_no_index_finds_is_found_by_no_filter_on_any_backend(
        store: QuarantineStore, spelled: str) -> None:
    """A fullwidth ｂ maps to the same A-labels, but SQLite looks recipients up by the two
    spellings IDNA writes, while Redis filtered a domain's mail by the ASCII form: the same
    search gave two answers (and the web UI let its user open what neither listed)."""
    held = store.put(make_message(), make_meta([spelled]))
    for wanted in ("jörg@bücher.example", "@bücher.example", "@xn--bcher-kva.example"):
        assert _ids(store, wanted) == set(), wanted
    assert {r["id"] for r in store.search(Query())[0]} == {held}  # an admin's list shows it


def test_quarantine_list_to_takes_either_spelling(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    held = store.put(make_message(), make_meta([UTF8]))
    config = tmp_path / "m.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")}}))
    for wanted in ("jörg@xn--bcher-kva.example", "xn--bcher-kva.example", "JÖRG@bücher.example"):
        done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "list", "--to", wanted])
        assert done.exit_code == 0 and held in done.output, (wanted, done.output)


def test_a_digest_lists_mail_to_the_other_spelling_of_the_users_address(
        tmp_path: Path, digest_sink: SmtpSink) -> None:
    """Anna's address is configured in A-labels; SMTPUTF8 mail to her came as anna@bücher.example
    and was missing from her digest."""
    users = [{"name": "anna", "password_hash": HASH, "addresses": [ASCII]},
             {"name": "jörg", "password_hash": HASH, "addresses": ["jörg@bucher.example"]}]
    config = tmp_path / "m.toml"
    config.write_text(to_toml({
        "quarantine": {"dir": str(tmp_path / "q"), "release_via": f"127.0.0.1:{digest_sink.port}"},
        "web": {"users": users}}))
    store = QuarantineStore(tmp_path / "q")
    annas = store.put(make_message(), make_meta(["anna@bücher.example"]))
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "digest"])
    assert done.exit_code == 0, done.output
    [mail] = digest_sink.wait_for(1)
    assert mail.recipients == (ASCII,) and annas in mail.message.get_content()
