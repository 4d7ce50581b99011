"""The review UI on a quarantine whose folder does not exist (a mistyped quarantine.dir)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from mailsift.config import Config
from tests.web.conftest import log_in


def test_the_list_of_a_quarantine_never_made_shows_nothing_and_makes_none(
        client: TestClient, config: Config) -> None:
    """Its first list page made an empty quarantine there, so the UI went on showing nothing
    held from the wrong place, while the milter held mail elsewhere."""
    log_in(client, "admin")
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert not Path(config.quarantine.dir).exists()


def test_a_message_page_of_a_quarantine_never_made_is_not_found_and_makes_none(
        client: TestClient, config: Config) -> None:
    """A message page opened by URL (a digest's link, a bookmark) read the record through the
    index, which made the folder and an empty index at the mistyped path, as the list did."""
    log_in(client, "jane")
    page = client.get("/message/" + "A" * 22)
    assert page.status_code == 404, page.text
    assert not Path(config.quarantine.dir).exists()
