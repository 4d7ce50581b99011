"""A site outgrows one host: its SQLite Bayes moves to a shared Redis through `learn --backup` and
`--restore` (README, "Moving Bayes from SQLite to Redis"), and back again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope
from mailsift.analysis.parse import analyse
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.config import load_config
from tests.support.cli import run_mailsift
from tests.support.corpus import corpus_sample
from tests.support.redis_server import RedisServer

SPAM = corpus_sample("spam", 12)
HAM = corpus_sample("easy_ham", 12)
DOMAIN = "example.org"
TRAINING = '[bayes]\nper_recipient = "domain"\nmin_spam = 4\nmin_ham = 4\n'


def mailsift(config: Path, *args: str) -> str:
    done = run_mailsift(["--config", str(config), *args])
    assert done.returncode in (0, 1), done.stderr  # check: 1 is "spam"
    return done.stdout


def folder(path: Path, messages: list[bytes]) -> str:
    path.mkdir()
    for n, raw in enumerate(messages):
        (path / f"{n}.eml").write_bytes(raw)
    return str(path)


def config_for(tmp_path: Path, name: str, store: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TRAINING.replace("[bayes]\n", f'[bayes]\nstore = "{store}"\n'))
    return path


def bayes_probabilities(config: Path) -> list[float | None]:
    """What Bayes says of unlearned corpus mail, site-wide and for mail to DOMAIN."""
    settings = load_config(config)
    bayes = BayesFilter(settings.bayes, open_store(settings.bayes))
    found = []
    for raw in [*corpus_sample("spam", 3, 40), *corpus_sample("easy_ham", 3, 40)]:
        for rcpt in ([], [f"jane@{DOMAIN}"]):
            verdict = bayes.recipients_verdict(analyse(raw, settings, Envelope(rcpt_to=rcpt)))
            found.append(None if verdict is None else verdict.prob)
    bayes.close()
    return found


def move(source: Path, target: Path, tmp_path: Path) -> None:
    """The README's way: each store (site-wide, then each recipient's) backed up and restored."""
    for store in ([], ["--for", DOMAIN]):
        backup = tmp_path / f"bayes{len(store)}.jsonl"
        mailsift(source, "learn", *store, "--backup", str(backup))
        mailsift(target, "learn", *store, "--restore", str(backup))


def state(config: Path, reported: Path) -> tuple[str, str, bool, list[float | None]]:
    checked = json.loads(mailsift(config, "check", "--json", str(reported)))
    return (mailsift(config, "learn", "--dump").split("tokens:")[0],
            mailsift(config, "learn", "--dump", "--for", DOMAIN).split("tokens:")[0],
            any(rule["name"] == "DIGEST_REPORTED" for rule in checked["rules"]),
            bayes_probabilities(config))


@pytest.mark.timeout(120)
def test_a_sqlite_bayes_moved_to_redis_and_back_keeps_counts_records_and_reports(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """The restore lost the shared report digests: a copy of reported spam hit DIGEST_REPORTED on
    the old host, and no longer on the new one."""
    with redis_server.client() as client:
        client.flushall()
    sqlite = config_for(tmp_path, "sqlite", f"sqlite:///{tmp_path}/bayes.sqlite")
    redis = config_for(tmp_path, "redis", redis_server.url)
    spam, ham = folder(tmp_path / "spam", SPAM), folder(tmp_path / "ham", HAM)
    mailsift(sqlite, "learn", "--spam", spam)
    mailsift(sqlite, "learn", "--ham", ham)
    mailsift(sqlite, "learn", "--report", str(tmp_path / "spam" / "0.eml"))
    mailsift(sqlite, "learn", "--spam", "--for", DOMAIN, folder(tmp_path / "dspam", SPAM[:6]))
    mailsift(sqlite, "learn", "--ham", "--for", DOMAIN, folder(tmp_path / "dham", HAM[:6]))
    before = state(sqlite, tmp_path / "spam" / "0.eml")
    assert before[2] and None not in before[3]

    move(sqlite, redis, tmp_path)
    assert state(redis, tmp_path / "spam" / "0.eml") == before
    assert "Skipped 12 message(s) already learned" in mailsift(redis, "learn", "--spam", spam)
    assert "Learned tokens from 1 message(s)" in mailsift(redis, "learn", "--ham",
                                                          str(tmp_path / "spam" / "1.eml"))
    assert "spam messages learned: 11\nham messages learned:  13" in mailsift(redis, "learn", "--dump")

    (tmp_path / "bayes.sqlite").unlink()
    move(redis, sqlite, tmp_path)
    assert state(sqlite, tmp_path / "spam" / "0.eml") == state(redis, tmp_path / "spam" / "0.eml")
