"""Reading secrets: from a file named in the config, else from the environment — never from the
config itself (configs get pasted into tickets) nor the command line (visible in `ps`)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from mailsift.ownership import user_name

REDIS_PASSWORD_ENV = "MAILSIFT_REDIS_PASSWORD"
# Where a URL starts: its scheme and the slashes after it (mistyped as one or none, too).
URL_START = re.compile(r"\b[a-z][a-z0-9+.-]*:(/*)", re.IGNORECASE)
QUOTES = "'\""
SERVICE_USER = "mailsift"  # User= of the units in systemd/
SERVICE_GROUP = "mailsift"  # Group= of the units in systemd/
# EnvironmentFile= of the units in systemd/, where README has the Redis password written
# (MAILSIFT_REDIS_PASSWORD). No config key names it: the units read it there whatever the config.
UNITS_ENVIRONMENT_FILE = "/etc/mailsift/secrets.env"
# What opens a secret file to more than the services: other users reading or changing it, or its
# group changing it (README installs them `install -m 0640 -o root -g mailsift`).
OPEN_BITS = stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP


@dataclass(frozen=True)
class Services:
    """Who the services run as on this host, as far as a secret file's mode counts: `user`
    reads the files (None: a uid without a name), `group` is the group to give them (None: no
    group that exists here would do)."""

    user: pwd.struct_passwd | None
    group: grp.struct_group | None
    # The mode that closes a file to all but its readers: 0640 lets the services' group read a
    # file root owns, as README installs the ones the services read.
    mode: int = 0o640


class SecretError(Exception):
    """The secret file named in the config cannot be read; the text names it and why."""


def read_secret(file: str, env: str, what: str) -> str | None:
    """The secret in `file` (stripped), or `$env` when no file is named; None when neither is set."""
    if file:
        try:
            return Path(file).read_text().strip() or None
        except OSError as exc:
            raise SecretError(f"{file}: cannot read the {what}: {exc.strerror}") from None
    return os.environ.get(env) or None


def services() -> Services:
    """Who reads the secret files on this host. The units run as User=mailsift and
    Group=mailsift, which a package install creates; on a host without that user (the quick
    start, `make run`, runs as whoever starts it) it is the user running this, as README runs
    configtest as the services' user, root included. A fix command may name only a group that
    exists here: `chown root:mailsift` fails where there is no such group."""
    user = _passwd_entry(SERVICE_USER)
    units = user is not None
    if not units:
        user = _passwd_entry(os.geteuid())
    group = _group_entry(SERVICE_GROUP) if units or user is None else None
    if group is None and user is not None:
        group = _group_entry(user.pw_gid)
    return Services(user, group)


def systemd_reader() -> Services:
    """Who reads the units' EnvironmentFile: systemd itself, as root, before it starts a service
    as its user; the services never read the file, so no group needs it and 0600 (README's
    mode for secrets.env) closes it: 0640 left a file of another group (root:adm) readable by
    that group's members."""
    return Services(_passwd_entry(0), _group_entry(0), 0o600)


def _passwd_entry(who: str | int) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(who) if isinstance(who, str) else pwd.getpwuid(who)
    except KeyError:
        return None


def _group_entry(which: str | int) -> grp.struct_group | None:
    try:
        return grp.getgrnam(which) if isinstance(which, str) else grp.getgrgid(which)
    except KeyError:
        return None


def exposure(file: str, reader: Services) -> str | None:
    """What opens the secret in `file` to others, with the command that closes it; None when
    nothing does, or when it is no file there (what reads it says so).

    The file's own mode counts, not its folders': a folder closed to others today (0750) is one
    `chmod` or package update away from being opened, and 0640 is what README installs. A
    secret other users can read lets any local user (a hosting customer's shell, a web app's
    user) use the Redis or the DNS list, or forge a review UI session with the session secret;
    one they or its group can change lets them replace it."""
    found = _stat(file)
    if found is None or not stat.S_ISREG(found.st_mode) or not found.st_mode & OPEN_BITS:
        return None
    group = _group_name(found.st_gid)
    return (f"{_mode_text(file, found, group)}: {_who_may(stat.S_IMODE(found.st_mode), group)}; "
            f"fix: {_closing_command(file, found, reader)}")


def writable_by_others(path: str) -> str | None:
    """What lets every local user change a file or folder mailsift takes its settings from
    (the config, rule files and the folders of them a key names), with the command that
    closes it; None when nothing does. Whoever changes them changes scores, or adds a welcome
    entry for their own spam. Only write counts: such files are no secret, and packages install
    them readable by all. The mode bits alone count, not ACLs."""
    found = _stat(path)
    if found is None or not found.st_mode & stat.S_IWOTH:
        return None
    if stat.S_ISDIR(found.st_mode):
        what = "add or replace files in it"
    elif stat.S_ISREG(found.st_mode):
        what = "change it"
    else:
        return None
    return (f"{_mode_text(path, found, _group_name(found.st_gid))}: other local users can {what}; "
            f"fix: chmod o-w {shlex.quote(path)}")


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _mode_text(path: str, found: os.stat_result, group: str) -> str:
    return f"{path} is mode {stat.S_IMODE(found.st_mode):04o} ({user_name(found.st_uid)}:{group})"


def _who_may(mode: int, group: str) -> str:
    others = " and ".join(verb for bit, verb in ((stat.S_IROTH, "read"), (stat.S_IWOTH, "change"))
                          if mode & bit)
    said = [f"other local users can {others} it"] if others else []
    return ", ".join(said + ([f"group {group} can change it"] if mode & stat.S_IWGRP else []))


def _closing_command(file: str, found: os.stat_result, reader: Services) -> str:
    """chmod to the reader's mode (0640; 0600 for what root alone reads), and before it a chown
    to root and the services' group unless they read the file as its owner or group already: a
    0644 root:root file is read by the services as one of the "others", and a chmod alone would
    lock them out of their Redis password. Without a group that exists here, the file keeps its
    group, and a user other than its owner is made it."""
    chmod = f"chmod {reader.mode:04o} {shlex.quote(file)}"
    user = reader.user
    if user is None or _reads_as_owner_or_group(reader, user, found):
        return chmod
    if reader.group is not None:
        return f"chown root:{reader.group.gr_name} {shlex.quote(file)} && {chmod}"
    return f"chown {user.pw_name} {shlex.quote(file)} && {chmod}"


def _reads_as_owner_or_group(reader: Services, user: pwd.struct_passwd, found: os.stat_result) -> bool:
    """Whether `user` reads the file once it is 0640: as root, its owner, or one of its group
    (the user's own group, the services' group, or a member of the file's group)."""
    if user.pw_uid in (0, found.st_uid) or found.st_gid == user.pw_gid:
        return True
    if reader.group is not None and found.st_gid == reader.group.gr_gid:
        return True
    group = _group_entry(found.st_gid)
    return group is not None and user.pw_name in group.gr_mem


def _group_name(gid: int) -> str:
    entry = _group_entry(gid)
    return entry.gr_name if entry is not None else str(gid)


def masked_urls(text: str) -> str:
    """`text` with the password of each URL in it shown as ***. A Redis URL may still carry one
    (redis://:PASSWORD@host, as redis-py reads it), and a message quoting the URL, such as a
    config error, goes to the log, the terminal and the tickets pasted from them.

    The password is all between the user's colon (or, without a user, the slashes) and the
    URL's last @: a password may hold any sign, and those a URL parser stops at (a space, #,
    /, ?, @) left the rest of it in view ('redis://:pass word#@host' was shown whole). A URL
    quoted in the text (a config error's repr) runs to its closing quote, one that is not
    quoted to the next space; what follows an @ with neither slashes nor a colon before it
    (mailto:jane@example.org) is an address, not a password, and stays."""
    parts: list[str] = []
    done = 0
    for start in URL_START.finditer(text):
        if start.start() < done:
            continue
        end = _url_end(text, start.start(), start.end())
        userinfo, at, rest = text[start.end():end].rpartition("@")
        if not at or not (start.group(1) or ":" in userinfo):
            continue
        user = userinfo.partition(":")[0] + ":" if ":" in userinfo else ""
        parts += [text[done:start.end()], user, "***@", rest]
        done = end
    return "".join(parts) + text[done:]


def _url_end(text: str, start: int, after: int) -> int:
    """Where the URL that starts at `start` ends: at the quote that opened it (a repr escapes
    any inside it with a backslash), else at the first space or quote."""
    quote = text[start - 1] if start and text[start - 1] in QUOTES else ""
    at = after
    while at < len(text):
        char = text[at]
        if quote and char == "\\":
            at += 2
            continue
        if char == quote or (not quote and (char.isspace() or char in QUOTES)):
            return at
        at += 1
    return len(text)
