"""Archives: the names of the files inside an attached archive, read within fixed limits.

Mail gateways judge the attachment's own name, so malware travels as `invoice.zip` holding
`invoice.js`, a shortcut, a disk image or a phishing page, often in a second zip or encrypted with
the password written in the message. A zip's central directory at the end of the file names every
member without unpacking anything, so the names cost only a read of that directory.

The stdlib `zipfile` is not used to list them: it parses the whole central directory before it
answers (100,000 members took 0.4 s) and offers no way to stop at a cap. The directory's fixed
records are read here instead, at most MAX_MEMBERS of them, each bounds-checked against the bytes
we have, so a truncated, corrupt or lying archive yields the names read so far and never raises.

A member is decompressed only to look inside a zip within the zip, one level deep, and only up to
NESTED_BYTES per message: deflate expands up to about 1,000 times, so without that cap a
1 MiB attachment could cost a gigabyte of output. An inner zip larger than what is left of the
cap is not read (its directory is at its end).

RAR, 7z and the other compressed formats are recognised by their first bytes and not read: the
stdlib has no reader, 7z keeps its names in a compressed header, and a new dependency would be
one more parser of hostile input that our limits do not bound. A gzip file names its one member
in its header, which costs nothing to read. A tar inside gzip would need decompressing up to
each member's header, so it is recognised as gzip with that one name.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from mailsift.analysis.model import Archive

# Members listed per attachment, nested ones included. Real archives mailed by people rarely hold
# more than a few hundred files; malware holds one or two.
MAX_MEMBERS = 1000
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

END = b"PK\x05\x06"
END_FORMAT = struct.Struct("<4s4H2LH")  # signature, disks, entries, directory size and offset
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_LOCATOR_FORMAT = struct.Struct("<4sLQL")  # signature, disk, offset of the ZIP64 end record
ZIP64_END = b"PK\x06\x06"
ZIP64_END_FORMAT = struct.Struct("<4sQ2H2L4Q")  # ..., entries, directory size, directory offset
CENTRAL = b"PK\x01\x02"
CENTRAL_FORMAT = struct.Struct("<4s6H3L5HLL")  # one directory record, before its name
LOCAL = b"PK\x03\x04"
LOCAL_FORMAT = struct.Struct("<4s5H3L2H")  # a member's own header, before its data
MAX_COMMENT = 0xFFFF  # the end record is followed by a comment of at most this many bytes
FLAG_ENCRYPTED = 0x1
FLAG_UTF8 = 0x800
STORED, DEFLATED = 0, 8
GZIP_FEXTRA, GZIP_FNAME = 0x4, 0x8
GZIP_HEADER = 10


@dataclass(slots=True)
class Budget:
    """Bytes still allowed to be decompressed for this message's nested archives."""

    left: int = NESTED_BYTES


@dataclass(slots=True)
class _Member:
    name: str
    encrypted: bool
    method: int
    compressed_size: int
    local_offset: int


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


def _read_zip(data: bytes, archive: Archive, prefix: str, budget: Budget) -> None:
    """Add the zip's member names to `archive`; with no prefix, also those of zips inside it."""
    for member in _directory(data, MAX_MEMBERS - len(archive.members)):
        archive.members.append(prefix + member.name)
        archive.encrypted |= member.encrypted
        if not prefix and member.name.lower().endswith(".zip") and not member.encrypted:
            inner = _inflate(data, member, budget)
            if inner.startswith(LOCAL):
                _read_zip(inner, archive, f"{member.name}/", budget)


def _directory(data: bytes, limit: int) -> list[_Member]:
    """Up to `limit` records of the central directory, as far as they are intact."""
    found = _directory_start(data)
    if found is None:
        return []
    start, shift = found
    members: list[_Member] = []
    pos = start
    while len(members) < limit and data[pos:pos + 4] == CENTRAL:
        record = data[pos:pos + CENTRAL_FORMAT.size]
        if len(record) < CENTRAL_FORMAT.size:
            break
        (_, _, _, flags, method, _, _, _, compressed, _, name_len, extra_len, comment_len,
         _, _, _, offset) = CENTRAL_FORMAT.unpack(record)
        raw_name = data[pos + CENTRAL_FORMAT.size:pos + CENTRAL_FORMAT.size + name_len]
        if len(raw_name) < name_len:
            break
        # Without the UTF-8 flag the name is in the DOS code page, as zipfile and Windows read it.
        name = raw_name.decode("utf-8", errors="replace") if flags & FLAG_UTF8 else raw_name.decode("cp437")
        members.append(_Member(name, bool(flags & FLAG_ENCRYPTED), method, compressed, offset + shift))
        pos += CENTRAL_FORMAT.size + name_len + extra_len + comment_len
    return members


def _directory_start(data: bytes) -> tuple[int, int] | None:
    """Where the central directory starts, and how far the archive is shifted within `data`.

    A zip appended to another (a decoy first, the payload last, for unpackers that show the last)
    counts its offsets from its own start: its directory then ends where its end record starts,
    not where its offset says.
    """
    end = data.rfind(END, max(0, len(data) - END_FORMAT.size - MAX_COMMENT))
    if end < 0 or len(data) - end < END_FORMAT.size:
        return None
    _, _, _, _, _, size, offset, _ = END_FORMAT.unpack_from(data, end)
    record_end = end
    if 0xFFFFFFFF in (size, offset):
        zip64 = _zip64_directory(data, end)
        if zip64 is None:
            return None
        size, offset, record_end = zip64
    shift = record_end - size - offset
    if shift > 0 and data[offset + shift:offset + shift + 4] == CENTRAL:
        return offset + shift, shift
    if data[offset:offset + 4] == CENTRAL:
        return offset, 0
    return None


def _zip64_directory(data: bytes, end: int) -> tuple[int, int, int] | None:
    """Size and offset of a ZIP64 archive's directory, and where its ZIP64 end record starts."""
    locator = end - ZIP64_LOCATOR_FORMAT.size
    if locator < 0 or data[locator:locator + 4] != ZIP64_LOCATOR:
        return None
    record = locator - ZIP64_END_FORMAT.size
    if record < 0 or data[record:record + 4] != ZIP64_END:
        return None
    *_, size, offset = ZIP64_END_FORMAT.unpack_from(data, record)
    return size, offset, record


def _inflate(data: bytes, member: _Member, budget: Budget) -> bytes:
    """The member's first bytes, within what is left of the budget; b'' if it cannot be read."""
    header = data[member.local_offset:member.local_offset + LOCAL_FORMAT.size]
    if budget.left <= 0 or len(header) < LOCAL_FORMAT.size or not header.startswith(LOCAL):
        return b""
    *_, name_len, extra_len = LOCAL_FORMAT.unpack(header)
    start = member.local_offset + LOCAL_FORMAT.size + name_len + extra_len
    # The directory's size is 0xFFFFFFFF in ZIP64 and may lie: the budget bounds the output anyway.
    stored = data[start:start + member.compressed_size]
    if member.method == STORED:
        out = stored[:budget.left]
    elif member.method == DEFLATED:
        try:
            out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(stored, budget.left)
        except zlib.error:
            out = b""
    else:
        return b""
    budget.left -= len(out)
    return out


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
