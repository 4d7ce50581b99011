"""`mailsift learn` as an administrator runs it: any kind of path, sa-learn-like output, one-line errors."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import mailbox
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import BACKUP_FORMAT, SCHEMA_VERSION, Label
from mailsift.config import BayesConfig, Config, load_config
from mailsift.training.commands import LearnCommandError, run_learn
from mailsift.training.learn import learn
from mailsift.training.sources import directory_files, iter_messages
from tests.support.cli import run_mailsift
from tests.support.corpus import corpus_sample
from tests.support.redis_server import RedisClusterServers, RedisServer

SPAM = corpus_sample("spam", 6)


def mailsift(config: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return run_mailsift(["--config", str(config), *args], stdin=stdin)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mailsift.toml"
    path.write_text(f'[bayes]\nstore = "sqlite:///{tmp_path}/bayes.sqlite"\n')
    return path


def test_learns_a_directory_and_reports_like_sa_learn(config: Path, tmp_path: Path) -> None:
    folder = tmp_path / "spam"
    folder.mkdir()
    for i, raw in enumerate(SPAM):
        (folder / f"{i}.eml").write_bytes(raw)
    (folder / "notes.txt").write_text("just some text, not mail\n")
    first = mailsift(config, "learn", "--spam", str(folder))
    assert first.returncode == 0, first.stderr
    assert "Learned tokens from 6 message(s) (7 messages examined)" in first.stdout
    assert "notes.txt: not a mail message" in first.stdout
    again = mailsift(config, "learn", "--spam", str(folder))
    assert "Learned tokens from 0 message(s)" in again.stdout
    assert "Skipped 6 message(s) already learned" in again.stdout


def test_learns_an_mbox_a_maildir_and_stdin(config: Path, tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "box.mbox")
    for raw in SPAM[:3]:
        box.add(raw)
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for raw in SPAM[3:5]:
        maildir.add(raw)
    result = mailsift(config, "learn", "--ham", str(tmp_path / "box.mbox"), str(tmp_path / "Maildir"))
    assert "Learned tokens from 5 message(s) (5 messages examined)" in result.stdout, result.stderr
    piped = mailsift(config, "learn", "--ham", "-", stdin=SPAM[5])
    assert "Learned tokens from 1 message(s)" in piped.stdout
    dump = mailsift(config, "learn", "--dump")
    assert "ham messages learned:  6" in dump.stdout


def test_forget_takes_messages_back(config: Path, tmp_path: Path) -> None:
    message = tmp_path / "one.eml"
    message.write_bytes(SPAM[0])
    mailsift(config, "learn", "--spam", str(message))
    result = mailsift(config, "learn", "--forget", str(message))
    assert "Forgot tokens from 1 message(s)" in result.stdout
    assert "spam messages learned: 0" in mailsift(config, "learn", "--dump").stdout


@pytest.fixture
def store_down(tmp_path: Path) -> Path:
    """A config whose Redis store was started once (so its port is real) and then stopped."""
    server = RedisServer(tmp_path / "redis")
    url = server.url
    server.stop()
    config = tmp_path / "down.toml"
    config.write_text(f'[bayes]\nstore = "{url}"\n')
    return config


def test_learn_with_the_store_down_exits_non_zero_with_one_line(store_down: Path, tmp_path: Path) -> None:
    message = tmp_path / "one.eml"
    message.write_bytes(SPAM[0])
    result = mailsift(store_down, "learn", "--spam", str(message))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("mailsift: learn: Bayes store unavailable: redis at 127.0.0.1:")


def test_learn_report_backup_and_restore_in_a_redis_cluster(tmp_path: Path) -> None:
    """The whole command against a real three-node Redis Cluster, named by `bayes.cluster_nodes`."""
    cluster = RedisClusterServers(tmp_path / "cluster")
    try:
        config = tmp_path / "cluster.toml"
        nodes = ", ".join(f'"{host}:{port}"' for host, port in cluster.seeds)
        config.write_text(f'[bayes]\nstore = "redis://"\ncluster_nodes = [{nodes}]\n')
        folder = tmp_path / "spam"
        folder.mkdir()
        for i, raw in enumerate(SPAM):
            (folder / f"{i}.eml").write_bytes(raw)
        learned = mailsift(config, "learn", "--report", str(folder))
        assert "Learned tokens from 6 message(s) (6 messages examined)" in learned.stdout, learned.stderr
        assert '"DIGEST_REPORTED"' in mailsift(config, "check", "--json", str(folder / "0.eml")).stdout
        dump = mailsift(config, "learn", "--dump").stdout
        assert "spam messages learned: 6" in dump
        backup = mailsift(config, "learn", "--backup", "-")
        assert mailsift(config, "learn", "--clear").returncode == 0
        assert "spam messages learned: 0" in mailsift(config, "learn", "--dump").stdout
        mailsift(config, "learn", "--restore", "-", stdin=backup.stdout.encode())
        assert mailsift(config, "learn", "--dump").stdout == dump
    finally:
        cluster.stop()


def test_learn_for_a_domain_fills_the_store_the_milter_uses_for_it(config: Path, tmp_path: Path) -> None:
    message = tmp_path / "one.eml"
    message.write_bytes(SPAM[0])
    refused = mailsift(config, "learn", "--spam", "--for", "example.org", str(message))
    assert refused.returncode == 2
    assert refused.stderr == 'mailsift: learn: --for needs bayes.per_recipient = "domain" or "address"\n'
    config.write_text(config.read_text().replace("[bayes]\n", '[bayes]\nper_recipient = "domain"\n'))
    learned = mailsift(config, "learn", "--spam", "--for", "Example.ORG", str(message))
    assert "Learned tokens from 1 message(s)" in learned.stdout, learned.stderr
    assert "spam messages learned: 1" in mailsift(config, "learn", "--dump", "--for", "example.org").stdout
    assert "spam messages learned: 1" in mailsift(config, "learn", "--dump", "--prefix",
                                                  "mailsift:example.org:").stdout
    assert "spam messages learned: 0" in mailsift(config, "learn", "--dump").stdout
    for typo in ("not a domain!!", "example..org", "bob@", "ex ample.org"):
        bad = mailsift(config, "learn", "--spam", "--for", typo, str(message))
        assert (bad.returncode, bad.stderr) == (2, f"mailsift: learn: --for {typo!r}: not a domain\n")
    assert mailsift(config, "learn", "--dump", "--for", "bücher.example").returncode == 0


def test_learn_needs_exactly_one_mode(config: Path) -> None:
    result = mailsift(config, "learn", "--spam", "--ham", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("mailsift: learn: give exactly one of")


@pytest.mark.parametrize("mode", ["--clear", "--dump", "--expire", "--backup=out.jsonl"])
def test_a_mode_on_the_whole_store_refuses_paths(config: Path, tmp_path: Path, mode: str) -> None:
    """`learn --clear spam/` wiped the whole store, exit 0: the PATH was silently ignored."""
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[0])
    mailsift(config, "learn", "--spam", str(message))
    dump = mailsift(config, "learn", "--dump").stdout
    result = mailsift(config, "learn", mode, str(message))
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn --{mode[2:].split('=')[0]} takes no PATH (given: {message}); "
                             "it acts on the whole store\n")
    assert mailsift(config, "learn", "--dump").stdout == dump


def test_report_shares_digests_and_revoke_withdraws_them(config: Path, tmp_path: Path) -> None:
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[1])
    reported = mailsift(config, "learn", "--report", str(message))
    assert "Learned tokens from 1 message(s)" in reported.stdout, reported.stderr
    assert "Reported digests of 1 message(s)" in reported.stdout
    check = mailsift(config, "check", "--json", str(message))
    assert '"DIGEST_REPORTED"' in check.stdout
    revoked = mailsift(config, "learn", "--revoke", str(message))
    assert "Revoked digests of 1 message(s)" in revoked.stdout
    assert '"DIGEST_REPORTED"' not in mailsift(config, "check", "--json", str(message)).stdout


def test_report_and_revoke_also_tell_pyzor_when_enabled(config: Path, tmp_path: Path) -> None:
    """Pyzor needs its public servers, which no test here can reach: a stand-in `pyzor` on PATH
    records how it was called, which is the part that is ours."""
    calls = tmp_path / "pyzor-calls"
    fake = tmp_path / "bin" / "pyzor"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$1 $(wc -c)\" >> {calls}\n")
    fake.chmod(0o755)
    config.write_text(config.read_text().replace("[bayes]\n", "[bayes]\npyzor = true\n"))
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[2])
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    reported = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "learn",
                               "--report", str(message)], capture_output=True, text=True, env=env)
    assert "Pyzor: report sent for 1 message(s)" in reported.stdout, reported.stderr
    subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "learn", "--revoke",
                    str(message)], capture_output=True, text=True, env=env, check=True)
    assert calls.read_text().split("\n")[:2] == [f"report {len(SPAM[2])}", f"whitelist {len(SPAM[2])}"]


def test_report_says_so_when_pyzor_is_enabled_but_missing(config: Path, tmp_path: Path) -> None:
    config.write_text(config.read_text().replace("[bayes]\n", "[bayes]\npyzor = true\n"))
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[3])
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no pyzor there
    done = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "learn",
                           "--report", str(message)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "Pyzor: not told (the pyzor command is not installed)" in done.stdout


def test_a_file_that_vanishes_during_learning_is_named_and_the_rest_learned(tmp_path: Path) -> None:
    """Files are read where they are analysed, not when the directory is listed; a message moved
    away in between (an IMAP client expunging a Maildir) is one unreadable file, not an abort."""
    folder = tmp_path / "spam"
    folder.mkdir()
    for i, raw in enumerate(SPAM):
        (folder / f"{i}.eml").write_bytes(raw)
    config = Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite"))
    items = list(iter_messages([str(folder)]))
    (folder / "2.eml").unlink()
    report = learn(items, Label.SPAM, config, BayesFilter(config.bayes, open_store(config.bayes)))
    assert (report.examined, report.changed) == (6, 5)
    assert report.failed == [(str(folder / "2.eml"), "No such file or directory")]


def peak_rss_kib(config: Path, *args: str) -> int:
    """`mailsift learn ARGS` in a fresh interpreter; its own peak RSS (the workers are children
    and not counted), after it succeeded."""
    code = ("import resource, runpy, sys\n"
            f"sys.argv = ['mailsift', '--config', {str(config)!r}, 'learn', *{list(args)!r}]\n"
            "try:\n    runpy.run_module('mailsift', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "peak " in done.stdout, done.stderr
    return int(done.stdout.split("peak ")[-1])


def test_a_big_mbox_is_learned_without_being_held_in_memory(config: Path, tmp_path: Path) -> None:
    """sa-learn --mbox streams a mailbox; so must we, or a 2 GB spam folder exhausts a small
    host. Each message is read by the worker that analyses it."""
    attachment = base64.encodebytes(os.urandom(150_000)).decode()
    big = mailbox.mbox(tmp_path / "big.mbox")
    for n in range(400):
        big.add(f"From: s{n}@example.org\nSubject: offer {n}\nMIME-Version: 1.0\n"
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
                f"cheap offer {n}\n--b\nContent-Type: application/zip\n"
                f"Content-Transfer-Encoding: base64\n\n{attachment}--b--\n")
    big.flush()
    small = mailbox.mbox(tmp_path / "small.mbox")
    small.add(SPAM[0])
    small.flush()
    size_kib = (tmp_path / "big.mbox").stat().st_size // 1024
    assert size_kib > 75_000
    growth = peak_rss_kib(config, "--spam", str(tmp_path / "big.mbox")) - \
        peak_rss_kib(config, "--spam", str(tmp_path / "small.mbox"))
    assert growth < size_kib // 4, (growth, size_kib)


def test_an_mbox_that_shrinks_during_learning_costs_only_its_missing_messages(tmp_path: Path) -> None:
    box_path = tmp_path / "spam.mbox"
    box = mailbox.mbox(box_path)
    for raw in SPAM[:4]:
        box.add(raw)
    box.flush()
    config = Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite"))
    items = list(iter_messages([str(box_path)]))
    box.remove(3)
    box.flush()
    report = learn(items, Label.SPAM, config, BayesFilter(config.bayes, open_store(config.bayes)))
    assert (report.examined, report.changed) == (4, 3)
    assert report.failed == [(f"{box_path}#3", "no longer in the mbox (changed since it was listed)")]


@pytest.mark.timeout(60)
def test_a_fifo_is_named_or_passed_over_never_waited_on(config: Path, tmp_path: Path) -> None:
    """Reading a named pipe blocks until someone writes: learning would wait forever."""
    folder = tmp_path / "spam"
    folder.mkdir()
    (folder / "0.eml").write_bytes(SPAM[0])
    os.mkfifo(folder / "pipe")
    os.mkfifo(tmp_path / "named-pipe")
    done = mailsift(config, "learn", "--spam", str(folder), str(tmp_path / "named-pipe"))
    assert "Learned tokens from 1 message(s) (2 messages examined)" in done.stdout, done.stderr
    assert f"{tmp_path / 'named-pipe'}: not a regular file" in done.stdout


def test_mbox_flag_reads_a_folder_of_mboxes_and_names_a_file_that_is_none(tmp_path: Path) -> None:
    """sa-learn --mbox reads each file of a directory as an mbox; without that, a folder of spam
    archives would be learned as one huge message per file. A file with no `From ` line under
    --mbox is named rather than counted as an empty mailbox; an empty file is an empty mailbox."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for name, raws in (("2024.mbox", SPAM[:2]), ("2025.mbox", SPAM[2:5])):
        box = mailbox.mbox(archive / name)
        for raw in raws:
            box.add(raw)
        box.flush()
    (archive / "emptied.mbox").write_bytes(b"")
    (archive / "notes.txt").write_text("spam archive, one mbox per year\n")
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(SPAM[5])
    items = list(iter_messages([str(archive), str(tmp_path / "Maildir")], force_mbox=True))
    assert [item.name for item in items if not item.error] == [
        *(f"{archive / '2024.mbox'}#{i}" for i in range(2)),
        *(f"{archive / '2025.mbox'}#{i}" for i in range(3)),
        *(str(path) for path in sorted((tmp_path / "Maildir" / "new").iterdir())),
    ]
    assert [(item.name, item.error) for item in items if item.error] == [
        (str(archive / "notes.txt"), 'not an mbox (no line starts with "From ")')]
    assert [(item.content()[0] or b"").count(b"\n") > 5 for item in items if not item.error] == [True] * 6


def test_an_emptied_mbox_named_on_the_command_line_is_simply_empty(config: Path, tmp_path: Path) -> None:
    """A spamtrap's mbox, emptied after each learning, was "not a mail message" with exit 2 on
    every night it caught nothing, when given without --mbox as cron lines give it."""
    spamtrap = tmp_path / "spamtrap"
    spamtrap.write_bytes(b"")
    result = mailsift(config, "learn", "--spam", str(spamtrap))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Learned tokens from 0 message(s) (0 messages examined)\n"


def test_mbox_flag_on_a_file_with_no_messages_names_it(config: Path, tmp_path: Path) -> None:
    text = tmp_path / "spam.txt"
    text.write_text("not a mailbox\n")
    result = mailsift(config, "learn", "--spam", "--mbox", str(text))
    assert "Learned tokens from 0 message(s) (1 messages examined)" in result.stdout, result.stderr
    assert f'{text}: not an mbox (no line starts with "From ")' in result.stdout


def test_a_path_given_that_has_nothing_to_learn_makes_the_exit_status_non_zero(
        config: Path, tmp_path: Path) -> None:
    """A typo in a cron job must not learn nothing, night after night, with exit status 0. The
    rest is still learned and reported; the error is one line on standard error."""
    good, notes = tmp_path / "spam.eml", tmp_path / "notes.txt"
    good.write_bytes(SPAM[0])
    notes.write_text("not mail\n")
    result = mailsift(config, "learn", "--spam", str(good), str(tmp_path / "Junk"), str(notes))
    assert result.returncode == 2
    assert "Learned tokens from 1 message(s) (3 messages examined)" in result.stdout
    assert f"{tmp_path / 'Junk'}: no such file or directory" in result.stdout
    assert result.stderr == (f"mailsift: learn: nothing to learn in {tmp_path / 'Junk'}, {notes} "
                             "(see above)\n")


@contextlib.contextmanager
def listing_as_nobody() -> Iterator[None]:
    """Root reads any folder; to meet a folder it cannot list, list as nobody for a moment."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(pwd.getpwnam("nobody").pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_folder_that_cannot_be_listed_is_named_and_the_rest_learned() -> None:
    """os.walk skips a folder it cannot list without a word; the report must name it."""
    top = Path(tempfile.mkdtemp(prefix="mailsift-locked-"))  # not below pytest's root-only tmp
    try:
        (top / "a").mkdir()
        (top / "a" / "1.eml").write_bytes(SPAM[0])
        (top / "b").mkdir()
        (top / "b" / "2.eml").write_bytes(SPAM[1])
        top.chmod(0o755)
        (top / "a").chmod(0o755)
        (top / "b").chmod(0)
        with listing_as_nobody():
            items = list(iter_messages([str(top)]))
            with pytest.raises(PermissionError):  # eval's test folders: scoring a part would mislead
                list(directory_files(top))
        assert [(item.name, item.error) for item in items] == [
            (str(top / "a" / "1.eml"), ""), (str(top / "b"), "Permission denied")]
    finally:
        (top / "b").chmod(0o755)
        shutil.rmtree(top)


def test_an_mbox_on_standard_input_with_the_mbox_flag(config: Path, tmp_path: Path) -> None:
    """`zcat spam.mbox.gz | mailsift learn --spam --mbox -`: without --mbox, standard input is one
    message (what an MDA or sieve pipe sends), and garbage there makes the exit status non-zero."""
    box = mailbox.mbox(tmp_path / "box.mbox")
    for raw in SPAM[:3]:
        box.add(raw)
    box.flush()
    piped = mailsift(config, "learn", "--spam", "--mbox", "-", stdin=(tmp_path / "box.mbox").read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert "Learned tokens from 3 message(s) (3 messages examined)" in piped.stdout
    garbage = mailsift(config, "learn", "--spam", "-", stdin=b"hello\n")
    assert garbage.returncode == 2
    assert "<stdin>: not a mail message" in garbage.stdout
    assert garbage.stderr == "mailsift: learn: nothing to learn in <stdin> (see above)\n"


def test_a_folder_and_its_mbox_export_are_the_same_messages(config: Path, tmp_path: Path) -> None:
    """Learning a spam folder, then the mbox an MUA exported from it, counted every message
    twice: the mbox drops each message's last blank line and quotes body lines that start with
    "From "."""
    folder = tmp_path / "spam"
    folder.mkdir()
    quoted = SPAM[1].replace(b"\n\n", b"\n\nFrom the desk of the CEO:\n", 1)
    for n, raw in enumerate([*SPAM[:1], quoted, *SPAM[2:]]):
        (folder / f"{n}.eml").write_bytes(raw if raw.endswith(b"\n\n") else raw + b"\n")
    first = mailsift(config, "learn", "--spam", str(folder))
    assert f"Learned tokens from {len(SPAM)} message(s)" in first.stdout, first.stdout
    box = mailbox.mbox(tmp_path / "export.mbox")
    for path in sorted(folder.iterdir()):
        box.add(path.read_bytes())
    box.flush()
    assert b"\n>From the desk" in (tmp_path / "export.mbox").read_bytes()
    again = mailsift(config, "learn", "--spam", "--mbox", str(tmp_path / "export.mbox"))
    assert f"Learned tokens from 0 message(s) ({len(SPAM)} messages examined)" in again.stdout, again.stdout
    assert f"spam messages learned: {len(SPAM)}\n" in mailsift(config, "learn", "--dump").stdout


def test_backup_to_standard_output_restores_from_standard_input(config: Path, tmp_path: Path) -> None:
    """`mailsift learn --backup - | gzip`: the stream holds the backup and nothing else."""
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[0])
    mailsift(config, "learn", "--spam", str(message))
    dump = mailsift(config, "learn", "--dump").stdout
    backup = mailsift(config, "learn", "--backup", "-")
    assert backup.returncode == 0, backup.stderr
    assert all(line.startswith("{") for line in backup.stdout.splitlines())
    mailsift(config, "learn", "--clear")
    restored = mailsift(config, "learn", "--restore", "-", stdin=backup.stdout.encode())
    assert restored.stdout.startswith("Restored "), restored.stderr
    assert restored.stdout.rstrip().endswith("token(s) from standard input")
    assert mailsift(config, "learn", "--dump").stdout == dump


def learned_one_and_backed_up(config: Path, tmp_path: Path) -> tuple[str, Path]:
    """A store with one message learned, its --dump, and its backup file."""
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[0])
    mailsift(config, "learn", "--spam", str(message))
    backup = tmp_path / "bayes.jsonl"
    assert mailsift(config, "learn", "--backup", str(backup)).returncode == 0
    return mailsift(config, "learn", "--dump").stdout, backup


def test_a_backup_cut_short_is_refused_and_changes_nothing(config: Path, tmp_path: Path) -> None:
    """`head -n 100 bayes.jsonl > copy` (or a copy that ran out of disk) once restored 'fine'
    and replaced a whole store with a fraction of it."""
    dump, backup = learned_one_and_backed_up(config, tmp_path)
    lines = backup.read_text().splitlines(keepends=True)
    assert lines[-1].startswith('{"end": ')
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:100]))
    result = mailsift(config, "learn", "--restore", str(cut))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"mailsift: learn: {cut}: incomplete backup: its end line is missing "
                             "(cut short in a copy?); the store was left unchanged\n")
    cut.write_text("".join(lines[:100] + lines[-1:]))
    result = mailsift(config, "learn", "--restore", str(cut))
    assert result.returncode == 2
    assert f"{cut}: incomplete backup: the end line counts 1 message(s) and {len(lines) - 3} token(s)" \
        in result.stderr
    assert mailsift(config, "learn", "--dump").stdout == dump
    assert mailsift(config, "learn", "--restore", str(backup)).returncode == 0
    assert mailsift(config, "learn", "--dump").stdout == dump


def test_a_backup_cut_inside_a_line_or_from_a_newer_mailsift_says_so(config: Path,
                                                                      tmp_path: Path) -> None:
    """What an admin meets after a copy that ran out of disk mid-line, or at a rollback: the
    refusals said 'bad backup line: Unterminated string starting at: line 1 column 7' and
    'backup version 2 is not 1', neither whether the store (which a restore replaces whole)
    was touched."""
    dump, backup = learned_one_and_backed_up(config, tmp_path)
    text = backup.read_text()
    cut = tmp_path / "cut.jsonl"
    cut.write_text(text[:text.index("\n", len(text) // 2) - 5])
    newer = tmp_path / "newer.jsonl"
    newer.write_text(text.replace(f'"version": {SCHEMA_VERSION}', f'"version": {SCHEMA_VERSION + 1}', 1))
    refused = [mailsift(config, "learn", "--restore", str(path)) for path in (cut, newer)]
    assert [(r.returncode, r.stdout) for r in refused] == [(2, ""), (2, "")]
    line = cut.read_text().count("\n") + 1
    assert refused[0].stderr == (f"mailsift: learn: {cut}:{line}: incomplete backup: the file ends "
                                 "inside this line (cut short in a copy?); the store was left "
                                 "unchanged\n")
    assert refused[1].stderr == (
        f"mailsift: learn: {newer}: a backup of format version {SCHEMA_VERSION + 1} (written by a "
        f"newer mailsift); this one reads version {SCHEMA_VERSION}: restore it with the mailsift "
        "that wrote it; the store was left unchanged\n")
    assert mailsift(config, "learn", "--dump").stdout == dump


def test_a_store_that_fills_up_part_way_reports_what_was_learned(tmp_path: Path) -> None:
    """A Redis under maxmemory with noeviction refuses a batch when full. Before, `learn` said
    only "Bayes store unavailable" (with the script's SHA), as if nothing had been learned,
    though the batches before stay learned; run again, it learns the rest."""
    folder = tmp_path / "spam"
    folder.mkdir()
    for i, raw in enumerate(corpus_sample("spam_2", 400)):
        (folder / f"{i}.eml").write_bytes(raw)
    server = RedisServer(tmp_path / "redis", "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    try:
        config = tmp_path / "small.toml"
        config.write_text(f'[bayes]\nstore = "{server.url}"\n')
        full = mailsift(config, "learn", "--spam", str(folder))
        learned = int(server.client().hget("{mailsift:}totals", "s") or 0)
        server.client().config_set("maxmemory", "0")
        again = mailsift(config, "learn", "--spam", str(folder))
    finally:
        server.stop()
    assert 0 < learned < 400
    assert (full.returncode, full.stdout) == (
        2, f"Learned tokens from {learned} message(s) ({learned} messages examined)\n")
    assert full.stderr == (
        f"mailsift: learn: stopped, the Bayes store failed: redis at 127.0.0.1:{server.port}: "
        "OutOfMemoryError: command not allowed when used memory > 'maxmemory'. (Redis is full: "
        "raise maxmemory, or set maxmemory-policy volatile-lru so that old tokens make room); "
        "what is counted above stays learned, run the same command again for the rest\n")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"Learned tokens from {400 - learned} message(s) (400 messages examined)",
        f"Skipped {learned} message(s) already learned"]


def test_a_restore_that_fails_part_way_says_the_store_holds_part_of_it(tmp_path: Path) -> None:
    """Restoring into a Redis too small for the backup used to end as "Bayes store unavailable",
    though Redis was up and the store had just been cleared and part-filled."""
    server = RedisServer(tmp_path / "redis", "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    try:
        config = tmp_path / "small.toml"
        config.write_text(f'[bayes]\nstore = "{server.url}"\n')
        backup = tmp_path / "big.jsonl"
        tokens = 40_000  # ~7 MB of Redis memory
        lines = [json.dumps({"format": BACKUP_FORMAT, "version": SCHEMA_VERSION, "spam": 1,
                             "ham": 0, "ends": True}),
                 json.dumps({"m": "a" * 40, "c": "spam"}),
                 *(json.dumps({"t": n.to_bytes(8, "big").hex(), "s": 1, "h": 0, "a": 1_700_000_000})
                   for n in range(tokens)),
                 json.dumps({"end": {"seen": 1, "tokens": tokens}})]
        backup.write_text("\n".join(lines) + "\n")
        result = mailsift(config, "learn", "--restore", str(backup))
    finally:
        server.stop()
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"mailsift: learn: {backup}: the restore stopped part-way, so "
                                    "the store holds only part of the backup; run it again once the "
                                    "store is fixed (redis at 127.0.0.1:")
    assert result.stderr.endswith(  # not the pipeline's command, binary keys and all
        ": OutOfMemoryError: command not allowed when used memory > 'maxmemory'. (Redis is full: "
        "raise maxmemory, or set maxmemory-policy volatile-lru so that old tokens make room))\n")


def test_a_gzipped_backup_restores_from_a_file_and_from_standard_input(config: Path, tmp_path: Path) -> None:
    """The README's `mailsift learn --backup - | gzip > bayes.jsonl.gz` gave "internal error:
    UnicodeDecodeError" when given back to --restore."""
    dump, backup = learned_one_and_backed_up(config, tmp_path)
    packed = tmp_path / "bayes.jsonl.gz"
    packed.write_bytes(gzip.compress(backup.read_bytes()))
    mailsift(config, "learn", "--clear")
    restored = mailsift(config, "learn", "--restore", str(packed))
    assert restored.returncode == 0, restored.stderr
    assert mailsift(config, "learn", "--dump").stdout == dump
    mailsift(config, "learn", "--clear")
    piped = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "learn",
                            "--restore", "-"], input=packed.read_bytes(), capture_output=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert mailsift(config, "learn", "--dump").stdout == dump
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[:len(packed.read_bytes()) // 2])
    result = mailsift(config, "learn", "--restore", str(cut))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mailsift: learn: {cut}:")
    assert result.stderr.endswith(": incomplete backup: the compressed file ends early (cut short "
                                  "in a copy?); the store was left unchanged\n")
    assert mailsift(config, "learn", "--dump").stdout == dump


def test_a_file_that_is_not_text_is_not_a_backup(config: Path, tmp_path: Path) -> None:
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    result = mailsift(config, "learn", "--restore", str(binary))
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn: {binary}: not a mailsift Bayes backup; the store "
                             "was left unchanged\n")


def test_a_failed_backup_leaves_the_previous_one_intact(store_down: Path, tmp_path: Path) -> None:
    """Writing in place would truncate yesterday's good backup before the store fails to answer."""
    previous = tmp_path / "bayes.jsonl"
    previous.write_text('{"format": "an earlier, good backup"}\n')
    result = mailsift(store_down, "learn", "--backup", str(previous))
    assert result.returncode == 2
    assert result.stderr.startswith("mailsift: learn: Bayes store unavailable: redis at 127.0.0.1:")
    assert previous.read_text() == '{"format": "an earlier, good backup"}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bayes.jsonl", "down.toml", "redis"]


def test_a_backup_into_a_missing_folder_names_the_backup_and_the_folder(config: Path,
                                                                        tmp_path: Path) -> None:
    """It said "No such file or directory" of the backup, a file that was to be made."""
    made_store(config)
    target = tmp_path / "nowhere" / "bayes.jsonl"
    result = mailsift(config, "learn", "--backup", str(target))
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn: --backup {target}: there is no folder "
                             f"{target.parent} to write it in\n")


def test_a_backup_to_a_folder_is_refused_and_leaves_nothing_behind(config: Path,
                                                                   tmp_path: Path) -> None:
    """`--backup /backups/` wrote the whole backup beside the folder under a hidden temporary
    name, failed at the rename ("Is a directory") and left that copy there, one a night."""
    folder = tmp_path / "backups"
    folder.mkdir()
    assert mailsift(config, "learn", "--spam", "-", stdin=SPAM[0]).returncode == 0
    before = sorted(tmp_path.iterdir())
    result = mailsift(config, "learn", "--backup", f"{folder}/")
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn: --backup {folder}/: names a folder; name the file "
                             f"to write, e.g. {folder / 'bayes.jsonl'}\n")
    assert sorted(tmp_path.iterdir()) == before and list(folder.iterdir()) == []


def test_a_backup_to_a_missing_folder_written_with_its_slash_is_refused(config: Path,
                                                                        tmp_path: Path) -> None:
    """`--backup /backups/` before the folder was made wrote the backup as a file named
    /backups (Path drops the final slash), where the next night's run then failed."""
    made_store(config)
    folder = tmp_path / "backups"
    result = mailsift(config, "learn", "--backup", f"{folder}/")
    assert result.returncode == 2
    assert result.stderr == (f"mailsift: learn: --backup {folder}/: names a folder; name the file "
                             f"to write, e.g. {folder / 'bayes.jsonl'}\n")
    assert not folder.exists()


def made_store(config: Path) -> None:
    """The configured SQLite store made, empty, as the milter's first start makes it: a backup
    of a store whose file does not exist is refused before its target is looked at."""
    open_store(load_config(str(config)).bayes)


@pytest.mark.parametrize("mode", [["--dump"], ["--expire"], ["--clear"], ["--clear-reports"],
                                  ["--backup", "{tmp}/bayes.jsonl"], ["--forget", "{tmp}/spam.eml"]])
def test_a_store_that_does_not_exist_is_named_not_made_by_what_only_reads_or_maintains_it(
        tmp_path: Path, mode: list[str]) -> None:
    """A mistyped bayes.store: `--backup` made an empty store there, wrote an empty backup and
    exited 0, so a nightly job's backups were empty with nobody told, and `--dump` showed zeros
    for a store that was elsewhere. Learning and --restore still make the store (a new host)."""
    store = tmp_path / "bayse" / "bayes.sqlite"
    (tmp_path / "spam.eml").write_bytes(SPAM[0])
    config = Config(bayes=BayesConfig(store=f"sqlite:///{store}"))
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in mode]
    with pytest.raises(LearnCommandError) as refused:
        run_learn(config, args[0].removeprefix("--"), args[1:2] if args[0] == "--forget" else [],
                  args[1] if args[0] == "--backup" else None, False, None)
    assert str(refused.value) == (
        f"learn {args[0]}: no Bayes store at {store} (bayes.store): nothing was ever learned "
        "there; check the path (learning or --restore creates it)")
    assert not store.exists() and not (tmp_path / "bayes.jsonl").exists()


def synthetic_backup(path: Path, tokens: int) -> None:
    """A backup as `--backup` writes it, with `tokens` random tokens: big ones are slow to learn."""
    header = {"format": BACKUP_FORMAT, "version": SCHEMA_VERSION, "spam": 300, "ham": 300}
    with path.open("w") as out:
        out.write(json.dumps(header) + "\n")
        out.write(json.dumps({"m": "ab" * 20, "c": "spam"}) + "\n")
        for n in range(tokens):
            row = {"t": os.urandom(8).hex(), "s": n % 7, "h": n % 5, "a": 1_700_000_000}
            out.write(json.dumps(row) + "\n")


def test_a_big_backup_is_restored_without_being_held_in_memory(config: Path, tmp_path: Path) -> None:
    """A shared store of millions of tokens is restored on a small admin host too: holding the
    backup took ~200 MB per million tokens; the restore now streams it (after checking it)."""
    synthetic_backup(tmp_path / "big.jsonl", 300_000)
    synthetic_backup(tmp_path / "small.jsonl", 10)
    size_kib = (tmp_path / "big.jsonl").stat().st_size // 1024
    growth = peak_rss_kib(config, "--restore", str(tmp_path / "big.jsonl")) - \
        peak_rss_kib(config, "--restore", str(tmp_path / "small.jsonl"))
    assert growth < size_kib // 4, f"peak RSS grew by {growth} KiB for a {size_kib} KiB backup"


def test_a_bad_line_at_the_end_of_a_backup_changes_nothing(config: Path, tmp_path: Path) -> None:
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM[0])
    mailsift(config, "learn", "--spam", str(message))
    dump = mailsift(config, "learn", "--dump").stdout
    backup = tmp_path / "bad.jsonl"
    synthetic_backup(backup, 1000)
    with backup.open("a") as out:
        out.write('{"t": "not hex", "s": 1, "h": 0, "a": 1}\n')
    result = mailsift(config, "learn", "--restore", str(backup))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mailsift: learn: {backup}:1003: bad backup line: ")
    assert mailsift(config, "learn", "--dump").stdout == dump


def test_a_maildir_inside_a_folder_gives_its_mail_not_tmp_or_dovecot_files(tmp_path: Path) -> None:
    """Learning a folder of users' Maildirs learned the half-written deliveries in each tmp/ and
    named Dovecot's index files as files it could not use."""
    (tmp_path / "jane").mkdir()
    maildir = mailbox.Maildir(tmp_path / "jane" / "Maildir", create=True)
    junk = maildir.add_folder("Junk")
    maildir.add(SPAM[0])
    junk.add(SPAM[1])
    for box in (tmp_path / "jane" / "Maildir", tmp_path / "jane" / "Maildir" / ".Junk"):
        (box / "tmp" / "1700000000.M1P2.host").write_bytes(SPAM[2][:300])
        (box / "dovecot-uidlist").write_text("3 V1700000000 N2\n1 1700000000.M1P1.host\n")
        (box / "dovecot.index.cache").write_bytes(b"\0\1" * 100)
    (tmp_path / "jane" / "notes.eml").write_bytes(SPAM[3])
    items = list(iter_messages([str(tmp_path)]))
    assert sorted(Path(item.name).relative_to(tmp_path).parts[:-1] for item in items) == [
        ("jane",), ("jane", "Maildir", ".Junk", "new"), ("jane", "Maildir", "new")]
    assert not any(item.error for item in items)


def test_gzip_compressed_mboxes_and_messages_are_learned_as_they_are(config: Path, tmp_path: Path) -> None:
    """Spam archives are kept as `spam-2023.mbox.gz`: learning one named it "not a mail message"
    and exited 2. One cut short is named, not a traceback."""
    box = mailbox.mbox(tmp_path / "spam.mbox")
    for raw in SPAM[:3]:
        box.add(raw)
    box.flush()
    archives = tmp_path / "archives"
    archives.mkdir()
    packed = gzip.compress((tmp_path / "spam.mbox").read_bytes())
    (archives / "2023.mbox.gz").write_bytes(packed)
    (tmp_path / "one.eml.gz").write_bytes(gzip.compress(SPAM[3]))
    (tmp_path / "cut.mbox.gz").write_bytes(packed[:len(packed) // 2])
    learned = mailsift(config, "learn", "--spam", str(archives / "2023.mbox.gz"),
                       str(tmp_path / "one.eml.gz"))
    assert learned.returncode == 0, learned.stderr
    assert "Learned tokens from 4 message(s) (4 messages examined)" in learned.stdout
    again = mailsift(config, "learn", "--spam", "--mbox", str(archives), str(tmp_path / "cut.mbox.gz"))
    assert "Learned tokens from 0 message(s) (4 messages examined)" in again.stdout, again.stdout
    assert f"{tmp_path / 'cut.mbox.gz'}: cannot decompress: " in again.stdout
    assert again.stderr == f"mailsift: learn: nothing to learn in {tmp_path / 'cut.mbox.gz'} (see above)\n"


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def per_domain(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A config with per-domain Bayes on each kind of store a site may run, emptied."""
    if request.param == "sqlite":
        store = f'store = "sqlite:///{tmp_path}/bayes.sqlite"'
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        with server.client() as client:
            client.flushall()
        store = f'store = "{server.url}"'
    else:
        seeds = request.getfixturevalue("redis_cluster_seeds")
        nodes = ", ".join(f'"{host}:{port}"' for host, port in seeds)
        store = f'store = "redis://"\ncluster_nodes = [{nodes}]'
    path = tmp_path / "per-domain.toml"
    path.write_text(f'[bayes]\n{store}\nper_recipient = "domain"\n')
    return path


def spam_folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "spam"
    folder.mkdir()
    for i, raw in enumerate(SPAM[:count]):
        (folder / f"{i}.eml").write_bytes(raw)
    return folder


def dumped(config: Path, *args: str) -> dict[str, str]:
    """`learn --dump ARGS` as a dict of its lines."""
    lines = mailsift(config, "learn", "--dump", *args).stdout.splitlines()
    return {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


def test_stores_lists_each_recipient_store_with_what_it_learned(per_domain: Path, tmp_path: Path) -> None:
    """A hosting provider with thousands of domains had no way to see which of them have a store
    of their own, nor how far each is trained."""
    folder = spam_folder(tmp_path, 3)
    mailsift(per_domain, "learn", "--spam", str(folder))
    mailsift(per_domain, "learn", "--spam", "--for", "example.org", str(folder / "0.eml"))
    taught = mailsift(per_domain, "learn", "--ham", "--for", "bücher.example", str(folder / "1.eml"),
                      str(folder / "2.eml"))
    assert taught.returncode == 0, taught.stderr
    listed = mailsift(per_domain, "learn", "--stores")
    assert listed.returncode == 0, listed.stderr
    tokens = {name: dumped(per_domain, "--for", name)["tokens"] for name in ("example.org", "bücher.example")}
    assert listed.stdout.splitlines() == [  # an internationalised domain by its A-labels
        f"example.org 1 spam, 0 ham, {tokens['example.org']} tokens",
        f"xn--bcher-kva.example 0 spam, 2 ham, {tokens['bücher.example']} tokens"]
    assert mailsift(per_domain, "learn", "--stores", "--for", "example.org").stdout == (
        "No store under Bayes store 'mailsift:example.org:' holds anything: the per-recipient "
        "stores are under the site-wide one (mailsift learn --stores without --for or --prefix)\n")


NO_STORE_YET = ("No per-recipient store holds anything yet: autolearn, quarantine learning and "
                "mailsift learn --for NAME fill one (a store that learned nothing is not listed)\n")


def test_stores_says_in_one_line_that_there_is_none(config: Path, tmp_path: Path) -> None:
    """With nothing learned, or per-recipient Bayes off, `--stores` printed nothing, exit 0: an
    admin could not tell an empty listing from a command that did nothing, nor learn how a
    recipient's store comes to be."""
    made_store(config)
    off = mailsift(config, "learn", "--stores")
    assert (off.returncode, off.stdout, off.stderr) == (0, (
        'No per-recipient store holds anything: bayes.per_recipient = "off"; with "domain" or '
        '"address", autolearn, quarantine learning and mailsift learn --for NAME fill one\n'), "")
    config.write_text(config.read_text().replace("[bayes]\n", '[bayes]\nper_recipient = "address"\n'))
    assert mailsift(config, "learn", "--stores").stdout == NO_STORE_YET


def test_stores_of_a_store_that_does_not_exist_names_it_and_makes_none(tmp_path: Path) -> None:
    """A mistyped bayes.store: `--stores` made an empty store there and answered that no store
    held anything, as if the path were right. It names the path and makes no file (exit 0, a
    listing of nothing, as before)."""
    store = tmp_path / "bayse" / "bayes.sqlite"
    config = Config(bayes=BayesConfig(store=f"sqlite:///{store}", per_recipient="address"))
    listed = run_learn(config, "stores", [], None, False, None)
    assert (listed.text, listed.errors) == (
        f"No per-recipient store: no Bayes store at {store} (bayes.store) yet, nothing was ever "
        "learned there; check the path (learning, --restore or the milter's start creates it)", ())
    assert not store.exists() and not store.parent.exists()


def damage_totals(config: Path, spam: str) -> None:
    """Write the spam total as a hand edit or another program might."""
    store = open_store(load_config(str(config)).bayes)
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute("UPDATE totals SET spam = ?", (spam,))
    else:
        store.client.hset("{mailsift:}totals", "s", spam)
    store.close()


def damage_seen_records(config: Path) -> None:
    """Make every learned-message record name no class."""
    store = open_store(load_config(str(config)).bayes)
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute("UPDATE seen SET label = 'maybe'")
    else:
        for key in store.client.scan_iter(match="{mailsift:}seen:*"):
            store.client.set(key, "maybe")
    store.close()


def one_line_naming(result: subprocess.CompletedProcess[str], record: str, value: str) -> None:
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("mailsift: learn: ")
    assert f", store 'mailsift:': {record}" in result.stderr
    assert f" holds {value}, not " in result.stderr
    # the site-wide store, as the command was run: named by no option (see test_learn_admin)
    assert result.stderr.endswith("(mailsift learn --restore FILE, or --clear)\n") or \
        result.stderr.endswith("; what is counted above stays learned\n")


def test_damaged_store_data_is_one_line_naming_the_record_and_the_repair(
        per_domain: Path, tmp_path: Path) -> None:
    """A total that is no number, or a learned-message record naming no class, made `learn`,
    `--dump` and `--backup` end in "internal error: ValueError: 'maybe' is not a valid Label"
    or a TypeError; on Redis, `--forget` counted such a message as ham."""
    folder = spam_folder(tmp_path, 3)
    mailsift(per_domain, "learn", "--spam", str(folder))
    backup = tmp_path / "bayes.jsonl"
    damage_totals(per_domain, "lots")
    for args in (["--spam", str(folder)], ["--dump"], ["--backup", str(backup)]):
        result = mailsift(per_domain, "learn", *args)
        one_line_naming(result, "the spam total", "'lots'")
        assert result.stdout == ""
    damage_totals(per_domain, "3")
    damage_seen_records(per_domain)
    for args in (["--ham", str(folder)], ["--forget", str(folder / "0.eml")], ["--backup", str(backup)]):
        one_line_naming(mailsift(per_domain, "learn", *args), "the learned-message record ", "'maybe'")
    assert not backup.exists()
    assert dumped(per_domain)["spam messages learned"] == "3"  # --forget changed nothing
    assert mailsift(per_domain, "learn", "--clear").returncode == 0  # the repair it names
    again = mailsift(per_domain, "learn", "--spam", str(folder))
    assert "Learned tokens from 3 message(s)" in again.stdout, again.stderr


def test_clear_says_what_it_cleared_and_that_shared_reports_and_recipient_stores_stay(
        config: Path, tmp_path: Path) -> None:
    """`--clear` retrains Bayes from nothing; the spam an admin reported by hand stays reported
    on every host, and the domains' stores stay: the output now says both."""
    config.write_text(config.read_text().replace("[bayes]\n", '[bayes]\nper_recipient = "domain"\n'))
    folder = spam_folder(tmp_path, 2)
    mailsift(config, "learn", "--report", str(folder / "0.eml"))
    mailsift(config, "learn", "--spam", str(folder / "1.eml"))
    mailsift(config, "learn", "--spam", "--for", "example.org", str(folder / "1.eml"))
    cleared = mailsift(config, "learn", "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.splitlines() == [
        f"Cleared Bayes store 'mailsift:' in {tmp_path / 'bayes.sqlite'}: every learned token, the "
        "spam and ham counts and the learned-message records",
        "Kept 1 shared spam report(s), which every host matches (DIGEST_REPORTED): withdraw one "
        "with mailsift learn --revoke MESSAGE",
        "Kept the per-recipient stores (mailsift learn --stores lists them; --clear --for NAME "
        "clears one)"]
    assert dumped(config)["spam messages learned"] == "0"
    assert '"DIGEST_REPORTED"' in mailsift(config, "check", "--json", str(folder / "0.eml")).stdout
    assert mailsift(config, "learn", "--stores").stdout.startswith("example.org 1 spam, 0 ham, ")
    domain = mailsift(config, "learn", "--clear", "--for", "example.org").stdout
    assert domain.startswith("Cleared Bayes store 'mailsift:example.org:' in ")
    assert "per-recipient" not in domain
    assert mailsift(config, "learn", "--stores").stdout == NO_STORE_YET
