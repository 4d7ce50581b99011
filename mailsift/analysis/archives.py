"""Archives: the names of the files inside an attached archive, read within fixed limits.

Mail gateways judge the attachment's own name, so malware travels as `invoice.zip` holding
`invoice.js`, a shortcut, a disk image or a phishing page, often in a second zip or encrypted with
the password written in the message. A zip's central directory at the end of the file names every
member without unpacking anything, so the names cost only a read of that directory.

The stdlib `zipfile` reads it: names in code page 437 or UTF-8, encryption flags, ZIP64 and a zip
appended to another are its job, kept up by people who read the format's edge cases. It parses
the whole directory before it answers (100,000 members took 0.3 s) and has no cap of its own, so
the bytes handed to it are wrapped to refuse any read longer than MAX_DIRECTORY: a directory
bigger than that is never parsed, and the archive is recorded as too big to list. zipfile lists
all or nothing: an archive it cannot read (truncated, damaged, lying offsets) is recorded as
unreadable with no names; malware that no unpacker can open cannot run either.

A member is decompressed only to look inside a zip within the zip, one level deep, and only up to
NESTED_BYTES per message: deflate expands up to about 1,000 times, so without that cap a
1 MiB attachment could cost a gigabyte of output. An inner zip that declares itself larger than
what is left of the cap is not read (its directory is at its end); one that lies is cut off at
the cap. Only stored and deflated inner zips are read: zipfile decompresses bzip2 and LZMA chunks
without an output limit, and either expands a few KiB of zeros to gigabytes.

RAR, 7z and the other compressed formats are recognised by their first bytes and not read: the
stdlib has no reader, 7z keeps its names in a compressed header, and a new dependency would be
one more parser of hostile input that our limits do not bound. A gzip file names its one member
in its header, which costs nothing to read; the gzip module skips that name without returning
it, so the header's few fields are read here. A tar inside gzip would need decompressing up to
each member's header, so it is recognised as gzip with that one name.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mailsift.analysis.model import Archive

# Members listed per attachment, nested ones included. Real archives mailed by people rarely hold
# more than a few hundred files; malware holds one or two.
MAX_MEMBERS = 1000
# Bytes of central directory zipfile may parse per zip. A record takes 46 bytes plus its name
# and extra fields (about 50 to 100 bytes in practice), so 128 KiB lists about 1,300 to 2,800
# members in 2 to 5 ms; 100,000 members (5.5 MB) took zipfile 0.3 s.
MAX_DIRECTORY = 128 * 1024
# Bytes decompressed per message to read zips inside zips. Malware's inner zips are a few KiB to
# a few hundred KiB; inflating 1 MiB takes a few milliseconds.
NESTED_BYTES = 1024 * 1024
# Bytes of a name read from a gzip header; real names are short.
MAX_GZIP_NAME = 1024

# Archive kinds as the first-bytes sniffer (filetype) names them. Office and OpenDocument files
# and e-books are zips too, but are sniffed as their own types and are documents, not archives.
KINDS = {
    "application/zip": "zip",
    "application/gzip": "gzip",
    "application/x-rar-compressed": "rar",
    "application/x-7z-compressed": "7z",
    "application/x-tar": "tar",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/vnd.ms-cab-compressed": "cab",
    "application/x-compress": "compress",
    "application/x-lzip": "lzip",
}

# What zipfile raises on hostile input, besides the refusal below: a damaged structure
# (BadZipFile, struct.error, EOFError, OSError), a name that is not the UTF-8 it claims
# (UnicodeDecodeError, a ValueError), an unknown compression or version (NotImplementedError),
# encryption (RuntimeError), a bad compressed stream (zlib.error, lzma.LZMAError).
UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, EOFError, OSError, ValueError,
              NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError)
FLAG_ENCRYPTED = 0x1
INFLATED = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
GZIP_FEXTRA, GZIP_FNAME = 0x4, 0x8
GZIP_HEADER = 10


@dataclass(slots=True)
class Budget:
    """Bytes still allowed to be decompressed for this message's nested archives."""

    left: int = NESTED_BYTES


class _DirectoryTooBig(Exception):
    """zipfile asked for more than MAX_DIRECTORY bytes at once while listing."""


class _CappedBytes(io.BytesIO):
    """An archive's bytes that refuse, while `listing`, any read longer than MAX_DIRECTORY.

    zipfile reads the central directory in one read of the size the end record declares; its
    other reads while listing are the end records, at most 64 KiB and 22 bytes. A read is
    measured by what it would return, so a lying size on a small file is read (and found
    truncated) rather than taken for a big directory.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)
        self.listing = True

    def read(self, size: int | None = -1) -> bytes:
        available = self.size - self.tell()
        wanted = available if size is None or size < 0 else min(size, available)
        if self.listing and wanted > MAX_DIRECTORY:
            raise _DirectoryTooBig
        return super().read(size)


def read(data: bytes, sniffed_type: str, budget: Budget) -> Archive | None:
    """The Archive in `data`, or None when the first bytes are not an archive's."""
    kind = KINDS.get(sniffed_type)
    if kind is None:
        return None
    archive = Archive(kind)
    if kind == "zip":
        _read_zip(data, archive, "", budget)
    elif kind == "gzip":
        archive.members = _gzip_name(data)
    return archive


@contextmanager
def _listing(archive: Archive) -> Iterator[None]:
    """Turn what zipfile raises on hostile or oversized input into facts on `archive`."""
    try:
        yield
    except _DirectoryTooBig:
        archive.too_big = True
    except UNREADABLE:
        archive.unreadable = True


def _read_zip(data: bytes, archive: Archive, prefix: str, budget: Budget) -> None:
    """Add the zip's member names to `archive`; with no prefix, also those of zips inside it."""
    with _listing(archive):
        source = _CappedBytes(data)
        with zipfile.ZipFile(source) as zipped:
            source.listing = False
            members = zipped.infolist()[:MAX_MEMBERS - len(archive.members)]
            for info in members:
                archive.members.append(prefix + info.filename)
                archive.encrypted |= bool(info.flag_bits & FLAG_ENCRYPTED)
            if prefix:
                return
            for info in members:
                if _is_inner_zip(info) and info.file_size <= budget.left:
                    _read_inner(zipped, info, archive, budget)


def _is_inner_zip(info: zipfile.ZipInfo) -> bool:
    return (info.filename.lower().endswith(".zip") and not info.flag_bits & FLAG_ENCRYPTED
            and info.compress_type in INFLATED)


def _read_inner(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Archive, budget: Budget) -> None:
    """List the zip stored as member `info`, whose declared size fits in what is left of the budget.

    The declared size is spent before inflating: zipfile produces no more than that even when
    the data inflates to more, and checks the CRC at the end of the member, so a bomb that lies
    about its size costs that much and is then found damaged.
    """
    budget.left -= info.file_size
    with _listing(archive):
        with zipped.open(info) as member:
            inner = member.read(info.file_size)
        _read_zip(inner, archive, f"{info.filename}/", budget)


def _gzip_name(data: bytes) -> list[str]:
    """The original file name a gzip header carries (RFC 1952 FNAME), if any."""
    if len(data) < GZIP_HEADER:
        return []
    flags, pos = data[3], GZIP_HEADER
    if flags & GZIP_FEXTRA:
        pos += 2 + int.from_bytes(data[pos:pos + 2], "little")
    if not flags & GZIP_FNAME:
        return []
    name, nul, _ = data[pos:pos + MAX_GZIP_NAME].partition(b"\0")
    return [name.decode("latin-1")] if nul and name else []
