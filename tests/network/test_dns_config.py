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
