"""Translation of Perl patterns from SpamAssassin rules into Python `regex` patterns."""

from __future__ import annotations

import pytest
import regex

from mailsift.rules.perl_regex import (
    TranslationError,
    compile_pattern,
    split_delimited,
    translate,
    translate_delimited,
)


def matches(perl: str, text: str) -> bool:
    pattern, flags, _ = translate_delimited(perl)
    return compile_pattern(pattern, flags).search(text) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/abc/i rest", ("abc", "i", "rest")),
        ("m{a{2}b}s", ("a{2}b", "s", "")),
        ("m!a\\!b!", ("a!b", "", "")),
        ("m#x\\#y#", ("x#y", "", "")),
        ("m|a\\|b|", ("a\\|b", "", "")),  # `|` is a metacharacter: the escape keeps it literal
        ("/a\\/b/ [if-unset: x]", ("a/b", "", "[if-unset: x]")),
        ("m(a(b)c)", ("a(b)c", "", "")),
    ],
)
def test_split_delimited(text: str, expected: tuple[str, str, str]) -> None:
    assert split_delimited(text) == expected


def test_unterminated_pattern_is_an_error() -> None:
    with pytest.raises(TranslationError, match="no closing"):
        split_delimited("/abc")


def test_modifiers_map_to_flags() -> None:
    assert translate("a.b", "ismxgo")[1] == "imsx"
    assert matches("/A.B/is", "a\nb")
    with pytest.raises(TranslationError, match="modifier"):
        translate("a", "e")


def test_big_z_allows_a_final_newline_small_z_does_not() -> None:
    assert matches(r"/foo\Z/", "foo\n")
    assert not matches(r"/foo\Z/", "foo\nx")
    assert not matches(r"/foo\z/", "foo\n")
    assert matches(r"/foo\z/", "foo")


def test_dollar_keeps_perl_meaning() -> None:
    assert matches("/foo$/", "foo\n")
    assert matches("/^foo$/m", "x\nfoo\ny")


def test_quote_meta() -> None:
    assert translate(r"\Qa.b*\E+")[0] == r"a\.b\*+"
    assert matches(r"/\Q1+1\E/", "1+1")
    assert not matches(r"/\Q1+1\E/", "11")
    assert matches(r"/x\Qa.b/", "xa.b")  # \Q without \E runs to the end


def test_hex_octal_control_escapes() -> None:
    assert matches(r"/\x{263A}/", "\u263a")
    assert matches(r"/\x9/", "\t")
    assert matches(r"/\o{101}/", "A")
    assert matches(r"/\e/", "\x1b")
    assert matches(r"/\cA/", "\x01")
    assert matches(r"/\N{U+263A}/", "\u263a")
    assert matches(r"/[\x{263A}-\x{263C}]/", "\u263b")


def test_variables_and_code_are_refused() -> None:
    for perl, reason in [
        (r"/foo$bar/", "interpolation"),
        (r"/${x}/", "interpolation"),
        (r"/(?{ print 1 })/", "Perl code"),
        (r"/(??{ 1 })/", "Perl code"),
        (r"/(*FAIL)/", "verb"),
        (r"/\Uabc/", "case-modifying"),
        (r"/(?^i:x)/", "flag reset"),
    ]:
        with pytest.raises(TranslationError, match=reason):
            translate_delimited(perl)


def test_at_sign_is_literal() -> None:
    assert matches(r"/foo\@bar/", "foo@bar")
    assert matches(r"/foo@bar\.com/", "foo@bar.com")


def test_keep_possessive_atomic_inline_flags() -> None:
    assert matches(r"/foo\Kbar/", "foobar")
    pattern, flags, _ = translate_delimited(r"/foo\Kbar/")
    assert compile_pattern(pattern, flags).search("foobar").group() == "bar"
    assert not matches(r"/a++a/", "aaa")
    assert not matches(r"/(?>a+)a/", "aaa")
    assert matches(r"/a(?i)b/", "aB")
    assert not matches(r"/(a(?i)b)c/", "aBC")  # scoped to the group, as in Perl


def test_posix_classes_and_perl_space_classes() -> None:
    assert matches(r"/^[[:alpha:]]+$/", "abc")
    assert not matches(r"/[[:^digit:]]/", "123")
    assert matches(r"/a\hb/", "a\tb")
    assert matches(r"/a\vb/", "a\nb")
    assert not matches(r"/a\vb/", "a b")
    assert matches(r"/a\Vb/", "a b")
    assert matches(r"/a\Rb/", "a\r\nb")
    assert matches(r"/a\Nb/", "axb")
    assert not matches(r"/a\Nb/", "a\nb")
    assert matches(r"/[\h]/", "\xa0")


def test_digits_are_ascii_words_are_unicode() -> None:
    assert not matches(r"/\d/", "\u0663")  # ARABIC-INDIC DIGIT THREE
    assert matches(r"/\D/", "\u0663")
    assert matches(r"/[\d]/", "7")
    assert matches(r"/^\w+$/", "café")


def test_bracket_class_edge_cases() -> None:
    assert matches(r"/[]a]/", "]")
    assert matches(r"/[^]a]/", "b")
    assert not matches(r"/[^]a]/", "]")
    assert matches(r"/[a[]/", "[")
    assert matches(r"/[&|~]/", "~")
    with pytest.raises(TranslationError, match="unterminated"):
        translate("[abc")


def test_named_backreferences() -> None:
    assert matches(r"/(?<q>['\"])x\k<q>/", "'x'")
    assert matches(r"/(?<q>a)\g{q}/", "aa")


def test_extended_mode_comments_are_skipped() -> None:
    assert matches("/a b # $not_a_var\n c/x", "abc")


def test_utf8_byte_sequences_become_characters() -> None:
    assert translate(r"\xc3\xa9t\xc3\xa9")[0] == "été"
    assert matches(r"/caf\xc3\xa9/", "café")
    assert matches(r"/[\xc3][\xa0\xa1]/", "á")
    assert matches(r"/(?:x|[\xe1](?:[\xb8][\x80\x81]|[\x8e][\xaa]))/", "\u1e01")
    assert matches(r"/\xe2\x80\x99\xe2\x80\x9c/", "\u2019\u201c")


def test_bytes_that_are_not_utf8_stay_latin1() -> None:
    assert matches(r"/\xe9/", "é")  # Latin-1 mail decodes to the same character
    assert translate(r"[\xc3\xa9]")[0] == r"[\xc3\xa9]"  # a class of bytes is not a sequence
    assert translate(r"\xc3\xa9+")[0] == r"\xc3\xa9+"  # the quantifier applies to one byte


def test_single_character_alternatives_merge_into_a_class() -> None:
    pattern, _ = translate(r"(?:[aA\@]|[\xc3][\xa0\xa1]|b|foo)")
    assert pattern.startswith("(?:[") and pattern.endswith("|foo)")
    assert regex.fullmatch(pattern, "á") and regex.fullmatch(pattern, "@") and regex.fullmatch(pattern, "foo")


def test_patterns_that_do_not_compile_give_a_reason() -> None:
    with pytest.raises(TranslationError, match="bad regex"):
        translate("(abc")
    with pytest.raises(TranslationError, match="bad regex"):
        translate("a{2,1}")
