"""`mailsift learn` as an administrator keeps Bayes with it: every recipient store listed whatever
one of them holds, every shared spam report withdrawn at once, a damaged report count named in
one line. Each on SQLite, a real redis-server and a real Redis Cluster (`per_domain`)."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from mailsift.analysis.parse import analyse
from mailsift.classifier.filter import BayesFilter, recipient_key
from mailsift.classifier.open_store import open_store
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import StoreDamaged
from mailsift.config import load_config
from tests.support.redis_server import RedisServer
from tests.training.test_learn_command import SPAM, dumped, mailsift, spam_folder
from tests.training.test_learn_command import per_domain as per_domain  # the fixture, re-exported


def damage_total(config: Path, prefix: str, field: str, value: str) -> None:
    """Write the `field` total ("spam" or "ham") of the store under `prefix` as a hand edit might."""
    store = open_store(load_config(str(config)).bayes, prefix)
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute(f"UPDATE totals SET {field} = ? WHERE ns = "
                       "(SELECT id FROM namespaces WHERE name = ?)", (value, prefix))
    else:
        store.client.hset(f"{{{prefix}}}totals", field[0], value)
    store.close()


def damage_report_counts(config: Path, value: str) -> None:
    """Write every count of a shared report's digests as a hand edit might."""
    store = open_store(load_config(str(config)).bayes)
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute("UPDATE report_digests SET reports = ?", (value,))
    else:
        for key in store.client.scan_iter(match="{mailsift:}rd:*"):
            store.client.set(key, value)
    store.close()


def reported(config: Path, message: Path) -> bool:
    result = mailsift(config, "check", "--json", str(message))
    return "DIGEST_REPORTED" in {hit["name"] for hit in json.loads(result.stdout)["rules"]}


def test_stores_lists_every_store_it_can_and_names_each_damaged_one(per_domain: Path,
                                                                     tmp_path: Path) -> None:
    """One damaged store stopped `--stores` at itself: every store after it went unlisted,
    and a second damaged one unnamed, until the first was repaired."""
    folder = spam_folder(tmp_path, 3)
    for domain, message in (("a.example", "0"), ("b.example", "1"), ("c.example", "2")):
        mailsift(per_domain, "learn", "--spam", "--for", domain, str(folder / f"{message}.eml"))
    tokens = dumped(per_domain, "--for", "c.example")["tokens"]
    damage_total(per_domain, "mailsift:a.example:", "spam", "lots")
    damage_total(per_domain, "mailsift:b.example:", "ham", "x")
    listed = mailsift(per_domain, "learn", "--stores")
    assert listed.returncode == 2
    assert listed.stdout == f"c.example 1 spam, 0 ham, {tokens} tokens\n"
    lines = listed.stderr.splitlines()
    assert len(lines) == 2, listed.stderr
    for line, name, record in zip(lines, ("a.example", "b.example"),
                                  ("the spam total", "the ham total"), strict=True):
        assert line.startswith("mailsift: learn: ")
        assert f", store 'mailsift:{name}:': {record}" in line
        assert line.endswith(f"(mailsift learn --for {name} --restore FILE, or --clear)")
    assert "Traceback" not in listed.stderr
    damage_total(per_domain, "mailsift:a.example:", "spam", "1")
    damage_total(per_domain, "mailsift:b.example:", "ham", "0")
    repaired = mailsift(per_domain, "learn", "--stores")
    assert (repaired.returncode, repaired.stderr) == (0, "")
    assert [line.split()[:3] for line in repaired.stdout.splitlines()] == [
        ["a.example", "1", "spam,"], ["b.example", "1", "spam,"], ["c.example", "1", "spam,"]]


def test_clear_reports_withdraws_every_shared_report_and_keeps_what_bayes_learned(
        per_domain: Path, tmp_path: Path) -> None:
    """A batch reported by mistake could only be withdrawn with --revoke, message by message
    (each also learned as ham), or by restoring a backup over what Bayes learned since."""
    folder = spam_folder(tmp_path, 3)
    shared = mailsift(per_domain, "learn", "--report", str(folder / "0.eml"), str(folder / "1.eml"))
    assert shared.returncode == 0, shared.stderr
    mailsift(per_domain, "learn", "--spam", str(folder / "2.eml"))
    assert reported(per_domain, folder / "0.eml")
    cleared = mailsift(per_domain, "learn", "--clear-reports")
    assert (cleared.returncode, cleared.stderr) == (0, "")
    withdrew, kept = cleared.stdout.splitlines()
    assert withdrew.startswith("Withdrew 2 shared spam report(s) of Bayes store 'mailsift:' in ")
    assert withdrew.endswith(": no host matches their copies any more (DIGEST_REPORTED)")
    assert kept == ("Kept what Bayes learned from the reported messages, each as spam (mailsift "
                    "learn --forget MESSAGE takes one back)")
    assert not reported(per_domain, folder / "0.eml")
    assert not reported(per_domain, folder / "1.eml")
    assert dumped(per_domain)["spam messages learned"] == "3"
    again = mailsift(per_domain, "learn", "--clear-reports")
    assert again.stdout.startswith("Withdrew 0 shared spam report(s) ")
    assert mailsift(per_domain, "learn", "--report", str(folder / "0.eml")).returncode == 0
    assert reported(per_domain, folder / "0.eml")  # reporting works again from nothing


def test_clear_reports_takes_no_path(per_domain: Path, tmp_path: Path) -> None:
    """Like --clear: a PATH after it would read as "withdraw this one", and withdraw them all."""
    folder = spam_folder(tmp_path, 1)
    mailsift(per_domain, "learn", "--report", str(folder / "0.eml"))
    result = mailsift(per_domain, "learn", "--clear-reports", str(folder / "0.eml"))
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn --clear-reports takes no PATH (given: {folder / '0.eml'}); "
                             "it acts on the whole store\n")
    assert reported(per_domain, folder / "0.eml")


def test_a_damaged_report_count_is_one_line_naming_it_and_clear_reports(per_domain: Path,
                                                                        tmp_path: Path) -> None:
    """A report count that is no number made scoring fail with "ValueError: invalid literal for
    int()" on Redis, matched as reported on SQLite, and made --revoke on Redis say the store was
    unavailable after withdrawing part of the report."""
    folder = spam_folder(tmp_path, 2)
    mailsift(per_domain, "learn", "--report", str(folder / "0.eml"))
    damage_report_counts(per_domain, "lots")
    config = load_config(str(per_domain))
    bayes = BayesFilter(config.bayes, open_store(config.bayes))
    with pytest.raises(StoreDamaged, match=r"store 'mailsift:': the report count .* holds 'lots', not a "
                                           r"whole number from 0, .*, or --clear-reports\)$"):
        bayes.reported(analyse(SPAM[0], config))
    assert not bayes.store_down  # the store answers: Bayes must go on for other messages
    bayes.close()
    revoked = mailsift(per_domain, "learn", "--revoke", str(folder / "0.eml"))
    assert revoked.returncode == 2
    assert revoked.stderr.count("\n") == 1, revoked.stderr
    assert revoked.stderr.startswith("mailsift: learn: stopped: ")
    assert "the report count " in revoked.stderr and "or --clear-reports); " in revoked.stderr
    assert mailsift(per_domain, "learn", "--clear-reports").stdout.startswith("Withdrew 1 ")
    assert mailsift(per_domain, "learn", "--report", str(folder / "1.eml")).returncode == 0
    assert reported(per_domain, folder / "1.eml")


def test_a_report_made_for_a_recipient_store_is_matched_for_everyone(per_domain: Path,
                                                                     tmp_path: Path) -> None:
    """`--report --for` learned the message into that recipient's store and kept the digests
    there too, where nothing looks: every message is matched against the site's reports alone,
    so the report never hit, and said "Reported digests of 1 message(s)" all the same."""
    folder = spam_folder(tmp_path, 2)
    shared = mailsift(per_domain, "learn", "--report", "--for", "a.example", str(folder / "0.eml"))
    assert shared.returncode == 0, shared.stderr
    assert reported(per_domain, folder / "0.eml")
    assert dumped(per_domain, "--for", "a.example")["spam messages learned"] == "1"
    assert dumped(per_domain)["spam messages learned"] == "0"
    revoked = mailsift(per_domain, "learn", "--revoke", "--for", "a.example", str(folder / "0.eml"))
    assert revoked.returncode == 0, revoked.stderr
    assert not reported(per_domain, folder / "0.eml")

    refused = mailsift(per_domain, "learn", "--clear-reports", "--for", "a.example")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == ("mailsift: learn --clear-reports takes no --for: the shared spam "
                              "reports are the site's, matched for every recipient\n")

    assert mailsift(per_domain, "learn", "--report", str(folder / "1.eml")).returncode == 0
    backup = tmp_path / "a.jsonl"  # a recipient's backup and restore leave the site's reports be
    assert mailsift(per_domain, "learn", "--backup", str(backup), "--for", "a.example").returncode == 0
    restored = mailsift(per_domain, "learn", "--restore", str(backup), "--for", "a.example")
    assert restored.returncode == 0, restored.stderr
    assert reported(per_domain, folder / "1.eml")


def test_the_repair_of_a_damaged_store_names_it_as_the_administrator_does(per_domain: Path,
                                                                         tmp_path: Path) -> None:
    """The repair named the store by a prefix (`learn --prefix 'mailsift:a.example:' --restore
    FILE`) to an administrator who knows it as `--for a.example`: an option they never used,
    with a quoting of its own. The site-wide store needs neither."""
    folder = spam_folder(tmp_path, 2)
    for domain in ("a.example", "b.example"):
        mailsift(per_domain, "learn", "--spam", "--for", domain, str(folder / "0.eml"))
    damage_total(per_domain, "mailsift:a.example:", "spam", "lots")
    refused = mailsift(per_domain, "learn", "--spam", "--for", "a.example", str(folder / "1.eml"))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith("mailsift: learn: ") and refused.stderr.count("\n") == 1
    assert refused.stderr.endswith("(mailsift learn --for a.example --restore FILE, or --clear)\n")
    assert "--prefix" not in refused.stderr
    mailsift(per_domain, "learn", "--spam", str(folder / "0.eml"))
    damage_total(per_domain, "mailsift:", "ham", "-1")
    site = mailsift(per_domain, "learn", "--dump")
    assert site.returncode == 2
    assert "store 'mailsift:': the ham total" in site.stderr
    assert "-1" in site.stderr and "not a whole number from 0" in site.stderr
    assert site.stderr.endswith("learn again (mailsift learn --restore FILE, or --clear)\n")
    assert mailsift(per_domain, "learn", "--clear", "--for", "a.example").returncode == 0
    assert mailsift(per_domain, "learn", "--stores").stdout.startswith("b.example 1 spam")


@pytest.mark.parametrize("per_domain", ["redis", "redis-cluster"], indirect=True)  # Redis's own damage
def test_stores_names_a_totals_key_of_another_type_and_lists_the_others(per_domain: Path,
                                                                        tmp_path: Path) -> None:
    """`SET {mailsift:a.example:}totals 5` in redis-cli made `learn --stores` say "Bayes store
    unavailable" (WRONGTYPE) and list nothing, where other damage is one line for that store."""
    folder = spam_folder(tmp_path, 2)
    for domain, message in (("a.example", "0"), ("b.example", "1")):
        mailsift(per_domain, "learn", "--spam", "--for", domain, str(folder / f"{message}.eml"))
    store = open_store(load_config(str(per_domain)).bayes, "mailsift:a.example:")
    store.client.delete("{mailsift:a.example:}totals")
    store.client.set("{mailsift:a.example:}totals", 5)
    store.close()
    listed = mailsift(per_domain, "learn", "--stores")
    assert listed.returncode == 2
    assert listed.stdout.startswith("b.example 1 spam, 0 ham, ")
    assert listed.stderr.startswith("mailsift: learn: redis at ")
    assert ("store 'mailsift:a.example:': the key {mailsift:a.example:}totals holds 'a string', "
            "not a hash, which mailsift never writes") in listed.stderr
    assert listed.stderr.endswith("(mailsift learn --for a.example --restore FILE, or --clear)\n")
    assert listed.stderr.count("\n") == 1 and "unavailable" not in listed.stderr
    assert mailsift(per_domain, "learn", "--clear", "--for", "a.example").returncode == 0
    repaired = mailsift(per_domain, "learn", "--stores")
    assert (repaired.returncode, repaired.stderr) == (0, "")


def test_clear_reports_that_fails_part_way_withdraws_none(redis_server: RedisServer,
                                                           tmp_path: Path) -> None:
    """It unlinked the reports a SCAN batch at a time, so a Redis refusing part of it (here an
    ACL user that may not touch the report counts; in life a fail-over, a timeout) left the
    report records gone and their digests still matched by every host. Now all go or none."""
    with redis_server.client() as client:
        client.flushall()
    config = tmp_path / "redis.toml"
    config.write_text(f'[bayes]\nstore = "{redis_server.url}"\n')
    folder = spam_folder(tmp_path, 2)
    assert mailsift(config, "learn", "--report", str(folder / "0.eml"), str(folder / "1.eml")).returncode == 0
    (tmp_path / "password").write_text("cleaner-pw\n")
    limited = tmp_path / "limited.toml"
    limited.write_text(f'[bayes]\nstore = "{redis_server.url}"\nusername = "cleaner"\n'
                       f'password_file = "{tmp_path}/password"\n')
    with redis_server.client() as client:
        client.acl_setuser("cleaner", enabled=True, passwords=["+cleaner-pw"], commands=["+@all"],
                           keys=["{mailsift:}schema", "{mailsift:}rm:*"])
        try:
            failed = mailsift(limited, "learn", "--clear-reports")
        finally:
            client.acl_deluser("cleaner")
        assert failed.returncode == 2 and "NoPermissionError" in failed.stderr, failed.stderr
        assert len(list(client.scan_iter(match="{mailsift:}rm:*"))) == 2
    assert reported(config, folder / "0.eml") and reported(config, folder / "1.eml")
    cleared = mailsift(config, "learn", "--clear-reports")
    assert cleared.stdout.startswith("Withdrew 2 shared spam report(s) ")


def test_learning_for_a_recipient_logs_in_to_redis_once(redis_server: RedisServer,
                                                         tmp_path: Path) -> None:
    """`--report --for` opened a second client for the recipient's store beside the site's
    (whose spam reports it shares): two connections and two logins, where the milter shares one."""
    with redis_server.client() as client:
        client.flushall()
    config = tmp_path / "per-domain.toml"
    config.write_text(f'[bayes]\nstore = "{redis_server.url}"\nper_recipient = "domain"\n')
    message = spam_folder(tmp_path, 1) / "0.eml"

    def connections(*args: str) -> int:
        with redis_server.client() as client:
            before = client.info("stats")["total_connections_received"]
            assert mailsift(config, "learn", "--report", *args, str(message)).returncode == 0
            return client.info("stats")["total_connections_received"] - before

    site = connections()
    assert connections("--for", "a.example") == site


def test_the_log_and_a_quarantine_review_name_a_damaged_store_as_learn_does(
        per_domain: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The milter's warning for a scan or autolearn, and `quarantine learn`, named a recipient's
    damaged store by `--prefix 'mailsift:a.example:'` (and the review called the store, which
    answers, "unavailable"), where `learn` names it `--for a.example`."""
    from mailsift.analysis.model import Envelope
    from mailsift.quarantine.store import open_quarantine
    from mailsift.scanner import Scanner
    from tests.quarantine.conftest import make_message, make_meta

    per_domain.write_text(per_domain.read_text() + f'[quarantine]\ndir = "{tmp_path}/q"\n')
    folder = spam_folder(tmp_path, 1)
    assert mailsift(per_domain, "learn", "--spam", "--for", "a.example",
                    str(folder / "0.eml")).returncode == 0
    damage_total(per_domain, "mailsift:a.example:", "spam", "lots")
    repair = "(mailsift learn --for a.example --restore FILE, or --clear)"

    config = load_config(str(per_domain))
    caplog.set_level(logging.WARNING)
    with contextlib.closing(BayesFilter(config.bayes, open_store(config.bayes))) as bayes:
        Scanner(config, bayes=bayes).scan(SPAM[1], Envelope(rcpt_to=["jane@a.example"]))
    assert [r.getMessage() for r in caplog.records if repair in r.getMessage()], caplog.text
    assert "--prefix" not in caplog.text

    held = open_quarantine(config.quarantine).put(make_message(), make_meta(["jane@a.example"]))
    reviewed = mailsift(per_domain, "quarantine", "learn", "--spam", held)
    assert (reviewed.returncode, reviewed.stdout) == (2, ""), reviewed.stderr
    assert reviewed.stderr.count("\n") == 1 and reviewed.stderr.endswith(f"{repair}\n"), reviewed.stderr
    assert "unavailable" not in reviewed.stderr


def test_a_recipient_domain_has_one_store_in_either_spelling(per_domain: Path, tmp_path: Path) -> None:
    """bücher.example and xn--bcher-kva.example were two stores, each half trained, and mail to
    both spellings of the one domain was judged by the site-wide store alone."""
    folder = spam_folder(tmp_path, 2)
    taught = mailsift(per_domain, "learn", "--spam", "--for", "Bücher.example", str(folder))
    assert taught.returncode == 0, taught.stderr
    assert dumped(per_domain, "--for", "xn--bcher-kva.example")["spam messages learned"] == "2"
    assert mailsift(per_domain, "learn", "--stores").stdout.split()[0] == "xn--bcher-kva.example"
    bayes = load_config(str(per_domain)).bayes
    assert recipient_key(bayes, ["jörg@bücher.example", "anna@XN--BCHER-KVA.example"]) == \
        "xn--bcher-kva.example"
