"""Files and folders mailsift creates belong to the owner of the folder they are created in.

The milter runs as a user of its own (systemd: `User=mailsift`, `StateDirectory=mailsift`), while
an administrator runs `mailsift learn` or `mailsift quarantine` as root, often before the milter
ever started: training first is the usual way in. A Bayes store or quarantine index that root
creates is root's, and the milter can then not even open it (SQLite: "attempt to write a
readonly database"): Bayes would stay off, and quarantining would fail, until someone chowns the
files. So, as root, what mailsift creates takes its folder's owner, as SQLite itself does for a
database's -wal and -shm files.

Whatever the umask of whoever creates them, other users get no access to the databases either:
a Bayes store holds the words of the site's mail, a quarantine index its senders and subjects,
and an administrator's shell (umask 022) made both readable by every local user.
"""

from __future__ import annotations

import errno
import os
import pwd
import sqlite3
from contextlib import suppress
from pathlib import Path


def adopt_folder_owner(path: Path) -> None:
    """As root, give `path` the owner and group of its folder when they differ."""
    if os.geteuid() != 0:
        return
    folder, own = path.parent.stat(), path.stat()
    if (own.st_uid, own.st_gid) != (folder.st_uid, folder.st_gid):
        os.chown(path, folder.st_uid, folder.st_gid)


def settle_new_file(path: Path) -> None:
    """A database mailsift just created: its folder's owner, and no access for other users.
    Before SQLite makes the -wal and -shm files, which take the database's owner and mode."""
    adopt_folder_owner(path)
    mode = path.stat().st_mode
    if mode & 0o007:
        os.chmod(path, mode & 0o770)


def make_folders(path: Path, mode: int = 0o777) -> None:
    """`mkdir -p`: each folder created takes the owner of the folder it is created in."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile, and owns it
            folder.mkdir(mode=mode)
            adopt_folder_owner(folder)
    target = missing[0] if missing else path
    if not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target))


def access_hint(path: Path, exc: sqlite3.Error) -> str:
    """For SQLite's "attempt to write a readonly database" or "unable to open database file",
    whose the file is: mostly one that root created before files took their folder's owner
    (readable by all then, closed to other users since), which the milter's user cannot use."""
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_READONLY,
                                                          sqlite3.SQLITE_CANTOPEN):
        return ""
    return owner_hint(path)


def owner_hint(path: Path) -> str:
    """Whose the file is, when it is not this process's user ("" when it is, or is gone)."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return ""
    if owner == os.geteuid():
        return ""
    return f" (the file belongs to {user_name(owner)}; this process runs as {user_name(os.geteuid())})"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
