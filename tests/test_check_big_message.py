"""`mailsift check` of a message over scan.max_bytes scores it as the milter scored it.

An admin debugging a verdict runs `mailsift check` on the delivered or held copy and expects the
milter's score and rules. The milter's worker gets the headers and the first scan.max_bytes
(1 MiB) of the body, in the CRLF lines Postfix hands a milter; a delivered file has LF lines and
the whole body, so whatever read the file's own bytes (a `full` rule read its first 1 MiB, which
13 KiB of line ends fewer brought further into a big attachment's base64) saw text the milter
never had. Each message is scored here through the worker's entry (`score_job`, fed the job a
milter session builds from Postfix's callbacks) and through `check`'s (`Scanner.scan` of the
file's bytes, as the command does, and once through the command itself).
"""

from __future__ import annotations

import base64
import io
import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from mailsift.classifier.tokenizer import tokenize
from mailsift.config import Config, ScanConfig, load_config
from mailsift.milter import workers
from mailsift.milter.workers import Job, score_job
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.support.cli import run_mailsift
from tests.training import test_learn_command
from tests.training.test_big_message_digest import milter_job

MiB = 1024 * 1024
ARRIVAL = datetime(2025, 11, 24, 10, 0, 1, tzinfo=UTC)
# As the milter gets them from Postfix (name, value); the Received date is when it arrived.
HEADERS = [
    ("Received", "from laptop.example.org (laptop.example.org [198.51.100.20]) by smtp.example.org "
                 "with ESMTPSA id 4Xyz; Mon, 24 Nov 2025 10:00:01 +0000"),
    ("From", "Ann Example <ann@example.org>"), ("To", "bob@example.net"),
    ("Subject", "Quarterly figures, all regions"),
    ("Message-ID", "<figures-2025-q3@example.org>"), ("Date", "Mon, 24 Nov 2025 10:00:00 +0000"),
    ("MIME-Version", "1.0"), ("Content-Type", 'multipart/mixed; boundary="part"'),
]
# What the shipped `full` rule ATTACH_NAME_PADDED matches: written 3 KB past the milter's cut, it
# is text the milter never had, and the first 1 MiB of the LF file holds it.
BAIT = 'Content-Type: application/pdf; name="invoice            .pdf"'
PAST_CUT = 3000
config = test_learn_command.config  # the fixture: a config with a private SQLite store


@cache
def base64_lines() -> tuple[str, ...]:
    """800 KB of random bytes in base64, 76 characters a line, as mail programs write it."""
    data = random.Random(7).randbytes(800_000).hex()  # any letters will do: it is never decoded
    return tuple(data[i:i + 76] for i in range(0, len(data), 76))


def body_lines(base64_end: int, filler: int, from_lines: int = 0) -> list[str]:
    """A text part (a line of `filler` letters, `from_lines` lines starting "From "), a base64
    part ending near `base64_end` bytes into the CRLF body, then a text part holding BAIT and a
    link a little past 1 MiB, and more text after."""
    lines = ["--part", "Content-Type: text/plain; charset=us-ascii", "", "Figures attached.",
             "x" * filler, *(f"From the desk of region {n}: figures as agreed" for n in range(from_lines)),
             "--part", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64",
             'Content-Disposition: attachment; filename="figures.bin"', ""]
    size = sum(len(line) + 2 for line in lines)
    for line in base64_lines():
        if size >= base64_end:
            break
        lines.append(line)
        size += len(line) + 2
    lines += ["", "--part", "Content-Type: text/plain; charset=us-ascii", ""]
    size += 24
    bait = [BAIT, "see http://late.example.com/figures"]
    for n in range(800):
        line = f"Item {n}: figures for the region, as agreed at the meeting"
        lines.append(line)
        size += len(line) + 2
        if bait and size >= MiB + PAST_CUT:
            lines += bait
            bait = []
    return [*lines, "--part--"]


@dataclass(frozen=True)
class Big:
    """One message over the limit, as the milter gets it and as each copy of it is stored."""

    lines: list[str]
    headers: tuple[tuple[str, str], ...] = tuple(HEADERS)

    @property
    def crlf_body(self) -> bytes:
        return ("\r\n".join(self.lines) + "\r\n").encode()

    def milter_job(self, config: Config) -> Job:
        return milter_job(self.headers, self.crlf_body, config, ARRIVAL)

    def file(self) -> bytes:
        """As delivered to a Maildir: LF line ends."""
        return ("".join(f"{name}: {value}\n" for name, value in self.headers) + "\n"
                + "\n".join(self.lines) + "\n").encode()

    def crlf_file(self) -> bytes:
        return self.file().replace(b"\n", b"\r\n")

    def mbox(self) -> bytes:
        """In an mbox: a From line first, body lines starting "From " quoted as ">From "."""
        return (b"From ann@example.org Mon Nov 24 10:00:01 2025\n"
                + self.file().replace(b"\nFrom ", b"\n>From ") + b"\n")


def cut_where(base64_end: int, at_cut: Callable[[bytes], bool], from_lines: int = 0) -> Big:
    """The message whose milter's cut (1 MiB of its CRLF body) falls where `at_cut`, given the
    body's bytes either side of it, says: the first text part's filler moves it along a line."""
    for filler in range(80):
        mail = Big(body_lines(base64_end, filler, from_lines))
        if at_cut(mail.crlf_body[MiB - 1:MiB + 1]):
            return mail
    raise AssertionError("no filler puts the cut there")


def base64_letters(pair: bytes) -> bool:
    return pair.isalnum()


CUTS = {
    "in a base64 line": lambda: cut_where(MiB + PAST_CUT // 2, base64_letters),
    "between CR and LF": lambda: cut_where(MiB + PAST_CUT // 2, lambda pair: pair == b"\r\n"),
    "in a text line": lambda: cut_where(MiB - 20_000, base64_letters),
    "with From lines": lambda: cut_where(MiB + PAST_CUT // 2, base64_letters, from_lines=40),
}
COPIES = {"LF file": Big.file, "CRLF file": Big.crlf_file, "mbox": Big.mbox}


def hits(result: Result) -> list[tuple[str, float]]:
    return sorted((hit.name, round(hit.score, 3)) for hit in result.hits)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(Config(), network=False)


def scored_by_milter(mail: Big, scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> Result:
    """The worker's entry, with what _start_worker gives a worker (no Bayes here)."""
    monkeypatch.setattr(workers, "_scanner", scanner)
    monkeypatch.setattr(workers, "_bayes", None)
    job = mail.milter_job(scanner.config)
    assert job.body_cut and len(job.raw.partition(b"\r\n\r\n")[2]) == MiB
    return score_job(job).result


@pytest.mark.parametrize("copy", COPIES)
@pytest.mark.parametrize("cut", CUTS)
def test_check_of_a_big_message_hits_the_rules_the_milter_hit(
        cut: str, copy: str, scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = CUTS[cut]()
    raw = COPIES[copy](mail)
    assert BAIT.encode() not in mail.crlf_body[:MiB] and BAIT.encode() in mail.crlf_body
    milter = scored_by_milter(mail, scanner, monkeypatch)
    checked = scanner.scan(raw)
    assert hits(checked) == hits(milter)
    assert checked.score == milter.score


def test_the_file_reached_the_text_past_the_milters_cut() -> None:
    """What made the test above fail: the first 1 MiB of the LF file holds BAIT (a guard)."""
    mail = CUTS["in a base64 line"]()
    assert BAIT.encode() in mail.file()[:MiB]


def test_the_check_command_prints_the_milters_score(
        config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command itself, on the delivered file: its --json names the milter's rules."""
    mail = CUTS["in a base64 line"]()
    (tmp_path / "big.eml").write_bytes(mail.file())
    site = load_config(str(config))
    milter = scored_by_milter(mail, Scanner(site, network=False), monkeypatch)
    done = run_mailsift(["--config", str(config), "check", "--json", "--no-network",
                         str(tmp_path / "big.eml")])
    assert done.returncode in (0, 1), done.stderr
    shown = json.loads(done.stdout)
    assert sorted((rule["name"], rule["score"]) for rule in shown["rules"]) == hits(milter)
    assert shown["score"] == round(milter.score, 2)


def damaged_zip_lines() -> list[str]:
    """A zip attachment cut short by its sender: its file list cannot be read."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("figures.txt", "figures for the region " * 40)
    return ["--part", "Content-Type: application/zip", "Content-Transfer-Encoding: base64",
            'Content-Disposition: attachment; filename="figures.zip"', "",
            *base64.encodebytes(packed.getvalue()[:-10]).decode().splitlines()]


def test_check_of_an_mbox_over_the_limit_by_its_quoting_alone_reads_it_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The body as sent is 16 KiB (the least scan.max_bytes), the milter's whole; in an mbox its
    40 lines starting "From " are quoted as ">From ", 40 bytes over. Check read that copy as
    cut, which the milter's was not: its damaged zip (ATTACH_ARCHIVE_UNLISTED) was taken for
    the cut's doing, and its last words went unread."""
    limit = 16 * 1024
    lines = ["--part", "Content-Type: text/plain; charset=us-ascii", "",
             *(f"From the desk of region {n}: figures as agreed" for n in range(40))]
    tail = [*damaged_zip_lines(), "--part--"]
    size = sum(len(line) + 2 for line in [*lines, *tail])
    mail = Big([*lines, "x" * (limit - size - 2), *tail])
    assert len(mail.crlf_body) == limit
    scanner = Scanner(Config(scan=ScanConfig(max_bytes=limit)), network=False)
    monkeypatch.setattr(workers, "_scanner", scanner)
    monkeypatch.setattr(workers, "_bayes", None)
    milter = score_job(mail.milter_job(scanner.config)).result
    assert "ATTACH_ARCHIVE_UNLISTED" in dict(hits(milter))
    mbox = mail.mbox()
    assert mbox.count(b"\n>From the desk") == 40
    checked = scanner.scan(mbox)
    assert hits(checked) == hits(milter)
    assert checked.score == milter.score
    assert tokenize(scanner.analyse(mbox)) == tokenize(scanner.analyse(mail.milter_job(scanner.config).raw))


# What delivery puts on top of the copy in the mailbox (the milter's own X-Spam-* after them).
DELIVERED = [("Return-Path", "<ann@example.org>"), ("Delivered-To", "bob@example.net"),
             ("X-Original-To", "bob@example.net"),
             ("X-Spam-Status", "No, score=0.0 required=5.0 tests=none autolearn=no version=mailsift")]


def bait_near_the_end(limit: int, headers: int) -> Big:
    """Text lines over the cut, BAIT ending 40 to 100 bytes before the last byte of the body
    the milter's `full` text reached: `limit` bytes of the message, `headers` of them its header
    block."""
    target = limit - headers - 100
    lines = ["--part", "Content-Type: text/plain; charset=us-ascii", ""]
    size = sum(len(line) + 2 for line in lines)
    n = 0
    while size < limit + 20_000:
        if size + len(BAIT) + 2 >= target > size:
            lines.append(BAIT)
            size += len(BAIT) + 2
        line = f"Item {n}: figures for the region, as agreed at the meeting"
        lines.append(line)
        size += len(line) + 2
        n += 1
    return Big([*lines, "--part--"])


@pytest.mark.parametrize("copy", ["delivered", "held"])
def test_check_of_a_copy_with_more_headers_reads_the_body_as_far_as_the_milter(
        copy: str, scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The headers delivery adds (or the quarantine's Received header) took the end of the
    milter's body from `full` rules in check, which read the first 1 MiB of the message
    whatever its header block: BAIT near the end of what the milter read hit there alone."""
    headers = len(Big([]).milter_job(scanner.config).raw)
    mail = bait_near_the_end(MiB, headers)
    milter = scored_by_milter(mail, scanner, monkeypatch)
    added = DELIVERED if copy == "delivered" else [
        ("Received", "from smtp.example.org (smtp.example.org [203.0.113.9]) by mx.example.net "
                     "(Postfix) with ESMTPS id 4ABCDEF; Mon, 24 Nov 2025 10:00:01 +0000")]
    raw = Big(mail.lines, (*added, *mail.headers)).file()
    assert "ATTACH_NAME_PADDED" in dict(hits(milter))
    assert hits(scanner.scan(raw)) == hits(milter)
