"""DNS block and allow lists from the configuration: relay addresses and link domains."""

from __future__ import annotations

from mailsift.config import parse_config
from mailsift.rules.model import SCORE_SET_NAMES
from mailsift.scanner import Scanner
from tests.network.conftest import network_config
from tests.network.messages import BODY, letter, scan
from tests.network.zone import (
    ALLOWED_IP,
    BLOCK_ZONE,
    CLEAN_URI_DOMAIN,
    GOOD_IP,
    LISTED_IP,
    LISTED_URI_DOMAIN,
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
    assert LISTED_URI_DOMAIN in next(h.evidence for h in result.hits if h.name == "URIBL_TEST")


def test_link_to_an_unlisted_domain_does_not_hit(scanner: Scanner) -> None:
    raw = letter(body=BODY + f"\nThe agenda is at https://www.{CLEAN_URI_DOMAIN}/agenda\n")
    assert "URIBL_TEST" not in scan(scanner, raw).rule_names


def test_list_rules_score_only_with_the_network(scanner: Scanner) -> None:
    rule = scanner.engine.rules["RCVD_IN_TEST_BL"]
    assert "net" in rule.tflags
    assert [rule.score_for(i) for i in range(len(SCORE_SET_NAMES))] == [0.0, 2.5, 0.0, 2.5]
