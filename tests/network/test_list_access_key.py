"""A commercial DNS list's access key goes into its queries and nowhere else.

Spamhaus DQS and Abusix serve their lists under a private zone holding the customer's key
(KEY.zen.dq.spamhaus.net). Written whole in `zone`, the key was in the rule's description and
evidence (the rule table of `mailsift check`, the quarantine pages, the digest, X-Spam-Report of
delivered mail, read by every recipient), its source (`mailsift rules`), the facts of failed
lookups and the logs. Now `access_key_file` holds it, and a key written in a zone of those
operators the old way is still asked and shown nowhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailsift.config import ConfigError, parse_config, written_key
from mailsift.configtest import dns_checks
from mailsift.log_throttle import ThrottledWarning
from mailsift.network import dnslists
from mailsift.report import report_text, rule_table
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan
from tests.network.zone import (
    ACCESS_KEY,
    DQS_ZONE,
    KEYED_DEAD_ZONE,
    KEYED_ZONE,
    LISTED_IP,
)

LISTED_QUERY = f"66.2.0.192.{ACCESS_KEY}."  # the relay's name under the key, as the server logs it


def _config(test_dns: DnsFixture, *lists: dict[str, object]) -> dict[str, object]:
    return {"dns": {"enabled": True, "nameservers": [test_dns.server.address], "timeout": 1.0,
                    "cache_size": 0, "blocklists": list(lists)}}


def _key_file(tmp_path: Path, text: str = f"{ACCESS_KEY}\n") -> str:
    path = tmp_path / "dqs.key"
    path.write_text(text)
    return str(path)


def _shown(scanner: Scanner, result: Result) -> str:
    """All a listing shows: X-Spam-Report, the rule table (check, quarantine, digest), sources."""
    sources = [scanner.engine.rules[hit.name].source for hit in result.hits]
    return "\n".join([report_text(result), rule_table(result), *sources])


def test_a_private_zone_is_asked_under_its_key_and_shown_without_it(
        test_dns: DnsFixture, tmp_path: Path) -> None:
    scanner = Scanner(parse_config(_config(test_dns, {
        "zone": KEYED_ZONE, "access_key_file": _key_file(tmp_path), "rule": "RCVD_IN_KEYED",
        "score": 2.0}), "test"))
    result = scan(scanner, letter(), ip=LISTED_IP)
    hit = next(h for h in result.hits if h.name == "RCVD_IN_KEYED")  # only the key's names list
    assert hit.evidence == f"{LISTED_IP} listed in {KEYED_ZONE} (127.0.0.2)"
    assert hit.description == f"Relay address listed in {KEYED_ZONE}"
    assert scanner.engine.rules["RCVD_IN_KEYED"].source == f"config dns list {KEYED_ZONE}"
    assert f"{LISTED_QUERY}{KEYED_ZONE}" in test_dns.server.log.read_text()
    assert ACCESS_KEY not in _shown(scanner, result)


def test_a_key_written_in_a_dqs_zone_the_old_way_still_works_and_is_not_shown(
        test_dns: DnsFixture) -> None:
    """An upgrade keeps the list working. The never-listed point is not served there, so its
    lookup fails: DNS_SERVFAIL's evidence named the query, key and all."""
    scanner = Scanner(parse_config(_config(test_dns, {
        "zone": f"{ACCESS_KEY}.{DQS_ZONE}", "rule": "RCVD_IN_DQS", "score": 2.0}), "test"))
    result = scan(scanner, letter(), ip=LISTED_IP)
    hit = next(h for h in result.hits if h.name == "RCVD_IN_DQS")
    assert hit.evidence == f"{LISTED_IP} listed in {DQS_ZONE} (127.0.0.2)"
    assert scanner.engine.rules["RCVD_IN_DQS"].source == f"config dns list {DQS_ZONE}"
    failed = next(h for h in result.hits if h.name == "DNS_SERVFAIL")
    assert f"1.0.0.127.{DQS_ZONE}/A" in failed.evidence
    assert f"{LISTED_QUERY}{DQS_ZONE}" in test_dns.server.log.read_text()
    assert ACCESS_KEY not in _shown(scanner, result)


def test_a_dead_private_list_is_logged_without_its_key(
        test_dns: DnsFixture, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dnslists, "warn", ThrottledWarning(dnslists.log).warn)
    scanner = Scanner(parse_config(_config(test_dns, {
        "zone": KEYED_DEAD_ZONE, "access_key_file": _key_file(tmp_path), "rule": "RCVD_IN_DEAD",
        "score": 2.0}), "test"))
    with caplog.at_level(logging.WARNING, logger=dnslists.log.name):
        assert "RCVD_IN_DEAD" not in scan(scanner, letter(), ip=LISTED_IP).rule_names
    assert [r.getMessage() for r in caplog.records] == [
        f"DNS list {KEYED_DEAD_ZONE} lists 1.0.0.127.{KEYED_DEAD_ZONE} (127.0.0.2), which no list "
        "may list: it lists everything, so none of its answers count; remove it"]
    assert ACCESS_KEY not in caplog.text


def test_configtest_names_private_zones_without_their_key(test_dns: DnsFixture, tmp_path: Path) -> None:
    """A key written in the zone works and is shown nowhere, but the config file holds it."""
    config = parse_config(_config(
        test_dns,
        {"zone": KEYED_ZONE, "access_key_file": _key_file(tmp_path), "rule": "KEYED", "score": 1.0,
         "ipv6": False},
        {"zone": f"{ACCESS_KEY}.{DQS_ZONE}", "rule": "DQS", "score": 1.0, "ipv6": False},
        {"zone": KEYED_ZONE, "rule": "KEYLESS", "score": 1.0, "ipv6": False}), "test")
    assert [(c.ok, c.detail) for c in dns_checks(config)] == [
        (True, f"{KEYED_ZONE}: test point listed (127.0.0.2); rule KEYED"),
        (True, f"{DQS_ZONE}: test point listed (127.0.0.2); rule DQS; its access key is written in "
               "zone: move it to a file named by access_key_file, as the config file gets copied "
               "and pasted"),
        (False, f"{KEYED_ZONE}: does not list its test point 2.0.0.127.{KEYED_ZONE}: wrong zone, "
                "or the resolver does not reach the list"),
    ]


def test_config_errors_about_the_key_never_show_it(tmp_path: Path) -> None:
    def error(**entry: object) -> str:
        """The error for a list of `entry` (a key given as None left out)."""
        written = {key: value for key, value in {"score": 1.0, "rule": "R", **entry}.items()
                   if value is not None}
        with pytest.raises(ConfigError) as raised:
            parse_config({"dns": {"blocklists": [written]}}, "m.toml")
        return str(raised.value)

    allowed = "allowed: empty, or the path of a file holding the key alone (letters, digits, - and _)"
    bad = _key_file(tmp_path, f"{ACCESS_KEY} \n{ACCESS_KEY}")  # a key file with two lines
    assert error(zone=DQS_ZONE, access_key_file=bad) == (
        f"m.toml: dns.blocklists.0.access_key_file: {bad}: holds no access key a DNS name can "
        f"carry (the key is not shown, as it is a secret); {allowed}")
    twice = error(zone=f"{ACCESS_KEY}.{DQS_ZONE}", access_key_file=_key_file(tmp_path))
    assert twice == (f"m.toml: dns.blocklists.0.zone: holds an access key in front of {DQS_ZONE}, "
                     "and access_key_file gives one too: write the zone without the key; allowed: "
                     'a DNS zone name, e.g. "zen.example.net"')
    missing = tmp_path / "none.key"
    assert error(zone=DQS_ZONE, access_key_file=str(missing)) == (
        f"m.toml: dns.blocklists.0.access_key_file: {missing}: cannot read the DNS list access key: "
        f"No such file or directory; {allowed}")
    # a missing key names the list's keys, not their values
    assert error(zone=f"{ACCESS_KEY}.{DQS_ZONE}", rule=None) == (
        "m.toml: dns.blocklists.0.rule: Field required (got a table of score, zone); allowed: a string")


def test_a_key_is_told_apart_only_in_the_zones_whose_form_says_where_it_is() -> None:
    """Spamhaus DQS and Abusix give their private zones the form KEY.LIST.ZONE; in any other
    zone the first label may be the list's own name, which must stay in view."""
    assert written_key(f"{ACCESS_KEY}.{DQS_ZONE}") == (ACCESS_KEY, DQS_ZONE)
    assert written_key(f"{ACCESS_KEY}.combined.mail.abusix.zone") == (
        ACCESS_KEY, "combined.mail.abusix.zone")
    for zone in (DQS_ZONE, "b.barracudacentral.org", f"{ACCESS_KEY}.{KEYED_ZONE}",
                 f"x.{ACCESS_KEY}.{DQS_ZONE}"):
        assert written_key(zone) == ("", zone)


def test_configtest_fails_a_dqs_or_abusix_list_given_no_access_key(
        test_dns: DnsFixture, tmp_path: Path) -> None:
    """Spamhaus DQS and Abusix answer only queries made under a customer's key: a list of
    theirs configured without one (no access_key_file, none written in zone) never hits, and
    configtest blamed the resolver ("does not reach the list"). It names the missing key."""
    config = parse_config(_config(
        test_dns,
        {"zone": DQS_ZONE, "rule": "DQS", "score": 1.0},
        {"zone": "combined.mail.abusix.zone", "rule": "ABUSIX", "score": 1.0, "ipv6": False},
        {"zone": DQS_ZONE, "access_key_file": _key_file(tmp_path), "rule": "DQS_KEYED",
         "score": 1.0, "ipv6": False}), "test")
    assert [(c.ok, c.detail) for c in dns_checks(config)] == [
        (False, f"{DQS_ZONE}: no access key (dns.blocklists.0.access_key_file is empty and zone "
                "holds none): lists under dq.spamhaus.net answer only queries made under your key, "
                "so this one never hits; write the key alone into a file named by "
                "dns.blocklists.0.access_key_file (README: Network checks)"),
        (False, "combined.mail.abusix.zone: no access key (dns.blocklists.1.access_key_file is "
                "empty and zone holds none): lists under mail.abusix.zone answer only queries made "
                "under your key, so this one never hits; write the key alone into a file named by "
                "dns.blocklists.1.access_key_file (README: Network checks)"),
        (True, f"{DQS_ZONE}: test point listed (127.0.0.2); rule DQS_KEYED"),
    ]
