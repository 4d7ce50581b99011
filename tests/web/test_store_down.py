"""The review UI while the shared quarantine index (a real redis-server) is down."""

from __future__ import annotations

import logging
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailsift.config import parse_config
from mailsift.quarantine import local
from mailsift.quarantine.model import Refused, ServerFailed
from mailsift.quarantine.review import smtp_send
from mailsift.quarantine.store import open_quarantine
from mailsift.web.app import SESSION_COOKIE, create_app
from mailsift.web.auth import hash_password
from tests.quarantine.conftest import make_message, make_meta
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.sink import Received, SmtpSink
from tests.web.conftest import csrf_of, flash_of, log_in, web_config
from tests.web.test_pages import alerts, flash_details


def test_a_page_while_the_index_is_down_is_a_503_and_one_log_line(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """It was a 500 "Internal Server Error" and a traceback in the log for every page, and a
    message's own page said "404: No such message", as if it had been deleted."""
    server = RedisServer(tmp_path / "redis")
    config = parse_config(web_config(tmp_path, password_hashes, quarantine={"index": server.url}),
                          "test")
    store = open_quarantine(config.quarantine)
    held = store.put(make_message(), make_meta())
    pages = ("/", "/stats", "/lists", f"/message/{held}")
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        log_in(client, "admin")
        server.stop()
        caplog.set_level(logging.INFO)
        for page in pages:
            response = client.get(page)
            assert response.status_code == 503, (page, response.text)
            assert alerts(response.text) == [
                "503: The quarantine is unavailable right now; try again in a few minutes."]
            assert response.headers["Retry-After"] == "60"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.getMessage(), r.exc_info) for r in warnings] == [
        (f"GET {page}: quarantine store unavailable: redis at 127.0.0.1:{server.port}: "
         f"ConnectionError: Error 111 connecting to 127.0.0.1:{server.port}. Connection refused.", None)
        for page in pages]


def test_while_the_index_is_down_a_logged_in_user_keeps_the_header_and_can_log_out(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """Every page was a bare line of text then: no header, so no Log out (which works without
    the index) and no link to come back by. A logged-in user gets the 503 inside the UI's layout
    now, with no message data (and a path of no page its 404 with the header, as while the
    index answers); a login that ended (a password changed since) gets the login form, as
    always, and never the header."""
    server = RedisServer(tmp_path / "redis")
    data = web_config(tmp_path, password_hashes, quarantine={"index": server.url})
    store = open_quarantine(parse_config(data, "test").quarantine)
    store.put(make_message(), make_meta(["jane@example.org"], subject="Jane's own"))
    with TestClient(create_app(parse_config(data, "test"), store, "s" * 32),
                    follow_redirects=False) as client:
        log_in(client, "jane")
        server.stop()
        page = client.get("/")
        assert (page.status_code, page.headers["content-type"]) == (503, "text/html; charset=utf-8")
        assert '<a href="/stats">Stats</a>' in page.text and "<span>jane</span>" in page.text
        assert "Jane's own" not in page.text and "jane@example.org" not in page.text
        lost = client.get("/no-such-page")  # a path of no page: its header, as for the 503
        assert lost.status_code == 404 and "<span>jane</span>" in lost.text
        cookie = client.cookies[SESSION_COOKIE]
        logout = client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert (logout.status_code, logout.headers["location"]) == (303, "/login")
        assert client.get("/").headers["location"] == "/login"
    [janes] = [user for user in data["web"]["users"] if user["name"] == "jane"]
    janes["password_hash"] = hash_password("a-new-password")
    with TestClient(create_app(parse_config(data, "test"), store, "s" * 32),
                    cookies={SESSION_COOKIE: cookie}, follow_redirects=False) as client:
        assert client.get("/").headers["location"] == "/login"  # before: the plain 503
        assert "Log out" not in client.get("/login").text


def test_a_logout_while_the_index_is_down_logs_out_and_says_what_still_holds(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """Logging out answered with the 503 page, as if it had failed, while this browser was
    logged out all the same; a copy of the cookie still works, as the index could not say."""
    server = RedisServer(tmp_path / "redis")
    config = parse_config(web_config(tmp_path, password_hashes, quarantine={"index": server.url}),
                          "test")
    with TestClient(create_app(config, open_quarantine(config.quarantine), "s" * 32),
                    follow_redirects=False) as client:
        token = log_in(client, "jane")
        server.stop()
        response = client.post("/logout", data={"csrf": token})
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert re.fullmatch(r"You are logged out in this browser\. The quarantine could not record "
                            r"it right now, so a copy of this login's cookie would work until "
                            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\.", flash_of(client.get("/login").text))
        assert client.get("/").headers["location"] == "/login"
    assert any(r.getMessage().startswith("logout of jane not recorded in the quarantine index")
               for r in caplog.records)


def test_a_copy_of_a_logged_out_admins_cookie_is_not_told_why_the_index_is_down(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """The 503 page gave its reason (here Redis's host:port) by the cookie's role alone, so a
    copy of an admin's cookie kept after that admin logged out still read it while the index
    was down. Now only a login not logged out does: here the admin's other login, still open;
    a UI that never saw a login live (restarted while the index is down) tells no cookie."""
    server = RedisServer(tmp_path / "redis")
    config = parse_config(web_config(tmp_path, password_hashes, quarantine={"index": server.url}),
                          "test")
    store = open_quarantine(config.quarantine)
    reason = f"Reason (shown to admins only): quarantine store unavailable: redis at 127.0.0.1:{server.port}"
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as ended, \
            TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as open_:
        token = log_in(ended, "admin")
        log_in(open_, "admin")
        copy = ended.cookies[SESSION_COOKIE]
        assert ended.post("/logout", data={"csrf": token}).headers["location"] == "/login"
        server.stop()
        ended.cookies.clear()  # the copy sent alone, as another browser holding it would
        ended.cookies.set(SESSION_COOKIE, copy)
        refused = ended.get("/")
        assert refused.status_code == 503 and reason not in refused.text
        assert str(server.port) not in refused.text
        still = open_.get("/")
        assert still.status_code == 503 and reason in still.text
    with TestClient(create_app(config, store, "s" * 32), cookies={SESSION_COOKIE: copy},
                    follow_redirects=False) as restarted:
        assert str(server.port) not in restarted.get("/").text


def test_an_action_while_the_index_is_down_names_no_server_to_the_user(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """A bulk action showed each message's "redis at HOST:PORT: ..." to the user, a hosting
    provider's customer; it is the 503 page now, as for every other page."""
    server = RedisServer(tmp_path / "redis")
    config = parse_config(web_config(tmp_path, password_hashes, quarantine={"index": server.url}),
                          "test")
    store = open_quarantine(config.quarantine)
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "jane")
        server.stop()
        for path, form in (("/bulk", {"action": "release", "ids": [held]}),
                           (f"/message/{held}", {"action": "release"})):
            response = client.post(path, data={**form, "csrf": token})
            assert response.status_code == 503, (path, response.text)
            assert str(server.port) not in response.text
            assert "The quarantine is unavailable right now" in response.text


def test_a_bulk_action_the_index_fails_part_way_says_what_it_did_and_what_not(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """A bulk Release whose index went down after some messages were released was the 503 page
    alone: which had gone out, which not, went unsaid, and the admin could not tell what state
    they were in. Here the index goes down while the second of four messages is delivered (sent,
    its release not recorded): the report says the first was released, the second may be done
    without its history saying so, and the last two were not tried; one warning gives the reason
    and those ids, one before it what went out unrecorded."""
    server = RedisServer(tmp_path / "redis")

    def stop_at_the_second(received: object) -> None:
        if len(sink.messages) == 2:
            server.stop()

    with SmtpSink(on_receive=stop_at_the_second) as sink:
        ids, status, page = bulk_release_in(tmp_path, password_hashes, server, sink, caplog)
        assert len(sink.messages) == 2
    assert status == 503 and flash_of(page) == "Release: 1 of 4 done."
    assert flash_details(page) == [
        "Released to bob@example.org: “Number 1”",
        "Unsure (the quarantine stopped answering during it: it may be done without its history "
        "saying so): “Number 2”",
        f"Not tried (stopped at the failure above): {ids[2]}, {ids[3]}"]
    down = index_down(server)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{ids[1]}: released to bob@example.org by admin, but the quarantine index could not "
        f"record it ({down}): the message shows as may have been released",
        f"user=admin action=release stopped at id={ids[1]} after 1 done; not tried: {ids[2]}, "
        f"{ids[3]}: {down}", f"GET /: {down}"]


def test_a_bulk_action_the_index_fails_between_messages_says_the_next_was_not_done(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """The index goes down as the release port refuses the first message (its own failure, in
    the report as before): the second is not done, its record unread, and is named by its id."""
    server = RedisServer(tmp_path / "redis")

    def refuse_the_first(received: object) -> str:
        server.stop()
        return "554 5.7.1 not this one"

    with SmtpSink(on_receive=refuse_the_first) as sink:
        ids, status, page = bulk_release_in(tmp_path, password_hashes, server, sink, caplog)
        refused = (f"cannot hand the message to 127.0.0.1:{sink.port} (quarantine.release_via): "
                   "(554, b'5.7.1 not this one')")
    assert status == 503 and flash_of(page) == "Release: 0 of 4 done."
    assert flash_details(page) == [
        f"Not done ({refused}): “Number 1”", f"Not done (the quarantine did not answer): {ids[1]}",
        f"Not tried (stopped at the failure above): {ids[2]}, {ids[3]}"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING][-2] == (
        f"user=admin action=release stopped at id={ids[1]} after 0 done; not tried: {ids[2]}, "
        f"{ids[3]}: {index_down(server)}")


def test_a_release_sent_while_the_index_went_down_may_have_been_released_and_is_not_sent_again(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """The index (a Redis that keeps snapshots) goes down while the release port takes the
    message: it went out, and its record was never written. After the restart it read "held",
    and an admin releasing the list again after the outage sent every recipient another copy.
    Now the list and the message page say it may have been released (when, to whom: a user
    her own address only), and a release sends nothing and says why; the admin is told the
    command that sends another copy."""
    server = RedisServer(tmp_path / "redis")

    def stop_the_index(received: object) -> None:
        with server.client() as redis:
            redis.save()  # what the index holds now, the release's record of its start, is kept
        server.stop()

    with SmtpSink(on_receive=stop_the_index) as sink:
        config = parse_config(web_config(tmp_path, password_hashes, quarantine={
            "index": server.url, "release_via": f"127.0.0.1:{sink.port}"}), "test")
        store = open_quarantine(config.quarantine)
        held = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
        with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
            token = log_in(client, "admin")
            assert client.post(f"/message/{held}", data={"csrf": token, "action": "release"}
                               ).status_code == 503
            server.start()
            sink.on_receive = None
            assert "<td>may have been released</td>" in client.get("/").text
            unsure = (r"may have been released at \d{4}-\d\d-\d\d \d\d:\d\d UTC to TO \(by "
                      r"admin\): it began, and whether the mail was sent is not recorded: it is "
                      r"still being sent, or the quarantine index failed or the release was "
                      r"stopped before it recorded that")
            everyone = unsure.replace("TO", r"jane@example\.org, bob@example\.org")
            assert re.search(f"<dd>{everyone}; to send another copy: "
                             f"<code>mailsift quarantine release {held} --again</code></dd>",
                             client.get(f"/message/{held}").text)
            client.post("/bulk", data={"csrf": token, "action": "release", "ids": [held]})
            assert re.fullmatch(rf"Not done \({everyone}; not sent again "
                                rf"\(one more copy: mailsift quarantine release {held} --again\)\): "
                                "“Cheap pills”", flash_details(client.get("/").text)[0])
            token = log_in(client, "jane")
            page = client.get(f"/message/{held}").text
            janes = unsure.replace("TO", r"jane@example\.org")
            assert re.search(f"<dd>{janes}</dd>", page)
            assert "bob@" not in page
            client.post(f"/message/{held}", data={"csrf": token, "action": "release"})
            assert re.fullmatch(f"{held}: {janes}; not sent again",
                                flash_of(client.get(f"/message/{held}").text))
        assert len(sink.messages) == 1
    server.stop()


def test_a_release_the_index_could_not_record_before_sending_is_reported_as_not_done(
        tmp_path: Path, password_hashes: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The index fails as the release is to be recorded, before anything is sent (here SQLite
    locked past its busy timeout by another process): a bulk report said "Unsure (the
    quarantine stopped answering during it: it may be done without its history saying so)" of
    mail that had not gone out. It says the message was not done, by its subject."""
    monkeypatch.setattr(local, "BUSY_TIMEOUT_MS", 100)
    with SmtpSink() as sink:
        config = parse_config(web_config(tmp_path, password_hashes, quarantine={
            "release_via": f"127.0.0.1:{sink.port}"}), "test")
        store = open_quarantine(config.quarantine)
        ids = [store.put(make_message(n), make_meta(["bob@example.org"], subject=f"Number {n}"))
               for n in "12"]
        index = tmp_path / "quarantine" / "index.sqlite"
        with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client, \
                closing(sqlite3.connect(index, isolation_level=None)) as other:
            token = log_in(client, "admin")
            other.execute("BEGIN IMMEDIATE")  # another process writing: readers go on, writers wait
            report = bulk(client, token, "release", ids)
            other.execute("ROLLBACK")
        assert report == ["Release: 0 of 2 done.",
                          "Not done (the quarantine did not answer): “Number 1”",
                          f"Not tried (stopped at the failure above): {ids[1]}"]
        assert sink.messages == []
    assert [store.meta(i)["state"] for i in ids] == ["held", "held"]


def bulk_release_in(tmp_path: Path, password_hashes: dict[str, str], server: RedisServer,
                    sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> tuple[list[str], int, str]:
    """An admin's bulk Release of four messages to Bob held in `server`'s index, released
    through `sink`: their ids, and the status and text of the page the action leads to
    (warnings logged from the action on)."""
    config = parse_config(web_config(tmp_path, password_hashes, quarantine={
        "index": server.url, "release_via": f"127.0.0.1:{sink.port}"}), "test")
    store = open_quarantine(config.quarantine)
    ids = [store.put(make_message(n), make_meta(["bob@example.org"], subject=f"Number {n}"))
           for n in "1234"]
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "admin")
        caplog.set_level(logging.WARNING)
        bulk = client.post("/bulk", data={"csrf": token, "action": "release", "ids": ids})
        assert (bulk.status_code, bulk.headers["location"]) == (303, "/")
        page = client.get("/")  # the index is still down: the 503 page, with the report
    return ids, page.status_code, page.text


def index_down(server: RedisServer) -> str:
    """What the index's failure says in the log while `server` is stopped."""
    return (f"quarantine store unavailable: redis at 127.0.0.1:{server.port}: ConnectionError: "
            f"Error 111 connecting to 127.0.0.1:{server.port}. Connection refused.")


def test_a_failed_release_or_learn_names_no_server_to_a_user(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """With the release port refusing and the Bayes Redis down, a user's flash read "cannot hand
    the message to 127.0.0.1:PORT: ..." and "Bayes store unavailable: redis at 127.0.0.1:PORT";
    it is the 503 page now (a bulk action's report: "a server it needs did not answer"), the
    reason in the log, and an admin still reads it in the flash."""
    closed = free_port()
    data = web_config(tmp_path, password_hashes, quarantine={"release_via": f"127.0.0.1:{closed}"})
    data["bayes"] = {"store": f"redis://127.0.0.1:{closed}/0"}
    config = parse_config(data, "test")
    store = open_quarantine(config.quarantine)
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "jane")
        for action in ("release", "ham"):
            response = client.post(f"/message/{held}", data={"action": action, "csrf": token})
            assert response.status_code == 503, (action, response.text)
            # It read "The quarantine is unavailable right now", beside a list that loaded.
            assert alerts(response.text) == [
                "503: That could not be done right now: a server it needs did not answer. Try "
                "again in a few minutes; if it keeps failing, tell your mail administrator."]
            assert f"{closed}" not in response.text + client.get(f"/message/{held}").text
        bulk = client.post("/bulk", data={"action": "release", "ids": [held], "csrf": token})
        listed = client.get(bulk.headers["location"]).text  # the list, with the bulk's report
        assert flash_details(listed) == ["Not done (a server it needs did not answer (if that "
                                         "lasts, tell your mail administrator)): “Cheap pills”"]
        assert f"{closed}" not in listed
        assert len([r for r in caplog.records if f"127.0.0.1:{closed}" in r.getMessage()]) == 3
        token = log_in(client, "admin")
        client.post(f"/message/{held}", data={"action": "release", "csrf": token})
        assert f"cannot hand the message to 127.0.0.1:{closed}" in client.get(f"/message/{held}").text


def test_a_bulk_action_stops_at_a_failed_server_and_goes_past_a_refused_message_for_everyone(
        tmp_path: Path, password_hashes: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """A bulk action that met the release port or the Bayes store failing went on message by
    message for an admin, each meeting the same failure (a port that hangs: 30 s each) and the
    report repeating it, and stopped at the first for a user, where a message the port refused
    (a recipient, its size: the next may pass) stopped it too, as "a server it needs did not
    answer". Now both stop at a failed server and go on past a refused message, each in their
    own words: an admin's name the server, a user's do not (the log has the reason)."""
    def refuse_number_1(received: Received) -> str | None:
        return "550 5.7.1 not this one" if received.header("Subject") == "Number 1" else None

    closed, sink = free_port(), SmtpSink(on_receive=refuse_number_1)
    data = web_config(tmp_path, password_hashes, quarantine={"release_via": f"127.0.0.1:{sink.port}"})
    data["bayes"] = {"store": f"redis://127.0.0.1:{closed}/0"}
    config = parse_config(data, "test")
    store = open_quarantine(config.quarantine)
    held = {who: [store.put(make_message(f"Number {n}", body=who),
                            make_meta([f"{who}@example.org"], subject=f"Number {n}"))
                  for n in "123"] for who in ("bob", "jane")}
    reviewers = (("admin", held["bob"]), ("jane", held["jane"]))
    reports: dict[str, list[list[str]]] = {"admin": [], "jane": []}
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        with sink:
            for who, ids in reviewers:
                token = log_in(client, who)
                reports[who] += [bulk(client, token, "release", ids[:2]),
                                 bulk(client, token, "spam", ids[1:])]
        for who, ids in reviewers:  # the release port is down now
            token = log_in(client, who)
            reports[who].append(bulk(client, token, "release", [ids[0], ids[2]]))
    via = f"cannot hand the message to 127.0.0.1:{sink.port} (quarantine.release_via)"
    bayes = (f"Bayes store unavailable: redis at 127.0.0.1:{closed}: ConnectionError: Error 111 "
             f"connecting to 127.0.0.1:{closed}. Connection refused")
    down = (f"{via}: Connection refused; is Postfix's smtpd without the milter, the master.cf entry "
            "`mailsift postfix` prints, running there?")
    unanswered = "a server it needs did not answer (if that lasts, tell your mail administrator)"

    def stopped(ids: list[str]) -> str:
        return f"Not tried (stopped at the failure above): {ids[2]}"

    bobs, janes = held["bob"], held["jane"]
    assert reports["admin"] == [
        ["Release: 1 of 2 done.", f"Not done ({via}: (550, b'5.7.1 not this one')): “Number 1”",
         "Released to bob@example.org: “Number 2”"],
        ["Learn as spam: 0 of 2 done.", f"Not done ({bayes}): “Number 2”", stopped(bobs)],
        ["Release: 0 of 2 done.", f"Not done ({down}): “Number 1”", stopped(bobs)]]
    assert reports["jane"] == [
        ["Release: 1 of 2 done.", "Not done (the mail server refused it (if you need it, tell "
         "your mail administrator)): “Number 1”", "Released to jane@example.org: “Number 2”"],
        ["Learn as spam: 0 of 2 done.", f"Not done ({unanswered}): “Number 2”", stopped(janes)],
        ["Release: 0 of 2 done.", f"Not done ({unanswered}): “Number 1”", stopped(janes)]]
    assert any(r.getMessage() == f"user=jane action=release id={janes[0]}: {via}: (550, "
               "b'5.7.1 not this one')" for r in caplog.records)


def test_a_release_port_answering_try_later_stops_a_bulk_action_as_a_failed_one(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """A temporary reply (4xx) is the server's state, not the message's: Postfix's 452 for a
    full queue met every later message of a bulk release too, which went on past it message by
    message, and a 421 to RCPT (the port shutting down) was taken for a refusal of the message
    ("the mail server refused it", to a user). Both stop the action now, as a port that does
    not answer; a 5xx refusal still fails alone (the test above)."""
    sink = SmtpSink(on_receive=lambda _: "452 4.3.1 Insufficient system storage")
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "test")
    store = open_quarantine(config.quarantine)
    ids = [store.put(make_message(f"Number {n}"), make_meta(["jane@example.org"],
                                                             subject=f"Number {n}"))
           for n in "12"]
    via = f"cannot hand the message to 127.0.0.1:{sink.port} (quarantine.release_via)"
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client, sink:
        report = bulk(client, log_in(client, "admin"), "release", ids)
    assert report == ["Release: 0 of 2 done.",
                      f"Not done ({via}: (452, b'4.3.1 Insufficient system storage')): “Number 1”",
                      f"Not tried (stopped at the failure above): {ids[1]}"]
    assert len(sink.messages) == 1
    closing_port = SmtpSink(on_rcpt=lambda _: "421 4.3.2 Service shutting down")
    with closing_port, pytest.raises(ServerFailed) as failed:
        smtp_send(f"127.0.0.1:{closing_port.port}", "tom@example.com", ["jane@example.org"],
                  make_message())
    assert not isinstance(failed.value, Refused), failed.value


def bulk(client: TestClient, token: str, action: str, ids: list[str]) -> list[str]:
    """A bulk action's report: its flash, then the line of each outcome."""
    done = client.post("/bulk", data={"csrf": token, "action": action, "ids": ids})
    page = client.get(done.headers["location"]).text
    return [flash_of(page), *flash_details(page)]


def test_a_damaged_record_is_named_to_an_admin_and_hidden_from_a_user(
        tmp_path: Path, password_hashes: dict[str, str], redis_server: RedisServer) -> None:
    """A record a redis-cli session garbled read "404: No such message" to the admin too, on the
    page and in a bulk action, where `quarantine show` names it and how to save the message."""
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"index": redis_server.url}), "test")
    store = open_quarantine(config.quarantine)
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    with redis_server.client() as redis:
        for key in redis.scan_iter(match=f"*msg:{held}"):
            redis.hset(key, "record", "{not json")
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "admin")
        page = client.get(f"/message/{held}")
        assert page.status_code == 500
        assert f"the record of message {held}" in page.text and "is not JSON" in page.text
        assert f"mailsift quarantine show {held} --raw" in page.text
        client.post("/bulk", data={"action": "delete", "ids": [held], "csrf": token})
        flashed = client.get("/").text
        assert "Not done (quarantine index redis at" in flashed and "is not JSON" in flashed
        assert f"{held}</li>" in flashed
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        log_in(client, "jane")
        page = client.get(f"/message/{held}")
        assert page.status_code == 404
        assert '<p class="error" role="alert">404: No such message.</p>' in page.text
        assert "not JSON" not in page.text and "show" not in page.text
    assert store.raw(held) == make_message()


def test_release_and_learn_as_ham_with_bayes_down_says_the_mail_was_released(
        tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink,
        caplog: pytest.LogCaptureFixture) -> None:
    """"Release + learn as ham" with the Bayes store down sent the mail, then said only "Not done
    (Bayes store unavailable: ...)" to an admin (a user got the 503 page, "could not be done"),
    never that it went out: its reviewer thought it still held. Both are said now, the reason
    where an admin reads it (the flash, for a user the log), on the page and in a bulk action;
    doing it again learns it and sends nothing twice."""
    closed = free_port()
    data = web_config(tmp_path, password_hashes, quarantine={"release_via": f"127.0.0.1:{sink.port}"})
    data["bayes"] = {"store": f"redis://127.0.0.1:{closed}/0"}
    config = parse_config(data, "test")
    store = open_quarantine(config.quarantine)
    janes = store.put(make_message("a"), make_meta(["jane@example.org"], subject="Jane's"))
    bobs = store.put(make_message("b"), make_meta(["bob@example.org"], subject="Bob's"))
    both = store.put(make_message("c"), make_meta(["jane@example.org", "bob@example.org"],
                                                  subject="Both"))
    reason = (f"Bayes store unavailable: redis at 127.0.0.1:{closed}: ConnectionError: Error 111 "
              f"connecting to 127.0.0.1:{closed}. Connection refused")
    again = "Release + learn as ham again learns it and sends nothing twice."
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "jane")
        done = client.post(f"/message/{janes}", data={"csrf": token, "action": "release-ham"})
        assert done.status_code == 303, done.text
        assert flash_of(client.get(done.headers["location"]).text) == (
            "Released to jane@example.org. Not learned as ham: a server it needs did not answer "
            f"(if that lasts, tell your mail administrator). {again}")
        assert any(r.getMessage() == f"{janes}: released, but not learned as ham: {reason}."
                   for r in caplog.records)
        token = log_in(client, "admin")
        client.post("/bulk", data={"csrf": token, "action": "release-ham", "ids": [bobs, both]})
        page = client.get("/").text
    assert flash_of(page) == "Release + learn as ham: 2 of 2 done, 2 of them only in part."
    assert flash_details(page) == [
        f"Released to bob@example.org. Not learned as ham: {reason}. {again[:-1]}: “Bob's”",
        f"Released to jane@example.org, bob@example.org. Not learned as ham: {reason}. "
        f"{again[:-1]}: “Both”"]
    assert len(sink.wait_for(3)) == 3
    assert {store.meta(i)["state"] for i in (janes, bobs, both)} == {"released"}


def test_a_local_index_that_fails_is_down_for_users_and_says_why_to_admins(
        tmp_path: Path, password_hashes: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The local SQLite index failing a write (locked past its busy timeout by another process;
    a full disk or a file the web UI may read but not write fail alike): a user's release said
    "Not done (quarantine index /var/lib/...: database is locked)", the server's path to a
    hosting customer, where a Redis index down gave the 503 page. Now the local index down is
    that page too; an admin also reads its reason there (before: only in the log), here for a
    damaged file."""
    monkeypatch.setattr(local, "BUSY_TIMEOUT_MS", 100)
    config = parse_config(web_config(tmp_path, password_hashes), "test")
    store = open_quarantine(config.quarantine)
    held = store.put(make_message(), make_meta(["jane@example.org"], subject="Jane's own"))
    index = tmp_path / "quarantine" / "index.sqlite"
    app = create_app(config, store, "s" * 32)
    with TestClient(app, follow_redirects=False) as jane, \
            TestClient(app, follow_redirects=False) as admin, \
            closing(sqlite3.connect(index, isolation_level=None)) as other:
        log_in(jane, "jane")
        log_in(admin, "admin")
        page = jane.get(f"/message/{held}")
        other.execute("BEGIN EXCLUSIVE")  # another process writing: readers go on, writers wait
        release = jane.post(f"/message/{held}", data={"action": "release",
                                                      "csrf": csrf_of(page.text)})
        other.execute("ROLLBACK")
        assert release.status_code == 503 and str(tmp_path) not in release.text
        assert alerts(release.text) == [
            "503: The quarantine is unavailable right now; try again in a few minutes."]
        for leftover in index.parent.glob("index.sqlite-*"):  # the WAL's files
            leftover.unlink()
        index.write_bytes(b"not an index " * 512)
        shown = admin.get(f"/message/{held}")
        assert shown.status_code == 503
        assert f"quarantine index {index}: file is not a database" in shown.text
