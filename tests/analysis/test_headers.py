"""Header splitting, unfolding and RFC 2047 decoding."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from mailsift.analysis.model import Envelope
from mailsift.analysis.parse import analyse
from mailsift.config import Config
from tests.analysis.helpers import BASE_HEADERS, build, run


def encoded_word(text: str, charset: str, encoding: str = "B") -> str:
    data = text.encode(charset)
    if encoding == "B":
        payload = base64.b64encode(data).decode("ascii")
    else:
        payload = "".join(chr(b) if 0x21 <= b < 0x7F and chr(b) not in "=?_" else f"={b:02X}" for b in data)
    return f"=?{charset}?{encoding}?{payload}?="


@pytest.mark.parametrize(("text", "charset", "encoding"), [
    ("Привет, мир", "koi8-r", "B"),
    ("Привет, мир", "koi8-r", "Q"),
    ("Добрый день", "windows-1251", "B"),
    ("こんにちは世界", "iso-2022-jp", "B"),
    ("你好世界", "gb2312", "B"),
    ("Grüße aus Köln", "utf-8", "B"),
    ("Grüße aus Köln", "utf-8", "Q"),
    ("Zażółć gęślą jaźń", "iso-8859-2", "Q"),
])
def test_rfc2047_subject_in_any_charset(text: str, charset: str, encoding: str) -> None:
    word = encoded_word(text, charset, encoding)
    message = run(build([("Subject", word), ("From", "a@example.com")]))
    assert message.subject == text
    assert message.header_raw("Subject") == [word]
    assert not message.facts.items


def test_adjacent_words_join_and_split_multibyte_characters_survive() -> None:
    data = "Ünïcödé".encode()
    first, second = base64.b64encode(data[:3]).decode(), base64.b64encode(data[3:]).decode()
    message = run(build([("Subject", f"=?utf-8?B?{first}?=\n =?utf-8?B?{second}?= tail")]))
    assert message.subject == "Ünïcödé tail"


def test_q_encoding_underscore_is_space_and_text_around_words_is_kept() -> None:
    message = run(build([("Subject", "Re: =?iso-8859-1?Q?caf=E9_cr=E8me?= now")]))
    assert message.subject == "Re: café crème now"


def test_folded_header_is_unfolded_in_value_and_kept_in_raw() -> None:
    raw = b"Subject: a long\n\tsubject line\n  continued\nFrom: x@y.z\n\nbody\n"
    message = run(raw)
    assert message.subject == "a long\tsubject line  continued"
    assert message.header_raw("Subject") == ["a long\n\tsubject line\n  continued"]
    assert message.header("From") == "x@y.z"


def test_header_lookup_is_case_insensitive_and_keeps_order() -> None:
    message = run(build([("Received", "first"), ("received", "second"), ("X-A", "1")]))
    assert message.header_values("RECEIVED") == ["first", "second"]
    assert message.has_header("x-a")
    assert message.header("Missing", "none") == "none"


def test_crlf_line_ends_are_accepted() -> None:
    message = run(b"Subject: hi\r\n there\r\nFrom: a@b.c\r\n\r\nbody\r\n")
    assert message.subject == "hi there"
    assert message.text_parts[0].text == "body\n"


def test_mbox_from_line_is_stripped() -> None:
    raw = b"From sender@example.com  Mon Jan  1 00:00:00 2024\n" + build(BASE_HEADERS)
    message = run(raw)
    assert [h.name for h in message.headers] == ["From", "To", "Subject"]
    assert message.raw.startswith(b"From: a@example.com")
    assert not message.facts.items


def test_raw_utf8_header_is_accepted_without_fact() -> None:
    message = run(build([("Subject", "Grüße".encode())]))
    assert message.subject == "Grüße"
    assert "HEADER_8BIT" not in message.facts


def test_raw_8bit_header_uses_body_charset_and_records_fact() -> None:
    headers = [("Content-Type", "text/plain; charset=koi8-r"), ("Subject", "Привет".encode("koi8-r"))]
    message = run(build(headers))
    assert message.subject == "Привет"
    assert "HEADER_8BIT" in message.facts


def test_broken_encoded_word_records_fact_and_keeps_going() -> None:
    message = run(build([("Subject", "=?utf-8?B?@@@?= =?no-such?Q?abc?= ok")]))
    assert "HEADER_BAD_ENCODED_WORD" in message.facts
    assert message.subject.endswith("ok")


def test_envelope_defaults_to_empty_and_is_kept_when_given() -> None:
    assert run(build(BASE_HEADERS)).envelope == Envelope()
    envelope = Envelope(client_ip="192.0.2.1", helo="mx.example.net", rcpt_to=["b@example.org"])
    assert run(build(BASE_HEADERS), envelope=envelope).envelope is envelope


def test_received_time_comes_from_newest_received_header() -> None:
    message = run(build([
        ("Received", "from a (a [192.0.2.1]) by mx; Tue, 2 Jan 2024 10:00:00 +0100"),
        ("Received", "from b (b [192.0.2.2]) by a; Mon, 1 Jan 2024 09:00:00 +0000"),
    ]))
    assert message.received_time == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)


def test_received_time_falls_back_to_arrival() -> None:
    arrival = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert analyse(build(BASE_HEADERS), Config(), arrival=arrival).received_time == arrival
