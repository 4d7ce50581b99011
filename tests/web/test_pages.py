"""The review UI's pages and commands beyond security: lists, release scope, paging, start-up."""

from __future__ import annotations

import gc
import html
import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from starlette.testclient import TestClient

from mailsift.cli import cli
from mailsift.config import Config, parse_config
from mailsift.quarantine.model import FORGED_KEY, RELEASING, forged_evidence
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from mailsift.web.app import SESSION_COOKIE, create_app
from mailsift.web.server import listening_at
from tests.quarantine.conftest import informational_meta, make_capped_meta, make_message, make_meta
from tests.support.milter_process import to_toml
from tests.support.redis_server import RedisClusterServers
from tests.support.sink import SmtpSink
from tests.web.conftest import flash_of, log_in, web_config


def test_user_keeps_own_welcome_and_block_lists(client: TestClient, store: QuarantineStore) -> None:
    token = log_in(client, "jane")
    for kind, entry in (("welcome", "Friend@Example.com"), ("block", "@spam.example")):
        response = client.post("/lists", data={"csrf": token, "address": "jane@example.org",
                                               "kind": kind, "entry": entry, "op": "add"})
        assert response.status_code == 303
    lists = store.backend.all_lists()["jane@example.org"]
    assert (lists.welcome, lists.block) == ({"friend@example.com"}, {"spam.example"})
    assert "friend@example.com" in client.get("/lists").text
    refused = client.post("/lists", data={"csrf": token, "address": "bob@example.org",
                                          "kind": "block", "entry": "x.example", "op": "add"})
    assert refused.status_code == 403
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": "not an address", "op": "add"})
    assert "not an address or domain" in client.get("/lists").text


def test_the_lists_page_says_welcome_entries_count_for_nothing_without_network_checks(
        tmp_path: Path, password_hashes: dict[str, str], store: QuarantineStore) -> None:
    """With dns.enabled false no welcome entry counts (nothing proves a sender), and a user who
    added one was told nothing of it."""
    warning = ("Welcome entries count for nothing on this site now: its network checks are off, so "
               "nothing can confirm a sender (your mail administrator turns them on with "
               "dns.enabled). Block entries count.")
    for enabled in (False, True):
        data = web_config(tmp_path, password_hashes)
        config = parse_config({**data, "dns": {"enabled": enabled}}, "t")
        with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
            log_in(client, "jane")
            page = html.unescape(re.sub(r"\s+", " ", client.get("/lists").text))
        assert (warning in page) is not enabled


def test_the_lists_page_of_a_login_without_addresses_says_why_it_is_empty(client: TestClient) -> None:
    """An admin without addresses who opened /lists got a heading and nothing under it."""
    log_in(client, "admin")
    page = html.unescape(re.sub(r"\s+", " ", client.get("/lists").text))
    assert ("Your login has no mail addresses (addresses in its [[web.users]] entry), so it keeps "
            "no lists: each list belongs to one of your addresses.") in page
    log_in(client, "jane")
    assert "Your login has no mail addresses" not in client.get("/lists").text


# Entries older versions stored that list_entry now refuses: they match nothing. The last was
# refused before too (IDNA refuses the joiner), stored as typed by an older version still.
STORED_BEFORE = ["192.0.2.1", "-bad.example", "bü\u200dcher.example"]


@pytest.mark.parametrize("stored", STORED_BEFORE)
def test_an_entry_an_older_version_stored_that_matches_nothing_is_said_so_and_removed(
        client: TestClient, store: QuarantineStore, stored: str) -> None:
    """Remove ran list_entry on the form's entry first, so a refused one stayed for good."""
    store.backend.set_listed("jane@example.org", "block", stored, True)
    store.backend.set_listed("jane@example.org", "block", "spam.example", True)
    token = log_in(client, "jane")
    page = html.unescape(client.get("/lists").text)
    assert page.count("(matches nothing: ") == 1
    assert re.search(f"<li>{re.escape(stored)}\\s*<span class=\"note\">\\(matches nothing: ", page)
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": stored, "op": "remove"})
    assert store.backend.all_lists()["jane@example.org"].block == {"spam.example"}
    assert flash_of(client.get("/lists").text) == (
        f"Removed {stored} from the block list of jane@example.org.")


def test_an_entry_matching_nothing_goes_only_from_a_list_holding_it_of_the_users_own(
        client: TestClient, store: QuarantineStore) -> None:
    """Removing an entry list_entry refuses takes it as the list stores it: never from another
    user's list, nor another kind, and adding it is refused with what to write instead."""
    store.backend.set_listed("bob@example.org", "block", "192.0.2.1", True)
    store.backend.set_listed("jane@example.org", "welcome", "192.0.2.1", True)
    token = log_in(client, "jane")
    form = {"csrf": token, "address": "jane@example.org", "kind": "block", "entry": "192.0.2.1"}
    assert client.post("/lists", data={**form, "address": "bob@example.org", "op": "remove"}
                       ).status_code == 403
    for op in ("remove", "add"):
        client.post("/lists", data={**form, "op": op})
        assert flash_of(client.get("/lists").text).startswith(
            "'192.0.2.1': an IP address, not a sender: list the sender's address or domain; "
            "client addresses are judged by the network checks")
    lists = store.backend.all_lists()
    assert (lists["bob@example.org"].block, lists["jane@example.org"].welcome) == ({"192.0.2.1"},
                                                                                   {"192.0.2.1"})
    assert not lists["jane@example.org"].block


@pytest.mark.parametrize("typed", ["other.example", "Bücher.example", "jane@spam.example"])
def test_removing_an_entry_the_list_does_not_hold_says_so(
        client: TestClient, store: QuarantineStore, typed: str) -> None:
    """It flashed "Removed other.example from the block list" though nothing changed, and the
    user who mistyped the entry meant believed it gone."""
    store.backend.set_listed("jane@example.org", "block", "spam.example", True)
    store.backend.set_listed("jane@example.org", "welcome", "xn--bcher-kva.example", True)
    token = log_in(client, "jane")
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": typed, "op": "remove"})
    lists = store.backend.all_lists()["jane@example.org"]
    assert (lists.block, lists.welcome) == ({"spam.example"}, {"xn--bcher-kva.example"})
    assert flash_of(client.get("/lists").text) == (
        f"{typed.lower()} was not in the block list of jane@example.org; nothing was removed.")


def test_removing_an_entry_stored_with_a_line_break_logs_one_line(
        client: TestClient, store: QuarantineStore, caplog: pytest.LogCaptureFixture) -> None:
    """An older version stored entries with a line break (isprintable came later), and Remove
    logs the entry as stored: the UI's log keeps it on one line, escaped, so its second half
    cannot pass for a line of its own. Guards that path (it held on the old code too)."""
    caplog.set_level(logging.INFO)
    stored = "x.example\nmailsift: INFO mailsift.web: user=admin"
    store.backend.set_listed("jane@example.org", "block", stored, True)
    token = log_in(client, "jane")
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": stored, "op": "remove"})
    assert store.backend.all_lists() == {}
    removals = [r.getMessage() for r in caplog.records if "removed from" in r.getMessage()]
    assert removals == ["user=jane removed from block list of jane@example.org: "
                        "x.example\\nmailsift: INFO mailsift.web: user=admin"]


@pytest.mark.parametrize(("stored", "typed"), [
    ("spam.example", "@Spam.example"),  # as stored
    ("xn--bcher-kva.example", "Bücher.example"),  # the other spelling of the stored entry
    ("bücher.example", "xn--bcher-kva.example"),  # an older version stored it as typed
])
def test_adding_an_entry_the_list_already_holds_says_so(
        client: TestClient, store: QuarantineStore, caplog: pytest.LogCaptureFixture,
        stored: str, typed: str) -> None:
    """It flashed "Added spam.example to the block list" and logged an addition though the list
    held the entry already, in this or another spelling the scanner reads as the same entry."""
    caplog.set_level(logging.INFO)
    store.backend.set_listed("jane@example.org", "block", stored, True)
    token = log_in(client, "jane")
    client.post("/lists", data={"csrf": token, "address": "jane@example.org", "kind": "block",
                                "entry": typed, "op": "add"})
    assert store.backend.all_lists()["jane@example.org"].block == {stored}
    shown = typed.lower().removeprefix("@").replace("xn--bcher-kva", "bücher")
    assert flash_of(client.get("/lists").text) == (
        f"{shown} is already in the block list of jane@example.org; nothing was added.")
    assert not [r for r in caplog.records if "added to" in r.getMessage()]


def test_user_release_goes_only_to_their_own_address(tmp_path: Path, password_hashes: dict[str, str]
                                                      ) -> None:
    with SmtpSink() as sink:
        config = parse_config(web_config(tmp_path, password_hashes,
                                         quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "t")
        store = open_quarantine(config.quarantine)
        message_id = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
        with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
            token = log_in(client, "jane")
            client.post(f"/message/{message_id}", data={"csrf": token, "action": "release"})
        [received] = sink.wait_for(1)
    assert received.recipients == ("jane@example.org",)
    assert store.meta(message_id)["events"][-1]["user"] == "jane"


def test_a_second_release_says_so_without_a_command_option(
        tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> None:
    """A second Release said "(release again on purpose: --again)", an option of `quarantine
    release` that the page has not: a user cannot use it; an admin is told the command."""
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "t")
    store = open_quarantine(config.quarantine)
    message_id = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        flashes = []
        for name in ("jane", "jane", "admin", "admin"):
            token = log_in(client, name)
            done = client.post(f"/message/{message_id}", data={"csrf": token, "action": "release"})
            flashes.append(flash_of(client.get(done.headers["location"]).text))
    assert flashes == [
        "Released to jane@example.org.",
        f"{message_id}: already released to jane@example.org; not sent again",
        "Released to bob@example.org.",
        f"{message_id}: already released to jane@example.org, bob@example.org; not sent again "
        f"(one more copy: mailsift quarantine release {message_id} --again)"]
    assert len(sink.wait_for(2)) == 2


def test_release_and_learn_as_ham_of_a_released_message_still_learns(
        tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> None:
    """"Release + learn as ham" of a message released before was refused as a second release
    ("already released to ...; not sent again"), and the ham learning its reviewer asked for
    was not done either. It is learned now, and the flash says both, on the message's page as
    in a bulk action."""
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "t")
    store = open_quarantine(config.quarantine)
    janes = store.put(make_message("a"), make_meta(["jane@example.org"], subject="Jane's"))
    bobs = store.put(make_message("b"), make_meta(["bob@example.org"], subject="Bob's"))
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "jane")
        for action in ("release", "release-ham"):
            done = client.post(f"/message/{janes}", data={"csrf": token, "action": action})
        assert flash_of(client.get(done.headers["location"]).text) == (
            "Already released to jane@example.org; not sent again. Learned (ham): learned as ham.")
        token = log_in(client, "admin")
        client.post(f"/message/{bobs}", data={"csrf": token, "action": "release"})
        client.post("/bulk", data={"csrf": token, "action": "release-ham", "ids": [janes, bobs]})
        page = client.get("/").text
    assert flash_of(page) == "Release + learn as ham: 2 of 2 done."
    assert flash_details(page) == [
        f"Already released to jane@example.org; not sent again (one more copy: mailsift "
        f"quarantine release {janes} --again). Learned (ham): already learned as ham (nothing "
        "changed): “Jane's”",
        f"Already released to bob@example.org; not sent again (one more copy: mailsift "
        f"quarantine release {bobs} --again). Learned (ham): learned as ham: “Bob's”"]
    assert len(sink.messages) == 2  # the first releases only (each sent before its page answered)
    assert [e["action"] for e in store.meta(bobs)["events"]] == ["released", "learned"]


def flash_details(page: str) -> list[str]:
    """The lines under a bulk action's flash: each outcome and the messages it befell."""
    found = re.search(r'<ul class="flash-detail">(.*?)</ul>', page, re.S)
    assert found, "page flashes no details"
    return [html.unescape(line) for line in re.findall(r"<li>([^<]*)</li>", found.group(1))]


def test_a_bulk_action_says_what_befell_each_message(
        tmp_path: Path, password_hashes: dict[str, str], sink: SmtpSink) -> None:
    """A bulk Release said "Release: 2 of 3 done" and the id of the one that failed: not whom
    the others went to (Bob only, where Jane had released hers), nor which message failed by a
    name its reviewer knows; a bulk learn said "done" of messages it left as they were."""
    config = parse_config(web_config(tmp_path, password_hashes,
                                     quarantine={"release_via": f"127.0.0.1:{sink.port}"}), "t")
    store = open_quarantine(config.quarantine)
    both = store.put(make_message("a"), make_meta(["jane@example.org", "bob@example.org"], subject="Both"))
    bobs = store.put(make_message("b"), make_meta(["bob@example.org"], subject="Bob's"))
    janes = store.put(make_message("c"), make_meta(["jane@example.org"], subject="Jane's " + "x" * 60))
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        token = log_in(client, "jane")
        client.post(f"/message/{janes}", data={"csrf": token, "action": "release"})
        client.post(f"/message/{both}", data={"csrf": token, "action": "release"})
        token = log_in(client, "admin")
        ids = [both, bobs, janes, "no-such-id"]
        client.post("/bulk", data={"csrf": token, "action": "release", "ids": ids, "back": "/"})
        page = client.get("/").text
        assert flash_of(page) == "Release: 2 of 4 done."
        assert flash_details(page) == [
            "Released to bob@example.org: “Both”, “Bob's”",
            f"Not done (already released to jane@example.org; not sent again (one more copy: "
            f"mailsift quarantine release {janes} --again)): “Jane's {'x' * 42}…”",
            "Not done (no such message): no-such-id"]
        client.post("/bulk", data={"csrf": token, "action": "spam", "ids": [bobs]})
        client.post("/bulk", data={"csrf": token, "action": "spam", "ids": [both, bobs]})
        assert flash_details(client.get("/").text) == [
            "Learned (spam): learned as spam: “Both”",
            "Learned (spam): already learned as spam (nothing changed): “Bob's”"]


def test_a_long_bulk_report_is_cut_to_what_the_session_cookie_holds(
        client: TestClient, store: QuarantineStore) -> None:
    """Each outcome names its messages: 50 of them failing each in its own words would not fit
    the cookie the report travels in, and a browser drops a cookie too big, logging its user out."""
    token = log_in(client, "admin")
    gone = [store.put(make_message(f"g{n}"), make_meta()) for n in range(50)]
    for message_id in gone:  # each then fails as "message ID was already deleted", by its own id
        store.delete(message_id, "admin")
    ids = [store.put(make_message(f"m{n}"), make_meta(subject="s" * 60)) for n in range(3)] + gone
    client.post("/bulk", data={"csrf": token, "action": "delete", "ids": ids})
    assert 2000 < len(client.cookies[SESSION_COOKIE]) < 3000  # the report is in it, cut short
    page = client.get("/")
    assert page.status_code == 200 and flash_of(page.text) == "Delete: 3 of 53 done."
    details = flash_details(page.text)
    assert details[0] == f"Deleted: “{'s' * 49}…”, “{'s' * 49}…”, “{'s' * 49}…”"
    assert details[-1].startswith("and ") and details[-1].endswith(
        " other outcome(s): see the messages' history")


@contextmanager
def admin_on_pages_of_five(tmp_path: Path, password_hashes: dict[str, str], messages: int
                           ) -> Iterator[TestClient]:
    """An admin's client on a list of `messages` messages, five a page, scored 10, 11, 12..."""
    config: Config = parse_config(web_config(tmp_path, password_hashes, web={"page_size": 5}), "t")
    store = open_quarantine(config.quarantine)
    for n in range(messages):
        store.put(make_message(f"m{n}"), make_meta(score=10.0 + n, subject=f"subject-{n}"))
    with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
        log_in(client, "admin")
        yield client


def test_list_pages_and_sorts(tmp_path: Path, password_hashes: dict[str, str]) -> None:
    with admin_on_pages_of_five(tmp_path, password_hashes, 7) as client:
        first = client.get("/?sort=score&dir=asc").text
        second = client.get("/?sort=score&dir=asc&page=2").text
    assert "subject-0" in first and "subject-4" in first and "subject-5" not in first
    assert "subject-5" in second and "subject-6" in second and "Page 2 of 2" in second
    assert first.index("subject-0") < first.index("subject-1")


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")}}))
    return path


def test_web_refuses_to_start_without_an_admin(cli_config: Path) -> None:
    done = CliRunner().invoke(cli, ["--config", str(cli_config), "web"], standalone_mode=False)
    assert getattr(done.exception, "exit_code", 0) == 2
    assert str(getattr(done.exception, "message", "")) == (
        f"web: {cli_config}: web.users: no admin in [[web.users]] (there is no default password); "
        'allowed: at least one with role = "admin" and a password_hash from `mailsift web '
        'hash-password`')


def test_a_short_session_secret_is_named_with_where_it_came_from(
        tmp_path: Path, password_hashes: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """"the session secret is shorter than 16 characters" named neither the file nor the
    variable it came from, nor how to make one long enough."""
    secret = tmp_path / "web.secret"
    secret.write_text("short\n")
    data = web_config(tmp_path, password_hashes, web={"secret_file": str(secret)})
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml(data))
    done = CliRunner().invoke(cli, ["--config", str(path), "web"], standalone_mode=False)
    assert getattr(done.exception, "message", "") == (
        f"web: {path}: web.secret_file: {secret}: the session secret is 5 characters; allowed: "
        "at least 16, e.g. made by `head -c 32 /dev/urandom | base64`")
    path.write_text(to_toml(web_config(tmp_path, password_hashes)))
    monkeypatch.setenv("MAILSIFT_WEB_SECRET", "0123456789")
    done = CliRunner().invoke(cli, ["--config", str(path), "web"], standalone_mode=False)
    assert getattr(done.exception, "message", "").startswith(
        "web: $MAILSIFT_WEB_SECRET: the session secret is 10 characters; allowed: at least 16")


def test_a_listen_address_in_use_is_named_with_its_key(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """uvicorn stopped with exit status 3 and "ERROR: [Errno 98] error while attempting to bind
    on address ('127.0.0.1', PORT): address already in use", after the log said the UI ran
    there; a listen address of another host the same way."""
    path = tmp_path / "mailsift.toml"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        path.write_text(to_toml(web_config(tmp_path, password_hashes, web={"listen": listen})))
        done = CliRunner().invoke(cli, ["--config", str(path), "web"], standalone_mode=False,
                                  env={"MAILSIFT_WEB_SECRET": "s" * 32})
    assert getattr(done.exception, "exit_code", 0) == 2
    assert getattr(done.exception, "message", "") == (
        f"web: {path}: web.listen: cannot listen on {listen}: Address already in use (another "
        "program, or another mailsift web, holds that port, or the address is not this host's); "
        "allowed: a free HOST:PORT of this host, e.g. 127.0.0.1:8025")
    path.write_text(to_toml(web_config(tmp_path, password_hashes, web={"listen": "192.0.2.1:8025"})))
    done = CliRunner().invoke(cli, ["--config", str(path), "web"], standalone_mode=False)
    assert "web.listen: cannot listen on 192.0.2.1:8025: Cannot assign requested address" in getattr(
        done.exception, "message", "")


def test_the_log_names_where_the_ui_listens_as_a_browser_takes_it() -> None:
    """web.listen = ":8025" was logged as "review UI on http://:8025/", [::1]:8025 as
    "http://::1:8025/", and 0.0.0.0:8025 or [::]:8025 as an address no browser opens either."""
    every = "port 8025 of every address of this host"
    assert [listening_at(host, 8025) for host in ("127.0.0.1", "::1", "", "0.0.0.0", "::")] == [
        "http://127.0.0.1:8025/", "http://[::1]:8025/", every, every, every]


def test_a_command_run_in_process_leaves_logging_as_it_was(cli_config: Path) -> None:
    """`mailsift web` set the `mailsift` logger to INFO and left it so: after the test above, a
    test counting log records counted INFO lines too, so the order tests ran in changed results.
    The root logger is emptied here as in a process of its own, where `-v`'s basicConfig adds a
    handler (pytest's own handlers make it do nothing otherwise)."""
    root, package = logging.getLogger(), logging.getLogger("mailsift")
    before = (root.level, package.level)
    pytests_handlers = list(root.handlers)
    for handler in pytests_handlers:
        root.removeHandler(handler)
    try:
        done = CliRunner().invoke(cli, ["--config", str(cli_config), "-v", "web"], standalone_mode=False)
        after = (root.level, package.level), list(root.handlers)
    finally:
        for handler in pytests_handlers:
            root.addHandler(handler)
    assert "no admin" in str(getattr(done.exception, "message", ""))
    assert after == (before, [])


def test_hash_password_reads_stdin_and_prints_an_argon2_hash() -> None:
    done = CliRunner().invoke(cli, ["web", "hash-password"], input="correct horse battery\n")
    assert done.exit_code == 0, done.output
    assert PasswordHasher().verify(done.output.strip(), "correct horse battery")
    assert "correct horse" not in done.output


def stats_of(page: str) -> tuple[dict[str, int], list[str], str | None]:
    """The stats page as its reader takes it: the legend's totals, the top rules (A to Z: rules
    hit by as many messages come in no set order), the Bayes line."""
    legend = {name: int(count) for name, count in re.findall(r'</span>([\w ]+): (\d+)</li>', page)}
    rules = sorted(re.findall(r"<tr><td>(\w+)</td><td class=\"num\">", page))
    bayes = re.search(r"<h2>Bayes</h2>\s*<p[^>]*>([^<]*)</p>", page)
    return legend, rules, bayes.group(1) if bayes else None


def test_a_users_stats_are_of_her_own_mail_without_the_sites_bayes_counts(
        client: TestClient, store: QuarantineStore) -> None:
    """A user's stats page showed what the site's Bayes store had learned, every reviewer's and
    `mailsift learn`'s corrections (and whether that store was reachable): the admin's business,
    where the UI promises a user only mail to her own addresses. Her chart and rules were hers
    already (a guard); the admin's page is as it was."""
    store.put(make_message("j"), make_meta(["jane@example.org"]))
    bobs = store.put(make_message("b"), {**informational_meta(), "recipients": ["bob@example.org"]})
    token = log_in(client, "admin")
    client.post(f"/message/{bobs}", data={"csrf": token, "action": "spam"})
    admins = stats_of(client.get("/stats").text)
    assert admins == ({"held": 1, "released": 0, "learned": 1, "deleted": 0},
                      ["BIG_RULE", "FREEMAIL_FORGED_REPLYTO_AND_DISPLAY_NAME", "LOW_RULE", "URIBL_BLOCKED"],
                      "Learned: 1 spam, 0 ham.")
    log_in(client, "jane")
    page = client.get("/stats").text
    assert stats_of(page) == ({"held": 1, "released": 0, "learned": 0, "deleted": 0},
                              ["BIG_RULE", "LOW_RULE"], None)
    assert "Bayes" not in page and "spam, 0 ham" not in page
    assert re.sub(r"\s+", " ", html.unescape(page)).count(
        "Of mail held for your addresses (jane@example.org) only.") == 1


def test_the_stats_count_a_release_not_recorded_as_may_have_been_released(
        client: TestClient, store: QuarantineStore) -> None:
    """The stats page counted a message whose release began and was never recorded as done or
    failed (review.release: the index failed, the process was killed) as held, where the list
    says "may have been released": the mail may well have gone out. It has its own count and
    bars now, in the list's words; the legend names it only while there is one."""
    store.put(make_message("a"), make_meta(["jane@example.org"]))
    unsure = store.put(make_message("b"), make_meta(["jane@example.org"]))
    log_in(client, "admin")
    assert stats_of(client.get("/stats").text)[0] == {"held": 2, "released": 0, "learned": 0,
                                                      "deleted": 0}
    store.change(unsure, lambda record: record.update(state=RELEASING, releasing={
        "jane@example.org": {"time": "2026-05-01T10:00:00+00:00", "by": "admin"}}))
    page = client.get("/stats").text
    assert stats_of(page)[0] == {"held": 1, "may have been released": 1, "released": 0,
                                 "learned": 0, "deleted": 0}
    assert re.search(r'<rect class="bar releasing" [^>]*><title>\d{4}-\d\d-\d\d: 1 may have been '
                     r'released</title></rect>', page)


def test_bayes_views_and_learning_leave_no_store_connections_open(
        tmp_path: Path, password_hashes: dict[str, str], redis_cluster: RedisClusterServers) -> None:
    """Each stats view and each learn action opens the Bayes store; it must close it too. A
    cluster client's objects refer to each other, so without closing its connections stay
    until the cyclic garbage collector runs: paused here, as it may not run for a long time."""
    redis_cluster.flush()
    data = web_config(tmp_path, password_hashes)
    data["bayes"] = {"store": "redis://",
                     "cluster_nodes": [f"{host}:{port}" for host, port in redis_cluster.seeds]}
    config = parse_config(data, "t")
    store = open_quarantine(config.quarantine)
    message_id = store.put(make_message(), make_meta(["jane@example.org"]))
    gc.collect()
    gc.disable()
    try:
        with TestClient(create_app(config, store, "s" * 32), follow_redirects=False) as client:
            token = log_in(client, "admin")
            for _ in range(3):
                assert "Learned: 0 spam, 0 ham." in client.get("/stats").text
            for action in ("ham", "forget", "ham"):
                client.post(f"/message/{message_id}", data={"csrf": token, "action": action})
            assert "Learned: 0 spam, 1 ham." in client.get("/stats").text
            assert cluster_clients(redis_cluster) == 0
    finally:
        gc.enable()


def cluster_clients(cluster: RedisClusterServers) -> int:
    """Connections to the cluster's nodes other than the one asking."""
    total = 0
    for node in cluster.primaries:
        with node.client() as probe:
            total += len(probe.client_list()) - 1
    return total


def test_message_page_lists_the_cap_row_as_quarantine_show_does(
        client: TestClient, store: QuarantineStore) -> None:
    """The rule table left out what a capped group lost, so its rows added up to more than the score."""
    message_id = store.put(make_message(), make_capped_meta())
    log_in(client, "admin")
    page = client.get(f"/message/{message_id}").text
    assert "<td>(cap: money)</td>" in page and '<td class="num">-1.4</td>' in page
    assert "score 11.0 (required 5.0)" not in page  # the stored reason repeated the Score row


def test_the_page_of_a_deleted_message_says_where_its_text_went(
        client: TestClient, store: QuarantineStore) -> None:
    """Its page (a link, a bookmark, the id in a report) showed the envelope and rules and
    ended there, without a word about the missing text."""
    held = store.put(make_message(), make_meta(["jane@example.org"]))
    token = log_in(client, "jane")
    client.post(f"/message/{held}", data={"csrf": token, "action": "delete"})
    page = re.sub(r"\s+", " ", client.get(f"/message/{held}").text)
    assert ("The message was deleted (see its history): its text is gone, and this record stays "
            "until it expires.") in page


def test_a_text_cut_short_says_where_and_how_to_read_it_whole(
        client: TestClient, store: QuarantineStore) -> None:
    """The note said "the whole message is in the raw copy", which no page offers."""
    held = store.put(make_message(body="word " * 50_000), make_meta(["jane@example.org"]))
    log_in(client, "jane")
    page = re.sub(r"<[^>]+>", "", client.get(f"/message/{held}").text)
    assert (f"(cut here, after 200,000 characters; an admin reads the whole message with mailsift "
            f"quarantine show {held} --raw)") in page


def test_message_page_shows_informational_scores(client: TestClient, store: QuarantineStore) -> None:
    """A 0.001-point rule showed as 0.0 beside the rules that counted."""
    message_id = store.put(make_message(), informational_meta())
    log_in(client, "admin")
    assert '<td class="num">0.001</td><td>URIBL_BLOCKED</td>' in client.get(f"/message/{message_id}").text


def test_message_page_names_a_client_without_a_verified_name_unknown(
        client: TestClient, store: QuarantineStore) -> None:
    """It read '[2001:db8::5] [2001:db8::5]'; the milter's log line says 'unknown[2001:db8::5]'."""
    meta = {**make_meta(), "client_name": "[2001:db8::5]", "client_ip": "2001:db8::5"}
    message_id = store.put(make_message(), meta)
    log_in(client, "admin")
    assert "<dd>unknown[2001:db8::5], HELO bad.example</dd>" in client.get(f"/message/{message_id}").text


def test_message_page_says_which_forged_results_the_held_copy_lost_as_text(
        client: TestClient, store: QuarantineStore) -> None:
    """The milter removes Authentication-Results claiming our name from the held copy too, and
    nothing showed a reviewer that the message had come with them. Written by the sender, they
    are shown escaped, never as HTML; a message without them has no such line."""
    claim = 'mx.our.test; dkim=pass header.d=<b onclick="x()">bank</b>.example'
    forged = store.put(make_message(), {**make_meta(["jane@example.org"]),
                                        FORGED_KEY: forged_evidence([claim, claim])})
    plain = store.put(make_message(), make_meta(["jane@example.org"]))
    log_in(client, "jane")
    page = client.get(f"/message/{forged}").text
    assert ('<dt>Forged results</dt><dd class="forged">2 Authentication-Results claiming this '
            "host&#39;s name, removed from the held copy: mx.our.test; dkim=pass header.d=&lt;b "
            "onclick=&#34;x()&#34;&gt;bank&lt;/b&gt;.example | mx.our.test; dkim=pass "
            "header.d=&lt;b onclick=&#34;x()&#34;&gt;bank&lt;/b&gt;.example</dd>") in page
    assert "Forged results" not in client.get(f"/message/{plain}").text


def test_the_list_marks_a_message_that_came_with_forged_results(
        client: TestClient, store: QuarantineStore) -> None:
    """Only the message's page said so: a reviewer going down the list could not tell the
    spoofs from the rest without opening each. The row's mark says it, and its title what it
    means; the claims, the sender's words, stay on the page."""
    claim = "mx.our.test; dkim=pass header.d=bank.example"
    store.put(make_message("Your account"), {**make_meta(["jane@example.org"], subject="Your account"),
                                             FORGED_KEY: forged_evidence([claim])})
    store.put(make_message(), make_meta(["jane@example.org"]))
    log_in(client, "jane")
    rows = re.findall(r"<tr>(.*?)</tr>", client.get("/").text, re.S)
    marked = [row for row in rows if "[forged auth]" in row]
    means = ("came with a forged claim that this mail server had checked its sender (an "
             "Authentication-Results header, removed from the held copy): a strong sign of spam "
             "or phishing")
    assert len(marked) == 1, rows
    assert (f'>Your account</a> <span class="forged" title="{means}">[forged auth]</span></td>'
            in marked[0]), marked
    assert any("Cheap pills" in row for row in rows) and claim not in "".join(rows)


def sort_links(page: str) -> dict[str, str]:
    """Each column heading's link, by its label."""
    return {label: html.unescape(href) for href, label in re.findall(
        r'<th[^>]*><a href="([^"]+)">([^<]+?)(?: [▲▼])?</a></th>', page)}


def test_headings_and_pager_follow_the_sort_shown(tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """Sorted by score, the pager still offered "Older →" (it led to lower scores, not older
    mail); "Time" on the default list sorted it newest first again, so the first click did
    nothing; and no heading said which column the list was sorted by."""
    with admin_on_pages_of_five(tmp_path, password_hashes, 12) as client:
        default = client.get("/").text
        by_score = client.get("/?sort=score&dir=asc&page=2").text
    assert sort_links(default)["Time (UTC)"] == "/?sort=time&dir=asc&page=1"
    assert sort_links(default)["Subject"] == "/?sort=subject&dir=asc&page=1"
    assert 'aria-sort="descending"><a href="/?sort=time&amp;dir=asc&amp;page=1">Time (UTC) ▼' in default
    assert 'aria-sort="ascending"><a href="/?sort=score&amp;dir=desc&amp;page=1">Score ▲' in by_score
    assert "Older" not in by_score and "Newer" not in by_score
    pager = dict((label, html.unescape(href)) for href, label in re.findall(
        r'<a href="([^"]+)"[^>]*>([^<]+)</a>', by_score.split('<nav class="pages">')[1]))
    assert pager == {"« First": "/?sort=score&dir=asc&page=1", "← Previous": "/?sort=score&dir=asc&page=1",
                     "Next →": "/?sort=score&dir=asc&page=3", "Last »": "/?sort=score&dir=asc&page=3"}


def test_to_filter_takes_a_domain(client: TestClient, store: QuarantineStore) -> None:
    """An admin typing a customer's domain in "To" found nothing; a user typing their own domain
    sees their own mail in it and nobody else's."""
    store.put(make_message(), make_meta(["jane@example.org"], subject="for-jane"))
    store.put(make_message("b"), make_meta(["bob@example.org"], subject="for-bob"))
    store.put(make_message("c"), make_meta(["ann@elsewhere.example"], subject="for-ann"))
    log_in(client, "admin")
    for typed in ("example.org", "@Example.org"):
        page = client.get("/", params={"to": typed}).text
        assert "for-jane" in page and "for-bob" in page and "for-ann" not in page
    client.cookies.clear()
    log_in(client, "jane")
    page = client.get("/", params={"to": "example.org"}).text
    assert "for-jane" in page and "for-bob" not in page


def test_a_search_keeps_the_sort(client: TestClient, store: QuarantineStore) -> None:
    """Typing a subject into the search of a list sorted by score sorted it by time again."""
    log_in(client, "admin")
    form = client.get("/?sort=score&dir=asc").text.split('<form class="search"')[1].split("</form>")[0]
    assert '<input type="hidden" name="sort" value="score">' in form
    assert '<input type="hidden" name="dir" value="asc">' in form


def test_odd_search_parameters_give_the_list_not_an_error(client: TestClient, store: QuarantineStore
                                                          ) -> None:
    """A page of "²" or 5,000 digits was a 500, one of 20 digits overflowed SQLite and read as
    "the quarantine is unavailable" (a 503 and a warning), and since=99999999999d was a 500."""
    store.put(make_message(), make_meta(subject="still-listed"))
    log_in(client, "admin")
    for odd in ({"page": "²"}, {"page": "9" * 5000}, {"page": "9" * 20}, {"page": "0"},
                {"since": "99999999999d"}, {"since": "99999999999h"}):
        response = client.get("/", params=odd)
        assert response.status_code == 200, (odd, response.status_code)
    assert "still-listed" in client.get("/", params={"page": "-1", "since": "9" * 40 + "d"}).text


def empty_row(page: str) -> str:
    """What the list's table says when it shows no message."""
    found = re.search(r'<td colspan="7" class="empty">(.*?)</td>', page)
    assert found, "the list shows messages"
    return re.sub(r"<[^>]+>", "", html.unescape(found.group(1)))


def alerts(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r'<p class="error" role="alert">([^<]*)</p>', page)]


def test_a_search_value_it_cannot_read_is_named_not_ignored(
        client: TestClient, store: QuarantineStore) -> None:
    """A min. score of "abc" or a since of "yesterday" was left out in silence: the whole list
    came back, as if every message were above that score or that recent."""
    store.put(make_message(), make_meta(score=4.0, subject="low-score"))
    log_in(client, "admin")
    page = client.get("/", params={"min_score": "abc", "since": "yesterday"}).text
    assert alerts(page) == [
        "Min. score 'abc' is not a number, e.g. 8 or 12.5; the list is not filtered by score.",
        "Since 'yesterday': use 7d, 12h, 2024-05-01 or an ISO time; the list is not filtered by time."]
    assert "low-score" in page
    assert alerts(client.get("/", params={"min_score": "8", "since": "2d"}).text) == []


def test_a_users_search_for_mail_to_someone_else_says_whose_mail_she_sees(
        client: TestClient, store: QuarantineStore) -> None:
    """Jane's search for bob@example.org, or a domain none of her addresses is in, said "No
    messages match.", as if no such mail were held."""
    store.put(make_message(), make_meta(["bob@example.org"]))
    store.put(make_message("j"), make_meta(["jane@example.org"], subject="janes"))
    log_in(client, "jane")
    for to in ("bob@example.org", "@example.net"):
        assert alerts(client.get("/", params={"to": to}).text) == [
            f"To {to!r} is none of your addresses (jane@example.org); you see only mail to them."]
    for to in ("jane@example.org", "@example.org", "Jane@Example.ORG."):
        page = client.get("/", params={"to": to}).text
        assert alerts(page) == [] and "janes" in page, to


def test_a_message_page_leads_back_to_the_list_as_it_was(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """The message page had no way back but the "Quarantine" link, which started the list afresh:
    after each message its reviewer searched, sorted and paged again."""
    with admin_on_pages_of_five(tmp_path, password_hashes, 7) as client:
        listed = client.get("/?subject=subject&sort=score&dir=asc&page=2").text
        message_id = re.findall(r'href="/message/([^"]+)"', listed)[0]
        page = client.get(f"/message/{message_id}").text
        assert '<a href="/?subject=subject&amp;sort=score&amp;dir=asc&amp;page=2">← Back to the list' in page


def test_a_refusal_is_a_page_of_the_ui_with_a_way_back(client: TestClient, store: QuarantineStore) -> None:
    """"404: No such message." (a digest's link to mail since expired or deleted) was a bare
    line of text, without the UI's header or any link; a path of no page (a mistyped address)
    had the link but still no header, so no Log out. Logged out, or with a copy of a cookie
    logged out since, the page has no header."""
    bobs = store.put(make_message(), make_meta(["bob@example.org"]))
    token = log_in(client, "jane")
    client.get("/?sort=score&page=1")
    for path in (f"/message/{bobs}", "/message/AAAAAAAAAAAAAAAAAAAAAA", "/no-such-page"):
        page = client.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert re.search(r'<p class="error" role="alert">404: (No such message\.|Not Found)</p>', page.text)
        assert '<a href="/?sort=score&amp;page=1">← Back to the list</a>' in page.text
        assert '<a href="/stats">Stats</a>' in page.text and "<span>jane</span>" in page.text, path
    refused = client.post("/logout", data={"csrf": "forged"})
    assert refused.status_code == 403 and ('<p class="error" role="alert">403: The form was stale or '
                                           'not ours; reload the page and try again.</p>') in refused.text
    assert "Log out" in refused.text
    copy = client.cookies[SESSION_COOKIE]
    client.post("/logout", data={"csrf": token})
    for cookie in (None, copy):
        if cookie:  # sent alone, as another browser holding the copy would
            client.cookies.clear()
            client.cookies.set(SESSION_COOKIE, cookie)
        page = client.get("/no-such-page")
        assert page.status_code == 404 and "Log out" not in page.text and "jane" not in page.text


def test_a_message_that_is_not_there_is_not_found_for_an_admin_too(client: TestClient) -> None:
    """An admin following a digest's link to mail expired since got a 500 reading "no quarantined
    message ...": every failure to read a record was taken for a damaged one, whose reason an
    admin is shown (test_store_down has those); a missing message is a 404, as for users."""
    token = log_in(client, "admin")
    missing = "/message/AAAAAAAAAAAAAAAAAAAAAA"
    page = client.get(missing)
    assert page.status_code == 404 and '<p class="error" role="alert">404: No such message.</p>' in page.text
    done = client.post(missing, data={"csrf": token, "action": "release"})
    assert done.status_code == 404


def test_an_empty_list_says_why(tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """Past the last page the list said "No messages match." beside "Page 9 of 2", of a list
    whose search matched seven; with nothing held it said the same, as if a search were on."""
    with admin_on_pages_of_five(tmp_path, password_hashes, 7) as client:
        assert empty_row(client.get("/?sort=score&page=9").text) == (
            "Page 9 is past the last page, 2: go to page 2.")
        assert 'href="/?sort=score&amp;page=2"' in client.get("/?sort=score&page=9").text
        assert empty_row(client.get("/?subject=nothing-like-it").text) == "No messages match."
        log_in(client, "bob")  # the seven are Jane's
        assert empty_row(client.get("/").text) == "No messages are held for your addresses."


def test_forget_says_whether_it_took_anything_back(client: TestClient, store: QuarantineStore) -> None:
    """The flash read "Learned (forget): forgotten (unknown)." for a message never learned and
    "Learned (forget): forgotten (forgotten)." for one taken back, as `quarantine learn` did."""
    message_id = store.put(make_message(), make_meta(["jane@example.org"]))
    token = log_in(client, "admin")
    flashes = []
    for action in ("forget", "spam", "forget"):
        done = client.post(f"/message/{message_id}", data={"csrf": token, "action": action})
        flashes.append(flash_of(client.get(done.headers["location"]).text))
    assert (flashes[0], flashes[2]) == ("Nothing to forget (never learned).", "Forgot its tokens.")
