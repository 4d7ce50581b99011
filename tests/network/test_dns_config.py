"""The [dns] section: resolvers with ports, lists validated, scanner default from dns.enabled."""

from __future__ import annotations

import pytest

from mailsift.config import Config, ConfigError, parse_config, split_host_port
from mailsift.scanner import Scanner


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.53", ("192.0.2.53", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
])
def test_nameserver_may_carry_a_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected
    assert parse_config({"dns": {"nameservers": [text]}}, "t").dns.nameservers == [text]


@pytest.mark.parametrize(("data", "expected"), [
    ({"dns": {"nameservers": ["resolver.example:53"]}}, "dns.nameservers"),
    ({"dns": {"nameservers": ["127.0.0.1:99999"]}}, "out of range"),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "rcvd_in_x", "score": 1.0}]}}, "upper-case"),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "X", "score": -1.0}]}}, "dns.blocklists.0.score"),
    ({"dns": {"allowlists": [{"zone": "al.test", "rule": "X", "score": 1.0}]}}, "dns.allowlists.0.score"),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "X", "score": 1.0, "codes": ["nope"]}]}},
     "dns.blocklists.0.codes"),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "X", "score": 1.0}],
              "allowlists": [{"zone": "al.test", "rule": "X", "score": -1.0}]}}, "more than one list: X"),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "X", "score": 1.0},
                             {"zone": "other-bl.test", "rule": "X", "score": 2.0}]}},
     "dns.blocklists: rule names used by more than one list: X"),
    ({"network": {"own_domains": ["not a domain"]}}, "network.own_domains"),
])
def test_bad_dns_settings_are_one_line_errors(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "mailsift.toml")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_network_follows_the_configuration_unless_forced() -> None:
    enabled = parse_config({"dns": {"enabled": True, "nameservers": ["127.0.0.1:9"]}}, "t")
    assert Scanner(Config()).network is False
    assert Scanner(enabled).network is True
    assert Scanner(enabled, network=False).network is False
    assert Scanner(Config(), network=True).network is True


@pytest.mark.parametrize(("data", "allowed"), [
    ({"dns": {"nameservers": ["localhost"]}},
     "allowed: IP addresses with an optional :PORT, e.g. [\"127.0.0.1\", \"[::1]:5353\"]"),
    ({"network": {"trusted_networks": ["10.0.0.0/33"]}},
     "allowed: IP networks in CIDR notation, e.g. [\"192.0.2.0/24\", \"2001:db8::/32\"]"),
    ({"network": {"own_domains": ["@example.org"]}}, "allowed: domain names, e.g. [\"example.org\"]"),
    ({"dns": {"blocklists": [{"zone": "http://bl.test", "rule": "X", "score": 1.0}]}},
     "allowed: a DNS zone name, e.g. \"zen.example.net\""),
    ({"dns": {"blocklists": [{"zone": "bl.test", "rule": "X", "score": 1.0, "codes": ["127.2"]}]}},
     "allowed: IPv4 addresses, e.g. [\"127.0.0.2\", \"127.0.0.3\"]"),
])
def test_a_bad_address_or_name_says_what_form_is_allowed(data: dict[str, object], allowed: str) -> None:
    """"allowed: a list of strings" told an admin who wrote a host name or a bad CIDR nothing."""
    with pytest.raises(ConfigError) as err:
        parse_config(data, "mailsift.toml")
    assert str(err.value).endswith(allowed)
