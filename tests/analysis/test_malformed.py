"""Malformed input never raises out of `analyse`, finishes at a bounded cost, and is described by facts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsift.analysis.facts import FACTS
from mailsift.analysis.model import Message
from mailsift.analysis.parse import analyse
from mailsift.config import Config
from tests.malformed_messages import MALFORMED
from tests.support.cpu_time import cpu_time

CONFIG = Config()


def analyse_in_time(raw: bytes) -> Message:
    """Analysed without a failure, within 2 s of CPU: a guard that hostile input finishes, not a
    speed claim (the costliest message here, html_deeply_nested, takes 0.18 s)."""
    message, seconds = cpu_time(lambda: analyse(raw, CONFIG))
    assert seconds < 2.0, f"{seconds:.2f} s"
    assert "ANALYSIS_ERROR" not in message.facts, message.facts.items
    assert set(message.facts.items) <= set(FACTS)
    return message


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_message_is_analysed(name: str) -> None:
    analyse_in_time(MALFORMED[name])


def test_there_are_at_least_30_malformed_messages() -> None:
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize(("name", "fact"), [
    ("no_separator", "MIME_NO_SEPARATOR"),
    ("no_headers", "MIME_NO_HEADERS"),
    ("binary_garbage", "MIME_NO_HEADERS"),
    ("nul_in_headers", "HEADER_NUL"),
    ("nul_in_body", "BODY_NUL"),
    ("header_1mb", "HEADER_TOO_LONG"),
    ("continuation_first", "HEADER_CONTINUATION_FIRST"),
    ("invalid_base64", "MIME_BAD_BASE64"),
    ("base64_bad_padding", "MIME_BAD_BASE64"),
    ("qp_garbage", "MIME_BAD_QP"),
    ("cte_garbage", "MIME_BAD_CTE"),
    ("cte_garbage", "HEADER_8BIT"),
    ("unknown_charset", "CHARSET_UNKNOWN"),
    ("wrong_charset", "CHARSET_MISMATCH"),
    ("charset_is_a_transform", "CHARSET_UNKNOWN"),
    ("charset_is_idna", "CHARSET_UNKNOWN"),
    ("charset_is_punycode", "CHARSET_UNKNOWN"),
    ("encoded_words_in_python_codecs", "HEADER_BAD_ENCODED_WORD"),
    ("broken_rfc2047", "HEADER_BAD_ENCODED_WORD"),
    ("nested_multiparts_2000", "MIME_TOO_DEEP"),
    ("nested_messages_2000", "MIME_TOO_DEEP"),
    ("parts_5000", "MIME_TOO_MANY_PARTS"),
    ("boundary_never_closes", "MIME_BOUNDARY_UNCLOSED"),
    ("boundary_never_found", "MIME_BOUNDARY_NOT_FOUND"),
    ("multipart_without_boundary", "MIME_MISSING_BOUNDARY"),
    ("content_type_garbage", "MIME_MALFORMED"),
    ("rfc2231_broken", "MIME_MALFORMED"),
    ("unterminated_html", "HTML_MALFORMED"),
    ("html_unclosed_comment", "HTML_MALFORMED"),
    ("html_deeply_nested", "HTML_MALFORMED"),
])
def test_malformed_message_records_its_fact(name: str, fact: str) -> None:
    assert fact in analyse_in_time(MALFORMED[name]).facts


@pytest.mark.parametrize("name", ["content_type_garbage", "rfc2231_broken"])
def test_a_parameter_fact_is_recorded_again_for_the_same_headers(name: str) -> None:
    """Parameters are parsed once per distinct header pair; every message still gets the fact."""
    first, second = analyse_in_time(MALFORMED[name]), analyse_in_time(MALFORMED[name])
    assert first.facts.items["MIME_MALFORMED"] == second.facts.items["MIME_MALFORMED"]


def test_text_survives_in_broken_messages() -> None:
    assert "first" in analyse_in_time(MALFORMED["boundary_never_closes"]).visible_text
    assert "text" in analyse_in_time(MALFORMED["multipart_without_boundary"]).visible_text
    assert "innermost" not in analyse_in_time(MALFORMED["nested_multiparts_2000"]).visible_text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=20000))
def test_random_bytes(raw: bytes) -> None:
    analyse_in_time(raw)


HEADER_NAMES = ["Subject", "From", "To", "Received", "Content-Type", "Content-Transfer-Encoding",
                "Content-Disposition", "X-Junk", "MIME-Version"]
CONTENT_TYPES = ["text/plain", "text/html", "multipart/mixed", "multipart/alternative", "message/rfc822",
                 "message/global", "message/global-headers", "application/octet-stream", "image/gif", "text",
                 "multipart/", ""]
ENCODINGS = ["", "7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"]
CHARSETS = ["", "utf-8", "koi8-r", "windows-1251", "iso-2022-jp", "gb2312", "x-unknown", "utf-16", "us-ascii"]
fragments = st.sampled_from([
    b"<html>", b"<div style='display:none'>", b"<a href='http://0x7f.1/'>www.example.com</a>", b"=?utf-8?B?",
    b"?=", b"=ZZ", b"\x00", b"\r", b"\n", b"--b", b"--b--", b"\n\n", b"http://", b"www.", b"\xff\xfe",
    b"<!--", b"<img src=x width=9>", b"filename*0*=utf-8''%E2", b"; boundary=b", b"=\n",
])
texts = st.lists(st.one_of(fragments, st.binary(max_size=40)), max_size=30).map(b"".join)


@st.composite
def mime_entities(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A random MIME entity: real structure with random, often broken, pieces in it."""
    headers = []
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=6)):
        headers.append(name.encode() + b": " + draw(texts))
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    boundary = draw(st.sampled_from([b"b", b"b2", b"x" * 80, b""]))
    params = b"; charset=" + charset.encode() if charset else b""
    if ctype.startswith("multipart") and boundary:
        params += b'; boundary="' + boundary + b'"'
    headers.append(b"Content-Type: " + ctype.encode() + params)
    headers.append(b"Content-Transfer-Encoding: " + draw(st.sampled_from(ENCODINGS)).encode())
    if ctype.startswith("multipart") and depth < 4:
        children = draw(st.lists(mime_entities(depth + 1), max_size=4))
        closing = draw(st.booleans())
        body = b"".join(b"--" + boundary + b"\n" + child + b"\n" for child in children)
        body += b"--" + boundary + b"--\n" if closing else b""
    elif ctype in ("message/rfc822", "message/global") and depth < 4:
        body = draw(mime_entities(depth + 1))
    else:
        body = draw(texts)
    separator = draw(st.sampled_from([b"\n\n", b"\r\n\r\n", b"\n", b""]))
    return b"\n".join(headers) + separator + body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mime_entities())
def test_random_structured_mime(raw: bytes) -> None:
    analyse_in_time(raw)
