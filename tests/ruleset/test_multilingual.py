"""Correct mail in Russian, German and Czech scores nothing for its language or charset.

Each message is an ordinary letter in its own language, in the charsets such mail really uses
(KOI8-R, windows-1251, ISO-8859-2, ISO-8859-1, UTF-8), declared correctly, with normal headers.
It must stay well below the threshold and hit no rule about charsets or encodings: a filter that
charges for non-ASCII text fails everyone who does not write English.
"""

from __future__ import annotations

import base64
import quopri
from email.header import Header

import pytest

from tests.ruleset.messages import BASE_HEADERS
from tests.ruleset.test_rules import SCANNER

RUSSIAN = (
    "Добрый день, Сергей!\n\nВысылаю протокол вчерашнего совещания и обновлённый график работ на "
    "сентябрь. Обратите внимание на сроки по второму этапу: заказчик просит сдать отчёт до пятницы.\n\n"
    "Если будут вопросы, звоните мне в любое время.\n\nС уважением,\nОльга Петрова\n"
)
GERMAN = (
    "Hallo Jürgen,\n\nvielen Dank für die schnelle Rückmeldung. Ich habe die Änderungen am Entwurf "
    "übernommen und die Tabelle mit den Zahlen für das dritte Quartal ergänzt. Können wir uns am "
    "Donnerstag um 14 Uhr kurz abstimmen?\n\nViele Grüße\nSabine Müller\n"
)
CZECH = (
    "Dobrý den, pane Dvořáku,\n\nposílám Vám upravenou smlouvu a přílohu s harmonogramem prací. "
    "Prosím o kontrolu článku čtyři, kde jsme změnili termín předání díla. Ozvěte se mi, prosím, "
    "do středy.\n\nS pozdravem\nJiří Novák\n"
)
# (language sample, subject, charset, transfer encoding)
LETTERS = [
    (RUSSIAN, "Протокол совещания", "koi8-r", "8bit"),
    (RUSSIAN, "Протокол совещания", "windows-1251", "8bit"),
    (RUSSIAN, "Протокол совещания", "windows-1251", "quoted-printable"),
    (RUSSIAN, "Протокол совещания", "utf-8", "base64"),
    (GERMAN, "Änderungen am Entwurf", "iso-8859-1", "8bit"),
    (GERMAN, "Änderungen am Entwurf", "iso-8859-15", "quoted-printable"),
    (GERMAN, "Änderungen am Entwurf", "utf-8", "8bit"),
    (CZECH, "Upravená smlouva", "iso-8859-2", "8bit"),
    (CZECH, "Upravená smlouva", "windows-1250", "quoted-printable"),
    (CZECH, "Upravená smlouva", "utf-8", "base64"),
]
# Words in a rule's name or description that mark it as being about charsets or encodings.
ENCODING_WORDS = ("charset", "8-bit", "8bit", "encod", "base64", "quoted", "cyrillic", "non-ascii",
                  "language", "script", "mime")


def _encode(body: str, charset: str, transfer_encoding: str) -> bytes:
    data = body.encode(charset)
    if transfer_encoding == "base64":
        return base64.encodebytes(data)
    if transfer_encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


def letter(body: str, subject: str, charset: str, transfer_encoding: str) -> bytes:
    headers = dict(BASE_HEADERS)
    headers["Subject"] = Header(subject, charset).encode()
    headers["From"] = f"{Header(body.splitlines()[-1], charset).encode()} <sender@example.org>"
    headers["Content-Type"] = f"text/plain; charset={charset}"
    headers["Content-Transfer-Encoding"] = transfer_encoding
    block = "".join(f"{k}: {v}\n" for k, v in headers.items()).encode("ascii")
    return block + b"\n" + _encode(body, charset, transfer_encoding)


@pytest.mark.parametrize(("body", "subject", "charset", "transfer_encoding"), LETTERS,
                         ids=[f"{b.split()[0]}-{c}-{t}" for b, _, c, t in LETTERS])
def test_correct_non_ascii_mail_is_not_charged(body: str, subject: str, charset: str,
                                               transfer_encoding: str) -> None:
    result = SCANNER.scan(letter(body, subject, charset, transfer_encoding))
    assert result.score < 1, result.hits
    about_encoding = [h.name for h in result.hits
                      if any(w in (h.name + " " + h.description).lower() for w in ENCODING_WORDS)]
    assert not about_encoding, result.hits


def test_the_letters_really_are_decoded() -> None:
    """Guard against a vacuous pass: the text must reach the rules as words, not mojibake."""
    from mailsift.analysis.parse import analyse

    msg = analyse(letter(*LETTERS[0]), SCANNER.config, None, None)
    assert "совещания" in msg.visible_text
