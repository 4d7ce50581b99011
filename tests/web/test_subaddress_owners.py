"""Quarantine ownership under Postfix's recipient_delimiter (milter.recipient_delimiter = "+-"):
Jane (jane@example.org) sees, opens, filters by and releases her mail to jane+shop@example.org,
as Postfix delivers it to her; Bob's login address jane-bob@example.org is a mailbox of its own,
though "-" would cut it to jane@: his mail is his alone. Per-user access is the boundary between
customers, so what a user may not see is tested beside what she may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailsift.config import Config, parse_config
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from mailsift.web.app import create_app
from tests.quarantine.conftest import make_message, make_meta
from tests.support.sink import SmtpSink
from tests.web.conftest import log_in, web_config

JANE = "jane@example.org"
BOB = "jane-bob@example.org"  # his login's address: "-" is a delimiter, but it is his mailbox
HERS = ["jane+shop@example.org", "Jane-News@Example.ORG"]
NOBODYS = ["+jane@example.org",  # nothing before the delimiter: not cut
           "janet@example.org", "jane+shop@example.net"]


@pytest.fixture
def config(tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> Config:
    raw = web_config(tmp_path, password_hashes, quarantine={"release_via": f"127.0.0.1:{sink.port}"})
    raw["milter"] = {"recipient_delimiter": "+-"}
    addresses = {"jane": [JANE], "bob": [BOB]}
    for user in raw["web"]["users"]:
        user["addresses"] = addresses.get(user["name"], [])
    return parse_config(raw, "test")


@pytest.fixture
def store(config: Config) -> QuarantineStore:
    """As `mailsift web` opens it (web/server.py)."""
    return open_quarantine(config.quarantine, subaddressing=config.subaddressing)


@pytest.fixture
def client(config: Config, store: QuarantineStore) -> Iterator[TestClient]:
    with TestClient(create_app(config, store, "test-secret-" + "x" * 20),
                    follow_redirects=False) as test_client:
        yield test_client


@pytest.mark.parametrize("recipient", HERS)
def test_a_user_sees_opens_and_releases_her_mail_to_a_subaddress(
        client: TestClient, store: QuarantineStore, sink: SmtpSink, recipient: str) -> None:
    """Only an admin saw it: her list, search and the message page went by her address alone."""
    held = store.put(make_message(), make_meta([recipient, "boss@example.org"]))
    token = log_in(client, "jane")
    assert held in client.get("/").text
    assert held in client.get("/", params={"to": recipient}).text  # by the subaddress itself
    page = client.get(f"/message/{held}")
    assert page.status_code == 200
    assert recipient.lower() in page.text and "boss@example.org" not in page.text
    client.post(f"/message/{held}", data={"action": "release", "csrf": token})
    [released] = sink.wait_for(1)
    assert released.recipients == (recipient.lower(),)  # as Postfix gave it, hers only


# (login, recipient) whose mail that login must neither list nor open
NOT_THEIRS = [*(("bob", r) for r in [*HERS, *NOBODYS]), *(("jane", r) for r in NOBODYS),
              ("jane", BOB)]  # "-" would cut it to jane@, but it is Bob's mailbox


@pytest.mark.parametrize(("login", "recipient"), NOT_THEIRS)
def test_mail_that_is_not_a_logins_own_is_neither_listed_nor_opened(
        client: TestClient, store: QuarantineStore, login: str, recipient: str) -> None:
    held = store.put(make_message(), make_meta([recipient]))
    log_in(client, login)
    assert held not in client.get("/").text
    assert client.get(f"/message/{held}").status_code == 404


def test_a_login_whose_address_holds_the_delimiter_sees_its_own_mail(
        client: TestClient, store: QuarantineStore) -> None:
    """jane-bob@ is Bob's mailbox (Postfix delivers to the mailbox of the whole name): his,
    where cut at "-" it would have been Jane's (see NOT_THEIRS)."""
    bobs = store.put(make_message("bob"), make_meta([BOB], subject="bob"))
    log_in(client, "bob")
    assert bobs in client.get("/").text
    assert client.get(f"/message/{bobs}").status_code == 200
