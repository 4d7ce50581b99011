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

A member is decompressed only to look inside a zip within the zip, one level deep, and only up
to NESTED_BYTES per message (and the reserves below): deflate expands up to about 1,000 times,
so without that cap a 1 MiB attachment could cost a gigabyte of output. An inner zip that
declares itself larger than what is left of the cap is not read (its directory is at its end);
one that lies is cut off at the cap. Each inner zip costs at least INNER_ZIP_COST, what opening
one takes, so a zip of 999 empty zips opens 128 of them, not all. Only stored and deflated inner
zips are read: zipfile decompresses bzip2 and LZMA chunks without an output limit, and either
expands a few KiB of zeros to gigabytes. An inner zip left closed for any of these reasons is
named on the archive as unopened: its files escape the rules as a damaged zip's do, and making a
zip too big to open is no harder than damaging one. So is a zip inside the inner zip: it is
never opened, and nesting a zip once more is no harder either. A zip inside a tar is listed the
same way, one level deep: its bytes are in the tar's (for a compressed tar, in what was
decompressed), so nothing is inflated and it costs one of the message's TAR_ZIPS, not bytes of
the allowance; a tarball holding a zip is judged by the zip's files. One cut off by the end of a
plain tar, or past TAR_ZIPS, is unopened, and so is a zip inside it; one the allowance's cut of
a compressed tar runs through is not named, as the names after the cut are not.

A tar has no directory: each member's name is in a 512-byte header in front of its content. The
stdlib `tarfile` reads a header, then seeks past the content to the next, so what it reads is
the listing: up to MAX_MEMBERS headers, as many names as a zip gives (a tar of 300 source files
is ordinary), and at most TAR_HEADERS bytes of them, then the archive is recorded as holding too
many, or as too big, with the names read so far. tarfile takes 16 us a header (zipfile 2), so
1,000 headers cost 20 ms; the worst, 1.5 MiB of pax records full of 20-digit runs, 75 ms a tar.
A tar's headers are read from its own bytes, so a message costs at most that per 1.5 MiB of
plain tar plus its NESTED_BYTES and reserves of compressed ones: at the default scan.max_bytes
(1 MiB), 40 ms for the worst plain tar that fits (an ordinary message of that size takes 11) and
50 ms for a .tar.gz of 1 MiB of such headers, 14 more for the reserves' (below). Pax records
that tarfile would parse in quadratic time are refused first (see MAX_DIGITS), and a message's
tars may hold PAX_RECORDS records in all: tiny ones cost tarfile 2 us each, and 84,000 fit in a
197 KB .tar.gz (189 ms; 11 ms now). A tar inside gzip or xz (.tar.gz, .tgz, .tar.xz) must be
decompressed up to each header, so it is decompressed only within what is left of the message's
NESTED_BYTES, as a zip inside a zip is: a gzip bomb costs 3 ms. One whose headers go on past
that is recorded as too big only when it is a bomb (BOMB_RATIO); an ordinary tarball of logs
unpacks far past 1 MiB and is judged by the names read up to there. Whether a gzip or xz file
holds a tar is decided on its first 512 bytes decompressed (tarfile's header checksum, 20 us);
any other gzip gives the name in its header (below), also once the allowance and its reserves
are spent: a tar found then is flagged as left unread for that (below). bzip2 (.tar.bz2) is
recognised but not read: its decoder works in blocks of up to 900 kB, so even the first 512
bytes cost a whole block (27 ms on incompressible data, 70 ms for 1 MiB, where gzip takes under
1 ms), a price every bzip2 attachment would pay whatever the allowance, and tar.bz2 is rare in
mail.

The allowance is the message's, and an archive could spend it cheaply and unflagged for those
after it: a 14 KB zip of 128 empty zips opens them all at INNER_ZIP_COST each, an 8 KB .tgz of
padding that compresses 240 times unpacks 1 MiB and is no bomb. A .tgz or a zip inside a zip
after it, holding invoice.exe, was then not read, and no rule named the program. So an archive
met with less than RESERVE left adds RESERVE to the allowance, RESERVES times a message at most:
each archive unpacks a reserve at least (the names at the start of a tar, an inner zip of up to
32 KiB), what it leaves stays for the next, and a message unpacks at most NESTED_BYTES and
RESERVES reserves, 1.25 MiB. The costliest reserve is 32 KiB of the slowest tar headers, 1.7 ms
(an inner zip of 366 names: 1.2), so eight add 14 ms to the allowance's 53. Once they are spent
too, what an archive cannot unpack is flagged: an inner zip is unopened, as before, and a
compressed tar met with nothing left, or whose headers go on past less than RESERVE, is left
unread for the spent allowance (Archive.allowance_spent). It is not called too big: read alone,
such a .tgz (of 3 KB, say) is listed in full, and an admin told "too big to list" looked for a
size that was not there. Ordinary mail does not get there: an archive past the allowance spends
a reserve when it unpacks past one (small ones share one), so the first flagged is a message's
tenth big tarball. Two other ways were weighed and left. Flagging an archive met once the
allowance is spent flags the second of two ordinary tarballs of logs, each unpacking past 1 MiB.
Capping each attachment's share (half, say) leaves an ordinary inner zip of 600 KB unopened, and
as many spending attachments as shares get past it. Reserves do not help against padding before
the program in one archive: the first is cut at the allowance as before, where padding that
compresses less than BOMB_RATIO hides what follows (2 KiB of it per MiB), and one read from a
reserve is cut after RESERVE, where even zeros show less (gzip 280 times, xz 40: `consumed`
counts whole UNPACK_CHUNKs), so any padding of that size hides what follows it there. Catching
padding would take a lower ratio, which tarballs of logs reach as .tar.xz (250 times), or
unpacking further, which costs what the allowance bounds.

RAR, 7z and the other compressed formats are recognised by their first bytes and not read: the
stdlib has no reader, 7z keeps its names in a compressed header, and a new dependency would be
one more parser of hostile input that our limits do not bound. A gzip file names its one member
in its header, which costs nothing to read; the gzip module skips that name without returning
it, so the header's few fields are read here.

A member whose path leaves the folder it is unpacked into (`../../Startup/run.exe`, `/etc/cron.d/x`,
or one starting with a drive letter) is noted for the attachment rules: a "zip slip". So is a tar
link whose target leaves it (`cron -> /etc/cron.d`) once a later member is written through the
link (`cron/job`), which lands there; the link alone writes nothing (see _Links).
"""

from __future__ import annotations

import io
import lzma
import posixpath
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from mailsift.analysis.model import Archive

# Members listed per attachment, nested ones included. Real archives mailed by people rarely hold
# more than a few hundred files; malware holds one or two, or hides one behind this many decoys,
# so an archive holding more is noted as not listed in full (Archive.too_many), a tar too.
MAX_MEMBERS = 1000
# Bytes of central directory zipfile may parse per zip. A record takes 46 bytes plus its name
# and extra fields (about 50 to 100 bytes in practice), so 128 KiB lists about 1,300 to 2,800
# members in 2 to 5 ms; 100,000 members (5.5 MB) took zipfile 0.3 s.
MAX_DIRECTORY = 128 * 1024
# Bytes tarfile may read in all per tar: its headers, 512 bytes a member, 1,536 with a long
# name in pax records (tarfile, GNU tar --format=posix and bsdtar write a header, the records'
# block and the member's header), so MAX_MEMBERS of those. At 16 us a header, 1,000 members are
# listed in about 20 ms; the worst (TAR_COST) is measured in the tests.
TAR_HEADERS = MAX_MEMBERS * 3 * tarfile.BLOCKSIZE
# Bytes decompressed per message to read zips inside zips and tars inside gzip or xz, the reserves
# (RESERVE) aside. Malware's inner zips are a few KiB to a few hundred KiB; inflating 1 MiB takes
# a few milliseconds.
NESTED_BYTES = 1024 * 1024
# Bytes of that allowance an inner zip costs at the least, however small it says it is: zipfile
# takes about 20 us to open one, as long as inflating 8 KiB. Charged only its declared size, an
# empty zip (22 bytes) cost next to nothing, so a zip of 999 of them (111 KB) opened all 999 in
# 22 ms, and a message of such zips took 130 ms; now at most 128 are opened per message.
INNER_ZIP_COST = 8 * 1024
# Zips inside tars listed per message, as many as INNER_ZIP_COST lets zips inside zips be. Their
# bytes are the tar's, already there (or paid for when a compressed tar was unpacked): listing
# one inflates nothing, so it is counted, not charged bytes. Charged bytes, a .tgz of a 1.9 MB
# log and a zip, or of a 500 KB PDF and a 400 KB zip, had spent the allowance on unpacking and
# left the zip unopened, which scored ATTACH_ARCHIVE_UNLISTED on ordinary mail.
TAR_ZIPS = NESTED_BYTES // INNER_ZIP_COST
# What an archive may unpack when the message's archives before it left less than this of
# NESTED_BYTES: the allowance is topped up by this much, RESERVES times a message at most (see
# the docstring). It opens an inner zip of up to 32 KiB (a zipped script or shortcut is a few
# KiB) or reads the names at the start of a compressed tar; the worst, tar headers, cost 1.7 ms.
RESERVE = 32 * 1024
# Top-ups of RESERVE per message. Eight of the worst cost 14 ms on top of the allowance's 53; an
# ordinary message spends one on each archive past the allowance that unpacks past its reserve
# (two tarballs of logs: one), so of ten big tarballs in one message the tenth is flagged.
RESERVES = 8
# How many times the compressed bytes behind it what a compressed tar cut at NESTED_BYTES
# decompressed to must be for the cut to count as a bomb (too big to list). Measured with zlib
# level 9 and xz -6: logs 9 to 21 times (gzip; a stuck process logging one line with its time
# 21) and 12 to 250 times (xz), Python source 4 to 5, a tar of source 4 to 9, office files and
# images about 1 (already compressed), a tar of 1,000 empty files (headers only) 107 and 270.
# Zeros, a bomb's padding, 1,009 times (gzip, near deflate's limit of 1,032) and 3,692 (xz).
# Padding that compresses less passes: 2 KiB of it per MiB is cheap, so this catches the
# cheapest bomb only, and an ordinary tarball running past the allowance scores nothing.
BOMB_RATIO = 500
# Compressed bytes fed to the decompressor at a time: the unit `consumed` is counted in for xz,
# small enough that an xz bomb (3,692 times) shows over BOMB_RATIO after 1 MiB.
UNPACK_CHUNK = 1024
# Bytes of a name read from a gzip header; real names are short.
MAX_GZIP_NAME = 1024
# Memory liblzma may reserve for an xz file's dictionary, which the file declares: xz -9, the
# largest preset, needs 65 MiB. Only the pages written (at most NESTED_BYTES) are touched; a file
# declaring more (up to 4 GiB) is refused as unreadable instead of being allocated.
XZ_MEMORY = 65 * 1024 * 1024
# Longest run of digits let into tarfile's pax parser. Python's tarfile before 3.11.10 and 3.12.6
# (CVE-2024-6232) searches pax records with patterns that backtrack over every run of digits:
# 16 KiB of digits took 0.5 s; with runs of at most 20, MAX_DIRECTORY of them (one read) takes 1.5 ms more
# than plain records (32: 4 ms). Real records hold numbers of at most 20 digits (a 64-bit size; a
# time is two runs, seconds and nanoseconds).
MAX_DIGITS = 20
# Pax records (KEY=VALUE lines before a tar member's header) checked and parsed per message.
# tarfile parses records one by one, about 2 us each: 84,000 tiny ones fit in a 197 KB .tar.gz
# and cost 189 ms. Real writers put a few per member (GNU tar --format=posix: mtime, atime and
# ctime, and a path when it is long), so two tars of MAX_MEMBERS such members fit; past this a
# tar is too big to list, as one whose headers pass TAR_HEADERS is.
PAX_RECORDS = 8192
LONG_DIGITS = re.compile(rb"\d{%d}" % (MAX_DIGITS + 1))
PAX_LENGTH = re.compile(rb"(\d{1,%d}) " % MAX_DIGITS)
PAX_TYPES = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})
DRIVE = re.compile(r"[A-Za-z]:")

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

# What zipfile and tarfile raise on hostile input, besides the refusal below: a damaged structure
# (BadZipFile, TarError, struct.error, EOFError, OSError), a name that is not the UTF-8 it claims
# (UnicodeDecodeError, a ValueError), an unknown compression or version (NotImplementedError),
# encryption (RuntimeError), an offset too big for a seek (OverflowError), a bad compressed stream
# (zlib.error, lzma.LZMAError, also for an xz dictionary over XZ_MEMORY), a GNU sparse header
# whose extension blocks the data cuts short (IndexError: tarfile reads an empty block's numbers).
UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, struct.error, EOFError, OSError,
              ValueError, NotImplementedError, RuntimeError, OverflowError, zlib.error, lzma.LZMAError,
              IndexError)
FLAG_ENCRYPTED = 0x1
INFLATED = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
GZIP_FEXTRA, GZIP_FNAME = 0x4, 0x8
GZIP_HEADER = 10


class _Decompressor(Protocol):
    eof: bool

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


# Compressed kinds looked into for a tar, by a decompressor that stops at a given output size.
UNPACKERS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(wbits=zlib.MAX_WBITS | 16),
    "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY),
}


@dataclass(slots=True)
class Budget:
    """What this message's archives may still cost: bytes decompressed for nested and compressed
    archives, how many times RESERVE more may be added for an archive finding less than that
    left, pax records parsed in its tars, and zips listed inside its tars."""

    left: int = NESTED_BYTES
    pax_records: int = PAX_RECORDS
    tar_zips: int = TAR_ZIPS
    reserves: int = RESERVES

    def top_up(self) -> None:
        """Let the archive about to be unpacked have RESERVE at least, while reserves last: what
        it leaves unspent stays for the archives after it."""
        if self.left < RESERVE and self.reserves > 0:
            self.reserves -= 1
            self.left += RESERVE


class _DirectoryTooBig(Exception):
    """zipfile or tarfile asked for more than MAX_DIRECTORY bytes while listing."""


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

    def _wanted(self, size: int | None) -> int:
        """How many bytes a read of `size` returns here."""
        available = max(0, self.size - self.tell())
        return available if size is None or size < 0 else min(size, available)

    def read(self, size: int | None = -1) -> bytes:
        if self.listing and self._wanted(size) > MAX_DIRECTORY:
            raise _DirectoryTooBig
        return super().read(size)


class _TarBytes(_CappedBytes):
    """A tar's bytes, of which at most TAR_HEADERS may be read in all.

    tarfile reads each member's header (and the long name or pax records before it) and seeks
    past the content, so what it reads is the listing. A size written as a negative number
    steps tarfile back to a header it has read; `_read_tar` stops there, so each header is read
    once and a small tar costs what its size allows, not the cap.
    """

    def __init__(self, data: bytes, budget: Budget) -> None:
        super().__init__(data)
        self.data = data
        self.budget = budget  # the message's, for the pax records its tars may hold
        self.spent = 0
        self.ran_off = False  # a read asked for more than was left: the tar goes on past the data

    def _allow(self, wanted: int) -> None:
        if self.spent + wanted > TAR_HEADERS:
            raise _DirectoryTooBig

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._wanted(size)
        self._allow(wanted)
        self.spent += wanted
        self.ran_off |= size is not None and wanted < size
        return super().read(size)

    def peek(self, size: int) -> bytes:
        """The next `size` bytes, left to be read next, if the caps allow reading them: a read
        over MAX_DIRECTORY is refused too, so pax records too long to be read are not checked
        first (checking 700 KB of them took 57 ms, then the read was refused). Fewer bytes than
        `size` is running off the data, as the read would: records cut there are no damage."""
        wanted = self._wanted(size)
        if wanted > MAX_DIRECTORY:
            raise _DirectoryTooBig
        self._allow(wanted)
        self.ran_off |= wanted < size
        start = self.tell()
        return self.data[start:start + wanted]


class _CheckedTarInfo(tarfile.TarInfo):
    """tarfile's member header, refusing pax records its parser would spend quadratic time on.

    `_proc_member` is the hook tarfile names for subclasses to process members their own way.
    """

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in PAX_TYPES and isinstance(tar.fileobj, _TarBytes):
            source = tar.fileobj
            # what _proc_pax reads next
            source.budget.pax_records -= _check_pax(source.peek(self._block(self.size)),
                                                    source.budget.pax_records)
        return super()._proc_member(tar)  # type: ignore[misc]


def _check_pax(records: bytes, allowed: int) -> int:
    """How many pax records there are (with their block's padding, which tarfile parses too),
    refusing those tarfile would take quadratic time over: a long run of digits, or a record
    whose stated length does not end it with a newline after a '=' ('2 2 2 ... =' sends its
    loop to the far '=' from every '2'). Writers pad with NULs, where tarfile stops too. More
    than `allowed` records is too big to list (PAX_RECORDS)."""
    if LONG_DIGITS.search(records):
        raise tarfile.ReadError("pax records with a long run of digits")
    pos = count = 0
    while pos < len(records) and records[pos]:
        if count == allowed:
            raise _DirectoryTooBig
        pos = _pax_record_end(records, pos)
        count += 1
    return count


def _pax_record_end(records: bytes, pos: int) -> int:
    """Where the record "LENGTH KEY=VALUE\\n" starting at `pos` ends, if it is one."""
    match = PAX_LENGTH.match(records, pos)
    if match is None:
        raise tarfile.ReadError("pax record without its length")
    end = pos + int(match[1])
    if not match.end() < end <= len(records) or records[end - 1:end] != b"\n" \
            or records.find(b"=", match.end(), end) < 0:
        raise tarfile.ReadError("pax record whose length does not end it")
    return end


def read(data: bytes, sniffed_type: str, budget: Budget) -> Archive | None:
    """The Archive in `data`, or None when the first bytes are not an archive's."""
    kind = KINDS.get(sniffed_type)
    if kind is None:
        return None
    archive = Archive(kind)
    if kind == "zip":
        budget.top_up()
        _read_zip(data, archive, "", budget)
    elif kind == "tar":
        _read_tar(data, archive, budget, cut=False)
    elif kind in UNPACKERS and _holds_tar(kind, data):
        budget.top_up()
        _read_packed_tar(kind, data, archive, budget)
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


def _add(archive: Archive, prefix: str, name: str) -> bool:
    """List member `name` (of the inner zip `prefix`, if any), noting a path out of its folder.
    Past MAX_MEMBERS it is not listed (False): the archive is noted as holding more."""
    if len(archive.members) >= MAX_MEMBERS:
        archive.too_many = True
        return False
    archive.members.append(prefix + name)
    if not archive.escaping and _escapes(name):
        archive.escaping = prefix + name
    return True


def _escapes(name: str) -> bool:
    """Whether unpacking `name` writes outside the folder: an absolute path (with a drive letter
    for Windows), or more '..' than folders before them; Windows unpackers split at backslashes
    too. `a/../b` stays inside and is not counted.

    Only a component of exactly '..' is the parent, on Windows too: it evaluates '.' and '..'
    before trimming trailing dots and spaces, trims those only at the end of the whole path, and
    keeps three or more dots as a name (Microsoft, "File path formats on Windows systems"), so
    `.. /run.exe` and `.../run.exe` unpack into a folder of that name, inside."""
    path = name.replace("\\", "/")
    if _absolute(path):
        return True
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _absolute(path: str) -> bool:
    """Whether `path` (with '/' for separators) starts at a root: '/' or a drive letter."""
    return path.startswith("/") or DRIVE.match(path) is not None


def _escaping_link(info: tarfile.TarInfo) -> bool:
    """Whether `info` is a tar link whose target leaves the folder. A symbolic link's target
    counts from the link's own folder (`docs/up -> ../readme.txt` stays inside); a hard link's
    target names another member, so it counts from the top of the folder."""
    if not (info.issym() or info.islnk()):
        return False
    target = info.linkname.replace("\\", "/")
    if info.issym() and not _absolute(target):
        target = posixpath.join(posixpath.dirname(info.name.replace("\\", "/")), target)
    return _escapes(target)


class _Links:
    """A tar's links pointing out of its folder, noted on the archive once a later member is
    written through one: a member at the link's own path, or under it.

    Such a link alone writes nothing: `tar czf etc.tgz /etc` holds `localtime ->
    /usr/share/zoneinfo/...` and dozens like it. The attack is the member after it: through a
    symbolic link `cron -> /etc/cron.d`, `cron/job` lands in /etc/cron.d. A hard link
    `passwd -> /etc/passwd` followed by a member `passwd` makes Python's tarfile (its default
    filter before 3.14) open the link and overwrite /etc/passwd, and a file written over a
    symbolic link goes the same way; GNU tar strips the leading '/' of hard link targets and
    refuses '..', and tarfile's 'data' filter refuses both kinds, but an unpacker that trusts
    the archive writes where the link points. A hard link alone gives a name for a file the
    archive did not bring, which hurts only where the unpacked folder is served back.
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.pending = _Folder()  # the escaping links, by the folders of their paths

    def member(self, info: tarfile.TarInfo) -> None:
        """Note `info` if it is written through a link before it, or keep it if it escapes.

        The member's path is walked down the links' folders, one lookup a component: comparing
        it with every link before it took 500 links and 500 members 26 ms (quadratic)."""
        if self.archive.escaping:
            return
        parts = _tar_path(info.name).split("/")
        link = self.pending.link_on(parts)
        if link is not None:
            self.archive.escaping, self.archive.escape_target = link.name, link.linkname
        elif _escaping_link(info):
            self.pending.add(parts, info)


@dataclass(slots=True)
class _Folder:
    """A path in a tar, and the escaping link made at it, if any, with the paths under it."""

    link: tarfile.TarInfo | None = None
    under: dict[str, _Folder] = field(default_factory=dict)

    def link_on(self, parts: list[str]) -> tarfile.TarInfo | None:
        """The first link at the path `parts` or at a folder above it."""
        folder: _Folder | None = self
        for part in parts:
            folder = folder.under.get(part)
            if folder is None:
                return None
            if folder.link is not None:
                return folder.link
        return None

    def add(self, parts: list[str], link: tarfile.TarInfo) -> None:
        """Keep `link` at the path `parts`, unless one is kept there already."""
        folder = self
        for part in parts:
            folder = folder.under.setdefault(part, _Folder())
        if folder.link is None:
            folder.link = link


def _tar_path(name: str) -> str:
    """A member's path as an unpacker writes it: './a//b/' and '/a/b' are 'a/b'."""
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/")


def _read_zip(data: bytes, archive: Archive, prefix: str, budget: Budget) -> None:
    """Add the zip's member names to `archive`; with no prefix, also those of zips inside it."""
    with _listing(archive):
        source = _CappedBytes(data)
        with zipfile.ZipFile(source) as zipped:
            source.listing = False
            members = []
            for info in zipped.infolist():
                if not _add(archive, prefix, info.filename):
                    break
                members.append(info)
                archive.encrypted |= bool(info.flag_bits & FLAG_ENCRYPTED)
            if archive.too_many:  # an inner zip's files would not be listed
                return
            for info in members:
                if not _is_inner_zip(info):
                    continue
                if not prefix and info.compress_type in INFLATED and _affordable(info.file_size, budget):
                    _read_inner(zipped, info, archive, budget)
                else:  # one level deep only: a zip inside the inner zip stays closed too
                    archive.unopened.append(prefix + info.filename)


def _is_inner_zip(info: zipfile.ZipInfo) -> bool:
    return _named_zip(info.filename) and not info.flag_bits & FLAG_ENCRYPTED


def _named_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _inner_cost(size: int) -> int:
    """What opening an inner zip of `size` bytes takes from the budget: that size, at least
    INNER_ZIP_COST."""
    return max(size, INNER_ZIP_COST)


def _affordable(size: int, budget: Budget) -> bool:
    """Whether what is left of the budget pays for opening an inner zip of `size` bytes."""
    return _inner_cost(size) <= budget.left


def _read_inner(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Archive, budget: Budget) -> None:
    """List the zip stored as member `info`, whose cost fits in what is left of the budget.

    The cost is spent before inflating: zipfile produces no more than the declared size even
    when the data inflates to more, and checks the CRC at the end of the member, so a bomb that
    lies about its size costs that much and is then found damaged.
    """
    budget.left -= _inner_cost(info.file_size)
    with _listing(archive):  # a damaged one makes the archive unreadable, as a damaged zip does
        with zipped.open(info) as member:
            inner = member.read(info.file_size)
        _read_zip(inner, archive, f"{info.filename}/", budget)  # one level deep: its zips stay shut


def _read_tar(data: bytes, archive: Archive, budget: Budget, cut: bool) -> bool:
    """Add the tar's member names to `archive`, up to the first damage or the caps; whether the
    listing ran off the end of `data`.

    `cut` says `data` is the start of a longer tar, decompressed up to the message's allowance:
    running off its end is no damage (the caller decides whether the cut hides anything).
    Members are listed as they are read, so those before the damage or the cap stay. Folders
    end in '/', as in a zip.
    """
    source = _TarBytes(data, budget)
    links = _Links(archive)
    zips: list[tarfile.TarInfo] = []
    damaged = False
    last = -1  # where the header before began
    try:
        with tarfile.TarFile(fileobj=source, tarinfo=_CheckedTarInfo, encoding="utf-8",
                             errors="replace") as tar:
            while not archive.too_many:
                info = tar.next()
                if info is None:
                    # tarfile ends quietly at a header it cannot read after the first, where
                    # GNU tar skips to the next good one and goes on unpacking: only a block of
                    # zeros ends a tar.
                    damaged = any(data[tar.offset:tar.offset + tarfile.BLOCKSIZE])
                    break
                # A negative size stepped back to a header already read: tarfile would read it
                # again and again, up to TAR_HEADERS, 3,000 headers' work for a 2 KiB tar.
                if info.offset <= last:
                    damaged = True
                    break
                last = info.offset
                if _add(archive, "", f"{info.name.rstrip('/')}/" if info.isdir() else info.name):
                    links.member(info)
                    if info.isfile() and _named_zip(info.name):
                        zips.append(info)
    except _DirectoryTooBig:
        archive.too_big = True
    except UNREADABLE:
        damaged = True
    if not archive.too_big:  # where the data ends inside the tar, tarfile stops quietly or with an error
        archive.unreadable = not cut if source.ran_off else damaged
    for info in zips:  # after the listing: a damaged zip makes the tar unreadable
        _read_tar_zip(data, info, archive, budget, cut)
    return source.ran_off


def _read_tar_zip(data: bytes, info: tarfile.TarInfo, archive: Archive, budget: Budget,
                  cut: bool) -> None:
    """List the zip stored in the tar `data` as member `info`, one level deep as a zip inside a
    zip is, if its bytes are all there (not cut off, nor a sparse file's, which are not stored
    in one piece) and the message may list another (TAR_ZIPS); otherwise it is unopened. Past
    MAX_MEMBERS none is opened: its files could not be listed. One running past the end of a
    compressed tar unpacked up to the allowance (`cut`) is not named: the tar's members after
    the cut are not either, and an ordinary tarball is not flagged for its size."""
    end = info.offset_data + info.size
    whole = info.sparse is None and info.size >= 0 and end <= len(data)
    if whole and not archive.too_many and budget.tar_zips > 0:
        budget.tar_zips -= 1
        with _listing(archive):
            _read_zip(data[info.offset_data:end], archive, f"{info.name}/", budget)
    elif whole or not cut:
        archive.unopened.append(info.name)


@dataclass(slots=True)
class _Unpacked:
    """What the start of a compressed file decompressed to, and from how many of its bytes."""

    data: bytes
    more: bool  # the output stopped at the limit, not at the end of the stream
    consumed: int  # compressed bytes behind `data` (for xz, rounded up to a whole UNPACK_CHUNK)


def _unpack(kind: str, data: bytes, limit: int) -> _Unpacked:
    """What `data` decompresses to, up to `limit` (> 0) bytes, fed UNPACK_CHUNK at a time so
    that the compressed bytes behind the output are known (liblzma does not say how much of
    its input it used)."""
    decompressor = UNPACKERS[kind]()
    parts: list[bytes] = []
    size = fed = 0
    while fed < len(data) and size < limit and not decompressor.eof:
        chunk = data[fed:fed + UNPACK_CHUNK]
        fed += len(chunk)
        parts.append(decompressor.decompress(chunk, limit - size))
        size += len(parts[-1])
    consumed = fed - len(getattr(decompressor, "unconsumed_tail", b""))
    return _Unpacked(b"".join(parts), size == limit and not decompressor.eof, consumed)


def _holds_tar(kind: str, data: bytes) -> bool:
    """Whether the compressed `data` starts with a tar header (by its checksum): one block
    decompressed costs microseconds."""
    try:
        tarfile.TarInfo.frombuf(_unpack(kind, data, tarfile.BLOCKSIZE).data, "utf-8", "replace")
    except UNREADABLE:
        return False
    return True


def _read_packed_tar(kind: str, data: bytes, archive: Archive, budget: Budget) -> None:
    """List a tar inside gzip or xz, decompressing at most what is left of the budget.

    A tar going on past that is too big to list when it is a bomb: what was decompressed is
    BOMB_RATIO times the compressed bytes it came from or more, padding put before the program
    to push it past the allowance. One met with nothing left, or whose headers went on past
    less than RESERVE, is flagged for the allowance the message's archives before it spent
    (allowance_spent). An ordinary tarball of logs or source going on past its allowance is
    judged by the names read up to there and not flagged."""
    if budget.left == 0:
        archive.allowance_spent = True
        return
    try:
        unpacked = _unpack(kind, data, budget.left)
    except UNREADABLE:
        archive.unreadable = True
        return
    budget.left -= len(unpacked.data)
    ran_off = _read_tar(unpacked.data, archive, budget, cut=unpacked.more)
    if not unpacked.more:
        return
    if len(unpacked.data) >= BOMB_RATIO * unpacked.consumed:
        archive.too_big = True
    elif ran_off and len(unpacked.data) < RESERVE:
        archive.allowance_spent = True


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
