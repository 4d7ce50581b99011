"""One DNS server for the whole session, and scanners whose resolver points at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailsift.config import Config, parse_config
from mailsift.scanner import Scanner
from tests.network.dns_server import DnsServer, make_dkim_key, make_ed25519_key
from tests.network.zone import ALLOW_ZONE, BLOCK_ZONE, OWN_DOMAIN, URI_ZONE

# The DNS budget per message (dns.timeout): dnsmasq on loopback answers in milliseconds, so a
# second is ample, and each test of a zone that never answers waits it out once.
BUDGET_S = 1.0


@dataclass(frozen=True)
class DnsFixture:
    server: DnsServer
    dkim_private_key: bytes
    ed25519_private_key: bytes


@pytest.fixture(scope="session")
def test_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsFixture]:
    directory: Path = tmp_path_factory.mktemp("dns")
    private, public = make_dkim_key(directory)
    ed25519_private, ed25519_public = make_ed25519_key()
    server = DnsServer(directory, public, ed25519_public)
    yield DnsFixture(server, private, ed25519_private)
    server.stop()


def network_config(nameserver: str, timeout: float = BUDGET_S) -> Config:
    """DNS checks on, our resolver, one list of each kind, our own domain."""
    return parse_config({
        "dns": {
            "enabled": True, "nameservers": [nameserver], "timeout": timeout, "cache_size": 0,
            "authserv_id": "mx.our.test",
            "blocklists": [
                {"zone": BLOCK_ZONE, "rule": "RCVD_IN_TEST_BL", "score": 2.5, "codes": ["127.0.0.2"]},
                {"zone": URI_ZONE, "rule": "URIBL_TEST", "score": 1.5, "kind": "uri"},
            ],
            "allowlists": [{"zone": ALLOW_ZONE, "rule": "RCVD_IN_TEST_ALLOW", "score": -2.0}],
        },
        "network": {"own_domains": [OWN_DOMAIN]},
    }, "tests/network/conftest.py")


@pytest.fixture(scope="session")
def test_dns_address(test_dns: DnsFixture) -> str:
    return test_dns.server.address


@pytest.fixture(scope="session")
def scanner(test_dns: DnsFixture) -> Scanner:
    return Scanner(network_config(test_dns.server.address))
