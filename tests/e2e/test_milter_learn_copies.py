"""An admin's correction of an autolearned message, as an admin meets it (issue #3: "relearn as
the other class moves counts; forget restores the exact previous counts").

A message goes through the real Postfix with autolearn on: the milter learns it as spam from its
copy (the sender's headers, the connection Postfix reports). The admin then learns the copy in
the recipient's mailbox as ham (`mailsift learn --ham FILE`), and forgets it. That copy has what
our hosts added: our MX's Received header, local delivery's headers, our Authentication-Results
and X-Spam-* headers, the tagged Subject. The store keeps no token list per message, so both
commands tokenise that copy: the store must end with exactly the counts it had before the
message came, token by token.
"""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

from mailsift.analysis.parse import analyse
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, LearnItem, Totals, token_key
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import Config, parse_config
from tests.e2e.conftest import SUBJECT_TAG, MilterFactory, Mta
from tests.e2e.messages import TAG_MARK
from tests.e2e.test_milter_network import AUTHSERV_ID, RECIPIENT, dns_overrides
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import BODY, letter
from tests.network.zone import GOOD_IP
from tests.support.cli import run_mailsift
from tests.support.milter_process import MilterProcess
from tests.support.sink import Received

# The sender's own hop, from Tom's laptop to his provider's MX, which hands it to ours.
SENDERS_HOP = (b"Received: from [10.1.2.3] (laptop.shop.test [10.1.2.3])\r\n\tby mail.shop.test "
               b"(Postfix) with ESMTPSA id 4WdQ1x2Zz9; Tue, 06 Aug 2024 10:55:01 +0100\r\n")
CLIENT = {"ADDR": GOOD_IP, "NAME": "mail.shop.test", "HELO": "mail.shop.test"}


def sent(message_id: str) -> bytes:
    """Tom's letter, with a word that scores it into the tag band, far above autolearn's 12."""
    raw = SENDERS_HOP + letter(body=f"{BODY}\n{TAG_MARK}\n")
    return raw.replace(b"<minutes-42@shop.test>", message_id.encode())


def in_mailbox(received: Received) -> bytes:
    """The copy as local delivery (Dovecot's LMTP) files it in the recipient's Maildir: its
    Return-Path, Delivered-To and Received headers on top, LF line ends."""
    delivery = ("Return-Path: <tom@shop.test>\nDelivered-To: anna@example.com\nReceived: from "
                "mx.test.invalid ([10.0.0.25])\n\tby imap.example.com with LMTP\n\tid "
                "8Km1LnVW+2WaFQAAgrtbNA\n\t(envelope-from <tom@shop.test>)\n\tfor "
                "<anna@example.com>; Tue, 06 Aug 2024 10:55:03 +0100\n")
    return delivery.encode() + received.raw.replace(b"\r\n", b"\n")


def through_postfix(mta: Mta, message_id: str) -> bytes:
    outcome = mta.send(sent(message_id), RECIPIENT, sender="tom@shop.test", xclient=CLIENT)
    assert outcome.accepted, outcome.reply
    received = mta.delivered(message_id)
    status = " ".join((received.header("X-Spam-Status") or "").split())
    assert re.search(r"\bautolearn=spam\b", status), status
    assert received.header("Subject") == f"{SUBJECT_TAG} Minutes of Tuesday"
    assert [v.split(";")[0] for v in received.headers("Authentication-Results")] == [AUTHSERV_ID]
    return in_mailbox(received)


def tokens(raw: bytes, config: Config) -> list[str]:
    return tokenize(analyse(raw, config), config.bayes.bigrams)


def counts(config: Config) -> tuple[Totals, dict[str, Label], dict[bytes, tuple[int, int]]]:
    """Everything the store holds: totals, learned-message records, each token's counts."""
    with closing(open_store(config.bayes)) as store:
        totals, seen, tokens = store.export()
        return totals, seen, {t.key: (t.spam, t.ham) for t in tokens if t.spam or t.ham}


def changed(before: dict[bytes, tuple[int, int]], after: dict[bytes, tuple[int, int]],
            names: dict[bytes, str]) -> dict[str, str]:
    """The tokens whose (spam, ham) counts differ, by name where known: "before -> after"."""
    return {names.get(key, key.hex()): f"{before.get(key, (0, 0))} -> {after.get(key, (0, 0))}"
            for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def learned(milter: MilterProcess, option: str, path: Path, verb: str) -> None:
    done = run_mailsift(["--config", str(milter.config_path), "learn", option, str(path)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{verb} tokens from 1 message(s)"), done.stdout


def test_a_tagged_spam_corrected_from_the_mailbox_then_forgotten_leaves_the_counts_it_found(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture,  # noqa: F811
        tmp_path: Path) -> None:
    milter = start_milter(dns_overrides(test_dns.server.address))
    config = parse_config(milter.config, "e2e test config")
    # Earlier mail of these words, the same way: every token the mailbox's copy has gets counts
    # to lose, so a count taken that autolearn never added shows (counts stop at zero).
    keys = [token_key(t) for t in tokens(through_postfix(mta, "<twin-1@shop.test>"), config)]
    with closing(open_store(config.bayes)) as store:
        for label in Label:
            store.learn(LearnItem(f"earlier {label}", keys), label, 1)
    before = counts(config)

    mailbox = tmp_path / "1732460102.M1P2.imap.example.com:2,S"
    mailbox.write_bytes(through_postfix(mta, "<twin-2@shop.test>"))  # autolearned as spam
    assert counts(config)[0] == Totals(before[0].spam + 1, before[0].ham)
    learned(milter, "--ham", mailbox, "Learned")
    assert counts(config)[0] == Totals(before[0].spam, before[0].ham + 1)
    learned(milter, "--forget", mailbox, "Forgot")
    after = counts(config)
    names = {token_key(t): t for t in tokens(mailbox.read_bytes(), config)}
    assert after[2] == before[2], changed(before[2], after[2], names)
    assert after[:2] == before[:2]
