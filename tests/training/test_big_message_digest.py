"""One message, one learning digest, however big it is.

The milter's worker sees the headers and only the first scan.max_bytes of a body, with the CRLF
line ends Postfix sends; `mailsift learn` reads the delivered file (LF line ends, headers added
on delivery, perhaps in an mbox) and a quarantine review the held copy, both whole. For a body
over 1 MiB, autolearn and a correction by hand named the message by two digests (the cut body's
and the whole's) and counted two sets of tokens (a file's LF lines reach further into the body
than the milter's CRLF bytes do), so a correction added to the autolearned counts instead of
moving them, learning it by hand counted it twice and a report was not found to revoke.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from mailsift.analysis.model import Message
from mailsift.analysis.parse import analyse
from mailsift.classifier.digest import learn_digest
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, LearnItem, Outcome, TokenCounts, Totals, token_key
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import AutolearnConfig, BayesConfig, Config, ScanConfig
from mailsift.milter import workers
from mailsift.milter.session import MailsiftMilter, Service
from mailsift.milter.workers import Job, score_job
from mailsift.quarantine import review
from mailsift.quarantine.store import QuarantineStore
from mailsift.scanner import Scanner
from mailsift.training.learn import learn
from mailsift.training.sources import iter_messages
from tests.quarantine.conftest import make_meta
from tests.support.corpus import corpus_sample
from tests.support.redis_server import RedisServer

MiB = 1024 * 1024
# As the milter gets them from Postfix (name, value), and as the sender wrote them.
HEADERS = [
    ("Received", "from laptop.example.org (laptop.example.org [198.51.100.20]) by smtp.example.org "
                 "with ESMTPSA id 4Xyz; Mon, 24 Nov 2025 10:00:00 +0000"),
    ("From", "Ann Example <ann@example.org>"), ("To", "bob@example.net"),
    ("Subject", "Quarterly figures, all regions"),
    ("Message-ID", "<figures-2025-q3@example.org>"), ("Date", "Mon, 24 Nov 2025 10:00:00 +0000"),
    ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii"),
]
# What delivery and our own milter add on the way to the mailbox a user learns from.
ADDED = [("Return-Path", "<ann@example.org>"), ("Delivered-To", "bob@example.net"),
         ("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=14.2 required=5.0 autolearn=spam")]
CHUNK = 64 * 1024  # Postfix sends a milter the body in pieces of at most this much


def head(fields: list[tuple[str, str]], newline: str) -> str:
    return "".join(f"{name}: {value}{newline}" for name, value in fields) + newline


def milter_session(config: Config) -> MailsiftMilter:
    """A milter session as libmilter starts one for a new connection, with no options agreed; it
    reads only the config of its service. Driven here without libmilter, it has no context to
    ask for macros, so it is given none, as from a Postfix told to send none: the session then
    does what it does without them (Postfix's name for itself, `j`, is this host's name)."""
    service = Service(config, None, None, None, None)  # type: ignore[arg-type]
    session = type("Session", (MailsiftMilter,), {"current": service, "_macro": _no_macro})()
    session._setctx(None)
    return session


def _no_macro(session: MailsiftMilter, name: str) -> None:
    return None


def milter_job(fields: Iterable[tuple[str, str]], body: bytes, config: Config,
               arrival: datetime | None = None) -> Job:
    """What the milter hands its worker: a session fed the message through the header and
    body callbacks, as libmilter feeds it (CRLF lines), then asked for the job at end of
    message. It reads only the config of its service on the way. `arrival`: when the session
    took the message (by default, now)."""
    session = milter_session(config)
    for name, value in fields:
        session.header(name, value)
    session.arrival = arrival or session.arrival
    for start in range(0, len(body), CHUNK):
        session.body(body[start:start + CHUNK])
    try:
        return session._job("4ABCDEF", outbound=False)
    finally:
        session.spool.close()


@dataclass(frozen=True)
class Mail:
    """One message, as each path that learns it gets it."""

    lines: list[str]

    def milter_copy(self, config: Config) -> Job:
        return milter_job(HEADERS, ("\r\n".join(self.lines) + "\r\n").encode(), config)

    def file(self) -> bytes:
        """As delivered to a Maildir: LF line ends, delivery's and our headers added."""
        return (head(ADDED + HEADERS, "\n") + "\n".join(self.lines) + "\n").encode()

    def mbox(self) -> bytes:
        return b"From ann@example.org Mon Nov 24 10:00:01 2025\n" + self.file() + b"\n"

    def held(self) -> bytes:
        """The quarantine's copy (MailsiftMilter._held_copy): this hop's Received, CRLF, whole."""
        received = ("Received: from smtp.example.org (smtp.example.org [203.0.113.9]) by "
                    "mx.example.net (Postfix) with ESMTPS id 4ABCDEF; Mon, 24 Nov 2025 10:00:01 +0000\r\n")
        return (received + head(HEADERS, "\r\n") + "\r\n".join(self.lines) + "\r\n").encode()


def seen_by_milter(mail: Mail, config: Config) -> Message:
    job = mail.milter_copy(config)
    return analyse(job.raw, config, job.envelope, job.arrival, job.body_cut)


# Where the milter's cut falls, in the file's LF bytes: near 256 KiB (a lowered scan.max_bytes)
# and 1 MiB (the default), less one byte per line for the CR the milter counts. The body has
# words found nowhere else from a little before each to past where a count of the file's own
# bytes would cut, so a view that reads further gets tokens the milter's never had.
DISTINCT = ((240_000, 270_000), (1_000_000, 1_060_000))


def distinct_words() -> Iterator[str]:
    for letters in itertools.product(string.ascii_lowercase, repeat=4):
        yield "fig" + "".join(letters)


def big_body() -> list[str]:
    """2.5 MB of text in lines of about 60 characters (see DISTINCT)."""
    words = distinct_words()
    lines: list[str] = []
    offset = 0
    while offset < 2_500_000:
        if any(start <= offset < end for start, end in DISTINCT):
            line = " ".join(next(words) for _ in range(8))
        else:
            line = f"{'-' * 50} region {len(lines) % 7}"  # few words: tokenising stays quick
        lines.append(line)
        offset += len(line) + 1
    return lines


BIG = Mail(big_body())


def scan_config(max_bytes: int) -> Config:
    return Config(scan=ScanConfig(max_bytes=max_bytes))


def views(mail: Mail, config: Config) -> dict[str, Message]:
    return {"milter": seen_by_milter(mail, config), "file": analyse(mail.file(), config),
            "mbox": analyse(mail.mbox(), config),
            "quarantine, but its Received": analyse(mail.held().partition(b"\r\n")[2], config)}


@pytest.mark.parametrize("max_bytes", [MiB, 256 * 1024], ids=["default", "lowered"])
def test_every_copy_of_a_big_message_has_one_digest_and_the_milters_tokens(max_bytes: int) -> None:
    """The digest and the tokens of a 2.5 MB message are those of the milter's view, read from
    the file, the mbox or the held copy (a lowered scan.max_bytes, 256 KiB, cuts all alike)."""
    found = views(BIG, scan_config(max_bytes))
    milter = found.pop("milter")
    assert milter.truncated and len(milter.raw) < max_bytes + 1000
    for name, msg in found.items():
        assert learn_digest(msg) == learn_digest(milter), name
        assert tokenize(msg) == tokenize(milter), name


@pytest.mark.parametrize("width", [27, 28, 59])
def test_a_file_is_read_as_far_as_the_milter_reads_its_crlf_form(width: int) -> None:
    """16 KiB (the least scan.max_bytes) of CRLF lines of 27 characters end between a CR and
    its LF, of 28 just after a line end, of 59 within a line: the text analysed from each copy
    ends where the milter's does."""
    mail = Mail([f"{n:05d} {string.ascii_lowercase * 3}"[:width] for n in range(1500)])
    texts = {name: msg.text_parts[0].text for name, msg in views(mail, scan_config(16 * 1024)).items()}
    assert len(set(texts.values())) == 1, {name: text[-40:] for name, text in texts.items()}


def test_a_larger_scan_max_bytes_keeps_the_digest_of_a_big_message() -> None:
    """A site that raises scan.max_bytes past the message's size scans it whole, yet names it
    as every site at the default does: what it learned before keeps its records."""
    default = learn_digest(seen_by_milter(BIG, scan_config(MiB)))
    raised = views(BIG, scan_config(4 * MiB))
    assert not raised["milter"].truncated
    assert {learn_digest(msg) for msg in raised.values()} == {default}


def one_mib(*more: str) -> Mail:
    """A body of 1 MiB with CRLF line ends, the biggest the milter reads whole; `more` lines after."""
    lines = [f"Item {n}: figures for the region, as agreed at the meeting" for n in range(16_000)]
    crlf = sum(len(line) + 2 for line in lines)
    return Mail([*lines, "x" * (MiB - crlf - 2), *more])


ONE_MIB = "781798e83aa82e1aff25c438478162ae34f071d1"
# Digests mailsift gave these messages before big messages were named by their start: a message
# the milter reads whole keeps its digest, so its learned-message record is still found.
UNCHANGED = [
    (lambda: corpus_sample("spam", 1)[0], "d86cc5d702d8db2ea9d9ad275223df148e1b5174"),
    (lambda: corpus_sample("easy_ham", 1, 7)[0], "d6c8e6373b7d2134f508ace089d68cbef034f8cf"),
    (lambda: one_mib().file(), ONE_MIB),
]


@pytest.mark.parametrize(("raw", "digest"), UNCHANGED, ids=["spam", "ham", "1 MiB"])
def test_a_message_the_milter_reads_whole_keeps_the_digest_it_had(raw: Callable[[], bytes],
                                                                  digest: str) -> None:
    message = raw()
    assert learn_digest(analyse(message, scan_config(MiB))) == digest
    assert learn_digest(analyse(message, scan_config(4 * MiB))) == digest
    if len(message) < 256 * 1024:  # within a lowered limit too
        assert learn_digest(analyse(message, scan_config(256 * 1024))) == digest


def test_a_body_over_the_limit_by_blank_lines_alone_is_not_cut() -> None:
    """Past the limit there is nothing to read but line ends: the milter does not call that a
    cut (it would be named by its start, where the file is named whole, as before)."""
    mail = one_mib("", "  ")
    config = scan_config(MiB)
    assert not mail.milter_copy(config).body_cut
    found = views(mail, config)
    assert {learn_digest(msg) for msg in found.values()} == {ONE_MIB}
    assert not any(msg.truncated for msg in found.values())


def test_a_body_over_the_limit_by_one_letter_is_named_alike_by_every_copy() -> None:
    mail = one_mib("y")
    found = views(mail, scan_config(MiB))
    assert found["milter"].truncated and found["file"].truncated
    assert len({learn_digest(msg) for msg in found.values()}) == 1
    assert learn_digest(found["file"]) != ONE_MIB


@pytest.fixture(params=["sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """Autolearn takes any message as spam, so the worker learns the one it scores."""
    store = f"sqlite:///{tmp_path}/bayes.sqlite"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        with server.client() as client:
            client.flushall()
        store = server.url
    return Config(bayes=BayesConfig(store=store, min_spam=20, min_ham=20),
                  autolearn=AutolearnConfig(spam_score=-100.0, ham_score=-200.0))


@pytest.fixture
def bayes(config: Config) -> Iterator[BayesFilter]:
    with closing(BayesFilter(config.bayes, open_store(config.bayes))) as opened:
        yield opened


def autolearned(config: Config, bayes: BayesFilter, monkeypatch: pytest.MonkeyPatch) -> str:
    """Score the milter's copy in the worker's code (score_job), with what _start_worker gives a
    worker, and say what autolearn did."""
    monkeypatch.setattr(workers, "_bayes", bayes)
    monkeypatch.setattr(workers, "_scanner", Scanner(config, bayes=bayes))
    return score_job(BIG.milter_copy(config)).autolearned


def learned_by_hand(path: Path, label: Label | None, config: Config, bayes: BayesFilter) -> tuple[int, int]:
    """`mailsift learn --spam/--ham/--forget PATH`: (changed, already)."""
    report = learn(iter_messages([str(path)]), label, config, bayes)
    assert not report.failed, report.failed
    return report.changed, report.already


def test_a_big_message_autolearned_then_learned_by_hand_is_counted_once(
        config: Config, bayes: BayesFilter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "msg.eml").write_bytes(BIG.file())
    assert autolearned(config, bayes, monkeypatch) == "spam"
    assert learned_by_hand(tmp_path / "msg.eml", Label.SPAM, config, bayes) == (0, 1)
    assert bayes.store.totals() == Totals(1, 0)


def store_counts(bayes: BayesFilter, tokens: list[str]) -> tuple[Totals, dict[str, TokenCounts]]:
    totals, counts = bayes.store.lookup([token_key(t) for t in tokens])
    return totals, dict(zip(tokens, counts, strict=True))


def test_a_correction_from_the_whole_copy_moves_exactly_what_autolearn_counted(
        config: Config, bayes: BayesFilter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Learn as ham from the delivered file moves each token autolearn counted from spam to ham
    and touches no other; forgetting it then restores the counts from before the autolearn."""
    file = tmp_path / "msg.eml"
    file.write_bytes(BIG.file())
    milter = tokenize(seen_by_milter(BIG, config))
    tokens = list(dict.fromkeys(milter + tokenize(analyse(BIG.file(), config))))
    for label in Label:  # other messages of these words, so that every token has counts to lose
        bayes.store.learn(LearnItem(f"other {label}", [token_key(t) for t in tokens]), label, 1)
    pristine = store_counts(bayes, tokens)

    assert autolearned(config, bayes, monkeypatch) == "spam"
    as_spam = store_counts(bayes, tokens)
    assert learned_by_hand(file, Label.HAM, config, bayes) == (1, 0)
    totals, counts = store_counts(bayes, tokens)
    assert totals == Totals(as_spam[0].spam - 1, as_spam[0].ham + 1)
    counted = set(milter)
    moved = {t: TokenCounts(c.spam - 1, c.ham + 1) if t in counted else c for t, c in as_spam[1].items()}
    assert counts == moved

    assert learned_by_hand(file, None, config, bayes) == (1, 0)
    assert store_counts(bayes, tokens) == pristine


def test_a_report_made_from_the_milters_copy_is_revoked_from_the_held_copy(
        config: Config, bayes: BayesFilter, tmp_path: Path) -> None:
    """A report shared from the cut copy (what the milter saw) is found and withdrawn by
    "ham + revoke" in the quarantine review, which reads the whole held copy."""
    seen = seen_by_milter(BIG, config)
    assert bayes.learn(seen, Label.SPAM) is Outcome.LEARNED
    assert bayes.report(seen)
    quarantine = QuarantineStore(tmp_path / "q")
    held = quarantine.put(BIG.held(), make_meta(["bob@example.net"]))
    outcome = review.learn(config, quarantine, held, "admin", "ham-revoke")
    assert outcome == "relearned as ham, report revoked"
    assert not bayes.revoke(analyse(BIG.file(), config))  # nothing left to withdraw
    assert bayes.store.totals() == Totals(0, 1)


def test_a_body_over_the_limit_by_its_senders_quoted_from_lines_has_the_milters_digest(
        tmp_path: Path) -> None:
    """A body whose 40 lines start ">From " as sent (a quoted mbox excerpt, say), 20 bytes over
    16 KiB: the milter cut it and named it by its start, while the digest counted every other
    copy without those 40 ">", found it within the limit and hashed it whole: two digests. An
    mbox writes those lines as ">>From ", which analyse and learn's mbox reader take back to
    what was sent."""
    limit = 16 * 1024
    words = distinct_words()
    lines = [">From " + " ".join(next(words) for _ in range(6)) for _ in range(40)]
    mail = Mail([*lines, "x" * (limit - sum(len(line) + 2 for line in lines) + 18)])
    config = scan_config(limit)
    milter = seen_by_milter(mail, config)
    assert milter.body_cut
    quoted = mail.mbox().replace(b"\n>From ", b"\n>>From ")
    (tmp_path / "spam.mbox").write_bytes(quoted)
    [item] = iter_messages([str(tmp_path / "spam.mbox")], force_mbox=True)
    from_mbox, _ = item.content()
    assert from_mbox is not None
    copies = {"file": mail.file(), "mbox as one file": quoted, "mbox": from_mbox}
    assert {name: learn_digest(analyse(raw, config)) for name, raw in copies.items()} == \
        dict.fromkeys(copies, learn_digest(milter))
