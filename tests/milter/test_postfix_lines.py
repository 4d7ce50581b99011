"""`mailsift postfix`: the main.cf lines follow the milter's own settings."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from mailsift.config import MilterConfig, parse_config
from mailsift.configtest import Check, milters_checks
from mailsift.milter.postfix import (
    POSTCONF_PATH,
    MilterLists,
    milter_address,
    milter_entries,
    order_warnings,
    postfix_lines,
    same_milter,
)
from tests.support.cli import run_mailsift
from tests.support.postfix import backdate

EXAMPLE = Path(__file__).parent.parent.parent / "mailsift.example.toml"


def test_postfix_waits_for_two_milter_timeouts() -> None:
    """Under a burst a message may wait for a libmilter thread while others use their whole
    milter.timeout; Postfix then waited up to twice it (measured in test_milter_burst). The lines
    said timeout + 30 s: with a 60 s timeout Postfix gave up at 90 s and applied
    milter_default_action itself (with accept, the message left unfiltered)."""
    lines = postfix_lines(parse_config({"milter": {"timeout": 60}}, "m.toml")).splitlines()
    assert "milter_content_timeout = 130s" in lines


def main_cf_milter(listen: str) -> str:
    """The smtpd_milters line `mailsift postfix` prints for this milter.listen."""
    lines = postfix_lines(parse_config({"milter": {"listen": listen}}, "m.toml")).splitlines()
    [line] = [line for line in lines if line.startswith("smtpd_milters = ")]
    return line


def test_a_socket_in_postfixs_queue_directory_is_named_relative_to_it() -> None:
    """README's unix socket: listen = "unix:/var/spool/postfix/mailsift/milter.sock", named
    unix:mailsift/milter.sock in main.cf. `mailsift postfix` printed the full path, which
    Debian's smtpd, chrooted to /var/spool/postfix, reads inside its chroot: it found no
    socket there, and every message met milter_default_action (accept: unfiltered)."""
    assert main_cf_milter("unix:/var/spool/postfix/mailsift/milter.sock") == (
        "smtpd_milters = unix:mailsift/milter.sock")
    assert main_cf_milter("unix:/var/spool/postfix//mailsift/./m.sock") == (
        "smtpd_milters = unix:mailsift/m.sock")


def test_a_socket_outside_the_queue_directory_or_a_port_keeps_its_name() -> None:
    assert main_cf_milter("unix:/run/mailsift/milter.sock") == (
        "smtpd_milters = unix:/run/mailsift/milter.sock")
    assert main_cf_milter("unix:/var/spool/postfix-other/m.sock") == (
        "smtpd_milters = unix:/var/spool/postfix-other/m.sock")
    assert main_cf_milter("inet:127.0.0.1:11332") == "smtpd_milters = inet:127.0.0.1:11332"


def example_listen_comment() -> str:
    """The comment above [milter] listen in mailsift.example.toml, as one line."""
    section = EXAMPLE.read_text().partition("\n[milter]\n")[2]
    comment = section.partition("\nlisten = ")[0]
    return " ".join(line.removeprefix("# ") for line in comment.splitlines())


def test_the_example_and_the_description_name_the_socket_as_mailsift_postfix_does() -> None:
    """The example config and milter.listen's description said "the same string goes in
    smtpd_milters" beside their unix:/var/spool/postfix/mailsift/milter.sock: pasted so, Debian's
    chrooted smtpd finds no socket and every message meets milter_default_action (accept:
    unfiltered). `mailsift postfix` and README name it unix:mailsift/milter.sock."""
    socket = "unix:/var/spool/postfix/mailsift/milter.sock"
    for text in (example_listen_comment(), str(MilterConfig.model_fields["listen"].description)):
        assert socket in text and milter_address(socket) in text, text


OURS = "inet:127.0.0.1:11332"
OPENDKIM = "{ inet:localhost:8891, connect_timeout=5s }"  # an entry with its own settings
OPENDMARC = "unix:opendmarc/opendmarc.sock"


def test_a_milter_list_splits_as_postfix_splits_it() -> None:
    assert milter_entries(f" {OPENDKIM},{OPENDMARC}\n\t{OURS} ") == [OPENDKIM, OPENDMARC, OURS]
    assert milter_entries("") == []


@pytest.mark.parametrize(("entry", "ours"), [
    (OURS, True), ("inet:localhost:11332", True), ("{ inet:[::1]:11332, command_timeout=5s }", True),
    ("INET:127.0.0.1:11332", True), ("inet:127.0.0.1:8891", False),
    ("inet:mx.example.org:11332", False), ("unix:127.0.0.1:11332", False), (OPENDKIM, False),
    ("{ , }", False),
])
def test_mailsift_is_known_in_main_cf_however_its_loopback_host_is_written(
        entry: str, ours: bool) -> None:
    assert same_milter(entry, OURS) is ours


def test_mailsifts_socket_in_the_queue_directory_is_known_by_either_name() -> None:
    ours = milter_address("unix:/var/spool/postfix/mailsift/milter.sock")
    assert same_milter("unix:/var/spool/postfix/mailsift/milter.sock", ours)
    assert same_milter("{ unix:mailsift/milter.sock, connect_timeout=5s }", ours)
    assert not same_milter("unix:/var/spool/postfix/opendkim/opendkim.sock", ours)


def lines(smtpd: list[str], non_smtpd: list[str]) -> tuple[str, str]:
    """The smtpd_milters and non_smtpd_milters values printed for main.cf's lists now."""
    printed = postfix_lines(parse_config({}, "m.toml"), MilterLists(smtpd, non_smtpd))
    values = dict(line.split(" = ", 1) for line in printed.splitlines()
                  if line.startswith(("smtpd_milters = ", "non_smtpd_milters = ")))
    return values["smtpd_milters"], values["non_smtpd_milters"]


def test_the_printed_lines_keep_main_cfs_milters_after_mailsift() -> None:
    """The line named mailsift alone: pasted, it dropped OpenDKIM and OpenDMARC; added by hand
    at the end of the list, mailsift removed their Authentication-Results (our name, theirs)."""
    both = f"{OURS}, {OPENDKIM}, {OPENDMARC}"
    assert lines([OPENDKIM, OPENDMARC], [OPENDKIM, OPENDMARC]) == (both, "$smtpd_milters")
    assert lines([OPENDKIM, "inet:localhost:11332", OPENDMARC], [OPENDKIM]) == (
        both, f"{OURS}, {OPENDKIM}")
    assert lines([], []) == (OURS, "$smtpd_milters")
    assert lines([OPENDKIM], []) == (f"{OURS}, {OPENDKIM}", OURS)


def test_a_milter_listed_before_mailsift_is_warned_about() -> None:
    assert order_warnings(MilterLists([OPENDKIM, OURS], [OPENDKIM, OURS]), OURS) == [
        f"smtpd_milters and non_smtpd_milters list {OPENDKIM} before mailsift ({OURS}): mailsift "
        "removes the Authentication-Results in your name that it adds, as it cannot tell them "
        "from a sender's forged ones"]
    [warning] = order_warnings(MilterLists([OPENDKIM, OPENDMARC, OURS], [OURS, OPENDKIM]), OURS)
    assert warning.startswith(f"smtpd_milters lists {OPENDKIM}, {OPENDMARC} before mailsift")
    assert "that they add" in warning
    assert order_warnings(MilterLists([OURS, OPENDKIM], [OPENDKIM]), OURS) == []


needs_postconf = pytest.mark.skipif(shutil.which("postconf", path=POSTCONF_PATH) is None,
                                    reason="Postfix's postconf is not installed")


@needs_postconf
def test_a_main_cf_postconf_cannot_read_is_said_and_mailsift_named_alone(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text("")
    done = run_mailsift(["--config", str(tmp_path / "m.toml"), "postfix"],
                        env={"MAIL_CONFIG": str(tmp_path)})  # no main.cf there
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"mailsift: warning: cannot read smtpd_milters with postconf (no "
                           f"main.cf in {tmp_path}): the lines below name mailsift alone; keep "
                           "your other milters after it\n")
    assert f"\nsmtpd_milters = {OURS}\n" in done.stdout


@needs_postconf
def test_a_host_without_main_cf_is_told_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """postconf sleeps a second before it exits on a fatal error, such as no main.cf: on a host
    running the milter for a Postfix elsewhere, every configtest and `mailsift postfix` took a
    second longer for a line saying so. main.cf is looked for first."""
    monkeypatch.setenv("MAIL_CONFIG", str(tmp_path))
    started = time.monotonic()
    checks = milters_checks(parse_config({}, "m.toml"))
    assert time.monotonic() - started < 0.5
    assert checks == [Check("milters", True,
                            f"cannot read smtpd_milters with postconf (no main.cf in {tmp_path})")]


def main_cf(directory: Path, text: str) -> None:
    """Write `directory`/main.cf dated back (backdate), so that postconf reads it at once."""
    (directory / "main.cf").write_text(text)
    backdate(directory / "main.cf")


@needs_postconf
@pytest.mark.parametrize(("main_cf_text", "line"), [
    (f"smtpd_milters = {OPENDKIM}, inet:localhost:11332\nnon_smtpd_milters =\n",
     f"smtpd_milters lists {OPENDKIM} before mailsift ({OURS}): mailsift removes the "
     "Authentication-Results in your name that it adds, as it cannot tell them from a sender's "
     "forged ones; `mailsift postfix` prints the lines with mailsift first"),
    (f"smtpd_milters = {OURS} {OPENDMARC}\nnon_smtpd_milters = $smtpd_milters\n",
     f"mailsift first in smtpd_milters, then {OPENDMARC}; tagged mail "
     "(actions.rewrite_subject = 6) reaches them with its Subject changed, so a DKIM verifier "
     "among them fails its signatures: set actions.rewrite_subject = false if one verifies DKIM"),
    (f"smtpd_milters = {OURS}\n", "mailsift first in smtpd_milters"),
    (f"smtpd_milters = {OPENDMARC}\n",
     f"smtpd_milters does not name mailsift ({OURS}) yet: `mailsift postfix` prints the lines"),
])
def test_configtest_says_where_main_cf_lists_mailsift(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main_cf_text: str, line: str) -> None:
    """A site that listed mailsift last, as a spam filter usually is, lost OpenDKIM's results
    once the milter removed forged ones from all mail, with nothing in the log: configtest, run
    after every upgrade, says so (a warning: the line stays ok)."""
    main_cf(tmp_path, main_cf_text)
    monkeypatch.setenv("MAIL_CONFIG", str(tmp_path))  # postconf reads this directory's main.cf
    assert milters_checks(parse_config({}, "m.toml")) == [Check("milters", True, line)]


@needs_postconf
def test_configtest_says_nothing_of_tagging_where_mailsift_tags_no_subject(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main_cf(tmp_path, f"smtpd_milters = {OURS} {OPENDMARC}\n")
    monkeypatch.setenv("MAIL_CONFIG", str(tmp_path))
    config = parse_config({"actions": {"rewrite_subject": False}}, "m.toml")
    assert milters_checks(config) == [
        Check("milters", True, f"mailsift first in smtpd_milters, then {OPENDMARC}")]


@needs_postconf
def test_configtest_warns_of_a_milter_listed_before_mailsift(tmp_path: Path) -> None:
    """The same through `mailsift configtest`, as README runs it after an upgrade."""
    main_cf(tmp_path, f"smtpd_milters = {OPENDKIM}, {OURS}\nnon_smtpd_milters = $smtpd_milters\n")
    (tmp_path / "m.toml").write_text(f'[bayes]\nstore = "sqlite:///{tmp_path}/bayes.sqlite"\n'
                                     f'[quarantine]\ndir = "{tmp_path}/quarantine"\n')
    done = run_mailsift(["--config", str(tmp_path / "m.toml"), "configtest"],
                        env={"MAIL_CONFIG": str(tmp_path)})
    assert (f"\nmilters    ok   smtpd_milters and non_smtpd_milters list {OPENDKIM} before mailsift "
            f"({OURS}): mailsift removes the Authentication-Results in your name that it adds, as "
            "it cannot tell them from a sender's forged ones; `mailsift postfix` prints the lines "
            "with mailsift first\n") in done.stdout, done.stdout + done.stderr
