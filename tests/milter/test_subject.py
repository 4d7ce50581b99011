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


@pytest.mark.parametrize("raw", ["=?utf-8?Q?Invoice=0D=0ABcc:_victim@example.org?=", "=?utf-8?Q?a=00b?=",
                                 "=?us-ascii?Q?a=00b?="])
def test_control_characters_from_encoded_words_stay_encoded(raw: str) -> None:
    """Written raw, a decoded CR LF began a header of the sender's choosing and a NUL made
    pymilter raise: every line of the value must be a folded continuation, with no NUL."""
    tagged = tagged_subject(raw, TAG)
    assert "\0" not in tagged and "\r" not in tagged
    assert all(line[:1] in (" ", "\t") for line in tagged.split("\n")[1:])
    assert shown(tagged).startswith(TAG)


@pytest.mark.parametrize("label", ["idna", "utf-16"])
def test_codec_that_is_no_mail_charset_is_not_used_to_encode_the_tag(label: str) -> None:
    """idna raised UnicodeError on a long word; utf-16 put a byte-order mark in every word."""
    raw = f"=?{label}?Q?{'x' * 70}?= caf\u00e9"
    tagged = tagged_subject(raw, TAG)
    assert f"?{label}?" not in tagged.lower()
    assert "\ufeff" not in shown(tagged) and shown(tagged).startswith(TAG)
