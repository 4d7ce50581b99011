"""Tagging a Subject without breaking it.

An encoded Subject (`=?windows-1251?B?...?=`) is decoded, tagged and encoded again in its own
charset when that charset can carry the tag (else UTF-8), so mail clients show
"[SPAM] <original text>" and no byte of the original words is mangled. A plain ASCII Subject just
gets the tag in front.
"""

from __future__ import annotations

from email.charset import Charset
from email.header import Header

from mailsift.analysis.charsets import codec_for
from mailsift.analysis.headers import ENCODED_WORD, decode_words, unfold
from mailsift.analysis.model import Facts

DEFAULT_CHARSET = "utf-8"
# libmilter refuses to send a command over its data size limit (64 KiB by default; Debian 12's
# took a 100 KB Subject and refused a 300 KB one), and Postfix passes headers up to
# header_size_limit (100 KiB): a long raw 8-bit Subject, tripled by RFC 2047 encoding, made
# chgheader raise, and the message met milter.on_error on every retry. 64 KiB fits any build.
MAX_VALUE_BYTES = 65_000


def subject_written(subject: str | None, tag: str) -> str | None:
    """The Subject value the milter writes when it tags a message whose first Subject is
    `subject` (as the analysis reads it; None: the message has none, and the tag becomes its
    Subject), or None when it writes none (a Subject tagged already). One answer for the milter
    and `mailsift check`, which shows an admin the Subject the recipients get."""
    if subject is None:
        return tag
    tagged = tagged_subject(subject, tag)
    return tagged if tagged != subject else None


def _decoded(raw: str) -> tuple[str, str | None]:
    """The Subject's text (decoded as the analysis decodes it) and the charset of its first
    encoded word (None if it has none)."""
    first = ENCODED_WORD.search(raw)
    return decode_words(unfold(raw), Facts()), first[1].lower() if first else None


def tagged_subject(raw: str, tag: str) -> str:
    """The new raw Subject value. Calling it on an already tagged Subject leaves it as it is.

    A Subject too long for the milter protocol keeps the tag and loses its end (see
    MAX_VALUE_BYTES): no mail client shows 64 KiB of Subject, and left untagged it would let a
    sender escape rewrite_subject by padding."""
    text, charset = _decoded(raw)
    if text.startswith(tag):
        return raw
    new = _encoded(f"{tag} {text}" if text else tag, charset)
    while len(new.encode()) > MAX_VALUE_BYTES:
        text = text[:len(text) * MAX_VALUE_BYTES // len(new.encode()) - 1]
        new = _encoded(f"{tag} {text}", charset)
    return new


def _encoded(new: str, charset: str | None) -> str:
    """`new` as a raw header value: as it is when printable ASCII, else RFC 2047 encoded.

    Text decoded from a sender's encoded words may hold control characters: written raw, an
    encoded CR LF ended the Subject and began a header of the sender's choosing, and a NUL made
    pymilter raise (milter.on_error on every retry). Encoded, they stay inside the Subject."""
    if all(c == "\t" or " " <= c <= "~" for c in new):
        return new
    for candidate in (charset, DEFAULT_CHARSET):
        if candidate is None or not _encodes_words(candidate):
            continue
        try:
            new.encode(candidate)
        except UnicodeEncodeError:
            continue
        return Header(new, candidate, header_name="Subject").encode()
    return Header(new, DEFAULT_CHARSET, header_name="Subject").encode()


def _encodes_words(charset: str) -> bool:
    """True for a mail charset whose encoded words carry any text: not a codec that is no
    charset (idna raised UnicodeError, as no other label did), not one that leaves text raw
    (us-ascii: see `_encoded`), and ASCII-compatible (utf-16 put a byte-order mark in each word)."""
    if not codec_for(charset) or Charset(charset).header_encoding is None:
        return False
    return "a".encode(charset) == b"a"
