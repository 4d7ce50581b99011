"""mailsift beside a milter that adds Authentication-Results in Postfix's name (OpenDKIM and
OpenDMARC do, their AuthservID being the host name by default), through the real Postfix.

Postfix applies each milter's header edits to the queue file before it shows the message to the
next milter in smtpd_milters: a milter listed after OpenDKIM sees its header (smfi_insheader at
index 1) as the first one, where a sender's own first header is. mailsift, which removes every
Authentication-Results in our name as forged, listed after such a milter therefore removed its
results too, and Postfix offers nothing that tells the two apart. Listed first, it sees only the
sender's headers and the other milter adds its own to what mailsift passed on. `mailsift postfix`
printed a smtpd_milters line naming mailsift alone: pasted, it dropped OpenDKIM; added by hand
at the end, as a spam filter usually is, it lost OpenDKIM's results. It now reads main.cf's
milters with postconf, prints them after mailsift, and warns when main.cf lists one before it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Mta, module_milter
from tests.e2e.dkim_like_milter import RESULT
from tests.e2e.messages import make_message
from tests.e2e.test_milter_forged_auth_results import BOB, OTHERS, values
from tests.support.cli import run_mailsift
from tests.support.milter_process import MilterProcess
from tests.support.ports import LOOPBACK, free_port, wait_for_port
from tests.support.postfix import backdate

REPO = Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def dkim_like() -> Iterator[str]:
    """The other milter, running on its own loopback port; its address in Postfix notation."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.dkim_like_milter", str(port)],
                               cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, 10)
        yield f"inet:{LOOPBACK}:{port}"
    finally:
        process.terminate()
        process.wait(10)


milter = module_milter(doc="mailsift with the defaults (dns.authserv_id unset: our name is Postfix's "
                       "myhostname). Every e2e module points Postfix at its own milter "
                       "(launch_milter), so the two-milter lists set here need no undoing.")


def forged(mta: Mta) -> tuple[bytes, str]:
    """A message carrying a sender's forged results in our name beside another host's."""
    ours = mta.postfix.hostname
    return make_message(headers=[("Authentication-Results", f"{ours}; {RESULT}"),
                                 ("Authentication-Results", OTHERS)])


def mailsift_postfix(mta: Mta, milter: MilterProcess) -> subprocess.CompletedProcess[str]:
    """`mailsift postfix` reading the test Postfix's main.cf (MAIL_CONFIG, as postconf takes it)."""
    backdate(mta.postfix.etc / "main.cf")
    done = run_mailsift(["--config", str(milter.config_path), "postfix"],
                        env={"MAIL_CONFIG": str(mta.postfix.etc)})
    assert done.returncode == 0, done.stderr
    return done


def printed(output: str, name: str) -> str:
    """The value of the main.cf line `name = ...` that `mailsift postfix` printed."""
    [line] = [line for line in output.splitlines() if line.startswith(f"{name} = ")]
    return line.partition(" = ")[2]


def test_the_lines_mailsift_postfix_prints_keep_the_other_milters_results(
        mta: Mta, milter: MilterProcess, dkim_like: str) -> None:
    """A site running OpenDKIM installs mailsift: the printed lines, pasted, keep OpenDKIM and
    put mailsift first; its results reach the mailbox and the sender's forged ones do not."""
    mta.postfix.set_milter(dkim_like)  # main.cf before mailsift
    output = mailsift_postfix(mta, milter).stdout
    assert printed(output, "non_smtpd_milters") == "$smtpd_milters"
    mta.postfix.set_milter(printed(output, "smtpd_milters"))
    raw, message_id = forged(mta)
    assert mta.send(raw, BOB).accepted
    delivered = mta.delivered(message_id).message
    assert values(delivered, "Authentication-Results") == [
        f"{mta.postfix.hostname}; {RESULT}", OTHERS]  # the other milter's on top, where it put it


def test_mailsift_listed_after_another_milter_is_warned_about(
        mta: Mta, milter: MilterProcess, dkim_like: str) -> None:
    """Listed after the other milter, mailsift is shown its header among the sender's and
    removes it (Postfix's behaviour, the reason for the warning): `mailsift postfix` says so and
    prints the line with mailsift first."""
    mta.postfix.set_milter(f"{dkim_like}, {milter.postfix_address}")
    done = mailsift_postfix(mta, milter)
    assert (f"smtpd_milters and non_smtpd_milters list {dkim_like} before mailsift "
            f"({milter.postfix_address}): mailsift removes the Authentication-Results") in done.stderr
    assert printed(done.stdout, "smtpd_milters") == f"{milter.postfix_address}, {dkim_like}"
    raw, message_id = forged(mta)
    assert mta.send(raw, BOB).accepted
    assert values(mta.delivered(message_id).message, "Authentication-Results") == [OTHERS]
