"""Where messages to learn come from: files, directories, mbox files, Maildirs or standard input.

As with sa-learn, a path can be any of these and the kind is detected: a Maildir is a directory
with `cur/` and `new/`, an mbox is a file whose first line is an mbox From line (`From ` but
not the header `From : ...` in its obsolete form, `parse.is_mbox_line`) with another after a
blank line (`is_mbox`). Files inside a directory are single messages, unless `--mbox` says
they are mboxes (a folder of archived spam mailboxes, say, as sa-learn --mbox reads one).
Unreadable files are reported by name and counted, never fatal: one bad file must not stop
the training of 10,000.
"""

from __future__ import annotations

import functools
import gzip
import mailbox
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mailsift.analysis.headers import FIELD
from mailsift.analysis.parse import is_mbox_line, unquoted

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Item:
    """One message to learn. A file or mbox message is only named here and read where it is
    analysed (in a worker): a Maildir of 100,000 messages or a 2 GB mbox is then never held in
    memory at once, and the parent does not copy every message to the workers."""

    name: str  # what to call the message in reports: file path, or mbox path#index
    raw: bytes | None = None  # the message, when it came from standard input
    error: str = ""  # why there is no message to read
    path: Path | None = None  # a message file or an mbox, read by `content()`
    index: int | None = None  # which message of the mbox at `path`

    def content(self) -> tuple[bytes | None, str]:
        """(the message, "") or (None, why it cannot be read)."""
        if self.path is None:
            return self.raw, self.error
        try:
            if self.index is None:
                return self.path.read_bytes(), ""
            stat = self.path.stat()
            box = _opened_mbox(os.getpid(), self.path, stat.st_mtime_ns, stat.st_size)
            return unquoted(box.get_bytes(self.index)), ""
        except OSError as exc:
            return None, exc.strerror or str(exc)
        except (mailbox.Error, KeyError):
            return None, "no longer in the mbox (changed since it was listed)"


@functools.lru_cache(maxsize=4)
def _opened_mbox(pid: int, path: Path, mtime_ns: int, size: int) -> mailbox.mbox:
    """An mbox opened by this process, its table of contents read once per version of the file.

    Keyed by process, because a worker forked from the parent must not share the parent's open
    file and its position; and by modification time and size, because an mbox that changed
    (new mail appended, say) must be read afresh, not through offsets into the old one."""
    return mailbox.mbox(path, create=False)


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """An mbox holds several messages each after a `From ` line; a single message file may carry
    one such line too, so it only counts as an mbox when a second `From ` line follows a blank one.
    An empty file counts as an empty mbox: it is a spamtrap's mbox emptied after each learning,
    which `learn --spam /var/mail/spamtrap` named as "not a mail message", exit 2, on every
    night without spam (README: an empty folder or mbox is simply empty)."""
    try:
        with path.open("rb") as fh:
            head = fh.readline(4096)
            if not head:
                return True
            if not is_mbox_line(head):
                return False
            return any(is_mbox_line(line) for line in _after_blank_lines(fh))
    except OSError:
        return False


def _after_blank_lines(fh: object) -> Iterator[bytes]:
    blank = False
    for line in fh:  # type: ignore[attr-defined]
        if blank:
            yield line
        blank = line in (b"\n", b"\r\n")


def iter_messages(paths: list[str], force_mbox: bool = False, spool: Path | None = None) -> Iterator[Item]:
    """The messages of `paths`. Standard input (`-`) is one message, or with `force_mbox` an mbox
    (`zcat spam.mbox.gz | mailsift learn --spam --mbox -`), which is first copied into the
    folder `spool` so that it is read message by message like any mbox, never whole. So is a
    gzip-compressed file (`spam-2023.mbox.gz`, as archives are kept), decompressed there."""
    for spec in paths:
        if spec == "-":
            yield from _stdin(force_mbox, spool)
            continue
        path = Path(spec)
        if not path.exists():
            yield Item(str(path), error="no such file or directory")
        elif path.is_dir():
            yield from _directory(path, force_mbox, spool)
        elif not path.is_file():  # a FIFO or device: opening it could wait forever
            yield Item(str(path), error="not a regular file")
        elif spool is not None and _is_gzip(path):
            yield from _gunzipped(path, spool, force_mbox or None)
        elif force_mbox or is_mbox(path):
            yield from _mbox(path)
        else:
            yield _file(path)


def directory_files(path: Path, unreadable: Callable[[OSError], None] | None = None) -> Iterator[Path]:
    """The message files of a directory, in a stable order: a Maildir's cur/ and new/, else every
    regular file below it (a FIFO or socket in a mail folder is no message, and reading one
    could wait forever).

    A folder that cannot be listed goes to `unreadable` and the others are still listed; without
    it, the OSError is raised (os.walk would otherwise skip the folder in silence)."""
    def report(exc: OSError) -> None:
        if unreadable is None:
            raise exc
        unreadable(exc)

    if is_maildir(path):
        for sub in ("cur", "new"):
            try:
                names = sorted((path / sub).iterdir())
            except OSError as exc:
                report(exc)
                continue
            yield from (p for p in names if p.is_file())
        return
    for root, dirs, files in os.walk(path, onerror=report):
        dirs.sort()
        for name in sorted(_maildir_pruned(Path(root), dirs, files)):
            if (file := Path(root, name)).is_file():
                yield file


def _maildir_pruned(root: Path, dirs: list[str], files: list[str]) -> list[str]:
    """The files of `root` that may be messages, and `dirs` pruned in place, for a Maildir met
    in a folder walk (a folder of users' Maildirs): its tmp/ holds deliveries still being
    written, and its own files (dovecot-uidlist, dovecot.index*, subscriptions) are no mail,
    so only its cur/, new/ and subfolders (Maildir++ .Junk) are read."""
    if not is_maildir(root):
        return files
    dirs[:] = [name for name in dirs if name != "tmp"]
    return []


def _directory(path: Path, force_mbox: bool, spool: Path | None) -> Iterator[Item]:
    """A Maildir's files are single messages even with `force_mbox`: its layout says so. A folder
    that cannot be listed becomes an item that names it, as an unreadable file does."""
    errors: list[OSError] = []
    mboxes = force_mbox and not is_maildir(path)
    for file in directory_files(path, errors.append):
        if spool is not None and _is_gzip(file):
            yield from _gunzipped(file, spool, mboxes)
        else:
            yield from _mbox(file) if mboxes else (_file(file),)
    for exc in errors:
        yield Item(str(exc.filename or path), error=exc.strerror or str(exc))


def _file(path: Path) -> Item:
    return Item(str(path), path=path)


def _is_gzip(path: Path) -> bool:
    """A `.gz` file that is compressed. The name is asked first: opening every file of a folder
    for its first bytes cost ~5 µs a message, on the path that feeds bulk learning."""
    if path.suffix.lower() != ".gz":
        return False
    try:
        with path.open("rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False  # named as unreadable where the file is read


def _gunzipped(path: Path, spool: Path, mbox: bool | None) -> Iterator[Item]:
    """The messages of a gzip-compressed file, decompressed (streamed) into `spool`: an mbox when
    `mbox` says so, or when None and its content looks like one; else one message."""
    try:
        with gzip.open(path) as packed:
            plain = _spooled(packed, spool)
    except (OSError, EOFError) as exc:  # BadGzipFile is an OSError; EOFError: cut short
        yield Item(str(path), error=f"cannot decompress: {exc}")
        return
    if mbox or (mbox is None and is_mbox(plain)):
        yield from _mbox(plain, str(path))
    else:
        yield Item(str(path), path=plain)


def _stdin(force_mbox: bool, spool: Path | None) -> Iterator[Item]:
    if not force_mbox:
        yield Item("<stdin>", sys.stdin.buffer.read())
        return
    if spool is None:
        raise ValueError("an mbox on standard input needs a spool folder")
    yield from _mbox(_spooled(sys.stdin.buffer, spool), "<stdin>")


def _spooled(source: IO[bytes], spool: Path) -> Path:
    """A file of its own each time, so a second `-` (or archive) cannot overwrite what the first
    one listed."""
    with tempfile.NamedTemporaryFile("wb", dir=spool, suffix=".mbox", delete=False) as out:
        shutil.copyfileobj(source, out)
    return Path(out.name)


def _mbox(path: Path, name: str = "") -> Iterator[Item]:
    """One item per message, called `name#N` (`name` defaults to the path); counting them reads
    where each message starts, not the messages."""
    name = name or str(path)
    try:
        box = mailbox.mbox(path, create=False)
        keys = box.keys()
        box.close()
        size = path.stat().st_size
    except OSError as exc:
        yield Item(name, error=exc.strerror or str(exc))
        return
    except mailbox.Error as exc:
        yield Item(name, error=f"cannot read as mbox: {exc}")
        return
    if not keys and size:  # an empty mbox is an emptied folder, not a mistake
        yield Item(name, error='not an mbox (no line starts with "From ")')
    for key in keys:
        yield Item(f"{name}#{key}", path=path, index=key)


def looks_like_mail(raw: bytes) -> bool:
    """A file counts as mail when it starts with a header field (after an optional mbox line),
    as analyse reads one: white space before the colon is the obsolete form of a field."""
    head = raw[:4096]
    if is_mbox_line(head):
        head = head.partition(b"\n")[2]
    return FIELD.match(head) is not None
