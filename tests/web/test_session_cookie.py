"""The session cookie stays within what a browser keeps.

Browsers drop a cookie past 4096 bytes (name, value and attributes), and with it the login: its
user is sent to the login form, and the report of the action just done is lost with it.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.testclient import TestClient

from mailsift.config import parse_config
from mailsift.quarantine.store import open_quarantine
from mailsift.web.app import MAX_BACK, create_app
from tests.quarantine.conftest import make_message, make_meta
from tests.support.sink import SmtpSink
from tests.web.conftest import flash_of, log_in, web_config

BROWSER_COOKIE_MAX = 4096  # bytes of name=value a browser keeps (RFC 6265, section 6.1)


def test_a_bulk_report_of_subjects_in_cyrillic_after_a_long_search_keeps_the_login(
        tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> None:
    """The report was cut at 1,500 characters, but the cookie holds it as JSON (each letter
    outside ASCII written as 6 bytes, "\\u0421") in base64 (4 bytes for 3), beside the list's
    address kept for "Back to the list": an admin's bulk release of Russian spam, each message
    to its own recipient, made a cookie of some 10 KB, and the browser logged the admin out."""
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "t")
    store = open_quarantine(config.quarantine)
    subject = "Счёт за услуги связи, последнее напоминание перед отключением"
    ids = [store.put(make_message(f"m{n}"), make_meta([f"user{n}@example.org"], subject=subject))
           for n in range(30)]
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "admin")
        search = "/?sort=subject&dir=asc&subject=" + "x" * (MAX_BACK - 40)
        assert client.get(search).status_code == 200  # "Back to the list" keeps its address
        assert f'href="{html.escape(search)}">← Back to the list' in client.get(f"/message/{ids[0]}").text
        done = client.post("/bulk", data={"csrf": token, "action": "release", "ids": ids,
                                          "back": "/"})
        cookie = done.headers["set-cookie"].split(";")[0]
        assert len(cookie) <= BROWSER_COOKIE_MAX, len(cookie)
        page = client.get("/")
        assert page.status_code == 200 and flash_of(page.text) == "Release: 30 of 30 done."
    assert len(sink.wait_for(30)) == 30
