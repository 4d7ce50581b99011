"""The Postfix side of the installation, derived from our config so the two always agree."""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
from dataclasses import dataclass

from mailsift.config import Config
from mailsift.host import is_loopback_name

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


# Debian puts postconf in /usr/sbin, which a non-root user's PATH may lack.
POSTCONF_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
POSTCONF_TIMEOUT_S = 10
MILTER_LISTS = ("smtpd_milters", "non_smtpd_milters")
FIRST_NOTE = (
    "# mailsift first, other milters (OpenDKIM, OpenDMARC) after it in the same line: it\n"
    "# removes every Authentication-Results in your name it is shown (a sender's are forged),\n"
    "# and Postfix shows each milter the headers that the milters before it added.\n")


class PostconfError(Exception):
    """postconf could not say what main.cf holds; the text says why, in postconf's words."""


@dataclass(frozen=True)
class MilterLists:
    """smtpd_milters and non_smtpd_milters as Postfix reads them now: one entry a milter."""

    smtpd: list[str]
    non_smtpd: list[str]


def read_milter_lists() -> MilterLists | None:
    """The milters main.cf names now, read with postconf (from /etc/postfix, or the directory
    MAIL_CONFIG names, as every Postfix command reads it); None without postconf. Variables
    ($smtpd_milters) are expanded: the lists are compared entry by entry."""
    postconf = shutil.which("postconf", path=POSTCONF_PATH)
    if postconf is None:
        return None
    directory = os.environ.get("MAIL_CONFIG") or _postconf(postconf, "-dh", ("config_directory",))[0]
    if not os.path.exists(os.path.join(directory, "main.cf")):
        # postconf would say so too, but a fatal error costs a second (msg_fatal sleeps before
        # it exits), on every configtest of a host that runs the milter for a Postfix elsewhere.
        raise PostconfError(f"no main.cf in {directory}")
    values = _postconf(postconf, "-xh", MILTER_LISTS)
    return MilterLists(milter_entries(values[0]), milter_entries(values[1]))


def _postconf(postconf: str, flags: str, names: tuple[str, ...]) -> list[str]:
    """postconf's values of `names`, one a line; PostconfError in its words when it gives none."""
    try:
        done = subprocess.run([postconf, flags, *names], capture_output=True, text=True,
                              timeout=POSTCONF_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostconfError(f"{postconf}: {exc}") from None
    values = done.stdout.splitlines()
    if done.returncode != 0 or len(values) != len(names):
        fatal = [line for line in done.stderr.splitlines() if "fatal:" in line]
        raise PostconfError((fatal or done.stderr.splitlines() or ["no output"])[-1].strip())
    return values


def milter_entries(value: str) -> list[str]:
    """A milter list split as Postfix splits it: at commas and white space, except inside the
    braces of an entry with its own settings (`{ inet:host:8891, connect_timeout=5s }`)."""
    entries: list[str] = []
    current, depth = "", 0
    for char in value:
        depth += (char == "{") - (char == "}" and depth > 0)
        if depth == 0 and (char == "," or char.isspace()):
            entries.append(current)
            current = ""
        else:
            current += char
    return [entry for entry in [*entries, current] if entry]


def milter_name(entry: str) -> str:
    """An entry's socket: the entry itself, or the first word inside its braces."""
    words = entry.strip("{}").replace(",", " ").split()
    return words[0] if words else ""


def same_milter(entry: str, ours: str) -> bool:
    """Whether a main.cf entry names our socket (`ours`, as milter_address gives it). A socket in
    the queue directory is ours by its full path too, and an inet port on a loopback name
    however the host is written (localhost, 127.0.0.1, [::1])."""
    name, ours = milter_address(milter_name(entry)).lower(), ours.lower()
    if name == ours:
        return True
    kind, _, rest = name.partition(":")
    our_kind, _, our_rest = ours.partition(":")
    if kind != "inet" or our_kind != "inet":
        return False
    host, _, port = rest.rpartition(":")
    our_host, _, our_port = our_rest.rpartition(":")
    return port == our_port and is_loopback_name(host) and is_loopback_name(our_host)


def mailsift_first(entries: list[str], ours: str) -> list[str]:
    """The list with our milter first and the others after it, in their order."""
    return [ours, *[entry for entry in entries if not same_milter(entry, ours)]]


def milters_before(entries: list[str], ours: str) -> list[str]:
    """The milters listed before ours ([] when ours is first or not listed): each one's
    Authentication-Results in our name reach us, and we remove them as forged."""
    for index, entry in enumerate(entries):
        if same_milter(entry, ours):
            return entries[:index]
    return []


def order_warnings(lists: MilterLists, ours: str) -> list[str]:
    """One line for each list of milters that main.cf names before mailsift (one for both
    smtpd_milters and non_smtpd_milters when they name the same), saying what it costs; the
    caller says how to fix it."""
    named: dict[tuple[str, ...], list[str]] = {}
    for name, entries in zip(MILTER_LISTS, (lists.smtpd, lists.non_smtpd), strict=True):
        before = tuple(milters_before(entries, ours))
        if before:
            named.setdefault(before, []).append(name)
    return [f"{' and '.join(names)} {'list' if len(names) > 1 else 'lists'} {', '.join(before)} "
            f"before mailsift ({ours}): mailsift removes the Authentication-Results in your name "
            f"that {'it adds' if len(before) == 1 else 'they add'}, as it cannot tell them from a "
            "sender's forged ones"
            for before, names in named.items()]


def _milter_lines(ours: str, lists: MilterLists | None) -> str:
    """The smtpd_milters and non_smtpd_milters lines: ours first, then the milters main.cf
    names now; non_smtpd_milters is $smtpd_milters unless main.cf gave it other milters."""
    if lists is None:
        return f"smtpd_milters = {ours}\nnon_smtpd_milters = $smtpd_milters"
    smtpd, non_smtpd = mailsift_first(lists.smtpd, ours), mailsift_first(lists.non_smtpd, ours)
    local = "$smtpd_milters" if non_smtpd == smtpd else ", ".join(non_smtpd)
    return f"smtpd_milters = {', '.join(smtpd)}\nnon_smtpd_milters = {local}"


def postfix_lines(config: Config, milters: MilterLists | None = None) -> str:
    """The main.cf and master.cf lines for `config`; with `milters` (main.cf's lists now), the
    milter lines keep those milters, after mailsift."""
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
{unix_note}{FIRST_NOTE}{_milter_lines(listen, milters)}
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
