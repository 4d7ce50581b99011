"""Quarantined by the real milter, released through the real Postfix: the bytes and the envelope
arrive as they were sent, and the released copy is not caught again."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.quarantine.store import QuarantineStore
from tests.e2e.conftest import MilterFactory, Mta
from tests.e2e.messages import QUARANTINE_MARK, new_message_id
from tests.support.milter_process import merge, to_toml
from tests.support.ports import LOOPBACK, free_port, wait_for_port
from tests.support.postfix import PostfixInstance
from tests.support.sink import SmtpSink

SUBJECT = "Счёт на оплату №42"
SENDER = "petr@sender.example"
RECIPIENT = "bob@example.com"
ALIAS = "sales@example.com"  # a virtual alias of RECIPIENT
RECEIVED = re.compile(rb"\AReceived: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")


def windows_1251_message() -> tuple[bytes, str]:
    message_id = new_message_id()
    subject = base64.b64encode(SUBJECT.encode("cp1251")).decode()
    head = (f"From: =?windows-1251?B?{base64.b64encode('Пётр'.encode('cp1251')).decode()}?= "
            f"<{SENDER}>\r\nTo: {RECIPIENT}\r\nSubject: =?windows-1251?B?{subject}?=\r\n"
            f"Date: Mon, 6 May 2024 10:00:00 +0300\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    body = "Добрый день!\r\nСчёт во вложении, оплатите до пятницы.\r\n.\r\n..точки в начале строки\r\n"
    return head.encode() + body.encode("cp1251") + f"\r\n{QUARANTINE_MARK}\r\n".encode(), message_id


def test_released_windows_1251_message_arrives_byte_identical_with_its_envelope_sender(
        mta: Mta, start_milter: MilterFactory, tmp_path: Path) -> None:
    milter = start_milter()
    raw, message_id = windows_1251_message()
    assert mta.send(raw, RECIPIENT, sender=SENDER).accepted
    assert mta.not_delivered(message_id)
    [stored] = mta.quarantined(milter, message_id)
    assert stored.meta["subject"] == SUBJECT and stored.meta["mail_from"] == SENDER

    config = tmp_path / "release.toml"
    config.write_text(to_toml(merge(milter.config, {"quarantine": {
        "release_via": f"127.0.0.1:{mta.postfix.plain_port}"}})))
    done = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "release", stored.id])
    assert done.exit_code == 0, done.output
    received = mta.delivered(message_id)

    assert received.sender == SENDER
    assert received.recipients == (RECIPIENT,)
    added = RECEIVED.match(received.raw)
    assert added is not None, received.raw[:300]
    assert received.raw[added.end():] == stored.raw  # only Postfix's own Received line in front
    assert received.header("X-Spam-Status") is None  # did not pass the milter again
    assert len(mta.quarantined(milter, message_id)) == 1
    record = QuarantineStore(milter.config["quarantine"]["dir"]).meta(stored.id)
    assert record["state"] == "released"
    assert record["events"][-1]["detail"] == f"to {RECIPIENT}"


@pytest.mark.parametrize(("on_error", "accepted"), [("tempfail", False), ("accept", True)])
def test_store_that_cannot_write_applies_on_error(mta: Mta, start_milter: MilterFactory,
                                                  tmp_path: Path, on_error: str, accepted: bool) -> None:
    """The quarantine cannot keep the message: it is never dropped, on_error decides."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    start_milter({"milter": {"on_error": on_error}, "quarantine": {"dir": str(blocker / "q")}})
    raw, message_id = windows_1251_message()
    sent = mta.send(raw, RECIPIENT, sender=SENDER)
    assert sent.accepted is accepted, sent.reply
    if accepted:
        received = mta.delivered(message_id)
        assert (received.header("X-Spam-Status") or "").startswith("Unknown")
    else:
        assert sent.code == 451
        assert mta.not_delivered(message_id)


def printed_release_service(config_path: Path) -> str:
    """The master.cf entry `mailsift postfix` prints for released mail, as an admin pastes it."""
    done = CliRunner().invoke(cli, ["--config", str(config_path), "postfix"])
    assert done.exit_code == 0, done.output
    master = done.output.split("/etc/postfix/master.cf", 1)[1].split("\n", 1)[1]
    return "\n".join(line for line in master.splitlines() if line and not line.startswith("#"))


def test_release_through_the_printed_master_cf_entry_expands_virtual_aliases(
        sink: SmtpSink, postfix_available: None, tmp_path: Path) -> None:
    """The quarantine keeps RCPT TO as the client gave it (sales@, an alias), so the re-injection
    port must map it: with `no_address_mappings` there, a released message went to the alias
    itself, which no mailbox holds, and bounced back to the outside sender."""
    release_port = free_port()
    config_path = tmp_path / "mailsift.toml"
    config_path.write_text(to_toml({"quarantine": {
        "dir": str(tmp_path / "q"), "release_via": f"{LOOPBACK}:{release_port}"}}))
    instance = PostfixInstance(sink.port)
    instance.postconf(virtual_alias_maps=f"inline:{{{ALIAS}={RECIPIENT}}}")
    with (instance.etc / "master.cf").open("a") as master_cf:
        master_cf.write(printed_release_service(config_path) + "\n")
    store = QuarantineStore(tmp_path / "q")
    raw, message_id = windows_1251_message()
    stored = store.put(raw, {"mail_from": SENDER, "recipients": [ALIAS], "subject": "x"})
    sink.clear()
    try:
        instance.start()
        wait_for_port(release_port, 10)
        done = CliRunner().invoke(cli, ["--config", str(config_path), "quarantine", "release", stored])
        assert done.exit_code == 0, done.output
        received = sink.wait_for_id(message_id)
        instance.wait_queue_empty()
    finally:
        instance.cleanup()
    assert received.recipients == (RECIPIENT,)
    assert received.sender == SENDER


def test_releasing_twice_delivers_one_copy_unless_asked_again(
        mta: Mta, start_milter: MilterFactory, tmp_path: Path) -> None:
    """A second release (a double click, a bulk release over a page showing released mail, a
    retried command) delivered a second copy; now it is refused in one line, exit status 2."""
    milter = start_milter()
    raw, message_id = windows_1251_message()
    assert mta.send(raw, RECIPIENT, sender=SENDER).accepted
    assert mta.not_delivered(message_id)
    [stored] = mta.quarantined(milter, message_id)
    config = tmp_path / "release.toml"
    config.write_text(to_toml(merge(milter.config, {"quarantine": {
        "release_via": f"127.0.0.1:{mta.postfix.plain_port}"}})))
    release = ["--config", str(config), "quarantine", "release", stored.id]

    assert CliRunner().invoke(cli, release).exit_code == 0
    mta.delivered(message_id)
    again = CliRunner().invoke(cli, release)
    mta.settle()
    assert again.exit_code == 2
    assert again.output.strip() == (f"mailsift: quarantine: message {stored.id} was already "
                                     f"released to {RECIPIENT} (release again on purpose: --again)")
    assert len(mta.sink.find(message_id)) == 1

    assert CliRunner().invoke(cli, [*release, "--again"]).exit_code == 0
    mta.settle()
    assert len(mta.sink.find(message_id)) == 2


def test_release_to_an_international_address_uses_smtputf8(sink: SmtpSink, tmp_path: Path) -> None:
    """smtplib sends commands as ASCII unless told SMTPUTF8: releasing mail held for
    jäne@example.org ended in a UnicodeEncodeError (a traceback, a 500 page in the web UI)."""
    address = "jäne@example.org"
    config_path = tmp_path / "mailsift.toml"
    config_path.write_text(to_toml({"quarantine": {
        "dir": str(tmp_path / "q"), "release_via": f"{LOOPBACK}:{sink.port}"}}))
    raw, message_id = windows_1251_message()
    stored = QuarantineStore(tmp_path / "q").put(raw, {"mail_from": SENDER, "recipients": [address]})
    sink.clear()
    done = CliRunner().invoke(cli, ["--config", str(config_path), "quarantine", "release", stored])
    assert done.exit_code == 0, done.output
    assert sink.wait_for_id(message_id).recipients == (address,)
