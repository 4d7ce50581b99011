"""Every copy of a message gives Bayes the same tokens, so a correction moves what autolearn counted.

The store keeps no token list per learned message: relearning it as the other class and
forgetting it tokenise the copy at hand again (issue #3: "relearn as the other class moves
counts; forget restores the exact previous counts"). Autolearn reads the milter's copy: the
sender's headers and the connection Postfix reports. An admin corrects from the delivered file
(`mailsift learn`), which also carries our MX's Received header, those of local delivery, our
Authentication-Results and X-Spam-* headers and a tagged Subject, or from the quarantine's copy,
headed by our MX's Received header. A token that one copy has and the other has not is a count
moved that was never counted, and one left that autolearn added.
"""

from __future__ import annotations

import base64
import socket
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailsift.analysis.model import Message
from mailsift.analysis.parse import analyse
from mailsift.analysis.relays import verified_name
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, LearnItem, Outcome, token_key
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import ActionsConfig, BayesConfig, Config, NetworkConfig
from mailsift.milter.session import MailsiftMilter
from mailsift.milter.subject import tagged_subject
from mailsift.milter.trace import Hop, received_header
from mailsift.training.learn import learn
from mailsift.training.sources import iter_messages
from tests.training.test_big_message_digest import (
    Mail,
    distinct_words,
    milter_session,
    scan_config,
    seen_by_milter,
)


@dataclass(frozen=True)
class Client:
    """The SMTP client as Postfix tells the milter: its name ("[IP]" when none is verified, as
    libmilter gives it), address and HELO ("" for none sent)."""

    name: str
    ip: str
    helo: str


ARRIVAL = datetime(2024, 8, 6, 9, 55, 2, tzinfo=UTC)
OUTSIDE = Client("mail.shop.example", "192.0.2.10", "mail.shop.example")
SUBJECT = "Minutes of Tuesday"
# The message as the sender's MX hands it to ours: its own hop from the sender's laptop on top.
SENT = [
    ("Received", "from [10.1.2.3] (laptop.shop.example [10.1.2.3])\n\tby mail.shop.example "
                 "(Postfix) with ESMTPSA id 4WdQ1x2Zz9; Tue, 06 Aug 2024 10:55:01 +0100"),
    ("From", "Tom Baker <tom@shop.example>"), ("To", "Anna <anna@example.org>"),
    ("Subject", SUBJECT), ("Date", "Tue, 06 Aug 2024 10:55:00 +0100"),
    ("Message-ID", "<minutes-42@shop.example>"), ("MIME-Version", "1.0"),
    ("Content-Type", "text/plain; charset=utf-8"),
]
BODY = ("Hello Anna,\n\nthe minutes of Tuesday's meeting are attached as promised. Let me know "
        "if\nanything is missing before Friday: http://www.shop.example/minutes\n\nBest regards,"
        "\nTom\n")
# What local delivery (Dovecot's LMTP, Postfix's local) puts on top of the delivered copy.
DELIVERY = [
    ("Return-Path", "<tom@shop.example>"), ("Delivered-To", "anna@example.org"),
    ("Received", "from mx.example.org ([10.0.0.25])\n\tby imap.example.org with LMTP\n\tid "
                 "8Km1LnVW+2WaFQAAgrtbNA\n\t(envelope-from <tom@shop.example>)\n\tfor "
                 "<anna@example.org>; Tue, 06 Aug 2024 10:55:03 +0100"),
    ("X-Original-To", "anna@example.org"),
]
# What our milter adds: Authentication-Results on top of the sender's headers, X-Spam-* after.
AUTH_RESULTS = ("Authentication-Results", "mx.example.org; spf=pass smtp.mailfrom=tom@shop.example; "
                "dkim=none; dmarc=pass header.from=shop.example policy.dmarc=reject")
VERDICT = [
    ("X-Spam-Flag", "YES"), ("X-Spam-Score", "24.3"), ("X-Spam-Level", "*" * 24),
    ("X-Spam-Status", "Yes, score=24.3 required=5.0 tests=MONEY_MLM=1.5,URI_SHORTENER=2.0\n\t"
                      "autolearn=spam version=mailsift"),
    ("X-Spam-Report", "MONEY_MLM=1.5 [earn money from home]; URI_SHORTENER=2.0 [bit.example]"),
]


def config(tag: str = "[SPAM]", trusted: list[str] | None = None, store: str = "") -> Config:
    return Config(actions=ActionsConfig(subject_tag=tag),
                  network=NetworkConfig(trusted_networks=trusted or []),
                  bayes=BayesConfig(store=store) if store else BayesConfig())


def session(config: Config, client: Client, headers: list[tuple[str, str]]) -> MailsiftMilter:
    """A milter session fed a connection, HELO, headers and body through the callbacks, as
    libmilter calls them. It reads only the config of its service on the way."""
    milter = milter_session(config)
    milter.connect(client.name, socket.AF_INET6 if ":" in client.ip else socket.AF_INET,
                   (client.ip, 25))
    if client.helo:
        milter.hello(client.helo)
    for name, value in headers:
        milter.header(name, value)
    milter.body(BODY.replace("\n", "\r\n").encode())
    return milter


def milter_copy(config: Config, client: Client, headers: list[tuple[str, str]]) -> Message:
    """What autolearn reads: the session's job, analysed as the worker analyses it."""
    milter = session(config, client, headers)
    try:
        job = milter._job("4Xyz", outbound=False)
    finally:
        milter.spool.close()
    return analyse(job.raw, config, job.envelope, job.arrival, job.body_cut)


def our_received(client: Client) -> str:
    """Our MX's Received header, in the words Postfix's smtpd writes it."""
    name = verified_name(client.name) or "unknown"
    literal = f"IPv6:{client.ip}" if ":" in client.ip else client.ip
    return (f"from {client.helo or name} ({name} [{literal}])\n\tby mx.example.org (Postfix) with "
            "ESMTP id 4Xyz\n\tfor <anna@example.org>; Tue, 06 Aug 2024 10:55:02 +0100")


def lines(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in fields)


def delivered(client: Client, headers: list[tuple[str, str]], subject: str | None) -> bytes:
    """The file in the recipient's Maildir: `subject` is the Subject the milter left (tagged,
    or as sent), LF line ends."""
    sent = [(n, subject if n == "Subject" and subject is not None else v) for n, v in headers]
    if subject is not None and not any(n == "Subject" for n, _ in headers):
        sent.append(("Subject", subject))  # the milter adds one to tag mail that has none
    fields = [*DELIVERY, ("Received", our_received(client)), AUTH_RESULTS, *sent, *VERDICT]
    return (lines(fields) + "\n" + BODY).encode("utf-8", "surrogateescape")


def held(client: Client, headers: list[tuple[str, str]]) -> bytes:
    """The quarantine's copy, as MailsiftMilter._held_copy writes it: whole, CRLF, headed by the
    Received header of our hop."""
    hop = Hop(helo=client.helo, client_name=client.name, client_ip=client.ip, by="mx.example.org",
              queue_id="4Xyz", authenticated=False, tls=False, recipients=["anna@example.org"],
              arrival=ARRIVAL)
    text = (lines(headers) + "\n" + BODY).replace("\n", "\r\n")
    return received_header(hop) + text.encode("utf-8", "surrogateescape")


def copies(config: Config, client: Client, headers: list[tuple[str, str]],
           subject: str | None = None) -> dict[str, Message]:
    """Each copy of one message as its path analyses it; `subject`: as the milter left it."""
    file = delivered(client, headers, subject)
    return {"milter": milter_copy(config, client, headers), "delivered": analyse(file, config),
            "mbox": analyse(b"From tom@shop.example Tue Aug  6 10:55:03 2024\n" + file, config),
            "quarantine": analyse(held(client, headers), config)}


def assert_same_tokens(found: dict[str, Message]) -> set[str]:
    """Every copy has the milter's tokens; returns them."""
    milter = set(tokenize(found.pop("milter")))
    for name, msg in found.items():
        tokens = set(tokenize(msg))
        assert tokens == milter, f"{name}: only there {sorted(tokens - milter)}, only in the " \
                                 f"milter's {sorted(milter - tokens)}"
    return milter


EDGE = Client("[10.0.0.5]", "10.0.0.5", "edge.example.org")
EDGE_RECEIVED = ("Received", "from mail.shop.example (mail.shop.example [192.0.2.10])\n\tby "
                 "edge.example.org (Postfix) with ESMTPS id 4WdQ1x2Zz7; Tue, 06 Aug 2024 "
                 "10:55:02 +0100")
LISTED_EDGE = Client("edge.example.org", "198.51.100.5", "edge.example.org")
COLLEAGUE = Client("[10.1.9.9]", "10.1.9.9", "pc42.example.org")
CONNECTIONS = {
    "an outside client": (OUTSIDE, SENT, []),
    "a client that sent no HELO": (replace(OUTSIDE, helo=""), SENT, []),
    "a client without a verified name": (replace(OUTSIDE, name="[192.0.2.10]"), SENT, []),
    "a client without either": (Client("[192.0.2.10]", "192.0.2.10", ""), SENT, []),
    "an IPv6 client": (Client("mail6.shop.example", "2001:db8:1::25", "mail6.shop.example"), SENT, []),
    # Our edge MX in front of mailsift's Postfix: trusted by its private address, or listed
    # (with the MX, as network.trusted_networks asks).
    "our edge relay": (EDGE, [EDGE_RECEIVED, *SENT], []),
    "our listed edge relay": (LISTED_EDGE, [EDGE_RECEIVED, *SENT], ["198.51.100.5", "10.0.0.0/24"]),
    # A colleague's mail: every hop is ours.
    "a colleague": (COLLEAGUE, SENT[1:], []),
}


@pytest.mark.parametrize(("client", "headers", "trusted"), CONNECTIONS.values(), ids=CONNECTIONS)
def test_every_copy_gives_the_tokens_of_the_milters(client: Client, headers: list[tuple[str, str]],
                                                    trusted: list[str]) -> None:
    """The delivered file (local delivery's headers, our MX's, our verdict, a tagged Subject),
    an mbox of it and the quarantine's copy give the milter's tokens, wherever the client is."""
    assert_same_tokens(copies(config(trusted=trusted), client, headers, f"[SPAM] {SUBJECT}"))


def test_the_senders_hops_still_give_tokens_and_ours_none() -> None:
    """Left out are what our hosts wrote: our MX's name (`by`), the hops of local delivery.
    The connection, and the hops the sender's side recorded before it, are still read."""
    tokens = assert_same_tokens(copies(config(), OUTSIDE, SENT, f"[SPAM] {SUBJECT}"))
    assert {"relay:ip:192.0.2", "relay:helo:shop", "rcvd:from:shop.example", "rcvd:ip:192.0.2",
            "rcvd:by:shop.example", "rcvd:ip:10.1.2"} <= tokens
    assert not {t for t in tokens if t.startswith("rcvd:") and "example.org" in t}
    assert "rcvd:ip:10.0.0" not in tokens


CYRILLIC = "Счёт за ноябрь: оплата до пятницы"


def base64_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


TAGS = {
    "the default tag": ("[SPAM]", SUBJECT),
    "a tag of the site's own": ("*** Probably spam ***", SUBJECT),
    "a tag in Cyrillic, so the Subject is encoded after tagging": ("[СПАМ]", SUBJECT),
    "an encoded Subject": ("[SPAM]", base64_word(CYRILLIC, "windows-1251")),
    "a Subject that begins with the tag already": ("[SPAM]", f"[SPAM] {SUBJECT}"),
}


@pytest.mark.parametrize(("tag", "subject"), TAGS.values(), ids=TAGS)
def test_the_tag_of_a_tagged_subject_gives_no_token(tag: str, subject: str) -> None:
    """The delivered copy's Subject is the one the milter tagged (`tagged_subject`, as the
    milter writes it); Bayes reads the sender's words from it, as from the milter's copy."""
    headers = [(n, subject if n == "Subject" else v) for n, v in SENT]
    tagged = tagged_subject(subject, tag)
    found = copies(config(tag), OUTSIDE, headers, tagged)
    assert found["delivered"].subject.startswith(tag)  # rules still see it
    tokens = assert_same_tokens(found)
    words = {t.removeprefix("subject:") for t in tokens if t.startswith("subject:")}
    assert words and not words & {"spam", "спам", "probably"}


@pytest.mark.parametrize("tag", ["[SPAM] ", " [SPAM]", "   "],
                         ids=["a space after", "a space before", "spaces only"])
def test_a_tag_with_space_around_it_gives_no_token(tag: str) -> None:
    """The Subject is read trimmed, and the tag was taken off only when the Subject began with
    it spaces and all: subject_tag = "[SPAM] " (a space to set it off) tagging spam with an
    empty or no Subject leaves "[SPAM] ", read as "[SPAM]", and " [SPAM]" any Subject, so the
    delivered copy gave subject:spam and subject:shouting, which the milter's copy had not."""
    for subject in (SUBJECT, "", None):
        headers = [(n, subject if n == "Subject" else v) for n, v in SENT
                   if n != "Subject" or subject is not None]
        tagged = tag if subject is None else tagged_subject(subject, tag)
        tokens = assert_same_tokens(copies(config(tag), OUTSIDE, headers, tagged))
        assert not {"subject:spam", "subject:shouting"} & tokens, subject


def test_mail_without_a_subject_tagged_gives_no_subject_token() -> None:
    """The milter gives tagged mail without a Subject one holding the tag alone."""
    headers = [(n, v) for n, v in SENT if n != "Subject"]
    tokens = assert_same_tokens(copies(config(), OUTSIDE, headers, "[SPAM]"))
    assert not [t for t in tokens if t.startswith("subject:")]


class HeaderEdits:
    """In libmilter's place at end of message: the Subject the milter asks Postfix to write."""

    subject: str | None = None

    def setpriv(self, milter: object) -> None:
        """pymilter hands a new context its session."""

    def chgheader(self, name: str, index: int, value: str) -> None:
        assert (name, index) == ("Subject", 1)
        self.subject = value


def test_a_raw_8bit_subject_is_tagged_in_the_words_bayes_read_from_it() -> None:
    """A Subject in raw KOI8-R bytes (no RFC 2047) is read in the body's charset; tagged, it was
    decoded as Windows-1252 and written encoded, so the delivered copy's Subject gave Bayes
    other words ("óÞ£Ô ÚÁ ÎÏÑÂÒØ" for "Счёт за ноябрь") than the milter's copy had."""
    raw = CYRILLIC.encode("koi8-r").decode("utf-8", "surrogateescape")  # as pymilter hands it
    headers = [(n, raw if n == "Subject" else v) for n, v in SENT if n != "Content-Type"]
    headers.append(("Content-Type", "text/plain; charset=koi8-r"))
    milter, edits = session(config(), OUTSIDE, headers), HeaderEdits()
    milter._setctx(edits)
    try:
        milter._tag_subject()
    finally:
        milter.spool.close()
    assert edits.subject is not None and edits.subject.isascii()
    found = copies(config(), OUTSIDE, headers, edits.subject)
    assert found["delivered"].subject == f"[SPAM] {CYRILLIC}"
    assert {"subject:счёт", "subject:ноябрь"} <= assert_same_tokens(found)


def test_a_correction_from_the_delivered_file_moves_what_autolearn_counted(tmp_path: Path) -> None:
    """Autolearned as spam from the milter's copy, learned as ham from the delivered file, then
    forgotten from it: every token's counts are those from before, token by token."""
    site = config(store=f"sqlite:///{tmp_path}/bayes.sqlite")
    tagged = f"[SPAM] {SUBJECT}"
    file = tmp_path / "delivered.eml"
    file.write_bytes(delivered(OUTSIDE, SENT, tagged))
    seen = milter_copy(site, OUTSIDE, SENT)
    tokens = sorted(set(tokenize(seen)) | set(tokenize(analyse(file.read_bytes(), site))))
    keys = [token_key(t) for t in tokens]
    with closing(BayesFilter(site.bayes, open_store(site.bayes))) as bayes:
        for label in Label:  # other mail of these words: every token has counts to lose
            bayes.store.learn(LearnItem(f"other {label}", keys), label, 1)
        before = bayes.store.lookup(keys)
        assert bayes.learn(seen, Label.SPAM) is Outcome.LEARNED  # what autolearn does
        assert learn(iter_messages([str(file)]), Label.HAM, site, bayes).changed == 1
        assert learn(iter_messages([str(file)]), None, site, bayes).changed == 1
        after = bayes.store.lookup(keys)
    assert after[0] == before[0]
    assert {t: c for t, c in zip(tokens, after[1], strict=True)} == \
        {t: c for t, c in zip(tokens, before[1], strict=True)}


def test_a_big_message_learned_from_an_mbox_is_read_as_far_as_the_milter_read_it(
        tmp_path: Path) -> None:
    """An mbox writes each body line starting "From " as ">From ". Left in, each ">" moved the
    cut at scan.max_bytes one byte before the milter's (16 KiB here, the least): the mbox's copy
    of a bigger message lost its last words or cut one short, tokens autolearn had counted."""
    words = distinct_words()
    body = [" ".join(next(words) for _ in range(8)) for _ in range(500)]
    body[:200:10] = [f"From {line}" for line in body[:200:10]]
    mail = Mail(body)
    mbox = tmp_path / "spam.mbox"
    mbox.write_bytes(mail.mbox().replace(b"\nFrom fig", b"\n>From fig"))
    [item] = iter_messages([str(mbox)], force_mbox=True)
    raw, _ = item.content()
    assert raw is not None
    limited = scan_config(16 * 1024)
    assert set(tokenize(analyse(raw, limited))) == set(tokenize(seen_by_milter(mail, limited)))
    assert raw.count(b"\nFrom fig") == 20 and b">From" not in raw
