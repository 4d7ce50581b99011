"""Translate Perl regular expressions, as written in SpamAssassin rule files, for the `regex` module.

Rule files hold patterns written for Perl (`/re/imsx`, `m{re}i`, `m!re!`...). Python's `regex`
module accepts most Perl syntax (possessive quantifiers, atomic groups, `\\K`, `\\h`, `\\R`, POSIX
classes, branch reset, scoped inline flags such as `a(?i)b`), so the translation rewrites only the
constructs whose meaning or spelling differs, and refuses the ones that cannot be carried over:

* `\\Z` is "end, or before a final newline" in Perl but "absolute end" in Python: it becomes
  `(?=\\n?\\Z)`, and Perl's `\\z` becomes `\\Z`.
* `\\Q...\\E` is quoted literally; `\\x{263A}`, `\\xA` (one hex digit), `\\o{...}`, `\\e`, `\\cX` and
  `\\N{U+263A}` become characters Python understands; `\\v`/`\\V` (vertical space in Perl, a vertical
  tab in Python) and `\\N` (not a newline) become explicit classes; `\\k<name>` and `\\g{name}`
  become `\\g<name>`.
* `$name`, `${...}`, `@{...}` (variable interpolation), case-modifying escapes (`\\U`, `\\L`, ...),
  embedded code `(?{...})`/`(??{...})` and backtracking verbs `(*...)` cannot be translated: they
  raise `TranslationError` with the reason.

Bytes versus text: SpamAssassin matches the message as bytes (UTF-8 octets for most mail), while
mailsift matches decoded Unicode `str`. Consequences, accepted deliberately:

* `\\w`, `\\b`, `\\s` and case-insensitive matching are Unicode-aware here: `\\w` matches `é` and
  `\\s` matches a no-break space, which is what the rule authors mean for decoded text. `\\d` is
  kept to ASCII `[0-9]` (outside bracket classes), as in Perl on bytes, so that phone-number and
  price rules do not start matching other scripts' digits.
* Byte escapes spelling UTF-8 encoded characters (`\\xc3\\xa9`, `[\\xc3][\\xa9\\xa8]`, or a lead
  byte followed by a group of continuation-byte alternatives) are turned into those characters
  (see `_ByteMerger`), so they match the decoded text as they matched the raw bytes. Byte escapes
  that do not decode (a lone `\\xe9`, a quantified byte) are kept: they then match the Latin-1
  character with that code, which is right for Latin-1 mail.
* `.` matches one character, not one byte; `{n}` counts characters.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import regex

# Perl modifiers we carry over, and those that do not change whether a pattern matches.
_KEPT_MODIFIERS = "imsx"
_IGNORED_MODIFIERS = "go"
_FLAG_BITS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "x": regex.VERBOSE}
_CLOSING = {"{": "}", "(": ")", "[": "]", "<": ">"}

# Perl's vertical and horizontal whitespace, spelled for use inside a bracket class.
_VERTICAL = r"\n\x0b\f\r\x85\u2028\u2029"
_HORIZONTAL = r"\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000"

# One lexical unit of a Perl pattern outside bracket classes.
_TOKEN = re.compile(
    r"""
    \\Q(?P<quoted>.*?)(?:\\E|\Z)
  | \\x\{(?P<xbrace>[^}]*)\}
  | \\x(?P<xhex>[0-9A-Fa-f]{1,2})?
  | \\o\{(?P<octal>[0-7]+)\}
  | \\c(?P<ctrl>.)
  | \\N\{U\+(?P<ucode>[0-9A-Fa-f]+)\}
  | \\[kg](?:<(?P<ref1>\w+)>|'(?P<ref2>\w+)'|\{(?P<ref3>\w+)\})
  | \\(?P<esc>.)
  | (?P<code>\(\?\??\{|\(\*)
  | (?P<comment>\(\?\#[^)]*\))
  | (?P<caret>\(\?\^)
  | (?P<open>\[)
  | (?P<var>[$@](?:\{|[A-Za-z_]\w*))
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# One item inside a bracket class.
_CLASS_ITEM = re.compile(
    r"""
    (?P<posix>\[:\^?[a-z]+:\])
  | \\x\{(?P<xbrace>[^}]*)\}
  | \\x(?P<xhex>[0-9A-Fa-f]{1,2})?
  | \\o\{(?P<octal>[0-7]+)\}
  | \\c(?P<ctrl>.)
  | \\N\{U\+(?P<ucode>[0-9A-Fa-f]+)\}
  | \\(?P<esc>.)
  | (?P<close>\])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Escapes whose Python spelling differs, outside and inside bracket classes.
_ESCAPES = {
    "Z": r"(?=\n?\Z)",
    "z": r"\Z",
    "e": r"\x1b",
    "v": f"[{_VERTICAL}]",
    "V": f"[^{_VERTICAL}]",
    "N": r"[^\n]",
    "d": "[0-9]",
    "D": "[^0-9]",
    "E": "",
}
_CLASS_ESCAPES = {"e": r"\x1b", "v": _VERTICAL, "h": _HORIZONTAL, "d": "0-9"}
_UNTRANSLATABLE_ESCAPES = {
    "U": r"case-modifying escape \U",
    "L": r"case-modifying escape \L",
    "u": r"case-modifying escape \u",
    "l": r"case-modifying escape \l",
    "F": r"case-modifying escape \F",
}


class TranslationError(ValueError):
    """A Perl pattern that cannot be carried over to Python; the message says why."""


def split_delimited(text: str) -> tuple[str, str, str]:
    """Split `/re/mods rest` or `m{re}mods rest` into (pattern body, modifiers, rest of the line).

    Perl lets any punctuation delimit a match (`m!...!`, `m#...#`, `m{...}` with nesting); an
    escaped delimiter inside the body loses its backslash, as Perl does before compiling, unless
    the delimiter is a regex metacharacter (then the escape is what keeps it literal).
    """
    text = text.lstrip()
    if text.startswith("/"):
        opener, pos = "/", 1
    elif len(text) > 1 and text[0] == "m" and not text[1].isalnum() and not text[1].isspace():
        opener, pos = text[1], 2
    else:
        raise TranslationError("expected a pattern like /.../ or m{...}")
    closer = _CLOSING.get(opener, opener)
    end = _find_closing(text, pos, opener, closer)
    body = text[pos:end]
    if opener == closer and opener not in r"\.^$|?*+()[]{}":
        body = body.replace("\\" + opener, opener)
    match = re.match(r"[A-Za-z]*", text[end + 1 :])
    modifiers = match.group() if match else ""
    return body, modifiers, text[end + 1 + len(modifiers) :].strip()


def _find_closing(text: str, pos: int, opener: str, closer: str) -> int:
    """Index of the delimiter closing the pattern that starts at `pos`, skipping escapes."""
    depth = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == closer and depth == 0:
            return pos
        if opener != closer:
            depth += (char == opener) - (char == closer)
        pos += 1
    raise TranslationError(f"no closing {closer!r} for the pattern")


def check_modifiers(modifiers: str) -> str:
    """The Python-relevant modifiers (subset of "imsx", in that order) of a Perl modifier string."""
    unknown = set(modifiers) - set(_KEPT_MODIFIERS + _IGNORED_MODIFIERS)
    if unknown:
        raise TranslationError(f"unsupported regex modifier(s) {''.join(sorted(unknown))!r}")
    return "".join(flag for flag in _KEPT_MODIFIERS if flag in modifiers)


def regex_flags(flags: str) -> int:
    """`regex` flag bits for a subset of "imsx"."""
    bits = 0
    for flag in flags:
        bits |= _FLAG_BITS[flag]
    return bits


@functools.cache
def compile_pattern(pattern: str, flags: str) -> regex.Pattern[str]:
    """Compile a translated pattern once per process; the engine and the parser share the cache."""
    return regex.compile(pattern, regex_flags(flags))


def translate(body: str, modifiers: str = "") -> tuple[str, str]:
    """Translate a Perl pattern body and its modifiers into (Python `regex` pattern, "imsx" flags).

    The result is known to compile (it is compiled here, and cached for `compile_pattern`).
    Raises `TranslationError` when the pattern uses Perl-only features or does not compile.
    """
    return translate_parts([body], modifiers)


def translate_parts(parts: list[str], modifiers: str = "") -> tuple[str, str]:
    """Like `translate`, for a pattern given as consecutive pieces translated one by one.

    `replace_tag` builds patterns from a few tag values repeated across many rules: translating
    the pieces separately lets each value be translated once per process. A piece must not split
    a bracket class or an escape; unbalanced parentheses are fine.
    """
    flags = check_modifiers(modifiers)
    pattern = "".join(_translate_fragment(part, "x" in flags) for part in parts)
    try:
        compile_pattern(pattern, flags)
    except (regex.error, OverflowError, ValueError) as exc:
        raise TranslationError(f"bad regex: {exc}") from None
    return pattern, flags


@functools.cache
def _translate_fragment(body: str, verbose: bool) -> str:
    """Translate (but do not compile) a pattern or a piece of one.

    The byte merger only runs where there are high-byte escapes: most patterns have none.
    """
    translated = _translate_body(body, verbose)
    return _ByteMerger(translated).merge() if _HIGH_BYTE.search(translated) else translated


def translate_delimited(text: str) -> tuple[str, str, str]:
    """Translate `/re/mods rest`: (Python pattern, flags, the rest of the line after the pattern)."""
    body, modifiers, rest = split_delimited(text)
    pattern, flags = translate(body, modifiers)
    return pattern, flags, rest


def _translate_body(body: str, verbose: bool) -> str:
    """Rewrite a pattern token by token outside bracket classes; classes go to `_translate_class`."""
    out: list[str] = []
    pos = 0
    while pos < len(body):
        if verbose and body[pos] == "#":  # an /x comment runs to the end of the line
            newline = body.find("\n", pos)
            pos = len(body) if newline < 0 else newline
            continue
        token = _TOKEN.match(body, pos)
        assert token is not None  # the last alternative matches any character
        pos = token.end()
        kind = token.lastgroup
        if kind == "open":
            text, pos = _translate_class(body, pos)
            out.append(text)
        else:
            out.append(_translate_token(token, kind))
    return "".join(out)


def _translate_token(token: re.Match[str], kind: str | None) -> str:
    """The Python spelling of one token found outside bracket classes."""
    text = token.group()
    if kind == "quoted":
        return regex.escape(token.group("quoted"), special_only=True)
    if kind in ("xbrace", "xhex", "octal", "ctrl", "ucode"):
        return _char_escape(_escape_value(token, kind))
    if kind in ("ref1", "ref2", "ref3"):
        return rf"\g<{token.group(kind)}>"
    if kind == "esc":
        letter = token.group("esc")
        if letter in _UNTRANSLATABLE_ESCAPES:
            reason = _UNTRANSLATABLE_ESCAPES[letter]
            raise TranslationError(f"{reason} is applied by Perl when interpolating")
        if letter == "x":  # `\x` with no hex digits is NUL in Perl
            return r"\x00"
        return _ESCAPES.get(letter, text)
    if kind == "code":
        raise TranslationError(f"embedded Perl code or backtracking verb {text}...")
    if kind == "comment":
        return ""
    if kind == "caret":
        raise TranslationError("(?^...) flag reset is not supported")
    if kind == "var":
        if text == "$" or text.startswith("@"):  # `@name` is literal text once the rule is a string
            return text.replace("@", r"\@")
        raise TranslationError(f"Perl variable interpolation {text} cannot be translated")
    return text


def _translate_class(body: str, pos: int) -> tuple[str, int]:
    """Translate a bracket class whose `[` ends just before `pos`; return it and the position after."""
    out = ["["]
    if body.startswith("^", pos):
        out.append("^")
        pos += 1
    if body.startswith("]", pos):  # a `]` right after `[` or `[^` is literal in Perl
        out.append(r"\]")
        pos += 1
    while pos < len(body):
        item = _CLASS_ITEM.match(body, pos)
        assert item is not None
        pos = item.end()
        kind = item.lastgroup
        if kind == "close":
            out.append("]")
            return "".join(out), pos
        out.append(_translate_class_item(item, kind))
    raise TranslationError("unterminated bracket class [...]")


def _translate_class_item(item: re.Match[str], kind: str | None) -> str:
    """The Python spelling of one item inside a bracket class."""
    text = item.group()
    if kind in ("xbrace", "xhex", "octal", "ctrl", "ucode"):
        return _char_escape(_escape_value(item, kind))
    if kind == "esc":
        letter = item.group("esc")
        if letter in ("H", "V", "N"):
            raise TranslationError(rf"\{letter} inside a bracket class is not supported")
        if letter == "x":
            return r"\x00"
        return _CLASS_ESCAPES.get(letter, text)
    if kind == "other" and text in "[&|~":  # would start nested sets or set operations
        return "\\" + text
    return text


def _escape_value(match: re.Match[str], kind: str) -> int:
    """The code point named by a hex, octal, control or `\\N{U+...}` escape."""
    value = match.group(kind)
    if kind == "xbrace":
        digits = value.strip().replace("_", "")
        if not re.fullmatch(r"[0-9A-Fa-f]*", digits):
            raise TranslationError(rf"bad hex escape \x{{{value}}}")
        return int(digits or "0", 16)
    if kind == "octal":
        return int(value, 8)
    if kind == "ctrl":
        return ord(value.upper()) ^ 0x40
    return int(value, 16)


def _char_escape(code: int) -> str:
    """A Python escape for one code point, valid inside and outside bracket classes."""
    if code > 0x10FFFF:
        raise TranslationError(f"code point {code:#x} is out of range")
    if code < 0x100:
        return rf"\x{code:02x}"
    return rf"\U{code:08x}"


# Tokens of a translated pattern, as seen by the UTF-8 byte merger.
_MERGE_TOKEN = re.compile(
    r"""
    (?P<byte>\\x[89a-f][0-9a-f])
  | (?P<byteclass>\[(?:\\x[89a-f][0-9a-f](?:-\\x[89a-f][0-9a-f])?)+\])
  | (?P<group>\(\?:)
  | (?P<open>\((?:\?[^:)]*)?)
  | (?P<alt>\|)
  | (?P<close>\))
  | (?P<quant>[*+?]|\{\d*,?\d*\})
  | (?P<other>\[\^?\\?\]?(?:\\.|[^\]\\])*\]|\\U[0-9a-f]{8}|\\.|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_HIGH_BYTE = re.compile(r"\\x[89a-f][0-9a-f]")
_BYTE_ITEM = re.compile(r"\\x([0-9a-f]{2})(?:-\\x([0-9a-f]{2}))?")
_MAX_BYTE_STRINGS = 4096  # bigger byte alternations are left alone rather than expanded
_MAX_ALTERNATIVES = 64
# One literal character (or escape for one), and a positive class safe to splice into another.
_SINGLE_CHAR = re.compile(r"[A-Za-z0-9]|\\[^A-Za-z0-9]|\\x[0-9a-f]{2}|\\U[0-9a-f]{8}|[^\x00-\x9f\s]")
_CLASS_CHAR = r"(?:\\x[0-9a-f]{2}|\\U[0-9a-f]{8}|\\[^A-Za-z0-9]|[^\\\]\[\-^])"
_CLASS_RANGE = re.compile(f"({_CLASS_CHAR})(?:-({_CLASS_CHAR}))?")
_CLASS_RANGES = re.compile(f"(?:{_CLASS_CHAR}(?:-{_CLASS_CHAR})?)+")
_MERGEABLE_CLASS = re.compile(r"\[(?![-^])(?:\\.|[^\]\\\[])+(?<!-)\]")


@dataclass
class _Item:
    """A piece of a pattern: its text, and the byte strings it matches if it is made of bytes only."""

    text: str
    byte_strings: frozenset[bytes] | None = None
    is_quantifier: bool = False


class _ByteMerger:
    """Rewrite byte-level UTF-8 spellings in a translated pattern as the characters they encode.

    The rules were written against raw UTF-8 octets (`\\xc3\\xa9`, `[\\xc3][\\xa0\\xa1]`,
    `[\\xe1](?:[\\x8e][\\xaa]|[\\xb8][\\x80])`); our text is decoded, so they would otherwise look
    for "Ã©". Groups made only of bytes are expanded into the set of byte strings they match; a run
    of such items that decodes as UTF-8 becomes a class of characters (or a short alternation).
    Anything that does not decode is kept as written. This also shrinks the huge obfuscation
    patterns built by `replace_tag`, which makes them much faster to compile and to run.
    """

    def __init__(self, pattern: str) -> None:
        self.tokens = [(match.lastgroup or "", match.group()) for match in _MERGE_TOKEN.finditer(pattern)]
        self.pos = 0

    def merge(self) -> str:
        out: list[str] = []
        while self.pos < len(self.tokens):
            out.append("|".join(_text(alt) for alt in self.alternatives()))
            if self.pos < len(self.tokens):  # an unbalanced `)`: keep it, the compiler will object
                out.append(self.tokens[self.pos][1])
                self.pos += 1
        return "".join(out)

    def alternatives(self) -> list[list[_Item]]:
        """`|`-separated sequences up to an unmatched `)` (not consumed) or the end."""
        alternatives = [self.sequence()]
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "alt":
            self.pos += 1
            alternatives.append(self.sequence())
        return alternatives

    def sequence(self) -> list[_Item]:
        items: list[_Item] = []
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] not in ("alt", "close"):
            kind, text = self.tokens[self.pos]
            self.pos += 1
            if kind in ("group", "open"):
                items.append(self.group(text, plain=kind == "group"))
            elif kind in ("byte", "byteclass"):
                items.append(_Item(text, frozenset(bytes([value]) for value in _atom_bytes(text))))
            else:
                items.append(_Item(text, is_quantifier=kind == "quant"))
        return _merge_runs(items)

    def group(self, opener: str, plain: bool) -> _Item:
        """A parenthesised group; a plain `(?:...)` of byte-only alternatives keeps its byte strings.

        In a plain group, alternatives that are each one character or class are merged into a
        single class: `(?:[aA@]|[àá]|ά)` becomes `(?:[aA@àáά])`, which compiles and runs faster.
        """
        alternatives = self.alternatives()
        closed = self.pos < len(self.tokens)
        self.pos += closed
        strings: frozenset[bytes] | None = None
        if plain and closed and all(len(alt) == 1 and alt[0].byte_strings for alt in alternatives):
            strings = frozenset().union(*(alt[0].byte_strings or () for alt in alternatives))
        texts = (
            _merge_class_alternatives(alternatives) if plain and closed else [_text(a) for a in alternatives]
        )
        text = opener + "|".join(texts) + (")" if closed else "")
        return _Item(text, strings if strings is not None and len(strings) <= _MAX_BYTE_STRINGS else None)


def _merge_class_alternatives(alternatives: list[list[_Item]]) -> list[str]:
    """Alternatives' texts, with every single-character alternative folded into one class.

    When the folded items are plain characters and ranges, the class is rebuilt from the sorted
    set of code points: duplicates vanish and neighbours become ranges, so it compiles faster.
    """
    bodies = [body for alt in alternatives if len(alt) == 1 and (body := _class_body(alt[0].text))]
    if len(bodies) < 2:  # nothing to merge
        return [_text(alt) for alt in alternatives]
    codes = _code_points("".join(bodies))
    texts = ["[" + (_class_ranges(sorted(codes)) if codes else "".join(bodies)) + "]"]
    texts += [_text(alt) for alt in alternatives if not (len(alt) == 1 and _class_body(alt[0].text))]
    return texts


def _code_points(body: str) -> set[int]:
    """The characters a class body of literals, `\\x`/`\\U` escapes and ranges stands for; empty if
    the body holds anything else (class escapes such as `\\w`, POSIX classes)."""
    codes: set[int] = set()
    for low, high in _CLASS_RANGE.findall(body) if _CLASS_RANGES.fullmatch(body) else ():
        codes.update(range(_code_of(low), _code_of(high or low) + 1))
    return codes


def _code_of(item: str) -> int:
    if item.startswith(("\\x", "\\U")):
        return int(item[2:], 16)
    return ord(item[-1])


def _class_body(text: str) -> str:
    """What `text` contributes inside a bracket class, if it matches exactly one character; else ""."""
    if _SINGLE_CHAR.fullmatch(text):
        return text
    if _MERGEABLE_CLASS.fullmatch(text):
        return text[1:-1]
    return ""


def _text(items: list[_Item]) -> str:
    return "".join(item.text for item in items)


def _merge_runs(items: list[_Item]) -> list[_Item]:
    """Replace each maximal run of unquantified byte items by one item, decoded when possible."""
    out: list[_Item] = []
    run: list[_Item] = []
    for index, item in enumerate(items):
        quantified = index + 1 < len(items) and items[index + 1].is_quantifier
        if item.byte_strings is not None and not quantified:
            run.append(item)
            continue
        if run:
            out.append(_decode_run(run))
            run = []
        out.append(item)
    if run:
        out.append(_decode_run(run))
    return out


def _decode_run(run: list[_Item]) -> _Item:
    """One item for a run of byte items: the decoded characters if every byte string is UTF-8."""
    text = _text(run)
    size = 1
    for item in run:
        size *= len(item.byte_strings or ())
    if size > _MAX_BYTE_STRINGS:
        return _Item(text)
    strings = frozenset(
        b"".join(parts) for parts in itertools.product(*(item.byte_strings or () for item in run))
    )
    try:
        decoded = sorted({string.decode("utf-8") for string in strings})
    except UnicodeDecodeError:
        return _Item(text, strings)
    if all(len(chars) == 1 for chars in decoded):
        if len(decoded) == 1:
            return _Item(_char_literal(ord(decoded[0])), strings)
        return _Item("[" + _class_ranges(sorted(ord(char) for char in decoded)) + "]", strings)
    if len(decoded) <= _MAX_ALTERNATIVES:
        words = ("".join(_char_literal(ord(char)) for char in chars) for chars in decoded)
        return _Item("(?:" + "|".join(words) + ")", strings)
    return _Item(text, strings)


def _char_literal(code: int) -> str:
    """The character itself when it is printable and not ASCII (shorter and faster to parse)."""
    char = chr(code)
    if (code >= 0xA0 and char.isprintable() and not char.isspace()) or (char.isalnum() and char.isascii()):
        return char
    return _char_escape(code)


def _class_ranges(codes: list[int]) -> str:
    """A bracket-class body for sorted code points, with runs of three or more as ranges."""
    parts: list[str] = []
    start = 0
    for index in range(1, len(codes) + 1):
        if index < len(codes) and codes[index] == codes[index - 1] + 1:
            continue
        low, high = codes[start], codes[index - 1]
        if high - low >= 2:  # a range pays from three characters
            parts.append(f"{_char_literal(low)}-{_char_literal(high)}")
        else:
            parts.extend(_char_literal(code) for code in range(low, high + 1))
        start = index
    return "".join(parts)


def _atom_bytes(atom: str) -> list[int]:
    """The byte values one atom (`\\xHH` or a class of them) stands for."""
    values: list[int] = []
    for low, high in _BYTE_ITEM.findall(atom):
        values.extend(range(int(low, 16), int(high or low, 16) + 1))
    return values
