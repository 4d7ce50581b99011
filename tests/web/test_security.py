"""Security regressions of the review UI, each named after what it protects against."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailsift.config import Config, parse_config
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from mailsift.web.app import SESSION_COOKIE, create_app
from mailsift.web.auth import hash_password
from tests.quarantine.conftest import make_message, make_meta
from tests.web.conftest import csrf_of, flash_of, log_in, web_config

XSS_SUBJECT = '<script>alert("s")</script><img src=x onerror=alert(1)>'
XSS_BODY = '<script>alert("b")</script><img src="http://tracker.example/p.gif" onerror="alert(2)">'


def test_form_post_without_csrf_token_is_refused(client: TestClient, store: QuarantineStore) -> None:
    message_id = store.put(make_message(), make_meta(["jane@example.org"]))
    token = log_in(client, "admin")
    assert client.post(f"/message/{message_id}", data={"action": "delete"}).status_code == 403
    assert client.post(f"/message/{message_id}", data={"action": "delete", "csrf": "forged"}
                       ).status_code == 403
    assert client.post("/bulk", data={"action": "delete", "ids": message_id}).status_code == 403
    assert store.exists(message_id)
    assert client.post(f"/message/{message_id}", data={"action": "delete", "csrf": token}
                       ).status_code == 303
    assert not store.exists(message_id)


def test_login_form_needs_the_csrf_token_too(client: TestClient) -> None:
    client.get("/login")
    assert client.post("/login", data={"name": "admin", "password": "admin-pass-123"}).status_code == 403


def test_user_cannot_open_or_act_on_another_users_message(client: TestClient,
                                                          store: QuarantineStore) -> None:
    bobs = store.put(make_message(), make_meta(["bob@example.org"]))
    janes = store.put(make_message("for jane"), make_meta(["jane@example.org"], subject="for jane"))
    token = log_in(client, "jane")
    assert client.get(f"/message/{bobs}").status_code == 404
    assert client.get(f"/message/{janes}").status_code == 200
    assert client.post(f"/message/{bobs}", data={"action": "delete", "csrf": token}).status_code == 404
    client.post("/bulk", data={"action": "delete", "ids": [bobs], "csrf": token})
    assert store.exists(bobs)
    client.get("/")  # shows (and clears) the bulk result, which names the id she posted
    listing = client.get("/").text
    assert janes in listing and bobs not in listing
    assert bobs not in client.get("/?to=bob@example.org").text


def test_ids_with_path_tricks_are_not_found(client: TestClient) -> None:
    log_in(client, "admin")
    for bad in ("..%2F..%2Fetc%2Fpasswd", "AAAAAAAAAAAAAAAAAAAAA.", "%2e%2e"):
        assert client.get(f"/message/{bad}").status_code == 404


def test_script_and_onerror_in_subject_and_body_render_inert(client: TestClient,
                                                             store: QuarantineStore) -> None:
    raw = make_message(XSS_SUBJECT, body=XSS_BODY)
    message_id = store.put(raw, make_meta(["jane@example.org"], subject=XSS_SUBJECT))
    log_in(client, "admin")
    for page in (client.get("/").text, client.get(f"/message/{message_id}").text):
        assert "<script>alert" not in page and "<img src" not in page
        assert "&lt;script&gt;" in page
    html = client.get(f"/message/{message_id}")
    assert "script-src 'self'" in html.headers["content-security-policy"]
    assert "default-src 'none'" in html.headers["content-security-policy"]


def test_five_wrong_passwords_slow_down_further_logins(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    for _ in range(5):
        wrong = client.post("/login", data={"csrf": token, "name": "jane", "password": "guess"})
        assert wrong.status_code == 401
    slowed = client.post("/login", data={"csrf": token, "name": "jane", "password": "jane-pass-123"})
    assert slowed.status_code == 429
    assert "Too many failed logins" in slowed.text
    assert client.get("/").status_code == 303  # still not logged in


def test_a_login_name_typed_with_a_space_around_it_logs_in(client: TestClient) -> None:
    """"jane " (a phone's keyboard adds the space) was "Wrong name or password." and a failure
    counted toward the throttle."""
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf": token, "name": " jane ", "password": "jane-pass-123"})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert client.get("/").status_code == 200


def test_session_cookie_is_secure_httponly_and_strict(config: Config, store: QuarantineStore) -> None:
    secure = config.model_copy(update={"web": config.web.model_copy(update={"secure_cookies": True})})
    with TestClient(create_app(secure, store, "s" * 32), base_url="https://testserver",
                    follow_redirects=False) as client:
        cookie = client.get("/login").headers["set-cookie"]
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower() and "Max-Age=28800" in cookie


def test_pages_need_a_login(client: TestClient) -> None:
    for path in ("/", "/stats", "/lists", "/message/AAAAAAAAAAAAAAAAAAAAAA"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login")


def test_user_cannot_delete_a_message_also_held_for_someone_else(client: TestClient,
                                                                 store: QuarantineStore) -> None:
    """Delete removes the message for every recipient: jane's delete used to take bob's
    held copy with it, which he then could neither see nor release."""
    shared = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
    token = log_in(client, "jane")
    response = client.post(f"/message/{shared}", data={"action": "delete", "csrf": token})
    assert response.status_code == 303
    assert store.exists(shared)
    assert "held for other recipients too; only an admin can delete it" in client.get(
        f"/message/{shared}").text
    client.post("/bulk", data={"action": "delete", "ids": [shared], "csrf": token})
    assert store.exists(shared)
    own = store.put(make_message("own"), make_meta(["jane@example.org"], subject="own"))
    client.post(f"/message/{own}", data={"action": "delete", "csrf": token})
    assert not store.exists(own)


def _session_cookie(client: TestClient) -> str:
    return str(client.cookies[SESSION_COOKIE])


def _use_cookie(client: TestClient, cookie: str) -> None:
    """Send only this session cookie, as another browser holding a copy of it would."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)


def test_a_copied_session_cookie_stops_working_at_logout(client: TestClient, config: Config,
                                                          store: QuarantineStore) -> None:
    """The cookie is signed, not stored: before, a copy taken before logout (a shared machine,
    a proxy log) stayed logged in until it expired."""
    token = log_in(client, "jane")
    copied = _session_cookie(client)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    _use_cookie(client, copied)
    assert client.get("/").headers["location"] == "/login"
    log_in(client, "jane")  # logging in again gives a new, working session
    assert client.get("/").status_code == 200


def test_a_login_that_ended_says_so_on_the_login_page(client: TestClient, store: QuarantineStore
                                                       ) -> None:
    """An ended login (expired, logged out elsewhere, a new password) led to the login form
    without a word, and an action posted with it was not done, unsaid."""
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    token = log_in(client, "jane")
    copied = _session_cookie(client)
    client.post("/logout", data={"csrf": token})
    assert "Your login has ended" not in client.get("/login").text  # logged out here: no news
    _use_cookie(client, copied)
    assert client.get("/").headers["location"] == "/login"
    assert flash_of(client.get("/login").text) == (
        "Your login has ended (it expired, you logged out elsewhere, or your password changed); "
        "log in again.")
    _use_cookie(client, copied)
    assert client.post(f"/message/{held}", data={"csrf": token, "action": "delete"}
                       ).headers["location"] == "/login"
    assert flash_of(client.get("/login").text).endswith("log in again. What you asked was not done.")
    assert store.exists(held)


def test_a_logout_holds_in_a_second_ui_and_after_a_restart(config: Config, store: QuarantineStore
                                                           ) -> None:
    """Logouts were kept in the UI's memory: a copied cookie worked again once the UI restarted,
    and all along in a second UI on the same index (another worker, or host behind the proxy)."""
    secret = "shared-secret-" + "x" * 20
    with TestClient(create_app(config, store, secret), follow_redirects=False) as first, \
            TestClient(create_app(config, open_quarantine(config.quarantine), secret),
                       follow_redirects=False) as second:
        token = log_in(first, "jane")
        copied = _session_cookie(first)
        _use_cookie(second, copied)
        assert second.get("/").status_code == 200
        first.post("/logout", data={"csrf": token})
        assert second.get("/").headers["location"] == "/login"
    with TestClient(create_app(config, open_quarantine(config.quarantine), secret),
                    follow_redirects=False) as restarted:
        _use_cookie(restarted, copied)
        assert restarted.get("/").headers["location"] == "/login"
        log_in(restarted, "jane")
        assert restarted.get("/").status_code == 200


def test_a_password_change_ends_the_sessions_of_the_old_password(
        tmp_path: Path, password_hashes: dict[str, str], store: QuarantineStore) -> None:
    """Changing a leaked password (a new hash in the config, then a restart with the same
    session secret) used to leave whoever had logged in with it logged in."""
    secret = "restart-secret-" + "x" * 20
    before = parse_config(web_config(tmp_path, password_hashes), "test")
    with TestClient(create_app(before, store, secret), follow_redirects=False) as old_ui:
        log_in(old_ui, "jane")
        log_in(old_ui, "bob")  # the same browser, now bob: his password does not change
        bobs = _session_cookie(old_ui)
        log_in(old_ui, "jane")
        janes = _session_cookie(old_ui)
    changed = {**password_hashes, "jane": hash_password("a-new-pass-456")}
    after = parse_config(web_config(tmp_path, changed), "test")
    with TestClient(create_app(after, store, secret), follow_redirects=False) as new_ui:
        _use_cookie(new_ui, janes)
        assert new_ui.get("/").headers["location"] == "/login"
        _use_cookie(new_ui, bobs)
        assert new_ui.get("/").status_code == 200
        log_in(new_ui, "jane", "a-new-pass-456")
        assert new_ui.get("/").status_code == 200


def _learned(store: QuarantineStore, message_id: str) -> list[str]:
    meta = store.meta(message_id)
    assert meta is not None
    return [event["action"] for event in meta.get("events", []) if event["action"] == "learned"]


def test_reports_shared_with_every_host_are_for_admins_unless_the_site_allows_them(
        client: TestClient, store: QuarantineStore) -> None:
    """A user's "Spam + Report" made every host score copies of the message as reported, and
    "Ham + Revoke" withdrew an admin's report: one mailbox owner changed the verdicts of all."""
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    token = log_in(client, "jane")
    page = client.get(f"/message/{held}").text
    assert 'value="ham"' in page and 'value="spam-report"' not in page and 'value="ham-revoke"' not in page
    for action in ("spam-report", "ham-revoke"):
        client.post(f"/message/{held}", data={"action": action, "csrf": token})
        assert "is not allowed for your login" in client.get(f"/message/{held}").text
        client.post("/bulk", data={"action": action, "ids": [held], "csrf": token})
    assert _learned(store, held) == []
    client.post(f"/message/{held}", data={"action": "spam", "csrf": token})
    assert _learned(store, held) == ["learned"]


def test_a_site_can_keep_users_from_teaching_its_bayes(
        tmp_path: Path, password_hashes: dict[str, str], store: QuarantineStore) -> None:
    config = parse_config(web_config(tmp_path, password_hashes,
                                     web={"user_actions": ["release", "delete"]}), "test")
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    with TestClient(create_app(config, store, "test-secret-" + "x" * 20),
                    follow_redirects=False) as ui:
        token = log_in(ui, "jane")
        page = ui.get(f"/message/{held}").text
        assert 'value="release"' in page and 'value="ham"' not in page
        for action in ("ham", "release-ham", "spam", "forget"):
            ui.post(f"/message/{held}", data={"action": action, "csrf": token})
        assert _learned(store, held) == []
        assert store.meta(held)["state"] == "held"  # release-ham did not release either
        token = log_in(ui, "admin")
        ui.post(f"/message/{held}", data={"action": "spam-report", "csrf": token})
        assert _learned(store, held) == ["learned"]


def test_a_user_with_no_actions_is_told_so_instead_of_an_empty_menu(
        tmp_path: Path, password_hashes: dict[str, str], store: QuarantineStore) -> None:
    """web.user_actions = [] gave users an empty "With selected" menu and a message page without
    buttons, and no word why."""
    config = parse_config(web_config(tmp_path, password_hashes, web={"user_actions": []}), "test")
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    note = "Your login may read these messages but not act on them: ask your mail administrator."
    with TestClient(create_app(config, store, "test-secret-" + "x" * 20),
                    follow_redirects=False) as client:
        log_in(client, "jane")
        for page in (client.get("/").text, client.get(f"/message/{held}").text):
            assert note in page and 'name="action"' not in page
        log_in(client, "admin")
        assert note not in client.get("/").text and note not in client.get(f"/message/{held}").text


def test_a_user_does_not_see_the_other_recipients_of_a_message(client: TestClient,
                                                                store: QuarantineStore) -> None:
    """Jane's list and message page named every envelope recipient, and the history said whom
    an admin released the message to: a Bcc'd recipient, or another customer, shown to her."""
    shared = store.put(make_message(), make_meta(["jane@example.org", "boss@example.org"]))
    store.log(shared, "admin", "released", "to jane@example.org, boss@example.org", state="released")
    log_in(client, "jane")
    for page in (client.get("/").text, client.get(f"/message/{shared}").text):
        assert "jane@example.org" in page and "boss@example.org" not in page
    assert "<td>admin</td><td>released" in client.get(f"/message/{shared}").text
    client.cookies.clear()
    log_in(client, "admin")
    assert "boss@example.org" in client.get("/").text
    assert "released to jane@example.org, boss@example.org" in client.get(f"/message/{shared}").text


def test_a_password_typed_into_the_name_field_stays_out_of_the_log(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """A failed or slowed login logged the name as typed, and now and then that is the password."""
    caplog.set_level(logging.INFO)
    token = csrf_of(client.get("/login").text)
    for _ in range(6):
        client.post("/login", data={"csrf": token, "name": "jane-pass-123", "password": "jane"})
    client.post("/login", data={"csrf": token, "name": "jane", "password": "guess"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "jane-pass-123" not in logged
    assert "refused: too many failures" in logged and "failed login of 'jane' from" in logged


def test_a_list_entry_cannot_write_lines_of_its_own_to_the_log(
        client: TestClient, store: QuarantineStore, caplog: pytest.LogCaptureFixture) -> None:
    """An entry with a line break inside was stored and logged as typed: its second line read
    as a log line of its own ("mailsift: INFO mailsift.web: user=admin ...")."""
    caplog.set_level(logging.INFO)
    token = log_in(client, "jane")
    forged = "x.example\nmailsift:\tINFO\tmailsift.web:\tuser=admin"
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": forged, "op": "add"})
    assert store.backend.all_lists() == {}
    assert "not an address or domain" in client.get("/lists").text
    assert not [r for r in caplog.records if "\n" in r.getMessage()]


def test_a_posted_id_cannot_write_lines_of_its_own_to_the_log(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """The id of a bulk action was logged as posted: one with a line break in it made a second
    line that read as an admin's action."""
    caplog.set_level(logging.INFO)
    token = log_in(client, "jane")
    forged = "nope\nmailsift: INFO mailsift.web: user=admin action=delete id=X result=Deleted."
    client.post("/bulk", data={"csrf": token, "action": "delete", "ids": [forged]})
    actions = [r.getMessage() for r in caplog.records if r.name == "mailsift.web"]
    assert actions and not [m for m in actions if "\n" in m]
    assert "id=nope\\nmailsift: INFO" in actions[-1]
