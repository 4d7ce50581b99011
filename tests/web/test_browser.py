"""The review UI in Debian's headless chromium, against `mailsift web` and a real Postfix.

Few tests, one browser: each drives what a reviewer does — search, open, read the rule table,
release (the message must reach the sink through Postfix), learn, bulk-delete — and one checks
that hostile markup stays text in a real browser. Screenshots go to tests/artifacts/ for review.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailsift.config import parse_config
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from tests.e2e.conftest import (  # noqa: F401  (fixtures: the real Postfix and the sink)
    Mta,
    milter_port,
    mta,
    postfix,
    postfix_available,
    sink,
)
from tests.e2e.messages import make_message
from tests.support.milter_process import mailsift_command, to_toml
from tests.support.ports import free_port
from tests.support.postfix import PostfixInstance
from tests.web.conftest import PASSWORDS, wait_until_serving, web_config

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SENDER = "alice@sender.example"
XSS_SUBJECT = '<script>alert("subject")</script><img src=x onerror=alert(1)>'


@dataclass
class Ui:
    url: str
    store: QuarantineStore
    process: subprocess.Popen[bytes]
    log: Path  # the server's stderr: a line per request since 71eb082


def quarantine(store: QuarantineStore, subject: str, to: str = "bob@example.com",
               score: float = 45.0, body: str = "") -> tuple[str, str]:
    """Put a message into the quarantine as the milter does; returns (quarantine id, Message-ID)."""
    raw, message_id = make_message(*([body] if body else []), subject=subject, to=to)
    rules = [{"name": "E2E_QUARANTINE", "score": score - 3.5, "description": "held for the test",
              "evidence": "XE2EQUARANTINEME"},
             {"name": "MISSING_MID", "score": 2.5, "description": "No Message-ID", "evidence": ""},
             {"name": "FREEMAIL", "score": 1.0, "description": "From a freemail host", "evidence": ""}]
    meta = {"client_ip": "192.0.2.7", "client_name": "mx.sender.example", "helo": "mx.sender.example",
            "mail_from": SENDER, "recipients": [to], "from": f"Alice Example <{SENDER}>",
            "subject": subject, "action": "quarantine", "queue_id": "4XYZ",
            "verdict": {"score": score, "required_score": 5.0, "rules": rules}}
    return store.put(raw, meta), message_id


@pytest.fixture(scope="module")
def ui(postfix: PostfixInstance, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
       password_hashes: dict[str, str]) -> Iterator[Ui]:
    """`mailsift web` as a child process, releasing into the test Postfix's no-milter port."""
    directory = tmp_path_factory.mktemp("web")
    port = free_port()
    web = {"listen": f"127.0.0.1:{port}", "secure_cookies": True}  # the default, as deployed
    config = web_config(directory, password_hashes, web=web,
                        quarantine={"release_via": f"127.0.0.1:{postfix.plain_port}"})
    path = directory / "mailsift.toml"
    path.write_text(to_toml(config))
    store = open_quarantine(parse_config(config, "test").quarantine)
    for n, to in enumerate(["bob@example.com", "carol@example.com", "jane@example.org"] * 2):
        quarantine(store, f"Weekly offer #{n}: cheap watches", to, 41.0 + n * 3)
    env = {**os.environ, "MAILSIFT_WEB_SECRET": "browser-test-secret-0123456789"}
    # Its stderr goes to a file: a pipe nobody read filled after some 860 requests' log lines
    # and stalled the server mid-test.
    log = directory / "web.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([*mailsift_command(), "--config", str(path), "web"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until_serving(process, port, log)
        yield Ui(f"http://127.0.0.1:{port}", store, process, log)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(autouse=True)
def server_log(request: pytest.FixtureRequest, ui: Ui) -> Iterator[None]:
    """What the server logged during a test, shown with a failure's report ("Captured mailsift
    web's log teardown") as its captured output is, and not for a test that passed."""
    start = ui.log.stat().st_size
    yield
    logged = ui.log.read_bytes()[start:].decode("utf-8", "replace")
    request.node.add_report_section("teardown", "mailsift web's log", logged)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed: apt-get install chromium")
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, ui: Ui) -> Iterator[Any]:
    """One logged-in admin page for the module; it records every dialog a script might open."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(f"{ui.url}/login")
    tab.fill("input[name=name]", "admin")
    tab.fill("input[name=password]", PASSWORDS["admin"])
    tab.click("button:text('Log in')")
    tab.wait_for_url(f"{ui.url}/")
    ARTIFACTS.mkdir(exist_ok=True)
    yield tab
    context.close()


def search(page: Any, ui: Ui, subject: str) -> None:
    page.goto(f"{ui.url}/")
    page.fill("input[name=subject]", subject)
    page.click("button:text('Search')")


def test_find_by_search_read_the_rules_and_release_through_postfix(
        page: Any, ui: Ui, mta: Mta) -> None:  # noqa: F811
    qid, message_id = quarantine(ui.store, "Invoice 4711 for March", score=52.5)
    page.goto(f"{ui.url}/")
    page.screenshot(path=str(ARTIFACTS / "quarantine-list.png"), full_page=True)
    search(page, ui, "invoice 4711")
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_url(f"{ui.url}/message/{qid}")
    rules = page.locator("table.rules tbody tr").all_inner_texts()
    assert [r.split("\t")[:2] for r in rules] == [["49.0", "E2E_QUARANTINE"], ["2.5", "MISSING_MID"],
                                                 ["1.0", "FREEMAIL"]]
    page.screenshot(path=str(ARTIFACTS / "quarantine-message.png"), full_page=True)

    page.click("button[value=release]")
    assert "Released to bob@example.com" in page.locator(".flash").inner_text()
    received = mta.delivered(message_id)
    assert received.sender == SENDER and received.recipients == ("bob@example.com",)
    assert received.raw.endswith(ui.store.raw(qid))
    history = page.locator("table.history tbody tr").last.inner_text().split("\t")
    assert history[1:] == ["admin", "released to bob@example.com"]


def bayes_counts(page: Any, ui: Ui) -> str:
    page.goto(f"{ui.url}/stats")
    return page.locator("#bayes-counts").inner_text()


def test_learning_as_ham_changes_the_bayes_counts(page: Any, ui: Ui) -> None:
    qid, _ = quarantine(ui.store, "Minutes of the board meeting", score=40.5)
    assert bayes_counts(page, ui) == "Learned: 0 spam, 0 ham."
    page.goto(f"{ui.url}/message/{qid}")
    page.click("button[value=ham]")
    assert "learned as ham" in page.locator(".flash").inner_text()
    assert bayes_counts(page, ui) == "Learned: 0 spam, 1 ham."
    assert page.locator("svg.chart rect.bar").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "quarantine-stats.png"), full_page=True)


def test_bulk_delete_of_the_selected_messages(page: Any, ui: Ui) -> None:
    doomed = [quarantine(ui.store, f"Bulk lottery win {n}")[0] for n in range(3)]
    search(page, ui, "bulk lottery")
    page.check("#select-all")  # the one script: allowed by the CSP, it ticks every row
    assert page.locator("input[name=ids]:checked").count() == 3
    page.select_option("select[name=action]", "delete")
    page.click("button:text('Apply')")
    assert "Delete: 3 of 3 done" in page.locator(".flash").inner_text()
    assert "No messages match" in page.locator("table.messages").inner_text()
    assert not any(ui.store.exists(qid) for qid in doomed)


def test_script_and_onerror_payloads_stay_text_in_the_browser(page: Any, ui: Ui) -> None:
    body = '<script>alert("body")</script><img src="http://tracker.example/p.gif" onerror="alert(2)">'
    qid, _ = quarantine(ui.store, XSS_SUBJECT, body=body)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    search(page, ui, "script")
    page.goto(f"{ui.url}/message/{qid}")
    assert page.locator("h1").inner_text() == XSS_SUBJECT
    assert 'alert("body")' in page.locator("pre.body").inner_text()
    assert page.dialogs == []
    assert not [url for url in requests if not url.startswith(ui.url)]
