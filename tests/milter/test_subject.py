"""Subject tagging keeps the Subject valid: decoded, tagged, re-encoded in its own charset."""

from __future__ import annotations

import base64
from email.header import decode_header, make_header

import pytest

from mailsift.milter.subject import tagged_subject

TAG = "[SPAM]"


def encoded(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def shown(raw: str) -> str:
    return str(make_header(decode_header(raw)))


@pytest.mark.parametrize(("raw", "charset"), [
    (encoded("Привет мир", "windows-1251"), "windows-1251"),
    (encoded("Отчёт", "koi8-r") + " " + encoded(" за год", "koi8-r"), "koi8-r"),
])
def test_encoded_subject_is_tagged_in_its_own_charset(raw: str, charset: str) -> None:
    tagged = tagged_subject(raw, TAG)
    assert tagged.isascii() and tagged.lower().startswith(f"=?{charset}?")
    assert shown(tagged) == f"{TAG} {shown(raw)}"


def test_plain_subject_gets_the_tag_in_front_and_only_once() -> None:
    assert tagged_subject("Hello", TAG) == "[SPAM] Hello"
    assert tagged_subject("[SPAM] Hello", TAG) == "[SPAM] Hello"


def test_broken_encoded_word_is_tagged_not_raised() -> None:
    tagged = tagged_subject("=?x-no-such-charset?B?!!!?= offer", TAG)
    assert shown(tagged).startswith(TAG)
