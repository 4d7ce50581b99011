"""Mail a local program hands to Postfix's sendmail command, through the real Postfix.

On a web-hosting server most outbound spam comes from a customer's compromised PHP site calling
mail(): /usr/sbin/sendmail -> postdrop -> pickup -> cleanup, which only `non_smtpd_milters`
sees. What the milter gets then (measured on this Postfix 3.7): a made-up connection from
localhost[127.0.0.1] port 0, HELO localhost, no SASL login, the envelope sender (the user's
login at $myorigin without -f), and not the "Received: ... (Postfix, from userid N)" header
that pickup writes. What Postfix does with each milter answer: a reject bounces the whole
message to the envelope sender; a 451 leaves it in the maildrop queue, taken again at each
pickup scan; a discard drops it.

Each test submits as a Unix user of its own (distinct pause counts in the module's milter), and
the `mta` fixture fails a test that leaves a message queued: nothing here may be lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Mta, launch_milter
from tests.e2e.messages import QUARANTINE_MARK, REJECT_MARK, SENDER, make_message
from tests.support.milter_process import MilterProcess
from tests.support.postfix import PostfixInstance
from tests.support.redis_server import RedisServer

PAUSE_AFTER = 2
BOB = "bob@example.com"


@pytest.fixture(scope="module")
def milter(postfix: PostfixInstance, milter_port: int, redis_server: RedisServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilterProcess]:
    """The default milter.local (outbound), with a shared pause store so `outbound` reaches it
    (the session's redis-server, under a prefix of this module's own)."""
    process = launch_milter(postfix, milter_port, tmp_path_factory.mktemp("milter"),
                            {"outbound": {"pause_after": PAUSE_AFTER, "pause_store": redis_server.url,
                                          "pause_key_prefix": "mailsift:e2e-local:"}})
    yield process
    process.stop()


def local_sender(postfix: PostfixInstance, login: str) -> str:
    """The envelope sender Postfix gives a user's mail without -f, as the pause names it."""
    return f"local sender {login}@{postfix.hostname}"


def log_line(milter: MilterProcess, message_id: str, mta: Mta) -> str:
    queue_id = mta.queue_id(message_id)
    assert queue_id is not None
    return milter.wait_for_log(re.compile(rf"\b{queue_id}: client="), timeout=10).string


def outbound(milter: MilterProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailsift", "--config", str(milter.config_path),
                           "outbound", *args], capture_output=True, text=True, timeout=60,
                          env={"MAILSIFT_SYSLOG": str(Path(milter.directory) / "no-syslog"),
                               "PATH": "/usr/bin:/bin"})


def test_local_mail_is_judged_as_outbound_and_its_line_says_so(mta: Mta, milter: MilterProcess) -> None:
    """It was scanned as inbound mail from localhost: a customer's ham left with our X-Spam-*
    headers, and nothing of it could ever count towards a pause."""
    raw, message_id = make_message()
    mta.postfix.sendmail(raw, [BOB], uid=1)
    head = mta.delivered(message_id).raw.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-spam-" not in head
    line = log_line(milter, message_id, mta)
    assert f"client=localhost[127.0.0.1] via=sendmail from=<daemon@{mta.postfix.hostname}> " in line
    assert " action=pass " in line


@pytest.mark.parametrize("mark", [QUARANTINE_MARK, REJECT_MARK], ids=["quarantine", "reject"])
def test_local_spam_is_quarantined_never_bounced(mta: Mta, milter: MilterProcess, mark: str) -> None:
    """A reject of local mail comes back as a bounce to the envelope sender, which a spam script
    sets to anyone: backscatter from our host, one per message. Kept in quarantine instead."""
    raw, message_id = make_message(mark)
    mta.postfix.sendmail(raw, [BOB], uid=2, sender=SENDER)
    assert mta.not_delivered(message_id)  # neither delivered nor bounced to SENDER
    assert not [m for m in mta.sink.messages if SENDER in m.recipients]
    [stored] = mta.quarantined(milter, message_id)
    assert stored.meta["recipients"] == [BOB]
    assert stored.meta["mail_from"] == SENDER
    assert " action=quarantine " in log_line(milter, message_id, mta)
    # Counted for the envelope sender; lifted, so the next case starts from nothing.
    assert f"local sender {SENDER}" in outbound(milter, "list").stdout
    assert outbound(milter, "lift", f"local sender {SENDER}").returncode == 0


def test_a_spam_run_of_one_unix_user_pauses_that_user_only_and_loses_nothing(
        mta: Mta, milter: MilterProcess) -> None:
    """Counted per client, every site's mail would be from localhost[127.0.0.1]: one compromised
    site would pause the whole host. Counted per envelope sender, www-data is paused, nobody's
    mail flows, and www-data's deferred message waits in the maildrop queue until the lift."""
    spammer, neighbour = local_sender(mta.postfix, "www-data"), local_sender(mta.postfix, "nobody")
    for _ in range(PAUSE_AFTER):
        raw, message_id = make_message(QUARANTINE_MARK)
        mta.postfix.sendmail(raw, [BOB], uid=33)
        assert mta.not_delivered(message_id)
    milter.wait_for_log(re.escape(f"outbound mail of {spammer} paused: {PAUSE_AFTER} messages"))

    held_raw, held_id = make_message(subject="Order confirmation")
    mark = milter.mark()
    mta.postfix.sendmail(held_raw, [BOB], uid=33)
    milter.wait_for_log(re.escape(f"via=sendmail from=<www-data@{mta.postfix.hostname}> ") +
                        r".* action=paused ", start=mark)
    raw, message_id = make_message(subject="Newsletter")
    mta.postfix.sendmail(raw, [BOB], uid=65534)
    mta.delivered(message_id)
    assert f"via=sendmail from=<nobody@{mta.postfix.hostname}> " in log_line(milter, message_id, mta)
    assert mta.sink.find(held_id) == []
    assert len(mta.postfix.maildrop()) == 1  # deferred, not dropped, not bounced

    listed = outbound(milter, "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^paused until .+ {PAUSE_AFTER} of {PAUSE_AFTER}\s+{re.escape(spammer)}$",
                     listed.stdout, re.M), listed.stdout
    assert neighbour not in listed.stdout
    lifted = outbound(milter, "lift", spammer)
    assert lifted.returncode == 0, lifted.stderr
    mta.postfix.kick_pickup()
    assert mta.delivered(held_id).header("Subject") == "Order confirmation"
