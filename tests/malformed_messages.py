"""Hand-made broken messages, shared by the analysis tests and (later) the scoring tests.

`MALFORMED` maps a descriptive name to the raw bytes of one message. The big ones (megabytes of
one line, thousands of nested parts) are built on first access only, so importing this module
stays cheap.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping

HEAD = b"From: a@example.com\nTo: b@example.org\nSubject: test\nMessage-ID: <1@example.com>\n"


def _mime(ctype: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return HEAD + b"MIME-Version: 1.0\nContent-Type: " + ctype + b"\n" + extra + b"\n" + body


def _nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n" % (i, i + 1) for i in range(depth))
    closing = b"".join(b"--b%d--\n" % i for i in reversed(range(depth + 1)))
    return _mime(b'multipart/mixed; boundary="b0"', opening + b"--b%d\n\ninnermost\n" % depth + closing)


def _nested_messages(depth: int) -> bytes:
    layer = b"Content-Type: message/rfc822\n\n"
    return HEAD + b"MIME-Version: 1.0\n" + layer * depth + b"\ninnermost\n"


def _many_parts(count: int) -> bytes:
    parts = b"".join(b"--sep\nContent-Type: text/plain\n\npart %d\n" % i for i in range(count))
    return _mime(b'multipart/mixed; boundary="sep"', parts + b"--sep--\n")


def _garbage(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _hostile_addresses(value: bytes) -> bytes:
    return b"".join(name + b": " + value + b"\n" for name in (b"From", b"To", b"Cc", b"Reply-To",
                                                             b"Return-Path")) + b"Subject: x\n\nbody\n"


def _broken_multipart(boundary: bytes, parts: bytes) -> bytes:
    return _mime(b'multipart/mixed; boundary="' + boundary + b'"', parts)


BUILDERS: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "only_newlines": lambda: b"\n\n\n\r\n\r\n",
    "mbox_line_only": lambda: b"From someone@example.com Mon Jan  1 00:00:00 2024\n",
    "no_separator": lambda: HEAD + b"This line should be body but there is no empty line\nmore\n",
    "no_headers": lambda: b"Hello there,\nthis message has no header at all.\n",
    "binary_garbage": lambda: _garbage(8192, 1),
    "binary_garbage_after_headers": lambda: HEAD + b"\n" + _garbage(16384, 2),
    "nul_in_headers": lambda: b"From: a@exa\0mple.com\nSubject: nul\0here\n\nbody\n",
    "nul_in_body": lambda: HEAD + b"\nsome\0text\0with NULs\n",
    "single_line_5mb": lambda: HEAD + b"\n" + b"A" * (5 * 1024 * 1024),
    "single_line_5mb_no_headers": lambda: b"x" * (5 * 1024 * 1024),
    # Unbroken lines in the shapes that make a backtracking pattern quadratic: any \S+ that
    # must be followed by something the line never has.
    "single_line_1mb_slashes": lambda: HEAD + b"\n" + b"ab/" * (1024 * 1024 // 3),
    "single_line_1mb_dots": lambda: HEAD + b"\n" + b"a." * (1024 * 1024 // 2),
    "single_line_1mb_angles": lambda: HEAD + b"\n" + b"<" * (1024 * 1024),
    "single_line_1mb_schemes": lambda: HEAD + b"\n" + b"x://" * (1024 * 1024 // 4),
    "header_1mb": lambda: b"Subject: " + b"spam " * (1024 * 1024 // 5) + b"\n" + HEAD + b"\nbody\n",
    "header_1mb_folded": lambda: b"X-Junk: start\n" + b"\tmore folded junk\n" * 60000 + HEAD + b"\nbody\n",
    "many_header_lines": lambda: b"".join(b"X-H%d: v\n" % i for i in range(50000)) + b"\nbody\n",
    "continuation_first": lambda: b"  starts folded\n" + HEAD + b"\nbody\n",
    "garbage_line_in_headers": lambda: b"From: a@example.com\n!!! no colon here\nSubject: x\n\nbody\n",
    "invalid_base64": lambda: _mime(b"text/plain", b"!!!! not base64 @@@@\n%%%%\n",
                                    b"Content-Transfer-Encoding: base64\n"),
    "base64_bad_padding": lambda: _mime(b"text/plain", b"SGVsbG8gd29ybGQ\n=\n==\nQQ",
                                        b"Content-Transfer-Encoding: base64\n"),
    "qp_garbage": lambda: _mime(b"text/plain", b"=ZZ=Q=\n==\n=\n=4",
                                b"Content-Transfer-Encoding: quoted-printable\n"),
    "cte_garbage": lambda: _mime(b"text/plain", b"body", b"Content-Transfer-Encoding: \xff\xfe-bogus; x=y\n"),
    "unknown_charset": lambda: _mime(b"text/plain; charset=x-no-such-charset", "Привет мир".encode("koi8-r")),
    "wrong_charset": lambda: _mime(b"text/plain; charset=utf-8", "Здравствуйте, друзья".encode("koi8-r")),
    "utf16_odd_length": lambda: _mime(b"text/plain; charset=utf-16", b"\xff\xfeA\x00B"),
    # Python codecs that are no charset: transforms that bytes.decode refuses (LookupError),
    # and codecs for host names or Python literals that raise even with errors="replace".
    "charset_is_a_transform": lambda: _mime(b"text/plain; charset=quopri", "Grüße".encode("latin-1")),
    "charset_is_idna": lambda: _mime(b"text/plain; charset=idna", "Grüße ".encode("latin-1") * 3),
    "charset_is_punycode": lambda: _mime(b"text/plain; charset=punycode", b"a-\xff" * 5),
    "encoded_words_in_python_codecs": lambda: (b"Subject: =?rot13?Q?nop?= and =?idna?Q?a..b?= and "
                                               b"=?undefined?B?YQ==?=\n" + HEAD + b"\nbody\n"),
    # Its instant is in year 10000 in UTC, which no datetime holds.
    "received_date_year_9999_west": lambda: (b"Received: from a (b [192.0.2.1]) by c; "
                                             b"Fri, 31 Dec 9999 23:59:59 -1400\n"
                                             b"Date: Mon, 1 Jan 2001 00:00:00 +0000\n" + HEAD + b"\nx\n"),
    "iso2022jp_bad_escapes": lambda: _mime(b"text/plain; charset=iso-2022-jp", b"\x1b$B\x1b(\x1b$Z\xff\xfe"),
    "broken_rfc2047": lambda: (b"Subject: =?utf-8?B?!!!?= =?x-unknown?Q?abc?= =?utf-8?Q?=FF=FE?= =?utf-8?\n"
                               b"From: =?koi8-r?B?8NLJ1w?= <a@b.c>\nTo: =?=?=??==?\n\nbody\n"),
    "nested_multiparts_2000": lambda: _nested_multiparts(2000),
    "nested_messages_2000": lambda: _nested_messages(2000),
    "parts_5000": lambda: _many_parts(5000),
    "boundary_never_closes": lambda: _broken_multipart(b"open", b"--open\n\nfirst\n--open\n\nsecond\n"),
    "boundary_never_found": lambda: _broken_multipart(b"absent", b"--other\n\ntext\n--other--\n"),
    "multipart_without_boundary": lambda: _mime(b"multipart/mixed", b"--x\n\ntext\n--x--\n"),
    "boundary_regex_metachars": lambda: _broken_multipart(b"(.*)+[a-z]{2,}?$\\",
                                                          b"--(.*)+[a-z]{2,}?$\\\n\nx\n"),
    "boundary_5000_chars": lambda: _broken_multipart(b"b" * 5000, b"--" + b"b" * 5000 + b"\n\nx\n"),
    "content_type_garbage": lambda: _mime(b"\x01\x02///;;;==\"", b"body"),
    "content_type_no_subtype": lambda: _mime(b"multipart/; boundary=", b"body"),
    "rfc2231_broken": lambda: _mime(
        b"application/octet-stream; name*0*=bogus''%ZZ; name*2=x", b"data",
        b"Content-Disposition: attachment; filename*1*=utf-8''%E2%82; filename*0=\"a.pdf\"; filename*=\n"),
    "filename_weird": lambda: _mime(b"application/octet-stream", b"MZ\0\0",
                                    b"Content-Disposition: attachment; filename=\"..\\\\..\\\\a..exe.\"\n"),
    "unterminated_html": lambda: _mime(b"text/html", b"<html><body><p>Buy <a href=\"http://x.example/"),
    "html_unclosed_comment": lambda: _mime(b"text/html", b"<p>visible<!-- hidden forever <b>"),
    "html_deeply_nested": lambda: _mime(b"text/html", b"<div>" * 100000 + b"deep"),
    "html_absurd_attributes": lambda: _mime(b"text/html",
                                            b"<font size=99999999999999999999 color=rgb(999,-1,x)>"
                                            b"<span style=\"font-size:1e309px;color:#gg;display\">x</span>"
                                            b"<img width=999999 height=-5 src=//x>"),
    "uri_garbage": lambda: _mime(b"text/plain", b"http://[::1 http://%zz%/ http://0x.0x.0x.0x.0x/ "
                                 b"http://99999999999999999999/ www. http://xn--/ https://xn--zz--.com/ "
                                 b"http://a..b/ ftp://@:/"),
    "received_garbage": lambda: (b"Received: from [999.1.1.1] (x [300.2.3.4]) by ; ; ;\n"
                                 b"Received: from\nReceived: (from ( by ) with (id\n"
                                 b"Received: from a (b [1.2.3.4]) by c; 99 Foo 99999 99:99:99 +9999\n"
                                 + HEAD + b"\nx\n"),
    "cr_only_line_ends": lambda: HEAD.replace(b"\n", b"\r") + b"\rbody\r",
    "mixed_line_ends": lambda: b"From: a@b.c\r\nSubject: x\n\r\n--\r\rbody\n\r",
    "nul_in_boundary": lambda: _broken_multipart(b"a\0b", b"--a\0b\n\nx\n--a\0b--\n"),
    "message_rfc822_empty": lambda: _mime(b"message/rfc822", b""),
    # The stdlib address parser recurses per nested comment and per group.
    "address_comments_3000": lambda: _hostile_addresses(b"(" * 3000 + b"a@example.com"),
    "address_groups_3000": lambda: _hostile_addresses(b"g: " * 3000 + b"a@example.com;"),
}


class LazyMessages(Mapping[str, bytes]):
    """A read-only name -> bytes mapping that builds each message on first access."""

    def __init__(self, builders: dict[str, Callable[[], bytes]]) -> None:
        self._builders = builders
        self._built: dict[str, bytes] = {}

    def __getitem__(self, name: str) -> bytes:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


MALFORMED: Mapping[str, bytes] = LazyMessages(BUILDERS)
