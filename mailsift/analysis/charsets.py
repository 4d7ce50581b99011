"""Turning bytes into text: the declared charset first, detection when it is missing, unknown or wrong.

Mail clients label charsets loosely (`ks_c_5601-1987`, `x-sjis`, `gb2312` for GBK text, `iso-8859-1`
for Windows text with curly quotes). Mapping those labels to the superset codecs that browsers and
mail readers really use decodes ham the way its author saw it, so correct multilingual mail never
reaches the detection fallback nor gets an anomaly fact.
"""

from __future__ import annotations

import codecs
import importlib
import re
from dataclasses import dataclass
from functools import lru_cache

from charset_normalizer import from_bytes
from charset_normalizer.constant import IANA_SUPPORTED

# Labels seen in real mail -> the codec that decodes what senders actually produce (WHATWG-style).
ALIASES: dict[str, str] = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cn-gb": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-sjis": "cp932",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jis_2004",
    "euc-jp": "euc_jis_2004",
    "iso-2022-jp": "iso2022_jp_ext",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-user-defined": "cp1252",
    "default": "cp1252",
    "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
}

# How many bytes detection looks at: enough to be sure, bounded so a huge part stays cheap.
DETECT_SAMPLE = 32 * 1024
# Detection needs evidence. 140 of its 193 calls on the corpus had at most ten 8-bit bytes, mostly
# English text with a stray one (a Hotmail footer's \x92 quote), and for 113 of those it named a
# Central European or Baltic code page (cp1250, cp775, cp852). Below this many 8-bit bytes the
# Windows Western code page is the better guess, and it spares the detector (~1 ms a call, 15-40 ms
# for its first call in a process while it loads its tables).
DETECT_MIN_8BIT = 16
ASCII_BYTES = bytes(range(128))


@dataclass(slots=True)
class Decoded:
    text: str
    charset: str  # the codec actually used, '' if none could be found
    detected: bool  # True when the declared charset was not used
    problem: str  # '' or the fact name that explains why detection was needed


# Python codecs that decode no mail text: bytes-to-bytes and text-to-text transforms, which
# `bytes.decode` refuses with LookupError, and codecs for host names and Python literals or that
# always fail. A sender who declares one ("charset=hex", "=?idna?Q?...?=") gets CHARSET_UNKNOWN
# or HEADER_BAD_ENCODED_WORD, as for a label no codec knows, instead of an analysis error.
NOT_CHARSETS = frozenset({"base64", "bz2", "hex", "quopri", "uu", "zlib", "rot-13",
                          "idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
# Python's UTF-7 decoder, alone of the codecs a label can name, passes on a lone surrogate
# ("+2AA-" is U+D800) instead of refusing it or replacing it, also with errors="replace". No
# UTF-8 writer takes one: a text part, Subject, display name or file name holding it stopped the
# message page (500), `mailsift check` ("internal error: UnicodeEncodeError") and X-Spam-Report
# (actions.report_header). Such a unit is replaced by U+FFFD, as every other decoder replaces
# what it cannot read (`well_formed`).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _lookup(name: str) -> str:
    try:
        found = codecs.lookup(name).name
    except (LookupError, ValueError):
        return ""
    return "" if found in NOT_CHARSETS else found


@lru_cache(maxsize=512)
def codecs_for(label: str) -> tuple[str, ...]:
    """The codecs to try for a charset label, superset first; empty when no codec knows it.

    The label's own codec stays as second choice because the superset is not a strict one for
    every byte (Windows-1252 leaves five bytes undefined that ISO-8859-1 maps).
    """
    name = label.strip().strip("\"'").lower()
    found = (_lookup(ALIASES.get(name, name)), _lookup(name))
    return tuple(dict.fromkeys(c for c in found if c))


def codec_for(label: str) -> str:
    """The preferred Python codec for a charset label, or '' when no codec knows it."""
    found = codecs_for(label)
    return found[0] if found else ""


def detect(data: bytes) -> str:
    """The codec charset-normalizer finds most plausible for `data`, '' when it finds none."""
    best = from_bytes(data[:DETECT_SAMPLE]).best()
    return codec_for(best.encoding) if best is not None else ""


# Western, Cyrillic and Chinese text for warm_up: detection's first pass over each script fills
# its caches.
WARM_UP_SAMPLES = (("Grüße aus Köln, café crème " * 20).encode("cp1252"),
                   ("Привет, как дела? " * 20).encode("cp1251"),
                   ("你好，欢迎光临 " * 20).encode("gb18030"))


def warm_up() -> None:
    """Do detection's one-time work now, in a process that scores for a long time.

    charset-normalizer imports the module of every codec it tries on first use and caches facts
    per character: a process's first detection took 15-40 ms instead of ~1-2 ms. In the milter
    that first message held a scoring worker, and every message queued behind it waited too.
    """
    for name in IANA_SUPPORTED:
        importlib.import_module(f"encodings.{name}")
    for sample in WARM_UP_SAMPLES:
        detect(sample)


def decode(data: bytes, declared: str) -> Decoded:
    """Decode `data` with the declared charset label, falling back to detection.

    Pure ASCII skips all work: most mail is ASCII and ASCII is valid in every charset worth
    declaring. UTF-8 is tried before detection when nothing is declared because it is what modern
    clients send unlabeled, and detection on short texts guesses worse than that.
    """
    if data.isascii() and not declared.lower().startswith(("utf-16", "utf-32", "utf-7", "unicode")):
        return Decoded(data.decode("ascii"), codec_for(declared) or "ascii", False, "")
    codec = ""
    if declared:
        tried = codecs_for(declared)
        for codec in tried:
            try:
                return Decoded(_decoded(data, codec), codec, False, "")
            except UnicodeDecodeError:
                pass
        problem = "CHARSET_MISMATCH" if tried else "CHARSET_UNKNOWN"
    else:
        try:
            return Decoded(data.decode("utf-8"), "utf-8", False, "")
        except UnicodeDecodeError:
            problem = "CHARSET_MISSING_8BIT"
    return Decoded(*_fallback(data, codec), True, problem)


def _fallback(data: bytes, codec: str) -> tuple[str, str]:
    """Text and codec when the declared charset failed or was missing; `codec` is the one that failed.

    With few 8-bit bytes the declared codec still decodes the rest best (UTF-8 text with one stray
    byte keeps its accents) unless it is ASCII, the label of senders who never thought about
    charsets; then, as with no label, Windows-1252, the de facto default of unlabeled Western mail.
    """
    sample = data[:DETECT_SAMPLE]
    if len(sample.translate(None, ASCII_BYTES)) < DETECT_MIN_8BIT:
        found = codec if codec not in ("", "ascii") else "cp1252"
    else:
        found = detect(sample) or codec or "cp1252"
    return _decoded(data, found, "replace"), found


def _decoded(data: bytes, codec: str, errors: str = "strict") -> str:
    """`data` decoded with `codec`, never holding a lone surrogate (see LONE_SURROGATE)."""
    text = data.decode(codec, errors)
    return well_formed(text) if codec == "utf-7" else text


def well_formed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (see LONE_SURROGATE)."""
    return LONE_SURROGATE.sub("\ufffd", text)


def decode_short(data: bytes, declared: str) -> tuple[str, bool]:
    """Decode a short string such as an encoded word; returns (text, ok) without running detection.

    Detection on a handful of bytes is unreliable and slow, so headers fall back to UTF-8 and then
    Windows-1252 (which maps every byte) instead.
    """
    for codec in codecs_for(declared) if declared else ("utf-8",):
        try:
            return _decoded(data, codec), True
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), False
