"""The daily digest: one mail per user with new quarantined mail, with the right rows, once."""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.config import parse_config
from mailsift.host import host_name, is_loopback_name
from mailsift.quarantine.digest import base_url
from mailsift.quarantine.model import FORGED_KEY, forged_evidence
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
from tests.support.milter_process import to_toml
from tests.support.sink import SmtpSink

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43


@pytest.fixture
def digest_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def _config(tmp_path: Path, sink: SmtpSink) -> Path:
    users = [{"name": "jane", "password_hash": HASH, "role": "user",
              "addresses": ["jane@example.org", "sales@example.org"]},
             {"name": "bob", "password_hash": HASH, "role": "user", "addresses": ["bob@example.org"]},
             {"name": "carol", "password_hash": HASH, "role": "user", "addresses": ["carol@example.org"]},
             {"name": "admin", "password_hash": HASH, "role": "admin"}]
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml({
        "quarantine": {"dir": str(tmp_path / "q"), "release_via": f"127.0.0.1:{sink.port}",
                       "digest_from": "quarantine@example.org"},
        "web": {"base_url": "https://mail.example.org/quarantine/", "users": users}}))
    return path


def _digest(config: Path) -> str:
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "digest"])
    assert done.exit_code == 0, done.output
    return done.output


def test_each_user_gets_one_digest_with_their_messages(tmp_path: Path, digest_sink: SmtpSink) -> None:
    config = _config(tmp_path, digest_sink)
    store = QuarantineStore(tmp_path / "q")
    jane = [store.put(make_message("Cheap pills"), make_meta(["jane@example.org"], 42.5, "Cheap pills")),
            store.put(make_message("Invoice"), make_meta(["sales@example.org"], 17.0,
                                                         "=?utf-8?q?R=C3=A9sum=C3=A9?=", "hr@jobs.example"))]
    bob = store.put(make_message("Casino"), make_meta(["bob@example.org"], 30.0, "Casino"))
    store.put(make_message("Other"), make_meta(["nobody@example.org"], 30.0, "Other"))

    output = _digest(config)
    mails = {m.recipients: m for m in digest_sink.wait_for(2)}
    assert set(mails) == {("jane@example.org",), ("bob@example.org",)}
    assert "jane" in output and "bob" in output and "carol" not in output

    janes = mails[("jane@example.org",)]
    assert janes.sender == "quarantine@example.org"
    assert janes.header("Subject") == "Quarantine: 2 new message(s)"
    text = janes.message.get_content()
    for message_id in jane:
        assert f"https://mail.example.org/quarantine/message/{message_id}" in text
    assert re.search(r"42\.5 +Spammer <spammer@bad\.example> +Cheap pills", text)
    assert re.search(r"17\.0 +Spammer <hr@jobs\.example> +Résumé", text)
    assert bob not in text
    bobs = mails[("bob@example.org",)].message.get_content()
    assert bob in bobs and "Casino" in bobs and jane[0] not in bobs

    digest_sink.clear()
    first_run = datetime.fromisoformat(store.backend.mark("digest:jane") or "")
    assert _digest(config) == (  # nothing new since: no second digest, and the timer's log says so
        f"No digest sent: nothing new held for any user since {first_run:%Y-%m-%d %H:%M} UTC\n")
    assert digest_sink.messages == []


def test_a_run_with_nothing_new_says_so_in_one_line(tmp_path: Path, digest_sink: SmtpSink) -> None:
    """It printed nothing, so the digest timer's journal could not tell "ran, nothing new to
    send" from "did not run". A first run looks back one day (FIRST_DIGEST)."""
    config = _config(tmp_path, digest_sink)
    before = datetime.now(UTC)
    QuarantineStore(tmp_path / "q").put(make_message("Other"),
                                        make_meta(["nobody@example.org"], 30.0, "Other"))
    [line] = _digest(config).splitlines()
    since = datetime.strptime(line, "No digest sent: nothing new held for any user since "
                              "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert before - timedelta(days=1, minutes=1) <= since <= datetime.now(UTC) - timedelta(days=1)
    assert digest_sink.messages == []


def test_a_weekly_run_with_nothing_new_names_the_last_run(tmp_path: Path,
                                                          digest_sink: SmtpSink) -> None:
    """Run weekly (or after days down), a run with nothing new said "since" one day back, the
    first run's window, though it had looked for a week since the last run, as README says."""
    config = _config(tmp_path, digest_sink)
    store = QuarantineStore(tmp_path / "q")
    last_run = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=7)
    for user in ("jane", "bob", "carol"):
        store.backend.set_mark(f"digest:{user}", last_run.isoformat())
    assert _digest(config) == (
        f"No digest sent: nothing new held for any user since {last_run:%Y-%m-%d %H:%M} UTC\n")


def test_a_digest_marks_a_message_that_came_with_forged_auth_results(
        tmp_path: Path, digest_sink: SmtpSink) -> None:
    """A user deciding from her digest whether to release a message was not told it had come
    with Authentication-Results claiming this host's name (a spoof of a check we never made,
    which the page shows): its row says so now, and one line below the rows what that means."""
    config = _config(tmp_path, digest_sink)
    store = QuarantineStore(tmp_path / "q")
    store.put(make_message("Your account"), {**make_meta(["bob@example.org"], 30.0, "Your account"),
                                             FORGED_KEY: forged_evidence(["mx.our.test; spf=pass"])})
    store.put(make_message("Casino"), make_meta(["bob@example.org"], 20.0, "Casino"))
    _digest(config)
    [mail] = digest_sink.wait_for(1)
    lines = mail.message.get_content().splitlines()
    assert [line for line in lines if "Your account" in line or "Casino" in line] == [
        "  30.0  Spammer <spammer@bad.example>   Your account  [forged auth]",
        "  20.0  Spammer <spammer@bad.example>   Casino"]
    assert lines[-1] == ("[forged auth]: the message came with a forged claim that this mail "
                         "server had checked its sender (an Authentication-Results header, "
                         "removed from the held copy): a strong sign of spam or phishing.")
    assert "spf=pass" not in mail.message.get_content()


LONG = "j" * 600 + "@example.org"  # a RCPT line the server refuses as too long


def test_a_digest_that_cannot_be_sent_does_not_stop_the_others(tmp_path: Path,
                                                                digest_sink: SmtpSink) -> None:
    """The run used to end at the first refused address: every user after it got no digest."""
    path = _config(tmp_path, digest_sink)
    config = tomllib.loads(path.read_text())
    config["web"]["users"][0]["addresses"] = [LONG]
    path.write_text(to_toml(config))
    store = QuarantineStore(tmp_path / "q")
    store.put(make_message("Cheap pills"), make_meta([LONG], 42.5, "Cheap pills"))
    store.put(make_message("Casino"), make_meta(["bob@example.org"], 30.0, "Casino"))

    done = CliRunner().invoke(cli, ["--config", str(path), "quarantine", "digest"])
    assert done.exit_code == 2, done.output
    [bobs] = digest_sink.wait_for(1)
    assert bobs.recipients == ("bob@example.org",)
    assert done.exit_code == 2
    errors = [line for line in done.output.splitlines() if line.startswith("mailsift:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"mailsift: digest for jane <{LONG}> not sent: ")
    assert errors[1] == "mailsift: quarantine digest: 1 of 2 digest(s) not sent"


@pytest.mark.parametrize("listen", [":8025", "0.0.0.0:8025", "[::]:8025"])
def test_a_ui_on_every_address_is_linked_by_this_hosts_name(tmp_path: Path, digest_sink: SmtpSink,
                                                            listen: str) -> None:
    """With web.base_url empty, a digest's link was built from web.listen: ":8025" gave
    "http://:8025/message/ID", which no browser opens (0.0.0.0 and :: neither)."""
    path = _config(tmp_path, digest_sink)
    config = tomllib.loads(path.read_text())
    config["web"] = {**config["web"], "base_url": "", "listen": listen}
    path.write_text(to_toml(config))
    held = QuarantineStore(tmp_path / "q").put(make_message("Casino"),
                                               make_meta(["bob@example.org"], 30.0, "Casino"))
    _digest(path)
    [mail] = digest_sink.wait_for(1)
    name = host_name()
    assert f"\n        http://{name}:8025/message/{held}\r\n" in mail.message.get_content()
    # the name Postfix's myhostname takes by default, never one of loopback alone
    assert not is_loopback_name(name) and (name == socket.gethostname() or "." in name)


def test_a_ui_on_one_address_is_linked_by_it_an_ipv6_one_in_brackets() -> None:
    links = [base_url(parse_config({"web": {"listen": listen}}, "m.toml"))
             for listen in ("192.0.2.1:8025", "[2001:db8::5]:8025", "[::1]:80")]
    assert links == ["http://192.0.2.1:8025", "http://[2001:db8::5]:8025", "http://[::1]:80"]
