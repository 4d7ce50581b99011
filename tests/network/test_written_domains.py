"""Domains written without a link are looked up in the domain lists, after the linked ones."""

from __future__ import annotations

from mailsift.analysis.model import Envelope
from mailsift.config import parse_config
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import BODY, letter, scan
from tests.network.zone import (
    CLEAN_URI_DOMAIN,
    LISTED_URI_DOMAIN,
    URI_ZONE,
    WRITTEN_IDN_DOMAIN,
    WRITTEN_URI_DOMAIN,
)

NOT_DOMAINS = ("file.txt", "v1.2", "1.2.3", "smith", "e.g", "invoice.zip")


def _uri_hit(scanner: Scanner, body: str) -> str:
    """The URI list rule's evidence for a letter ending in `body`, '' when it does not hit."""
    result = scan(scanner, letter(body=BODY + body))
    return next((h.evidence for h in result.hits if h.name == "URIBL_TEST"), "")


def test_listed_domain_written_without_a_link_hits_the_uri_list(scanner: Scanner) -> None:
    evidence = _uri_hit(scanner, f"\nCheapest pills: type pills.{WRITTEN_URI_DOMAIN} into your browser.\n")
    assert evidence == f"{WRITTEN_URI_DOMAIN} listed in {URI_ZONE} (127.0.0.2)"


def test_listed_domain_of_a_written_address_hits_the_uri_list(scanner: Scanner) -> None:
    evidence = _uri_hit(scanner, f"\nTo order, reply to Orders.Desk@{WRITTEN_URI_DOMAIN.upper()}.\n")
    assert evidence.startswith(f"{WRITTEN_URI_DOMAIN} listed in {URI_ZONE}")


def test_written_non_ascii_domain_is_looked_up_in_its_idna_form(scanner: Scanner) -> None:
    evidence = _uri_hit(scanner, f"\nBilliger bei {WRITTEN_IDN_DOMAIN.upper()}!\n")
    assert evidence.startswith(f"{WRITTEN_IDN_DOMAIN} listed in {URI_ZONE}")


def test_dotted_words_that_are_no_domains_are_not_looked_up(scanner: Scanner, test_dns: DnsFixture) -> None:
    body = (f"\nSee file.txt and v1.2 (version 1.2.3), as Mr.Smith said, e.g. in invoice.zip; "
            f"details at {WRITTEN_URI_DOMAIN}.\n")
    assert _uri_hit(scanner, body)  # the same text's real domain was looked up
    queries = test_dns.server.log.read_text()
    assert f"{WRITTEN_URI_DOMAIN}.{URI_ZONE}" in queries
    assert [name for name in NOT_DOMAINS if f"{name}.{URI_ZONE}" in queries] == []


def _capped(test_dns_address: str, limit: int) -> Scanner:
    config = network_config(test_dns_address).model_dump()
    config["dns"]["max_uri_domains"] = limit
    return Scanner(parse_config(config, "test"))


def test_linked_domains_come_first_under_the_limit(test_dns_address: str) -> None:
    """A written domain takes only a place that links left: a spammer cannot push a listed link
    out of the limit with names written before it."""
    written_first = f"\nAlso at {LISTED_URI_DOMAIN}, and the agenda is at https://www.{CLEAN_URI_DOMAIN}/\n"
    assert not _uri_hit(_capped(test_dns_address, 1), written_first)
    assert _uri_hit(_capped(test_dns_address, 2), written_first).startswith(LISTED_URI_DOMAIN)
    decoys = " ".join(f"shop{n}.com" for n in range(5))
    linked_last = f"\nSee {decoys} and https://{LISTED_URI_DOMAIN}/buy\n"
    assert _uri_hit(_capped(test_dns_address, 1), linked_last).startswith(LISTED_URI_DOMAIN)


def test_without_network_checks_a_written_domain_is_no_link_and_is_not_looked_up(
        test_dns: DnsFixture) -> None:
    """Written domains are for the network checks only: the `uri` rules and Bayes see links."""
    config = network_config(test_dns.server.address).model_dump()
    config["dns"]["enabled"] = False
    scanner = Scanner(parse_config(config, "test"))
    raw = letter(body=BODY + f"\nOffline offer at {WRITTEN_URI_DOMAIN} today.\n")
    assert scanner.analyse(raw, Envelope()).uris == []
    asked_before = test_dns.server.log.read_text()
    assert "URIBL_TEST" not in scan(scanner, raw).rule_names
    assert test_dns.server.log.read_text() == asked_before
