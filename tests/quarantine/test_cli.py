"""`mailsift quarantine`: list, show, delete, learn and expire from the command line."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.classifier.open_store import open_store
from mailsift.cli import cli
from mailsift.config import load_config
from mailsift.quarantine.model import FORGED_KEY, forged_evidence
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from tests.quarantine.conftest import (
    informational_meta,
    make_capped_meta,
    make_message,
    make_meta,
)
from tests.support.cli import run_mailsift
from tests.support.milter_process import mailsift_command, to_toml
from tests.support.ports import LOOPBACK, free_port
from tests.support.redis_server import TEST_PASSWORD, RedisServer
from tests.support.sink import SmtpSink


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q")},
                             "bayes": {"store": f"sqlite:///{tmp_path / 'bayes.sqlite'}"},
                             "rules": {"local_cf": str(tmp_path / "none.cf")}}))
    return path


def load_quarantine(config: Path) -> QuarantineStore:
    return open_quarantine(load_config(str(config)).quarantine)


def run(config: Path, *args: str) -> str:
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_list_filters_and_show_prints_the_rule_table(config_path: Path, tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    pills = store.put(make_message(), make_meta(["jane@example.org"], 42.0))
    store.put(make_message("Invoice"), make_meta(["bob@example.org"], 12.0, "Invoice"))
    listed = run(config_path, "list", "--to", "jane@example.org", "--min-score", "20", "--since", "1d")
    assert pills in listed and "Invoice" not in listed and "1 of 1 message(s)" in listed
    shown = run(config_path, "show", pills)
    assert shown.index("BIG_RULE") < shown.index("LOW_RULE")
    assert "<spammer@bad.example> -> <jane@example.org>" in shown
    raw = CliRunner().invoke(cli, ["--config", str(config_path), "quarantine", "show", pills, "--raw"])
    assert raw.stdout_bytes == make_message()


def test_list_marks_a_message_that_came_with_forged_auth_results(config_path: Path,
                                                                 tmp_path: Path) -> None:
    """Only `show` said the message had come with Authentication-Results claiming this host's
    name (removed from the held copy): an admin going down the list, where such spoofs are
    sorted out at a glance, never learnt it. The row says so after its subject, and a line
    below the list says what the mark means; the claims themselves stay for `show`."""
    store = QuarantineStore(tmp_path / "q")
    claim = "mx.our.test; dkim=pass header.d=bank.example"
    forged = store.put(make_message("Your account"),
                       {**make_meta(subject="Your account", score=20.0),
                        FORGED_KEY: forged_evidence([claim])})
    plain = store.put(make_message(), make_meta(score=30.0))
    rows = {line[:22]: line for line in run(config_path, "list", "--sort", "score").splitlines()}
    assert rows[forged].endswith("  Your account  [forged auth]")
    assert rows[plain].endswith("  Cheap pills")
    listed = run(config_path, "list")
    assert listed.endswith(
        "\n[forged auth]: came with a forged claim that this mail server had checked its sender "
        "(an Authentication-Results header, removed from the held copy): a strong sign of spam "
        "or phishing; `quarantine show ID` lists them\n")
    assert claim not in listed
    assert "[forged auth]" not in run(config_path, "list", "--min-score", "25")  # the plain one


@pytest.mark.parametrize(("name", "ip", "shown"), [
    ("[2001:db8::5]", "2001:db8::5", "unknown[2001:db8::5]"),  # libmilter's name for no name
    ("mail.bad.example", "2001:db8::5", "mail.bad.example[2001:db8::5]"),
    ("[192.0.2.7]", "192.0.2.7", "unknown[192.0.2.7]"),
])
def test_show_names_the_client_as_the_milter_log_does(config_path: Path, tmp_path: Path, name: str,
                                                      ip: str, shown: str) -> None:
    """A client without a verified name showed as '[2001:db8::5] [2001:db8::5]'; the log line that
    an administrator finds it by says 'unknown[2001:db8::5]'."""
    meta = {**make_meta(), "client_name": name, "client_ip": ip}
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), meta)
    assert f"Client:      {shown} HELO bad.example\n" in run(config_path, "show", message_id)


def test_learn_as_ham_counts_in_bayes_and_is_recorded(config_path: Path, tmp_path: Path) -> None:
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    assert "learned as ham" in run(config_path, "learn", message_id, "--ham")
    assert open_store(load_config(str(config_path)).bayes).totals().ham == 1
    assert "already learned as ham (nothing changed)" in run(config_path, "learn", message_id, "--ham")
    event = QuarantineStore(tmp_path / "q").meta(message_id)["events"][-1]
    assert event["action"] == "learned" and event["user"].startswith("cli:")


def test_forget_says_whether_it_took_anything_back(config_path: Path, tmp_path: Path) -> None:
    """It printed "forgotten (unknown)" for a message never learned and "forgotten (forgotten)"
    for one it took back; `mailsift learn --forget` and sa-learn say it in words."""
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    assert run(config_path, "learn", message_id, "--forget") == (
        f"{message_id}: nothing to forget (never learned)\n")
    run(config_path, "learn", message_id, "--spam")
    assert run(config_path, "learn", message_id, "--forget") == f"{message_id}: forgot its tokens\n"
    assert open_store(load_config(str(config_path)).bayes).totals().spam == 0


def test_learning_from_the_quarantine_also_teaches_the_recipients_store(
        config_path: Path, tmp_path: Path) -> None:
    """With per-recipient Bayes, a reviewer's verdict goes into the site-wide store and into the
    store of the domain the message was for; mail to several domains only into the site's."""
    per_domain = config_path.read_text().replace("[bayes]\n", '[bayes]\nper_recipient = "domain"\n')
    config_path.write_text(per_domain)
    store = QuarantineStore(tmp_path / "q")
    ours = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
    mixed = store.put(make_message("Mixed"), make_meta(["jane@example.org", "ann@other.example"]))
    assert "example.org's store: learned as ham" in run(config_path, "learn", ours, "--ham")
    assert run(config_path, "learn", ours, "--ham").endswith(
        "already learned as ham (nothing changed); example.org's store: already learned as ham "
        "(nothing changed)\n")
    assert "store:" not in run(config_path, "learn", mixed, "--ham")
    config = load_config(str(config_path)).bayes
    assert open_store(config).totals().ham == 2
    assert open_store(config, "mailsift:example.org:").totals().ham == 1
    assert "example.org's store: forgot its tokens" in run(config_path, "learn", ours, "--forget")
    assert open_store(config, "mailsift:example.org:").totals().ham == 0


def test_delete_and_expire(config_path: Path, tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    gone = store.put(make_message(), make_meta())
    old = store.put(make_message("old"), make_meta(time=(datetime.now(UTC) - timedelta(days=31)).isoformat()))
    run(config_path, "delete", gone)
    assert not store.exists(gone)
    assert run(config_path, "expire") == "Expired 1 message(s)\n"
    assert not store.exists(old)


def test_expire_says_what_it_indexed_again_and_set_aside(config_path: Path, tmp_path: Path) -> None:
    """After a rollback (README: Backups and upgrades) expire indexes the mail held since from
    its files, and sets aside a file whose record it cannot read; it said only "Expired 0
    message(s)", so the admin could not tell it had done anything."""
    directory = tmp_path / "q"
    store = QuarantineStore(directory)
    kept, lost, newer = (store.put(make_message(body=body), make_meta())
                         for body in ("kept", "row lost", "newer record"))
    with sqlite3.connect(directory / "index.sqlite") as db:
        db.executemany("DELETE FROM messages WHERE id = ?", [(lost,), (newer,)])
    unreadable = directory / f"{newer}.msg"
    unreadable.write_bytes(b'{"format": "a newer one"}\n' + unreadable.read_bytes().partition(b"\n")[2])
    old = time.time() - 7200  # past a writer's time (STRAY_AGE_S)
    for path in directory.glob("*.msg"):
        os.utime(path, (old, old))
    assert run(config_path, "expire") == (
        "Expired 0 message(s)\n"
        "Indexed 1 message file(s) the index lacked (a crash, or an older index copy put back): "
        "listed again\n"
        "Set aside 1 message file(s) whose record this mailsift cannot read, in "
        f"{directory / 'unreadable'} (the log names each)\n")
    assert sorted(store.ids()) == sorted([kept, lost])
    assert run(config_path, "expire") == "Expired 0 message(s)\n"


def test_expire_help_says_it_indexes_the_files_the_index_lacks() -> None:
    """README's Rollback has the admin run `quarantine expire` to bring back the mail held since
    the index copy; its --help said only that it deletes old messages."""
    done = CliRunner().invoke(cli, ["quarantine", "expire", "--help"], terminal_width=200)
    assert "Also indexes again each message file older than an hour that a local index lacks" \
        in " ".join(done.output.split())


@pytest.mark.parametrize("args", [["show", "../../etc/passwd"], ["release", "A" * 22],
                                  ["learn", "A" * 22], ["list", "--since", "yesterday"]])
def test_errors_are_one_line_with_status_2(config_path: Path, args: list[str]) -> None:
    done = CliRunner().invoke(cli, ["--config", str(config_path), "quarantine", *args],
                              standalone_mode=False, catch_exceptions=True)
    assert done.exception is not None
    message = str(getattr(done.exception, "message", done.exception))
    assert "\n" not in message and getattr(done.exception, "exit_code", 0) == 2


def test_ids_never_start_with_a_dash_that_the_command_line_would_read_as_an_option() -> None:
    from mailsift.quarantine.model import new_id, valid_id

    ids = [new_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(valid_id(i) for i in ids)
    assert not valid_id("-" + "A" * 21)


def mailsift(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an admin runs it (a process of its own: click parsing, exit status)."""
    return run_mailsift(["--config", str(config), *args])


@pytest.fixture
def release_sink(tmp_path: Path) -> Iterator[tuple[Path, SmtpSink]]:
    """A config whose quarantine.release_via is an SMTP sink standing for Postfix's port."""
    with SmtpSink() as sink:
        path = tmp_path / "mailsift.toml"
        path.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q"),
                                                "release_via": f"{LOOPBACK}:{sink.port}"}}))
        yield path, sink


@pytest.mark.parametrize("to", ["not an address", "jane@example.org,bob@example.org", "jane"])
def test_release_to_what_is_not_one_address_is_refused_and_sends_nothing(
        release_sink: tuple[Path, SmtpSink], tmp_path: Path, to: str) -> None:
    """smtplib sends the address its parser finds: --to "not an address" was released to <not>
    (Postfix delivers that to a local user) and --to "jane@example.org,bob@example.org" to Jane
    alone, while the command and the message's history said it went to what was typed."""
    config, sink = release_sink
    store = QuarantineStore(tmp_path / "q")
    held = store.put(make_message(), make_meta())
    done = mailsift(config, "quarantine", "release", held, "--to", to)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"mailsift: quarantine release: --to {to!r} is not a mail address like "
                           "jane@example.org (one address per --to)\n")
    assert sink.messages == [] and "released_to" not in store.meta(held)


def test_release_to_an_address_goes_to_it_as_typed(release_sink: tuple[Path, SmtpSink],
                                                   tmp_path: Path) -> None:
    config, sink = release_sink
    held = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config, "quarantine", "release", held, "--to", " Admin@Example.ORG ")
    assert done.stdout == f"Released {held} to Admin@Example.ORG\n", done.stderr
    assert [m.recipients for m in sink.messages] == [("Admin@Example.ORG",)]


@pytest.mark.parametrize("to", ["root@localhost", "jane@[192.0.2.7]", "jane@[IPv6:2001:db8::7]"])
def test_release_to_a_local_host_or_an_address_literal_is_sent(
        release_sink: tuple[Path, SmtpSink], tmp_path: Path, to: str) -> None:
    """Postfix delivers root@localhost (Debian's mydestination has localhost) and an address
    literal; 47caf14 refused both with 'one label only' and 'IDNA refuses it'."""
    config, sink = release_sink
    held = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config, "quarantine", "release", held, "--to", to)
    assert done.stdout == f"Released {held} to {to}\n", done.stderr
    assert [m.recipients for m in sink.messages] == [(to,)]


@pytest.mark.parametrize("to", ["jane@[192.0.2.300]", "jane@-host", "jane@[example.org]"])
def test_release_to_a_broken_host_or_literal_is_refused(
        release_sink: tuple[Path, SmtpSink], tmp_path: Path, to: str) -> None:
    config, sink = release_sink
    held = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config, "quarantine", "release", held, "--to", to)
    assert done.returncode == 2 and "is not a mail address like jane@example.org" in done.stderr
    assert sink.messages == []


def test_release_where_nothing_listens_names_the_key_and_what_should_listen_there(
        tmp_path: Path) -> None:
    """"cannot hand the message to 127.0.0.1:10026: [Errno 111] Connection refused" named
    neither the setting nor the master.cf entry that an admin who skipped it must add."""
    closed = free_port()
    config = tmp_path / "mailsift.toml"
    config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q"),
                                              "release_via": f"{LOOPBACK}:{closed}"}}))
    held = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config, "quarantine", "release", held)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"mailsift: quarantine: cannot hand the message to {LOOPBACK}:{closed} "
        "(quarantine.release_via): Connection refused; is Postfix's smtpd without the milter, "
        "the master.cf entry `mailsift postfix` prints, running there?\n")


def test_learn_refuses_two_modes_instead_of_doing_the_last(config_path: Path, tmp_path: Path) -> None:
    """`--spam --ham` was learned as ham, silently; `mailsift learn --spam --ham` refuses."""
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config_path, "quarantine", "learn", message_id, "--spam", "--ham")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("mailsift: quarantine learn: give exactly one of --ham, --spam")
    assert done.stderr.count("\n") == 1
    totals = open_store(load_config(str(config_path)).bayes).totals()
    assert (totals.spam, totals.ham) == (0, 0)


def test_learn_takes_the_report_and_revoke_names_of_the_learn_command(
        config_path: Path, tmp_path: Path) -> None:
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    reported = mailsift(config_path, "quarantine", "learn", message_id, "--report")
    assert reported.returncode == 0, reported.stderr
    assert reported.stdout == f"{message_id}: learned as spam, reported\n"
    revoked = mailsift(config_path, "quarantine", "learn", message_id, "--revoke")
    assert revoked.stdout == f"{message_id}: relearned as ham, report revoked\n", revoked.stderr
    again = mailsift(config_path, "quarantine", "learn", message_id, "--spam-report")
    assert again.stdout == f"{message_id}: relearned as spam, reported\n", again.stderr
    assert "--spam-report, --report" in mailsift(config_path, "quarantine", "learn", "--help").stdout


def test_digest_without_users_says_why_nothing_was_sent(config_path: Path, tmp_path: Path) -> None:
    """It printed nothing, exit 0: a timer's run that never mails anyone looked like success."""
    QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    done = mailsift(config_path, "quarantine", "digest")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "No digest sent: no user is configured (web.users)\n", "")
    admin_only = config_path.read_text() + (
        '[[web.users]]\nname = "admin"\nrole = "admin"\n'
        'password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"\n')
    config_path.write_text(admin_only)
    done = mailsift(config_path, "quarantine", "digest")
    assert (done.returncode, done.stdout) == (0, "No digest sent: no user in web.users has addresses\n")


def test_show_lists_the_cap_row_so_the_rows_add_up_to_the_score(
        config_path: Path, tmp_path: Path) -> None:
    """The rules summed to 12.4 against "Score: 11.0": `check`'s (cap: money) row was missing.
    And the score line said the score twice ("..., quarantine: score 11.0 (required 5.0): ...")."""
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), make_capped_meta())
    done = mailsift(config_path, "quarantine", "show", message_id)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Score:       11.0 (required 5.0), quarantine" in lines
    table = lines[lines.index(next(line for line in lines if line.startswith("-------+"))) + 1:]
    rows = table[:table.index("")]
    assert rows[-1].split("|")[1].strip() == "(cap: money)"
    assert round(sum(float(row.split("|")[0]) for row in rows), 1) == 11.0


def test_show_gives_informational_scores_and_keeps_its_columns(config_path: Path, tmp_path: Path) -> None:
    """URIBL_BLOCKED (0.001) read 0.0, as if turned off, and a long rule name broke the columns."""
    message_id = QuarantineStore(tmp_path / "q").put(make_message(), informational_meta())
    lines = run(config_path, "show", message_id).splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith(" Score |"))):]
    rows = table[:table.index("")]
    assert [row.split("|")[0].strip() for row in rows if "URIBL_BLOCKED" in row] == ["0.001"]
    assert len({row.index("|", 8) for row in rows if "|" in row}) == 1


@pytest.fixture(params=["local", "redis"])
def backend_config(request: pytest.FixtureRequest, config_path: Path) -> Path:
    """The CLI's config on each backend: the local index, or a real redis-server's."""
    if request.param == "redis":
        server = request.getfixturevalue("quarantine_redis")
        with server.client() as client:
            client.flushall()
        config_path.write_text(config_path.read_text().replace(
            "[quarantine]\n", f'[quarantine]\nindex = "{server.url}"\n'))
    return config_path


def listed_ids(output: str) -> list[str]:
    """The ids of `quarantine list`'s rows (between its heading and its last line)."""
    return [line.split()[0] for line in output.splitlines()[1:-1]]


def test_list_prints_one_page_and_says_how_to_get_the_next(backend_config: Path) -> None:
    """`list` printed the first --limit messages and stopped: no way to see the 51st of 30,000
    but --limit 30000, and no way to sort by score as the web UI does."""
    store = load_quarantine(backend_config)
    ids = {store.put(make_message(f"m{n}"), make_meta(score=10.0 + n, subject=f"s{n}")): n
           for n in range(7)}
    first = run(backend_config, "list", "--limit", "3", "--sort", "score", "--asc")
    assert first.splitlines()[-1] == "3 of 7 message(s), page 1 of 3; next: --page 2 (every one: --all)"
    pages = [listed_ids(first)] + [
        listed_ids(run(backend_config, "list", "--limit", "3", "--sort", "score", "--asc", "--page", page))
        for page in ("2", "3")]
    assert [ids[i] for page in pages for i in page] == list(range(7))
    everything = run(backend_config, "list", "--all", "--sort", "score")
    assert [ids[i] for i in listed_ids(everything)] == list(range(6, -1, -1))
    assert everything.splitlines()[-1] == "7 of 7 message(s)"


def test_a_damaged_redis_record_is_not_counted_in_the_total(
        config_path: Path, quarantine_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """A record a redis-cli edit left as no JSON, its summary intact, was named in a warning and
    left out of the list but counted in its total: "2 of 3 message(s)", and its page of one
    was empty. The web UI's list counts with the same search."""
    with quarantine_redis.client() as client:
        client.flushall()
    config_path.write_text(config_path.read_text().replace(
        "[quarantine]\n", f'[quarantine]\nindex = "{quarantine_redis.url}"\n'))
    store = load_quarantine(config_path)
    one, garbled, three = (store.put(make_message(s), make_meta(score=score, subject=s))
                           for score, s in ((10.0, "One"), (20.0, "Garbled"), (30.0, "Three")))
    with quarantine_redis.client() as client:
        client.hset(f"mailsift:quarantine:msg:{garbled}", "record", "{not json")
    caplog.set_level(logging.WARNING)
    second = run(config_path, "list", "--sort", "score", "--limit", "1", "--page", "2")
    assert (listed_ids(second), second.splitlines()[-1]) == ([one], "1 of 2 message(s), page 2 of 2")
    whole = run(config_path, "list")
    assert (listed_ids(whole), whole.splitlines()[-1]) == ([three, one], "2 of 2 message(s)")
    warned = [r.getMessage() for r in caplog.records if garbled in r.getMessage()]
    assert len(warned) == 2 and all("is not JSON" in line for line in warned), warned  # one a list


@pytest.mark.parametrize("option", ["--page", "--limit"])
def test_a_page_beyond_sqlites_integers_is_one_error_line(config_path: Path, tmp_path: Path,
                                                          option: str) -> None:
    """`list --page 99999999999999999999` reached the index and failed as "quarantine index
    ...: datatype mismatch", as if the index were broken."""
    QuarantineStore(tmp_path / "q").put(make_message(), make_meta())
    huge = "9" * 20
    done = subprocess.run([*mailsift_command(), "--config", str(config_path), "quarantine", "list",
                           option, huge], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"mailsift quarantine list: Invalid value for '{option}': {huge} is not in the "
        "range 1<=x<=999999999 (see 'mailsift quarantine list --help')\n")


def test_the_last_page_a_list_allows_is_empty_not_an_error(backend_config: Path) -> None:
    store = load_quarantine(backend_config)
    store.put(make_message(), make_meta())
    last = run(backend_config, "list", "--page", "999999999", "--limit", "999999999")
    assert last.splitlines()[-1].startswith("0 of 1 message(s)")


def test_a_page_past_the_last_says_it_is(config_path: Path, tmp_path: Path) -> None:
    """README's `quarantine list --sort score --asc --page 2`, on a quarantine that fills one
    page, ended in "0 of 3 message(s)": three held and none shown, with nothing saying why."""
    store = QuarantineStore(tmp_path / "q")
    for n in range(3):
        store.put(make_message(f"m{n}"), make_meta(score=10.0 + n))
    past = run(config_path, "list", "--sort", "score", "--asc", "--page", "2")
    assert past.splitlines()[-1] == "0 of 3 message(s), page 2 of 1"
    assert run(config_path, "list").splitlines()[-1] == "3 of 3 message(s)"


def test_list_to_a_domain(config_path: Path, tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    store.put(make_message(), make_meta(["jane@example.org"]))
    store.put(make_message("b"), make_meta(["bob@example.org"]))
    store.put(make_message("c"), make_meta(["ann@elsewhere.example"]))
    assert run(config_path, "list", "--to", "@example.org").splitlines()[-1] == "2 of 2 message(s)"


def test_a_wrong_redis_password_is_one_line_naming_the_server_and_never_the_password(
        tmp_path: Path) -> None:
    """The shared Redis's password was changed and the password file not: the quarantine said
    only "invalid username-password pair", not which of the site's Redis servers refused it, as
    the Bayes store's error does."""
    server = RedisServer(tmp_path / "redis", password=TEST_PASSWORD)
    try:
        secret = tmp_path / "redis-password"
        secret.write_text("the-0ld-Passw0rd\n")
        secret.chmod(0o600)
        redis = {"password_file": str(secret)}
        config = tmp_path / "mailsift.toml"
        config.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "q"), "index": server.url, **redis},
                                   "bayes": {"store": server.url, **redis}}))
        listed = mailsift(config, "quarantine", "list")
        learned = mailsift(config, "learn", "--dump")
    finally:
        server.stop()
    refused = (f"redis at 127.0.0.1:{server.port}: AuthenticationError: invalid username-password "
               "pair or user is disabled.\n")
    assert (listed.returncode, listed.stdout, listed.stderr) == (
        2, "", f"mailsift: quarantine: quarantine store unavailable: {refused}")
    assert (learned.returncode, learned.stdout, learned.stderr) == (
        2, "", f"mailsift: learn: Bayes store unavailable: {refused}")
