"""What an administrator changed by hand, in the system log, where a colleague looks for it.

The milter logs to standard error, which systemd hands to the journal under the identifier
`mailsift` (the program's name, as mailsift-milter.service sets none) and the facility mail
(its SyslogFacility=): its "paused" lines are there, beside Postfix's. A command an admin
types has its standard error on their terminal, gone when they log out, so a colleague asking
why a spammer sends again found nothing. So `record` sends its line to the system log socket
(/dev/log: journald's, or rsyslog's without systemd) with that same identifier and facility:
`journalctl -t mailsift`, or the mail log (rsyslog's mail.*), shows who lifted a pause next to
the pause itself.

$MAILSIFT_SYSLOG names another socket (a container's or a chroot's log socket). When the socket
cannot be reached, the line goes to standard error with why, never lost silently and never
failing the command: what it records is done already.
"""

from __future__ import annotations

import os
from logging import INFO, LogRecord
from logging.handlers import SysLogHandler

import click

SYSLOG_SOCKET = "/dev/log"
SOCKET_ENV = "MAILSIFT_SYSLOG"
IDENT = "mailsift"


class _Handler(SysLogHandler):
    """A SysLogHandler whose send failure reaches `record` (logging would print a traceback)."""

    def handleError(self, record: LogRecord) -> None:
        raise  # emit calls this inside its except clause


def record(text: str) -> None:
    """Send `text` to the system log, as mailsift[PID] at mail.info; failing that, write it
    to standard error, saying why it is not in the system log."""
    path = os.environ.get(SOCKET_ENV) or SYSLOG_SOCKET
    try:
        _send(path, text)
    except OSError as exc:
        click.echo(f"mailsift: {text}", err=True)
        click.echo(f"mailsift: warning: the line above is not in the system log: {path}: "
                   f"{exc.strerror or exc} (${SOCKET_ENV} names another socket)", err=True)


def _send(path: str, text: str) -> None:
    handler = _Handler(path, SysLogHandler.LOG_MAIL)
    handler.ident = f"{IDENT}[{os.getpid()}]: "
    try:
        handler.emit(LogRecord("mailsift.audit", INFO, __file__, 0, text, None, None))
    finally:
        handler.close()
