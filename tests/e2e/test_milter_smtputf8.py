"""Internationalised mail (SMTPUTF8, RFC 6531/6532) through the real Postfix: UTF-8 addresses and
headers reach the milter, the quarantine, the CLI and the next hop unmangled, and a released
message goes on as SMTPUTF8 mail."""

from __future__ import annotations

import email.header
import email.utils
import re
from pathlib import Path

from click.testing import CliRunner

from mailsift.cli import cli
from tests.e2e.conftest import SUBJECT_TAG, MilterFactory, Mta
from tests.e2e.messages import QUARANTINE_MARK, TAG_MARK, new_message_id
from tests.support.milter_process import merge, to_toml

FROM = "Jörg Müller <jörg@bücher.example>"
SUBJECT = "Grüße aus München"
RECIPIENT = "anna@example.com"
RECEIVED = re.compile(rb"\AReceived: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")


def utf8_message(mark: str) -> tuple[bytes, str]:
    """A message whose From and Subject are raw UTF-8 (RFC 6532), as SMTPUTF8 mail writes them."""
    message_id = new_message_id()
    head = (f"From: {FROM}\r\nTo: Anna <{RECIPIENT}>\r\nSubject: {SUBJECT}\r\n"
            f"Date: {email.utils.formatdate(localtime=True)}\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n")
    body = f"Hallo Anna,\r\n\r\nanbei die Bücherliste für nächste Woche.\r\n\r\n{mark}\r\n"
    return (head + body).encode(), message_id


def test_utf8_envelope_and_header_are_scored_tagged_and_delivered_intact(
        mta: Mta, start_milter: MilterFactory) -> None:
    milter = start_milter()
    mark = milter.mark()
    raw, message_id = utf8_message(TAG_MARK)
    sent = mta.send(raw, RECIPIENT, sender="jörg@bücher.example", smtputf8=True)
    assert sent.accepted, sent.reply
    received = mta.delivered(message_id)
    assert received.smtputf8 and received.sender == "jörg@bücher.example"
    assert received.header("X-Spam-Flag") == "YES"
    assert f"From: {FROM}\r\n".encode() in received.raw
    subject = str(email.header.make_header(email.header.decode_header(received.header("Subject"))))
    assert subject == f"{SUBJECT_TAG} {SUBJECT}"
    assert "from=<jörg@bücher.example>" in milter.wait_for_log(r"action=tag", start=mark).string


def test_quarantined_utf8_message_is_released_as_smtputf8_mail(
        mta: Mta, start_milter: MilterFactory, tmp_path: Path) -> None:
    """A header in raw UTF-8 makes SMTPUTF8 mail even when both envelope addresses are ASCII (a
    mailing service's bounce address): released without SMTPUTF8, Postfix lost that, and passed the
    8-bit header on to servers that never offered SMTPUTF8."""
    milter = start_milter()
    raw, message_id = utf8_message(QUARANTINE_MARK)
    assert mta.send(raw, RECIPIENT, sender="bounces@sender.example", smtputf8=True).accepted
    assert mta.not_delivered(message_id)
    [stored] = mta.quarantined(milter, message_id)
    assert (stored.meta["from"], stored.meta["subject"]) == (FROM, SUBJECT)

    config = tmp_path / "release.toml"
    config.write_text(to_toml(merge(milter.config, {"quarantine": {
        "release_via": f"127.0.0.1:{mta.postfix.plain_port}"}})))
    listed = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "list"])
    assert listed.exit_code == 0 and SUBJECT in listed.output, listed.output
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "release", stored.id])
    assert done.exit_code == 0, done.output
    received = mta.delivered(message_id)
    assert received.smtputf8
    assert (received.sender, received.recipients) == ("bounces@sender.example", (RECIPIENT,))
    added = RECEIVED.match(received.raw)
    assert added is not None and received.raw[added.end():] == stored.raw
