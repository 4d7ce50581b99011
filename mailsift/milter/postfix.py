"""The Postfix side of the installation, derived from our config so the two always agree."""

from __future__ import annotations

import posixpath

from mailsift.config import Config

# Postfix's queue_directory on Debian (its default elsewhere too). Its daemons work in it, and on
# Debian smtpd and cleanup run chrooted to it, where /var/spool/postfix/... does not exist.
QUEUE_DIRECTORY = "/var/spool/postfix"
OUTSIDE_NOTE = ("# smtpd runs chrooted in /var/spool/postfix on Debian: a unix socket must lie\n"
                "# inside it (e.g. unix:/var/spool/postfix/mailsift/milter.sock), and Postfix\n"
                "# names it relative to the chroot: unix:mailsift/milter.sock\n")
INSIDE_NOTE = ("# The socket is named relative to Postfix's queue directory (/var/spool/postfix):\n"
               "# smtpd and cleanup run there, chrooted on Debian, where its full path does not exist.\n")


def milter_address(listen: str) -> str:
    """milter.listen as main.cf must name it. A unix socket inside the queue directory is named
    relative to it: Postfix reads an absolute path relative to the chroot, so a chrooted smtpd
    looked for /var/spool/postfix/var/spool/postfix/... and every message met
    milter_default_action. A relative name reaches the socket chrooted or not, as each daemon
    works in the queue directory."""
    if not listen.startswith("unix:"):
        return listen
    inside = posixpath.normpath(listen.removeprefix("unix:")).removeprefix(QUEUE_DIRECTORY + "/")
    return listen if inside.startswith("/") else "unix:" + inside


def postfix_lines(config: Config) -> str:
    listen = milter_address(config.milter.listen)
    reinject = config.quarantine.release_via  # where released mail re-enters, past the milter
    # A message may first wait for a libmilter thread while others use their whole
    # milter.timeout (tests/e2e/test_milter_burst.py), so Postfix must wait for two of them.
    timeout = 2 * int(config.milter.timeout) + 10
    default = "tempfail" if config.milter.on_error == "tempfail" else "accept"
    unix_note = ""
    if listen.startswith("unix:"):
        unix_note = OUTSIDE_NOTE if listen.startswith("unix:/") else INSIDE_NOTE
    return f"""# --- /etc/postfix/main.cf ---------------------------------------------------------
{unix_note}smtpd_milters = {listen}
non_smtpd_milters = $smtpd_milters
# What Postfix does while mailsift is unreachable: accept (unfiltered) or tempfail (451, retried).
milter_default_action = {default}
milter_protocol = 6
# The queue id ({{i}}) for mailsift's log lines, and the SASL login for outbound scoring.
milter_mail_macros = i {{auth_type}} {{auth_authen}} {{auth_author}} {{mail_addr}}
milter_end_of_data_macros = i
milter_connect_timeout = 10s
# Over twice milter.timeout ({config.milter.timeout:g}s): mailsift's own on_error decides, even
# for a message that first waited for a thread while others used their whole time.
milter_content_timeout = {timeout}s

# --- /etc/postfix/master.cf ----------------------------------------------------------
# Re-injection of released quarantine mail: loopback only, and without the milter, so a
# released message is not caught again. Address mappings stay on: the quarantine keeps the
# recipients as the client gave them, before virtual_alias_maps, so an alias must be expanded here.
{reinject} inet n - n - - smtpd
  -o smtpd_milters=
  -o non_smtpd_milters=
  -o mynetworks=127.0.0.0/8
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject

# Then: postfix check && postfix reload
"""
