"""URI extraction from text and normalisation."""

from __future__ import annotations

import pytest

from mailsift.analysis.uris import find_in_text, normalise
from tests.analysis.helpers import run, simple


@pytest.mark.parametrize(("raw", "url", "host", "domain"), [
    ("HTTP://WWW.Example.COM/Path", "http://www.example.com/Path", "www.example.com", "example.com"),
    ("http://%77%77%77.example.com/%7Euser/%41%2F", "http://www.example.com/~user/A%2F", "www.example.com",
     "example.com"),
    ("http://xn--mnchen-3ya.de/", "http://münchen.de/", "münchen.de", "münchen.de"),
    ("https://a.b.example.co.uk/x?y=1", "https://a.b.example.co.uk/x?y=1", "a.b.example.co.uk",
     "example.co.uk"),
    ("http://paypal.com@evil.example.net:8080", "http://evil.example.net:8080/", "evil.example.net",
     "example.net"),
    ("http://example.com:80/", "http://example.com/", "example.com", "example.com"),
    ("www.example.org/deal", "http://www.example.org/deal", "www.example.org", "example.org"),
    ("http:\\\\evil.example.com\\path", "http://evil.example.com/path", "evil.example.com", "example.com"),
])
def test_normalisation(raw: str, url: str, host: str, domain: str) -> None:
    uri = normalise(raw)
    assert uri is not None
    assert (uri.url, uri.host, uri.domain, uri.is_ip, uri.raw) == (url, host, domain, False, raw)


@pytest.mark.parametrize(("raw", "ip"), [
    ("http://127.0.0.1/", "127.0.0.1"),
    ("http://0x7f.1/", "127.0.0.1"),
    ("http://0x7f000001/", "127.0.0.1"),
    ("http://2130706433/", "127.0.0.1"),
    ("http://017700000001/", "127.0.0.1"),
    ("http://0300.0250.1.1/", "192.168.1.1"),
    ("http://192.168.257/", "192.168.1.1"),
    ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
])
def test_ip_literals_in_every_spelling(raw: str, ip: str) -> None:
    uri = normalise(raw)
    assert uri is not None
    assert (uri.host, uri.is_ip, uri.domain) == (ip, True, "")


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "0x.example", "08.1.1.1", "1e3.example.com"])
def test_names_that_only_look_numeric_are_not_ips(host: str) -> None:
    uri = normalise(f"http://{host}/")
    assert uri is not None
    assert not uri.is_ip


def test_non_links_are_skipped() -> None:
    assert normalise("cid:part1@example.com") is None
    assert normalise("data:image/png;base64,AAAA") is None
    assert normalise("/relative/path") is None
    mailto = normalise("mailto:someone@example.com")
    assert mailto is not None
    assert (mailto.scheme, mailto.host) == ("mailto", "")


def test_unknown_tld_has_no_registrable_domain() -> None:
    uri = normalise("http://intranet.corp/")
    assert uri is not None
    assert uri.domain == ""


def test_text_extraction_trims_sentence_punctuation() -> None:
    text = "See www.Example.com. Or (http://example.org/a_(b)) and http://example.net/x), ok"
    assert find_in_text(text) == ["www.Example.com", "http://example.org/a_(b)", "http://example.net/x"]


def test_uris_of_a_plain_text_message_are_deduplicated() -> None:
    message = run(simple("Go to http://EXAMPLE.com/a and http://example.com/a or ftp://files.example.org/f\n"))
    assert [(u.url, u.scheme, u.source) for u in message.uris] == [
        ("http://example.com/a", "http", "text"), ("ftp://files.example.org/f", "ftp", "text")]
