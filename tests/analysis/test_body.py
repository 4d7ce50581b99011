"""Text parts: transfer encodings, charsets with detection fallback, attachments."""

from __future__ import annotations

import base64

import pytest

from mailsift.analysis.mime import HEADER_BLOCK_TYPES
from tests.analysis.helpers import (
    b64,
    build,
    multipart,
    multipart_message,
    part,
    run,
    simple,
    transfer_encoded,
)

RUSSIAN = "Здравствуйте! Это обычное письмо на русском языке, без всякой рекламы. Всего доброго."


def test_quoted_printable_body_is_decoded_with_declared_charset() -> None:
    message = run(simple("Gr=FC=DFe,=\n weiter\n", "text/plain; charset=iso-8859-1", "quoted-printable"))
    part_ = message.text_parts[0]
    assert part_.text == "Grüße, weiter\n"
    assert (part_.declared_charset, part_.transfer_encoding, part_.charset_detected) == (
        "iso-8859-1", "quoted-printable", False)


def test_base64_body_is_decoded() -> None:
    message = run(simple(b64(RUSSIAN.encode("koi8-r")), "text/plain; charset=KOI8-R", "base64"))
    assert message.text_parts[0].text == RUSSIAN
    assert not message.text_parts[0].needless_base64
    assert not message.facts.items


def test_needless_base64_is_flagged() -> None:
    message = run(simple(b64("Buy cheap meds now\n"), "text/plain; charset=us-ascii", "base64"))
    assert message.text_parts[0].needless_base64
    assert "MIME_BASE64_TEXT" in message.facts


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "iso-8859-5", "utf-8"])
def test_correct_multilingual_mail_gets_no_fact(charset: str) -> None:
    message = run(simple(RUSSIAN.encode(charset), f"text/plain; charset={charset}", "8bit"))
    assert message.text_parts[0].text == RUSSIAN
    assert not message.facts.items


def test_correct_central_european_mail_gets_no_fact() -> None:
    text = "Dzień dobry, przesyłam zaległą fakturę. Pozdrawiam serdecznie, Łukasz Żółkiewski"
    message = run(simple(text.encode("iso-8859-2"), "text/plain; charset=iso-8859-2", "8bit"))
    assert message.text_parts[0].text == text
    assert not message.facts.items


def test_wrong_charset_falls_back_to_detection() -> None:
    message = run(simple(RUSSIAN.encode("windows-1251"), "text/plain; charset=utf-8", "8bit"))
    part_ = message.text_parts[0]
    assert part_.text == RUSSIAN
    assert part_.charset_detected
    assert "CHARSET_MISMATCH" in message.facts


def test_missing_charset_falls_back_to_detection() -> None:
    message = run(simple(RUSSIAN.encode("windows-1251"), "text/plain", "8bit"))
    assert message.text_parts[0].text == RUSSIAN
    assert "CHARSET_MISSING_8BIT" in message.facts


def test_missing_charset_with_utf8_text_needs_no_detection() -> None:
    message = run(simple(RUSSIAN.encode(), "text/plain", "8bit"))
    assert message.text_parts[0].text == RUSSIAN
    assert not message.text_parts[0].charset_detected
    assert not message.facts.items


def test_unknown_charset_falls_back_to_detection() -> None:
    message = run(simple(RUSSIAN.encode("koi8-r"), "text/plain; charset=x-martian", "8bit"))
    assert message.text_parts[0].text == RUSSIAN
    assert "CHARSET_UNKNOWN" in message.facts


def _no_detection(data: bytes) -> str:
    raise AssertionError("detection ran on a text with a few 8-bit bytes")


def test_stray_windows_quote_without_charset_is_windows_1252(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hotmail's footer: one \x92 in English. Detection named Baltic or Central European code pages."""
    monkeypatch.setattr("mailsift.analysis.charsets.detect", _no_detection)
    message = run(simple(b"Join the world\x92s largest e-mail service\n", "text/plain", "8bit"))
    assert message.text_parts[0].text == "Join the world\u2019s largest e-mail service\n"
    assert "CHARSET_MISSING_8BIT" in message.facts


def test_utf8_text_with_a_stray_byte_keeps_its_accents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailsift.analysis.charsets.detect", _no_detection)
    body = "Grüße aus Köln".encode() + b"\x92 \n"
    message = run(simple(body, "text/plain; charset=utf-8", "8bit"))
    assert message.text_parts[0].text == "Grüße aus Köln\ufffd \n"
    assert "CHARSET_MISMATCH" in message.facts


def test_charset_aliases_used_by_real_clients() -> None:
    korean = "안녕하세요 반갑습니다"
    message = run(simple(korean.encode("cp949"), "text/plain; charset=ks_c_5601-1987", "8bit"))
    assert message.text_parts[0].text == korean
    assert not message.facts.items


def test_multipart_alternative_gives_both_parts_in_order() -> None:
    raw = multipart_message([
        part("text/plain; charset=utf-8", "plain version"),
        part("text/html; charset=utf-8", "<p>html version</p>"),
    ], "alternative")
    message = run(raw)
    assert [(p.content_type, p.text) for p in message.text_parts] == [
        ("text/plain", "plain version"), ("text/html", "html version")]
    assert message.mime_parts == 3
    assert message.max_depth == 1
    assert "plain version" in message.visible_text


def test_attachment_with_rfc2231_filename_and_double_extension() -> None:
    exe = b"MZ\x90\x00\x03" + b"\x00" * 200
    disposition = "attachment;\n filename*0*=utf-8''Rechnung%20M%C3%A4rz;\n filename*1=.pdf.exe"
    raw = multipart_message([
        part("text/plain", "see attachment"),
        part("application/pdf", b64(exe), "base64", disposition),
    ])
    attachment = run(raw).attachments[0]
    assert attachment.filename == "Rechnung März.pdf.exe"
    assert attachment.declared_type == "application/pdf"
    assert attachment.sniffed_type == "application/x-msdownload"
    assert attachment.size == len(exe)
    assert attachment.extensions == ["pdf", "exe"]
    assert attachment.double_extension


def test_rfc2047_filename_and_name_parameter() -> None:
    name = "=?utf-8?B?" + base64.b64encode("отчёт.docx".encode()).decode() + "?="
    raw = multipart_message([part(f'application/octet-stream; name="{name}"', b64(b"PK\x03\x04"), "base64")])
    attachment = run(raw).attachments[0]
    assert attachment.filename == "отчёт.docx"
    assert attachment.extensions == ["docx"]
    assert not attachment.double_extension


def test_dotted_names_are_not_double_extensions() -> None:
    raw = multipart_message([part("application/pdf", b64(b"%PDF-1.4"), "base64",
                                  'attachment; filename="report.2024.J.Smith.pdf"')])
    attachment = run(raw).attachments[0]
    assert attachment.extensions == ["pdf"]
    assert attachment.sniffed_type == "application/pdf"


def test_embedded_message_is_walked() -> None:
    inner = b"Subject: inner\nContent-Type: text/plain\n\ninner text\n"
    raw = multipart_message([part("text/plain", "outer"), part("message/rfc822", inner)])
    message = run(raw)
    assert [p.text for p in message.text_parts] == ["outer", "inner text\n"]
    assert message.max_depth == 2
    assert message.subject == "test"


def test_a_message_global_part_is_walked_like_message_rfc822() -> None:
    """RFC 6532's message/global encloses SMTPUTF8 mail, whose header fields may be UTF-8: it
    was a leaf, an attachment without text, so its headers and text were never read."""
    inner = ("From: Jörg <jörg@bücher.example>\nSubject: Grüße\n"
             "Content-Type: text/plain; charset=utf-8\n\nHallo Welt\n")
    raw = multipart_message([part("text/plain", "outer"), part("message/global", inner, "8bit")])
    message = run(raw)
    assert [p.text for p in message.text_parts] == ["outer", "Hallo Welt\n"]
    assert ("Subject", "Grüße") in message.part_headers[2]
    assert message.attachments == []


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
@pytest.mark.parametrize("content_type", ["message/global", "message/rfc822"])
def test_an_encoded_enclosed_message_is_decoded_before_it_is_walked(content_type: str, encoding: str) -> None:
    """RFC 6532 lets message/global be base64 or quoted-printable encoded (over a path without
    8BITMIME); RFC 2046 5.2.1 forbids it for message/rfc822, but bouncers send it so, and the
    encoded text was read as a message without headers: its Subject and text were lost. A
    header line too long for quoted-printable is cut by a soft line break, which is undone."""
    subject = ", ".join(["Grüße aus München"] * 6)
    inner = f"Subject: {subject}\nContent-Type: text/plain\n\nHallo Welt\n"
    message = run(multipart_message([part(content_type, transfer_encoded(inner, encoding), encoding)]))
    assert [p.text for p in message.text_parts] == ["Hallo Welt\n"]
    assert message.part_headers[1] == [("Subject", subject), ("Content-Type", "text/plain")]
    assert message.facts.items == {}


@pytest.mark.parametrize("content_type", sorted(HEADER_BLOCK_TYPES))
def test_a_part_holding_a_header_block_is_read_as_text_and_is_no_attachment(content_type: str) -> None:
    """message/global-headers (RFC 6533) is text/rfc822-headers for SMTPUTF8 mail, UTF-8
    without a charset; message/rfc822-headers is a label some report senders give the same
    block. Both were opaque attachments: their text was not shown or read. Once read as text
    they still counted as attachments, which text/rfc822-headers never did: a bounce of
    SMTPUTF8 mail showed one on the quarantine page, and attachment rules and Bayes saw it."""
    block = "Received: by mx.bücher.example; Mon, 4 Mar 2024 09:12:01 +0100\nSubject: Grüße\n"
    message = run(multipart_message([part(content_type, block, "8bit")]))
    assert [(p.content_type, p.text) for p in message.text_parts] == [(content_type, block)]
    assert message.attachments == []
    assert "CHARSET_MISSING_8BIT" not in message.facts


def test_utf7_with_a_lone_surrogate_decodes_to_text_that_can_be_written() -> None:
    """Python's UTF-7 decoder passes "+2AA-" on as U+D800, which no UTF-8 writer takes: the
    message page of such a held message failed (500), and `mailsift check` stopped with
    "internal error: UnicodeEncodeError" on its file name in ATTACH_EXECUTABLE's evidence. Each
    place the analysis decodes UTF-7 now gives U+FFFD for it, as other decoders replace what
    they cannot read."""
    raw = build([("From", "=?utf-7?Q?+2AA-Bank?= <a@example.com>"), ("To", "b@example.org"),
                 ("Subject", "=?utf-7?B?KzJBQS0=?= free"), ("MIME-Version", "1.0"),
                 ("Content-Type", 'multipart/mixed; boundary="b"')],
                multipart([part("text/plain; charset=utf-7", "Hello +2AA- world"),
                           part("application/octet-stream", "MZ",
                                disposition="attachment; filename*=utf-7''%2B2AA-.exe")], boundary="b"))
    message = run(raw)
    assert message.subject == "\ufffd free"
    assert message.addresses("From") == [("\ufffdBank", "a@example.com")]
    assert [p.text for p in message.text_parts] == ["Hello \ufffd world"]
    assert [a.filename for a in message.attachments] == ["\ufffd.exe"]
