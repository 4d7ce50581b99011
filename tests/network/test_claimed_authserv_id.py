"""Reading the authserv-id an Authentication-Results header claims, as the milter does to remove
forged ones in our name (RFC 8601 section 5) however the forger writes it."""

from __future__ import annotations

import pytest

from mailsift.network.authresults import claimed_authserv_id

OURS = "mx.example.org"

CLAIMING_OURS = {
    "plain": "mx.example.org; dkim=pass header.d=bank.example",
    "no-space": "mx.example.org;dkim=pass",
    "comment-before": "(checked by us) mx.example.org; dkim=pass header.d=bank.example",
    "nested-comment-with-semicolon": r"(a; (b) \) c) mx.example.org; dkim=pass",
    "comment-after": "mx.example.org(ours); dkim=pass",
    "quoted": '"mx.example.org"; dmarc=pass header.from=bank.example',
    "quoted-with-pair": r'"mx.exam\ple.org"; dkim=pass',
    "capitals-and-final-dot": "MX.Example.ORG.; spf=pass smtp.mailfrom=bank.example",
    "version": "mx.example.org 1; dkim=pass header.d=bank.example",
    "folded-crlf": "\r\n\tmx.example.org\r\n\t1 ;\r\n\tdkim=pass",
    "folded-lf-as-pymilter-gives-it": "\n (x)\n mx.example.org;\n\tdkim=pass",
    "results-nobody-can-parse": "mx.example.org; this is no result at all",
    "no-results": "mx.example.org",
    "no-result": "mx.example.org; none",
}


@pytest.mark.parametrize("value", CLAIMING_OURS.values(), ids=CLAIMING_OURS.keys())
def test_every_way_of_writing_our_name_is_read_as_ours(value: str) -> None:
    """The first word before the first ';' read '(checked' and '"mx.example.org"', and the
    authres parser refuses the quoted id, the final dot and results it cannot read: each such
    forged header was kept, while a reader trusting results by our name may take it."""
    assert claimed_authserv_id(value) == OURS


NOT_OURS = {
    "another-host": ("mx.other.test; dkim=pass", "mx.other.test"),
    "ours-as-a-subdomain-of-theirs": ("mx.example.org.evil.test; dkim=pass",
                                      "mx.example.org.evil.test"),
    "ours-after-theirs": ("evil.test mx.example.org; dkim=pass", "evil.test"),
    "empty": ("", ""),
    "no-id": ("; dkim=pass", ""),
    "unclosed-comment": ("(mx.example.org; dkim=pass", ""),
    "comment-only": ("(mx.example.org)", ""),
}


@pytest.mark.parametrize(("value", "claimed"), NOT_OURS.values(), ids=NOT_OURS.keys())
def test_other_names_and_no_name_are_read_as_written(value: str, claimed: str) -> None:
    assert claimed_authserv_id(value) == claimed


def test_an_internationalised_name_compares_in_its_ascii_form() -> None:
    """Our name in U-labels or A-labels is the same name to a reader that maps IDNs."""
    assert claimed_authserv_id("MX.Bücher.example; dkim=pass") == "mx.xn--bcher-kva.example"
    assert claimed_authserv_id("mx.xn--bcher-kva.example; dkim=pass") == "mx.xn--bcher-kva.example"


def test_raw_bytes_in_the_header_never_raise() -> None:
    """pymilter hands 8-bit bytes that are not UTF-8 over as surrogate escapes."""
    assert claimed_authserv_id("mx.\udce9xample.org; dkim=pass") == "mx.\udce9xample.org"
    assert claimed_authserv_id('"\udcff') == "\udcff"
