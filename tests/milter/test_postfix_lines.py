"""`mailsift postfix`: the main.cf lines follow the milter's own settings."""

from __future__ import annotations

from pathlib import Path

from mailsift.config import MilterConfig, parse_config
from mailsift.milter.postfix import milter_address, postfix_lines

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
