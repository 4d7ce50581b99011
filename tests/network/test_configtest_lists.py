"""`mailsift configtest` asks each DNS list for its RFC 5782 test point, through the real test
DNS server: a list that works, one that refuses our resolver, a mistyped zone, a dead one."""

from __future__ import annotations

from mailsift.config import parse_config
from mailsift.configtest import dns_checks
from tests.network.conftest import DnsFixture
from tests.network.dns_server import SILENT_ZONE
from tests.network.zone import (
    ALLOW_ZONE,
    BLOCK_ZONE,
    BLOCKED_URI_ZONE,
    EVERY_IP6_ZONE,
    EVERYTHING_ZONE,
    IP6_NEVER_POINT,
    REFUSING_ZONE,
    URI_ZONE,
)

IPV4_ONLY = ("does not list its IPv6 test point ::ffff:7f00:2 (2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20
             + f".{ALLOW_ZONE}): it probably lists IPv4 only; set ipv6 = false for it to save a query "
             "per message from an IPv6 host")


def test_each_list_is_asked_for_its_test_point(test_dns: DnsFixture) -> None:
    lists = [(BLOCK_ZONE, "ip", ["127.0.0.2"]), (URI_ZONE, "uri", []), (REFUSING_ZONE, "ip", []),
             ("bl-typo.test", "ip", []), (SILENT_ZONE, "ip", []), (BLOCK_ZONE, "ip", ["127.0.0.9"])]
    config = parse_config({"dns": {
        "enabled": True, "nameservers": [test_dns.server.address], "timeout": 1.0, "cache_size": 0,
        "blocklists": [{"zone": zone, "rule": f"LIST_{n}", "score": 1.0, "kind": kind, "codes": codes}
                       for n, (zone, kind, codes) in enumerate(lists)],
        "allowlists": [{"zone": ALLOW_ZONE, "rule": "ALLOW", "score": -1.0}],
    }}, "test")
    found = [(check.ok, check.detail) for check in dns_checks(config)]
    assert found == [
        (True, f"{BLOCK_ZONE}: test point listed (127.0.0.2); rule LIST_0; IPv6 test point listed too"),
        (True, f"{URI_ZONE}: test point listed (127.0.0.2); rule LIST_1"),
        (False, f"{REFUSING_ZONE}: refuses our queries (answer 127.255.255.254): query it through "
                "your own resolver, and check its terms"),
        (False, "bl-typo.test: does not list its test point 2.0.0.127.bl-typo.test: wrong zone, or "
                "the resolver does not reach the list"),
        (False, f"{SILENT_ZONE}: no answer for 2.0.0.127.{SILENT_ZONE} (timeout, 1 s): the "
                "resolver does not reach the list"),
        (False, f"{BLOCK_ZONE}: answers 127.0.0.2 for its test point, none of them in its codes "
                "['127.0.0.9']"),
        (True, f"{ALLOW_ZONE}: test point listed (127.0.0.2); rule ALLOW; {IPV4_ONLY}"),
    ]


def test_dns_off_or_without_lists_is_said_so(test_dns: DnsFixture) -> None:
    assert [c.detail for c in dns_checks(parse_config({}, "test"))] == ["off (dns.enabled = false)"]
    on = parse_config({"dns": {"enabled": True, "nameservers": [test_dns.server.address]}}, "test")
    assert [(c.ok, c.detail) for c in dns_checks(on)] == [(True, "on; no DNS lists configured")]


def test_a_resolver_that_answers_nothing_fails_with_or_without_lists(test_dns: DnsFixture) -> None:
    """A mistyped or stopped resolver passed as "on; no DNS lists configured", though every
    message would then wait dns.timeout for SPF, DKIM, DMARC and reverse DNS and get none.
    (The test server refuses the root question, which is an answer: it passes above.)"""
    silent = test_dns.server.silent_address
    for lists in ([], [{"zone": BLOCK_ZONE, "rule": "LIST", "score": 1.0}]):
        config = parse_config({"dns": {"enabled": True, "nameservers": [silent], "timeout": 0.3,
                                       "blocklists": lists}}, "test")
        assert [(c.what, c.ok, c.detail) for c in dns_checks(config)] == [(
            "dns", False, f"no answer from {silent} within 0.3 s (dns.timeout), asked for the root "
            "zone's servers, which any resolver knows: is one running there (dns.nameservers)? "
            "Each message would wait that long and get no network checks")]


def test_list_that_lists_everything_fails(test_dns: DnsFixture) -> None:
    """A dead list answering 127.0.0.2 for every name passes the positive test point; the RFC 5782
    point that must never be listed (127.0.0.1, or the name INVALID) shows it lists the world,
    and a URI list answering 127.0.0.1 to say "refused" is named as refusing."""
    lists = [(EVERYTHING_ZONE, "ip"), (EVERYTHING_ZONE, "uri"), (BLOCKED_URI_ZONE, "uri")]
    config = parse_config({"dns": {
        "enabled": True, "nameservers": [test_dns.server.address], "timeout": 1.0, "cache_size": 0,
        "blocklists": [{"zone": zone, "rule": f"LIST_{n}", "score": 1.0, "kind": kind}
                       for n, (zone, kind) in enumerate(lists)],
    }}, "test")
    found = [(check.ok, check.detail) for check in dns_checks(config)]
    assert found == [
        (False, f"{EVERYTHING_ZONE}: lists everything (127.0.0.2 also for 1.0.0.127.{EVERYTHING_ZONE}, "
                "which no list may list): the list is dead or broken; remove it"),
        (False, f"{EVERYTHING_ZONE}: lists everything (127.0.0.2 also for invalid.{EVERYTHING_ZONE}, "
                "which no list may list): the list is dead or broken; remove it"),
        (False, f"{BLOCKED_URI_ZONE}: refuses our queries (answer 127.0.0.1): query it through "
                "your own resolver, and check its terms"),
    ]


def test_list_asked_about_ipv6_hosts_is_asked_for_the_ipv6_test_points(test_dns: DnsFixture) -> None:
    """RFC 5782 gives an IPv6 list the test points ::FFFF:7F00:2 and ::FFFF:7F00:1. As every list
    is asked about IPv6 hosts unless set `ipv6 = false`, one that lists neither is named (most
    list IPv4 alone), and one that lists the never-listed point, which would hit every message
    from an IPv6 host, fails even though its IPv4 test points are right."""
    lists = [(BLOCK_ZONE, "ip", True), (ALLOW_ZONE, "ip", True), (EVERY_IP6_ZONE, "ip", True),
             (EVERY_IP6_ZONE, "ip", False), (URI_ZONE, "uri", True)]
    config = parse_config({"dns": {
        "enabled": True, "nameservers": [test_dns.server.address], "timeout": 1.0, "cache_size": 0,
        "blocklists": [{"zone": zone, "rule": f"LIST_{n}", "score": 1.0, "kind": kind, "ipv6": ipv6}
                       for n, (zone, kind, ipv6) in enumerate(lists)],
    }}, "test")
    found = [(check.ok, check.detail) for check in dns_checks(config)]
    assert found == [
        (True, f"{BLOCK_ZONE}: test point listed (127.0.0.2); rule LIST_0; IPv6 test point listed too"),
        (True, f"{ALLOW_ZONE}: test point listed (127.0.0.2); rule LIST_1; {IPV4_ONLY}"),
        (False, f"{EVERY_IP6_ZONE}: lists every IPv6 address (127.0.0.2 also for "
                f"{IP6_NEVER_POINT}.{EVERY_IP6_ZONE}, which no list may list): set ipv6 = false for it"),
        (True, f"{EVERY_IP6_ZONE}: test point listed (127.0.0.2); rule LIST_3"),
        (True, f"{URI_ZONE}: test point listed (127.0.0.2); rule LIST_4"),
    ]
