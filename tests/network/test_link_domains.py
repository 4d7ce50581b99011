"""Which domains of a message's links the domain lists are asked about: mailto: addressees' too,
never our own, never a host the resolver cannot encode; and links before written names."""

from __future__ import annotations

import pytest

from mailsift.config import parse_config
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import BODY, letter, scan
from tests.network.zone import CLEAN_URI_DOMAIN, LISTED_URI_DOMAIN, OWN_DOMAIN, URI_ZONE, WRITTEN_URI_DOMAIN

ORDER_LINK = (f'<p>Questions? <a href="mailto:Orders@pills.{LISTED_URI_DOMAIN}?subject=Order">'
              "Write to us</a></p>")


def _html(html: str) -> bytes:
    return letter(body=f"<html><body>{html}</body></html>\n").replace(b"text/plain", b"text/html")


def _scanner(test_dns_address: str, *, limit: int = 20, own: tuple[str, ...] = ()) -> Scanner:
    config = network_config(test_dns_address).model_dump()
    config["dns"]["max_uri_domains"] = limit
    config["network"]["own_domains"] = [OWN_DOMAIN, *own]
    return Scanner(parse_config(config, "test"))


def _uri_hit(result: Result) -> str:
    """The URI list rule's evidence, '' when it does not hit."""
    return next((h.evidence for h in result.hits if h.name == "URIBL_TEST"), "")


def test_listed_domain_of_a_mailto_link_hits_the_uri_list(scanner: Scanner) -> None:
    evidence = _uri_hit(scan(scanner, _html(ORDER_LINK)))
    assert evidence == f"{LISTED_URI_DOMAIN} listed in {URI_ZONE} (127.0.0.2)"


def test_mailto_addressees_in_cc_and_percent_encoded_are_looked_up(scanner: Scanner) -> None:
    link = f'<a href="mailto:?subject=Hi&amp;cc=orders%40{LISTED_URI_DOMAIN}">Write to us</a>'
    assert _uri_hit(scan(scanner, _html(link))).startswith(LISTED_URI_DOMAIN)


def test_mailto_link_takes_its_place_among_links_before_written_domains(test_dns_address: str) -> None:
    """A mailto: link is a link: a domain written in the text before it cannot push it out."""
    html = (f"<p>Also at {WRITTEN_URI_DOMAIN}.</p>"
            f'<p><a href="mailto:orders@{CLEAN_URI_DOMAIN}">Write to us</a></p>')
    assert not _uri_hit(scan(_scanner(test_dns_address, limit=1), _html(html)))
    assert _uri_hit(scan(_scanner(test_dns_address, limit=2), _html(html))).startswith(WRITTEN_URI_DOMAIN)


@pytest.mark.parametrize("own", [LISTED_URI_DOMAIN, f"mail.{LISTED_URI_DOMAIN}"])
def test_own_domains_are_never_asked_about(test_dns: DnsFixture, own: str) -> None:
    """Our domain, in a quoted reply, a signature link or a mailto: link, takes no slot and no
    query, and a list that lists it does not score our users' replies; other domains still count.
    A listed host name of ours (mail.) stands for its registrable domain, which is what is asked."""
    body = (BODY + f"\nOn Tuesday, Anna <anna@{LISTED_URI_DOMAIN}> wrote:\n> see you\n"
            f"--\nhttps://www.{LISTED_URI_DOMAIN}/ | shop: https://shop.{WRITTEN_URI_DOMAIN}/\n")
    before = len(test_dns.server.log.read_text())
    result = scan(_scanner(test_dns.server.address, own=(own,)), letter(body=body))
    asked = test_dns.server.log.read_text()[before:]
    assert _uri_hit(result) == f"{WRITTEN_URI_DOMAIN} listed in {URI_ZONE} (127.0.0.2)"
    assert f"{LISTED_URI_DOMAIN}.{URI_ZONE}" not in asked
    mailto = _html(ORDER_LINK)
    assert not _uri_hit(scan(_scanner(test_dns.server.address, own=(own,)), mailto))


def test_own_domain_takes_no_place_under_the_limit(test_dns_address: str) -> None:
    body = (BODY + f"\nanna@{CLEAN_URI_DOMAIN} wrote:\n> https://{CLEAN_URI_DOMAIN}/\n"
            f"Order: https://{LISTED_URI_DOMAIN}/\n")
    scanner = _scanner(test_dns_address, limit=1, own=(CLEAN_URI_DOMAIN,))
    assert _uri_hit(scan(scanner, letter(body=body))).startswith(LISTED_URI_DOMAIN)


def test_link_host_the_resolver_cannot_encode_is_not_asked_and_takes_no_slot(test_dns_address: str) -> None:
    """IDNA 2008 refuses emoji: the query could never be sent, so it recorded DNS_SERVFAIL and
    took the place of the listed link after it."""
    body = BODY + f"\nhttps://\N{PILL}pills.com/buy or https://{LISTED_URI_DOMAIN}/buy\n"
    result = scan(_scanner(test_dns_address, limit=1), letter(body=body))
    assert _uri_hit(result).startswith(LISTED_URI_DOMAIN)
    assert "DNS_SERVFAIL" not in result.rule_names
