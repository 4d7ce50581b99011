"""Attachments: the name the recipient sees, the type claimed, and the type the bytes really have.

Malware arrives as `invoice.pdf.exe` or as an executable declared `application/pdf`; rules need
the decoded file name, its extension chain and the sniffed type side by side to see either trick.
"""

from __future__ import annotations

import filetype

from mailsift.analysis import archives
from mailsift.analysis.headers import decode_words
from mailsift.analysis.mime import Leaf
from mailsift.analysis.model import Attachment, Facts

# filetype needs at most this many leading bytes to recognise any type it knows.
SNIFF_BYTES = 262
# Extensions that people recognise as a file type: only these count as a decoy in front of the
# real extension, so "report.2024.pdf" or "J.Smith.docx" are not double extensions.
KNOWN_EXTENSIONS = frozenset({t.extension.lower() for t in filetype.types}) | frozenset({
    "bat", "cmd", "com", "cpl", "csv", "dll", "docm", "eml", "hta", "htm", "html", "img", "iso",
    "jar", "jpeg", "js", "jse", "lnk", "msg", "msi", "pif", "pps", "ppsx", "reg", "scr", "svg",
    "tgz", "tiff", "txt", "vbe", "vbs", "wsf", "xlsm", "xml",
})
MAX_EXTENSION = 10

# Kinds of file by what opening one does; the attachment rules and the Bayes tokens read them.
# Windows runs these directly (or through a shipped interpreter) on a double click.
EXECUTABLE = frozenset({
    "exe", "scr", "pif", "com", "cpl", "msi", "msp", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf",
    "wsh", "hta", "lnk", "ps1", "reg", "jar", "appx", "msix", "application", "gadget", "inf", "sct",
})
# Office formats that may carry macros by design (the x formats cannot).
MACRO_DOCUMENT = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm"})
# Disk images mount on a double click and hide their content from mail gateways.
DISK_IMAGE = frozenset({"iso", "img", "vhd", "vhdx"})
# Opened in a browser from a file, a page is past every link scanner and can post a login form.
WEB_PAGE = frozenset({"htm", "html", "shtml", "xhtml", "mht", "mhtml"})
# What malware sends: a program, a document that runs macros, a disk image, a page with a form.
RISKY = EXECUTABLE | MACRO_DOCUMENT | DISK_IMAGE | WEB_PAGE


def is_attachment(leaf: Leaf, name: str) -> bool:
    """A part the reader sees as a file: declared so, named, or not text at all (a header
    block, message/global-headers among them, is text: `Leaf.is_text`)."""
    return leaf.disposition == "attachment" or not leaf.is_text or bool(name)


def filename(leaf: Leaf, facts: Facts) -> str:
    """The decoded file name from Content-Disposition or, failing that, Content-Type's `name`.

    The MIME walk has already joined RFC 2231 continuations and applied their charset; RFC 2047
    words, which are not allowed in parameters but are what many clients write, are decoded here.
    """
    name = leaf.params.filename
    return decode_words(name, facts).strip().strip("\"'") if name else ""


def extensions(name: str) -> list[str]:
    """The extension chain: the last extension, preceded by any known ones right before it."""
    # Windows ignores trailing dots and spaces, so "a.exe." runs as "a.exe".
    base = name.lower().replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ")
    pieces = base.split(".")[1:]
    chain: list[str] = []
    for piece in reversed(pieces):
        piece = piece.strip()
        if not piece or len(piece) > MAX_EXTENSION or (chain and piece not in KNOWN_EXTENSIONS):
            break
        chain.append(piece)
    return chain[::-1]


def last_extension(name: str) -> str:
    """The extension Windows opens the file by ('' if none): what decides a member of an archive."""
    found = extensions(name)
    return found[-1] if found else ""


def build(leaf: Leaf, name: str, data: bytes, budget: archives.Budget) -> Attachment:
    """The Attachment for a part whose transfer encoding is already removed.

    `budget` is the message's allowance for decompressing archives inside archives.
    """
    kind = filetype.guess(data[:SNIFF_BYTES]) if data else None
    sniffed = kind.mime if kind is not None else ""
    return Attachment(
        filename=name,
        declared_type=leaf.content_type,
        sniffed_type=sniffed,
        size=len(data),
        extensions=extensions(name),
        archive=archives.read(data, sniffed, budget),
    )
