"""Tagging a Subject without breaking it.

An encoded Subject (`=?windows-1251?B?...?=`) is decoded, tagged and encoded again in its own
charset when that charset can carry the tag (else UTF-8), so mail clients show
"[SPAM] <original text>" and no byte of the original words is mangled. A plain ASCII Subject just
gets the tag in front.
"""

from __future__ import annotations

from email.header import Header

from mailsift.analysis.headers import ENCODED_WORD, decode_words, unfold
from mailsift.analysis.model import Facts

DEFAULT_CHARSET = "utf-8"


def _decoded(raw: str) -> tuple[str, str | None]:
    """The Subject's text (decoded as the analysis decodes it) and the charset of its first
    encoded word (None if it has none)."""
    first = ENCODED_WORD.search(raw)
    return decode_words(unfold(raw), Facts()), first[1].lower() if first else None


def tagged_subject(raw: str, tag: str) -> str:
    """The new raw Subject value. Calling it on an already tagged Subject leaves it as it is."""
    text, charset = _decoded(raw)
    if text.startswith(tag):
        return raw
    new = f"{tag} {text}" if text else tag
    if new.isascii():
        return new
    for candidate in (charset, DEFAULT_CHARSET):
        if candidate is None:
            continue
        try:
            new.encode(candidate)
        except (UnicodeEncodeError, LookupError):
            continue
        return Header(new, candidate, header_name="Subject").encode()
    return Header(new, DEFAULT_CHARSET, header_name="Subject").encode()
