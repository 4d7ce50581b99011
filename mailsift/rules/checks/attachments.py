"""Attachments by name and by content: programs, disguised programs and macro-enabled documents.

Nobody needs to mail a program to a stranger, and a file that pretends to be a document while it
is a program (`invoice.pdf.exe`, or a PE file called `photo.jpg`) is malware by construction.
Only names and the first bytes are used. An archive (zip, tar, .tar.gz, .tar.xz) is looked into
only as far as its list of member names (mailsift/analysis/archives.py): programs are mailed
inside archives so that gateways judging the outer name let them through, and the member names
are what the recipient runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailsift.analysis.archives import MAX_MEMBERS
from mailsift.analysis.attachments import DISK_IMAGE, EXECUTABLE, MACRO_DOCUMENT, WEB_PAGE, last_extension
from mailsift.analysis.model import Archive, Attachment
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "attachment"

# Extensions readers trust, put in front of a real one as a decoy.
DECOY = frozenset({
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "rtf", "jpg", "jpeg", "gif", "png", "bmp",
    "htm", "html", "mp3", "wav", "avi", "mpg", "zip",
})
# An archive holding at most this many files, all web pages, is a page sent to be opened; a saved
# web site or documentation comes with its style sheets, scripts and images.
MAX_LONE_PAGES = 2
EXECUTABLE_SNIFFED = frozenset({
    "application/x-dosexec", "application/x-msdownload", "application/x-executable",
    "application/vnd.microsoft.portable-executable", "application/x-ms-shortcut",
})


def _last(attachment: Attachment) -> str:
    return attachment.extensions[-1] if attachment.extensions else ""


def _first(attachments: list[Attachment], wanted: frozenset[str]) -> CheckResult:
    for attachment in attachments:
        if _last(attachment) in wanted:
            return attachment.filename[:60] or _last(attachment)
    return None


@check("attachment_executable",
       DefaultRule("ATTACH_EXECUTABLE", 2.5, "Attachment is a Windows program or script by its name",
                   group=GROUP))
def attachment_executable(ctx: CheckContext) -> CheckResult:
    """Programs and scripts that run on a double click: the classic mass-mailer payload."""
    return _first(ctx.msg.attachments, EXECUTABLE)


@check("attachment_double_extension",
       DefaultRule("ATTACH_DOUBLE_EXT", 3.0, "Attachment name hides a program behind a document extension",
                   group=GROUP))
def attachment_double_extension(ctx: CheckContext) -> CheckResult:
    """`report.pdf.exe`: Windows hides the last extension, the reader sees a PDF."""
    for attachment in ctx.msg.attachments:
        exts = attachment.extensions
        if attachment.double_extension and exts[-2] in DECOY and exts[-1] in EXECUTABLE:
            return attachment.filename[:60]
    return None


@check("attachment_macro_document",
       DefaultRule("ATTACH_MACRO_DOC", 1.5, "Attachment is a macro-enabled Office document by its name",
                   group=GROUP))
def attachment_macro_document(ctx: CheckContext) -> CheckResult:
    """Macro formats are what document malware is sent as; ordinary documents use the x formats."""
    return _first(ctx.msg.attachments, MACRO_DOCUMENT)


@check("attachment_disk_image",
       DefaultRule("ATTACH_DISK_IMAGE", 1.5, "Attachment is a disk image", group=GROUP))
def attachment_disk_image(ctx: CheckContext) -> CheckResult:
    """Disk images are a way to carry programs past gateways that block them by name."""
    return _first(ctx.msg.attachments, DISK_IMAGE)


@check("attachment_disguised_program",
       DefaultRule("ATTACH_DISGUISED_PROGRAM", 3.5, "Attachment is a program but named as something else",
                   group=GROUP))
def attachment_disguised_program(ctx: CheckContext) -> CheckResult:
    """The first bytes say program, the name says otherwise: only malware has a reason for that."""
    for attachment in ctx.msg.attachments:
        if attachment.sniffed_type in EXECUTABLE_SNIFFED and _last(attachment) not in EXECUTABLE:
            return f"{attachment.filename[:40] or 'unnamed'} is {attachment.sniffed_type}"
    return None


def _members(attachments: list[Attachment]) -> Iterator[tuple[Attachment, str]]:
    """(archive, member name) for every member listed in every archive attachment."""
    for attachment in attachments:
        if attachment.archive is not None:
            for member in attachment.archive.members:
                yield attachment, member


def _in_archive(attachment: Attachment, member: str, keep: int = 40) -> str:
    """Evidence naming a member (its last `keep` characters) and its archive."""
    return _printable(f"{member[-keep:]} in {_archive_name(attachment)}")


def _archive_name(attachment: Attachment) -> str:
    return attachment.filename[:30] or "an unnamed archive"


def _printable(evidence: str) -> str:
    """Names are the sender's, so unprintables go."""
    return "".join(char if char.isprintable() else "?" for char in evidence)


@check("attachment_archived_program",
       DefaultRule("ATTACH_ARCHIVED_PROGRAM", 2.0,
                   "Archive attachment holds a Windows program, script, shortcut or disk image", group=GROUP))
def attachment_archived_program(ctx: CheckContext) -> CheckResult:
    """What ATTACH_EXECUTABLE and ATTACH_DISK_IMAGE catch by name, zipped to pass gateways that
    block it. Scored a little below a program attached as it is: developers and admins do zip
    tools for each other, while a stranger's zipped program has no other reason."""
    for attachment, member in _members(ctx.msg.attachments):
        if last_extension(member) in EXECUTABLE | DISK_IMAGE:
            return _in_archive(attachment, member)
    return None


@check("attachment_archived_web_page",
       DefaultRule("ATTACH_ARCHIVED_WEB_PAGE", 1.5, "Archive attachment holds nothing but a web page",
                   group=GROUP))
def attachment_archived_web_page(ctx: CheckContext) -> CheckResult:
    """A lone page in a zip is a phishing form sent as a file: people link to pages, and a saved
    page comes with its images. Lower than a program: the page still needs the reader to type."""
    for attachment in ctx.msg.attachments:
        archive = attachment.archive
        files = [m for m in archive.members if not m.endswith("/")] if archive is not None else []
        if 0 < len(files) <= MAX_LONE_PAGES and all(last_extension(m) in WEB_PAGE for m in files):
            return _in_archive(attachment, files[0])
    return None


@check("attachment_archive_unlisted",
       DefaultRule("ATTACH_ARCHIVE_UNLISTED", 1.0,
                   "Archive attachment whose list of files cannot be read in full (damaged, padded "
                   "past the reading limits, or holding a zip left unopened)", group=GROUP))
def attachment_archive_unlisted(ctx: CheckContext) -> CheckResult:
    """An archive whose member list could not be read hides its files from the archive rules
    above: padding a zip's directory or a tar's headers past archives.MAX_DIRECTORY, padding a
    .tar.gz or a zip inside the zip past the message's unpacking allowance (NESTED_BYTES), or
    damaging it where lenient unpackers still extract, is how malware would slip by them. Mail
    programs write archives that read, so the score is small, and nothing counts where the scan
    cut the message short (a big message's last zip is cut, not damaged). A compressed tar met
    once the message's archives before it spent the unpacking allowance counts too (spending it
    cheaply must not hide the next attachment), and its evidence says so: it may be a 3 KB file,
    and "too big to list" sent an admin looking for a size that was not there."""
    if ctx.msg.truncated:
        return None
    for attachment in ctx.msg.attachments:
        archive = attachment.archive
        if archive is not None and archive.unlisted:
            return _unlisted_evidence(attachment, archive)
    return None


def _unlisted_evidence(attachment: Attachment, archive: Archive) -> str:
    """Which archive, and the first reason its files escape the rules, as an admin acts on it."""
    if archive.too_many:
        return _in_archive(attachment, f"more than {MAX_MEMBERS} files")
    if archive.unopened:
        return _in_archive(attachment, f"{archive.unopened[0][-20:]} left unopened")
    if archive.allowance_spent:
        read = "read in part" if archive.members else "not read"
        return _printable(f"{_archive_name(attachment)} {read}: "
                          "the message's earlier archives used up its unpacking allowance")
    return _in_archive(attachment, "too big to list" if archive.too_big else "damaged")


@check("attachment_archive_path_escape",
       DefaultRule("ATTACH_ARCHIVE_PATH_ESCAPE", 1.0,
                   "Archive attachment holds a file whose path, or a link whose target, leads out of "
                   "the folder it is unpacked into (zip slip)", group=GROUP))
def attachment_archive_path_escape(ctx: CheckContext) -> CheckResult:
    """A member named `../../AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/x.exe`
    or `/etc/cron.d/x` writes outside the folder the recipient chose, where it runs by itself
    ("zip slip"). Zip programs store paths below the folder they were given and tar strips a
    leading '/' unless told to keep it (-P), so such a name is made on purpose. The score is
    modest: the unpackers people use today (Windows Explorer, 7-Zip, unzip, tar) refuse or
    strip these paths, so the attack needs an old or home-made unpacker, and an administrator's
    `tar -P` backup of /etc carries absolute paths for no bad reason. A tar link pointing out
    (`cron -> /etc/cron.d`) counts too: a later member written through it lands there."""
    for attachment in ctx.msg.attachments:
        archive = attachment.archive
        if archive is not None and archive.escaping:
            return _in_archive(attachment, _escape_evidence(archive), keep=80)
    return None


def _escape_evidence(archive: Archive) -> str:
    """The escaping member's start (its '..' or '/'); for a link, its name's end and its target's start."""
    if archive.escape_target:
        return f"{archive.escaping[-30:]} -> {archive.escape_target[:40]}"
    return archive.escaping[:40]


@check("attachment_archive_encrypted")
def attachment_archive_encrypted(ctx: CheckContext) -> CheckResult:
    """An archive whose content is encrypted: no scanner can look into it. Common in business
    mail on its own, so 40_attachment.cf scores it only with a password written in the message.
    Zips only (and zips inside them): RAR and 7z are recognised but not read, so their
    encryption is not seen."""
    for attachment in ctx.msg.attachments:
        if attachment.archive is not None and attachment.archive.encrypted:
            return _in_archive(attachment, "encrypted content")
    return None
