"""Quarantine ownership of internationalised addresses: a user's address written in U-labels
(jane@bücher.example) or A-labels owns the mail to any spelling of it Postfix gave (A- or
U-labels, fullwidth letters, capitals, a final dot); nothing else. Per-user access is the
boundary between customers, so look-alikes are tested beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailsift.config import Config, parse_config
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.sink import SmtpSink
from tests.web.conftest import log_in, web_config

JANE = "jane@bücher.example"  # her address as the config writes it
JANE_ASCII = "jane@xn--bcher-kva.example"
# Bob's addresses, each another address that a careless mapping would take for one of Jane's
BOB = ["jane@bucher.example", "jane@strasse.example", "jаne@bücher.example"]  # a Cyrillic а
# Jane's address as Postfix may give it: each is her mailbox (see `addressed_to`)
JANES = [
    "jane@ｂücher.example",  # a fullwidth ｂ, which IDNA (UTS 46) maps to b
    "jane@bücher.example.",  # a final dot
    "Jane@XN--BCHER-KVA.EXAMPLE.",  # capitals: Postfix folds the local part's case too
    "jane@ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",  # fullwidth letters and full stop
]
NOT_JANES = [
    "jane@bucher.example",  # the accent dropped: another domain
    "jane@büсher.example",  # a Cyrillic с: another A-label (xn--bher-0ra631c)
    "jane@bü\u200dcher.example",  # a joiner IDNA refuses: no domain, not bücher with it removed
    "jane@straße.example",  # IDNA 2008 keeps ß (xn--strae-oqa), it is not strasse
    "jane@bü\\099her.example",  # a DNS escape (\099 is c), which no mail system reads
    "jаne@bücher.example",  # a Cyrillic а in the local part, which is kept as written: Bob's
    "ｊane@bücher.example",  # a fullwidth ｊ in the local part: another mailbox
]


@pytest.fixture
def config(tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> Config:
    """tests/web/conftest.py's UI (`store`, `client`), with Jane's and Bob's addresses above."""
    raw = web_config(tmp_path, password_hashes,
                     quarantine={"release_via": f"127.0.0.1:{sink.port}"})
    addresses = {"jane": [JANE], "bob": BOB}
    for user in raw["web"]["users"]:
        user["addresses"] = addresses.get(user["name"], [])
    return parse_config(raw, "test")


def test_a_user_address_in_u_labels_is_accepted_and_kept_as_written(config: Config) -> None:
    """The config refused jane@bücher.example as no mail address; it is kept as she reads it."""
    assert [u.addresses for u in config.web.users if u.name == "jane"] == [[JANE]]


def test_a_user_sees_and_releases_her_mail_to_either_spelling_of_her_address(
        client: TestClient, store: QuarantineStore, sink: SmtpSink) -> None:
    """SMTPUTF8 mail arrives as jane@bücher.example, other mail as jane@xn--bcher-kva.example:
    she saw only the spelling of her config, and a release to her own addresses skipped the other."""
    ascii_one = store.put(make_message("one"), make_meta([JANE_ASCII, "boss@example.org"],
                                                             subject="one"))
    utf8_one = store.put(make_message("two"), make_meta([JANE], subject="two"))
    token = log_in(client, "jane")
    listing = client.get("/").text
    assert ascii_one in listing and utf8_one in listing
    page = client.get(f"/message/{ascii_one}")
    assert page.status_code == 200
    assert JANE_ASCII in page.text and "boss@example.org" not in page.text  # as stored, hers only
    assert utf8_one in client.get("/?to=jane@xn--bcher-kva.example").text
    assert ascii_one in client.get("/?to=@bücher.example").text

    client.post(f"/message/{ascii_one}", data={"action": "release", "csrf": token})
    [released] = sink.wait_for(1)
    assert released.recipients == (JANE_ASCII,)


@pytest.mark.parametrize("recipient", JANES)
def test_a_user_sees_and_opens_her_mail_to_any_spelling_postfix_gave_and_no_one_else_does(
        client: TestClient, store: QuarantineStore, recipient: str) -> None:
    """A fullwidth letter or a final dot was judged by her lists, but no index found it: missing
    from her list, search and digest, her own mail was an admin's only. Bob, whose address
    looks like hers (a Cyrillic а), must still see none of it."""
    held = store.put(make_message(), make_meta([recipient]))
    token = log_in(client, "jane")
    assert held in client.get("/").text
    assert held in client.get("/?to=jane@xn--bcher-kva.example").text
    assert held in client.get("/?to=@bücher.example").text
    assert client.get(f"/message/{held}").status_code == 200
    client.post("/logout", data={"csrf": token})
    log_in(client, "bob")
    assert held not in client.get("/").text
    assert client.get(f"/message/{held}").status_code == 404


@pytest.mark.parametrize("recipient", NOT_JANES)
def test_a_look_alike_or_refused_domain_never_shows_another_users_mail(
        client: TestClient, store: QuarantineStore, recipient: str) -> None:
    held = store.put(make_message(), make_meta([recipient]))
    log_in(client, "jane")
    assert client.get(f"/message/{held}").status_code == 404
    assert held not in client.get("/").text
    assert held not in client.get(f"/?to={recipient}").text


def test_a_user_may_delete_mail_held_only_for_her_in_the_other_spelling(
        client: TestClient, store: QuarantineStore) -> None:
    """Delete is refused when others are among the recipients; her own address in the other
    spelling is no other recipient."""
    held = store.put(make_message(), make_meta([JANE_ASCII]))
    shared = store.put(make_message("s"), make_meta([JANE_ASCII, "jane@bucher.example"], subject="s"))
    token = log_in(client, "jane")
    client.post(f"/message/{held}", data={"action": "delete", "csrf": token})
    client.post(f"/message/{shared}", data={"action": "delete", "csrf": token})
    assert not store.exists(held) and store.exists(shared)


def test_the_owner_of_an_ascii_look_alike_sees_only_its_own_mail(
        client: TestClient, store: QuarantineStore) -> None:
    """Bob owns jane@bucher.example and jane@strasse.example: not Jane's bücher, not straße."""
    bobs = store.put(make_message("bob"), make_meta(["jane@bucher.example"], subject="bob"))
    janes = [store.put(make_message(r), make_meta([r], subject=r))
             for r in (JANE, JANE_ASCII, "jane@straße.example")]
    log_in(client, "bob")
    listing = client.get("/").text
    assert bobs in listing and not any(held in listing for held in janes)
    assert all(client.get(f"/message/{held}").status_code == 404 for held in janes)


def test_a_list_entry_is_shown_as_typed_and_an_old_u_label_entry_can_be_removed(
        client: TestClient, store: QuarantineStore) -> None:
    """Entries are stored in ASCII form, one per domain whichever form was typed; the page shows
    the U-labels its user knows. An entry stored as typed before must still go on Remove."""
    token = log_in(client, "jane")
    form = {"csrf": token, "address": JANE, "kind": "welcome", "op": "add"}
    client.post("/lists", data={**form, "entry": "Jörg@BÜCHER.example"})
    client.post("/lists", data={**form, "entry": "jörg@xn--bcher-kva.example"})
    assert store.backend.all_lists()[JANE].welcome == {"jörg@xn--bcher-kva.example"}
    page = client.get("/lists").text
    assert "<li>jörg@bücher.example" in page

    store.backend.set_listed(JANE, "block", "spam.bücher.example", True)  # an older version's
    client.post("/lists", data={**form, "kind": "block", "op": "remove", "entry": "spam.bücher.example"})
    client.post("/lists", data={**form, "op": "remove", "entry": "jörg@xn--bcher-kva.example"})
    assert not any(kept.welcome | kept.block for kept in store.backend.all_lists().values())


def test_removing_a_list_entry_takes_every_spelling_stored(client: TestClient,
                                                            store: QuarantineStore) -> None:
    """An older version kept spam.bücher.example as typed: Remove of the A-label form left it
    (only the form value as sent and the ASCII form were removed)."""
    store.backend.set_listed(JANE, "block", "spam.bücher.example", True)
    store.backend.set_listed(JANE, "block", "other.example", True)
    token = log_in(client, "jane")
    client.post("/lists", data={"csrf": token, "address": JANE, "kind": "block", "op": "remove",
                                "entry": "SPAM.xn--bcher-kva.example"})
    assert store.backend.all_lists()[JANE].block == {"other.example"}
