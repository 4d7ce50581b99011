"""Which dotted words of a text count as domains for the domain lists (mailsift.network.textdomains)."""

from __future__ import annotations

import pytest

from mailsift.network.textdomains import written_domains


def found(text: str) -> list[str]:
    return list(written_domains(text))


@pytest.mark.parametrize(("text", "domains"), [
    ("Visit Cheap-Meds.COM now!", ["cheap-meds.com"]),
    ("Order at www.pills.example.org.", ["example.org"]),
    ("(see shop.example.co.uk), or shop.example.co.uk again", ["example.co.uk"]),
    ("Reply to orders@deals.example.net;", ["example.net"]),
    ("Büro: WWW.BÜCHER.DE oder xn--bcher-kva.de", ["bücher.de"]),
])
def test_host_names_and_address_domains_give_their_registrable_domain_once(
        text: str, domains: list[str]) -> None:
    assert found(text) == domains


@pytest.mark.parametrize("text", [
    "see file.txt and setup.exe", "e.g. this, i.e. that", "version 1.2.3 or v1.2", "Mr.Smith said",
    "from 192.0.2.1", "the intranet.corp host", "attached invoice.zip and clip.mov",
    "john.smith@", "C:\\dir\\evil.com",
    "https://example.org/shop.example.com/x",  # a link's host and path: the link is looked up
    "under_score.com", "-dash.com", "dash-.com",
])
def test_dotted_words_that_are_no_domains_are_not_found(text: str) -> None:
    assert found(text) == []


def test_local_part_of_an_address_is_not_a_domain() -> None:
    assert found("write to first.last.name@example.org") == ["example.org"]


def test_name_the_resolver_cannot_encode_is_dropped() -> None:
    """IDNA 2008 refuses fractions in labels; the lookup would only record a DNS failure."""
    assert found("x½y.com and ok.example.org") == ["example.org"]
