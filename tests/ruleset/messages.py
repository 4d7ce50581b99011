"""Building small test messages in code: an ordinary letter, and the changes that make it spam.

Every ruleset case starts from the same plain, correct letter (`mail()` with no arguments) and
changes only what its rule is about, so a hit can be blamed on that change and nothing else.
"""

from __future__ import annotations

import base64
import io
import zipfile

ARRIVED = "Tue, 06 Aug 2002 10:55:17 +0100"
SENT = "Tue, 06 Aug 2002 10:50:02 +0100"
LETTER = (
    "Hi Tom,\n\nthanks for the notes from Monday. I have put the figures for the third quarter in the "
    "shared folder and added a short summary of what changed since the last review.\n\n"
    "Could you look at the second table before Thursday? The totals for the northern region do not "
    "match the numbers Anna sent, and I would like to understand why before we meet.\n\nBest,\nJane\n"
)
BASE_HEADERS: dict[str, str] = {
    "Received": f"from mail.example.org (mail.example.org [192.0.2.10]) by mx.example.net "
                f"(Postfix) with ESMTP id 8399C44126; {ARRIVED}",
    "From": "Jane Miller <jane@example.org>",
    "To": "Tom Baker <tom@example.net>",
    "Subject": "Quarterly figures",
    "Date": SENT,
    "Message-ID": "<20020806095002.GA1234@mail.example.org>",
    "MIME-Version": "1.0",
}


def _header_block(headers: dict[str, str | None]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in headers.items() if value is not None)


def mail(body: str = LETTER, *, subject: str | None = None, headers: dict[str, str | None] | None = None,
         content_type: str = "text/plain; charset=utf-8", charset: str = "utf-8",
         transfer_encoding: str = "8bit") -> bytes:
    """A single-part message. A header given as None is left out; `charset` encodes the body."""
    fields: dict[str, str | None] = dict(BASE_HEADERS)
    if subject is not None:
        fields["Subject"] = subject
    fields.update(headers or {})
    fields["Content-Type"] = content_type
    fields["Content-Transfer-Encoding"] = transfer_encoding
    payload = body.encode(charset)
    if transfer_encoding == "base64":
        payload = base64.encodebytes(payload)
    return _header_block(fields).encode("ascii") + b"\n" + payload


def html_mail(html: str, *, text: str | None = None, subject: str | None = None,
              headers: dict[str, str | None] | None = None) -> bytes:
    """HTML alone, or with a plain-text alternative when `text` is given."""
    if text is None:
        return mail(html, subject=subject, headers=headers, content_type="text/html; charset=utf-8")
    body = (
        "--alt\nContent-Type: text/plain; charset=utf-8\n\n" + text + "\n"
        "--alt\nContent-Type: text/html; charset=utf-8\n\n" + html + "\n--alt--\n"
    )
    return mail(body, subject=subject, headers=headers,
                content_type='multipart/alternative; boundary="alt"')


def with_attachment(filename: str, content: bytes = b"%PDF-1.4 sample\n", *, text: str = LETTER,
                    content_type: str = "application/octet-stream") -> bytes:
    """The ordinary letter with one base64 attachment."""
    encoded = base64.encodebytes(content).decode("ascii")
    body = (
        "--mix\nContent-Type: text/plain; charset=utf-8\n\n" + text + "\n"
        f'--mix\nContent-Type: {content_type}; name="{filename}"\n'
        f'Content-Disposition: attachment; filename="{filename}"\n'
        "Content-Transfer-Encoding: base64\n\n" + encoded + "--mix--\n"
    )
    return mail(body, content_type='multipart/mixed; boundary="mix"')


def zip_of(*names: str, content: bytes = b"%PDF-1.4 sample\n", encrypted: bool = False) -> bytes:
    """A zip archive as the stdlib writes it, each member holding `content`.

    `encrypted` sets the encryption flag in every member's local and central header, which is
    all a reader of the member list can see of encryption (the stdlib cannot write encrypted zips;
    the content is left as it is).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, content)
    data = buffer.getvalue()
    if encrypted:
        data = _set_encrypted(data)
    return data


def _set_encrypted(data: bytes) -> bytes:
    """Bit 0 of the general purpose flags, at offset 6 of a local and 8 of a central header."""
    out = bytearray(data)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = out.find(signature)
        while start >= 0:
            out[start + flags_at] |= 1
            start = out.find(signature, start + 4)
    return bytes(out)


def raw(text: str) -> bytes:
    """A message written out by hand, for broken structure the builders refuse to make."""
    return text.encode("utf-8", "surrogateescape")


def html_page(inner: str) -> str:
    return f"<html><body>{inner}</body></html>"
