"""DNS block and allow lists from the configuration: relay addresses and link domains."""

from __future__ import annotations

import logging

import pytest

from mailsift.config import parse_config
from mailsift.log_throttle import ThrottledWarning
from mailsift.network import dnslists
from mailsift.rules.model import SCORE_SET_NAMES
from mailsift.scanner import Scanner
from tests.network.conftest import network_config
from tests.network.messages import BODY, letter, scan
from tests.network.zone import (
    ALLOWED_IP,
    BLOCK_ZONE,
    BLOCKED_URI_ZONE,
    CLEAN_URI_DOMAIN,
    EVERYTHING_ZONE,
    GOOD_IP,
    LISTED_IP,
    LISTED_URI_DOMAIN,
    REFUSING_ZONE,
    URI_ZONE,
    WRITTEN_URI_DOMAIN,
)

RELAYED = ("Received: from mail.listed.test (mail.listed.test [{ip}])\r\n"
           "\tby mail.partner.test with ESMTP id 4711; Tue, 06 Aug 2024 10:54:00 +0100\r\n")


def test_listed_client_hits_the_block_list_rule_with_its_configured_score(scanner: Scanner) -> None:
    result = scan(scanner, letter(), ip=LISTED_IP)
    hit = next(h for h in result.hits if h.name == "RCVD_IN_TEST_BL")
    assert hit.score == 2.5
    assert hit.evidence == f"{LISTED_IP} listed in {BLOCK_ZONE} (127.0.0.2)"
    assert hit.description == f"Relay address listed in {BLOCK_ZONE}"


def test_unlisted_client_does_not_hit(scanner: Scanner) -> None:
    assert "RCVD_IN_TEST_BL" not in scan(scanner, letter(), ip=GOOD_IP).rule_names


def test_listed_relay_behind_the_client_hits_a_list_of_all_relays(scanner: Scanner) -> None:
    raw = RELAYED.format(ip=LISTED_IP).encode() + letter()
    assert "RCVD_IN_TEST_BL" in scan(scanner, raw, ip=ALLOWED_IP).rule_names


def test_list_of_first_relays_ignores_older_hops(test_dns_address: str) -> None:
    config = network_config(test_dns_address).model_dump()
    config["dns"]["blocklists"][0]["relays"] = "first"
    scanner = Scanner(parse_config(config, "test"))
    raw = RELAYED.format(ip=LISTED_IP).encode() + letter()
    assert "RCVD_IN_TEST_BL" not in scan(scanner, raw, ip=ALLOWED_IP).rule_names
    assert "RCVD_IN_TEST_BL" in scan(scanner, letter(), ip=LISTED_IP).rule_names


def test_answer_outside_the_configured_codes_is_not_a_listing(test_dns_address: str) -> None:
    config = network_config(test_dns_address).model_dump()
    config["dns"]["blocklists"][0]["codes"] = ["127.0.0.4"]
    scanner = Scanner(parse_config(config, "test"))
    assert "RCVD_IN_TEST_BL" not in scan(scanner, letter(), ip=LISTED_IP).rule_names


def test_allow_list_takes_points_off(scanner: Scanner) -> None:
    result = scan(scanner, letter(), ip=ALLOWED_IP)
    assert next(h.score for h in result.hits if h.name == "RCVD_IN_TEST_ALLOW") == -2.0
    assert "RCVD_IN_TEST_ALLOW" not in scan(scanner, letter(), ip=GOOD_IP).rule_names


def test_link_to_a_listed_domain_hits_the_uri_list(scanner: Scanner) -> None:
    raw = letter(body=BODY + f"\nOrder at https://pills.{LISTED_URI_DOMAIN}/buy now\n")
    result = scan(scanner, raw)
    assert "URIBL_TEST" in result.rule_names
    hit = next(h for h in result.hits if h.name == "URIBL_TEST")
    assert LISTED_URI_DOMAIN in hit.evidence
    assert hit.description == f"Domain linked or written in the text listed in {URI_ZONE}"


def test_a_listed_domain_written_without_a_link_is_not_described_as_linked(scanner: Scanner) -> None:
    """The uri list's rule said "Linked domain listed in ..." beside a domain the message only
    wrote ("type cheap-meds.com into your browser"), which an admin reading the report checked
    the links for in vain."""
    raw = letter(body=BODY + f"\nType pills.{WRITTEN_URI_DOMAIN} into your browser\n")
    hit = next(h for h in scan(scanner, raw).hits if h.name == "URIBL_TEST")
    assert hit.evidence == f"{WRITTEN_URI_DOMAIN} listed in {URI_ZONE} (127.0.0.2)"
    assert hit.description == f"Domain linked or written in the text listed in {URI_ZONE}"


def test_link_to_an_unlisted_domain_does_not_hit(scanner: Scanner) -> None:
    raw = letter(body=BODY + f"\nThe agenda is at https://www.{CLEAN_URI_DOMAIN}/agenda\n")
    assert "URIBL_TEST" not in scan(scanner, raw).rule_names


def test_list_rules_score_only_with_the_network(scanner: Scanner) -> None:
    rule = scanner.engine.rules["RCVD_IN_TEST_BL"]
    assert "net" in rule.tflags
    assert [rule.score_for(i) for i in range(len(SCORE_SET_NAMES))] == [0.0, 2.5, 0.0, 2.5]


def _with_lists(test_dns_address: str, *lists: dict[str, object]) -> Scanner:
    config = network_config(test_dns_address).model_dump()
    config["dns"]["blocklists"] = list(lists)
    return Scanner(parse_config(config, "test"))


def test_refusal_answer_for_a_listed_relay_is_not_a_listing(test_dns_address: str) -> None:
    """Spamhaus answers 127.255.255.254 to queries through public resolvers: an error, whether
    the list has its codes configured or not."""
    for codes in ([], ["127.0.0.2", "127.255.255.254"]):
        scanner = _with_lists(test_dns_address, {"zone": REFUSING_ZONE, "rule": "RCVD_IN_REFUSING",
                                                 "score": 3.0, "codes": codes})
        assert "RCVD_IN_REFUSING" not in scan(scanner, letter(), ip=LISTED_IP).rule_names


def test_dead_list_that_lists_every_address_hits_nothing(test_dns_address: str) -> None:
    """A retired list may answer 127.0.0.2 for every query to make people remove it: it would
    add its score to every message. Its RFC 5782 never-listed point 127.0.0.1 gives it away."""
    scanner = _with_lists(test_dns_address,
                          {"zone": EVERYTHING_ZONE, "rule": "RCVD_IN_DEAD", "score": 4.0},
                          {"zone": BLOCK_ZONE, "rule": "RCVD_IN_TEST_BL", "score": 2.5})
    names = scan(scanner, letter(), ip=LISTED_IP).rule_names
    assert "RCVD_IN_DEAD" not in names
    assert "RCVD_IN_TEST_BL" in names  # a list that works still counts


def test_dead_uri_list_that_lists_every_domain_hits_nothing(test_dns_address: str) -> None:
    scanner = _with_lists(test_dns_address, {"zone": EVERYTHING_ZONE, "rule": "URIBL_DEAD",
                                             "score": 4.0, "kind": "uri"})
    raw = letter(body=BODY + f"\nThe agenda is at https://www.{CLEAN_URI_DOMAIN}/agenda\n")
    assert "URIBL_DEAD" not in scan(scanner, raw).rule_names


def test_uri_list_refusing_us_with_127_0_0_1_lists_nothing(test_dns_address: str) -> None:
    """URI lists answer 127.0.0.1 for "query refused"; without configured codes that was a
    listing of every link domain of every message."""
    scanner = _with_lists(test_dns_address, {"zone": BLOCKED_URI_ZONE, "rule": "URIBL_BLOCKED_US",
                                             "score": 4.0, "kind": "uri"})
    raw = letter(body=BODY + f"\nThe agenda is at https://www.{CLEAN_URI_DOMAIN}/agenda\n")
    assert "URIBL_BLOCKED_US" not in scan(scanner, raw).rule_names


def test_a_refusing_list_is_warned_about_once_not_per_message_and_link(
        test_dns_address: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, every link domain of every message logged the refusal again: a URI list refusing a
    busy site's resolver wrote tens of thousands of identical warnings a day."""
    # a fresh throttle, so that earlier tests' warnings do not silence this one's
    monkeypatch.setattr(dnslists, "warn", ThrottledWarning(dnslists.log).warn)
    scanner = _with_lists(test_dns_address, {"zone": BLOCKED_URI_ZONE, "rule": "URIBL_BLOCKED_US",
                                             "score": 4.0, "kind": "uri"})
    raw = letter(body=BODY + f"\nhttps://www.{CLEAN_URI_DOMAIN}/agenda https://{LISTED_URI_DOMAIN}/"
                 "\nhttps://shop.example.net/\n")
    with caplog.at_level(logging.WARNING, logger=dnslists.log.name):
        for _ in range(3):
            scan(scanner, raw)
    refusals = [r.getMessage() for r in caplog.records if "refuses our queries" in r.getMessage()]
    assert refusals == [f"DNS list {BLOCKED_URI_ZONE} refuses our queries (answer 127.0.0.1): "
                        "check its terms and the resolver"]
