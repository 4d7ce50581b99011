"""Without the network no network rule fires and not one DNS query leaves the process.

The resolver is pointed at a loopback UDP socket that only counts what arrives, then the whole
benchmark test split is scored twice: with dns.enabled = false, and with the network switched off
by the caller as `mailsift check --no-network` does (Scanner(network=False)).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import corpus
from mailsift.config import Config, parse_config
from mailsift.scanner import Scanner
from tests.network.messages import letter
from tests.support.ports import LOOPBACK

MAILSIFT = str(Path(sys.executable).with_name("mailsift"))


class QueryCounter:
    """A 'nameserver' that answers nothing and counts the datagrams sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.05)
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._count, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.sock.getsockname()[1]}"

    def _count(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def counter() -> Iterator[QueryCounter]:
    listener = QueryCounter()
    yield listener
    listener.stop()


def dns_config(counter: QueryCounter, enabled: bool) -> Config:
    blocklist = {"zone": "bl.test", "rule": "RCVD_IN_TEST_BL", "score": 2.0}
    return parse_config({"dns": {"enabled": enabled, "nameservers": [counter.address], "timeout": 0.3,
                                 "blocklists": [blocklist]},
                         "network": {"own_domains": ["our.test"]}}, "test")


def net_hits(scanner: Scanner, raw: bytes) -> list[str]:
    return [h.name for h in scanner.scan(raw).hits if "net" in h.tflags]


def test_counter_sees_the_queries_of_a_networked_scan(counter: QueryCounter) -> None:
    """The listener works: with the network on, the same resolver setting does send queries."""
    scanner = Scanner(dns_config(counter, enabled=True))
    assert "DNS_TIMEOUT" in net_hits(scanner, letter())
    assert counter.received > 0


@pytest.mark.skipif(not corpus.CORPUS_ROOT.is_dir(), reason="shared corpus not present")
def test_benchmark_split_without_network_fires_no_network_rule_and_sends_no_query(
        counter: QueryCounter) -> None:
    disabled = Scanner(dns_config(counter, enabled=False))
    switched_off = Scanner(dns_config(counter, enabled=True), network=False)
    assert (disabled.network, switched_off.network) == (False, False)
    samples = corpus.test_set()
    fired = {}
    for path, _ in samples:
        msg = disabled.analyse(path.read_bytes())  # analysed once, scored by both
        hits = [h.name for scanner in (disabled, switched_off) for h in scanner.score(msg).hits
                if "net" in h.tflags]
        if hits:
            fired[path.name] = hits
    assert len(samples) > 1000
    assert fired == {}
    assert counter.received == 0


def test_check_command_no_network_sends_no_query(counter: QueryCounter, tmp_path: Path) -> None:
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[dns]\nenabled = true\nnameservers = ["{counter.address}"]\ntimeout = 0.3\n')
    message = tmp_path / "letter.eml"
    message.write_bytes(letter())
    env = {**os.environ, "MAILSIFT_CONFIG": str(config)}
    quiet = subprocess.run([MAILSIFT, "check", "--json", "--no-network", str(message)], env=env,
                           capture_output=True, text=True, check=False)
    assert quiet.returncode == 0, quiet.stderr
    assert '"score_set": 0' in quiet.stdout
    assert counter.received == 0
    loud = subprocess.run([MAILSIFT, "check", "--json", "--network", str(message)], env=env,
                          capture_output=True, text=True, check=False)
    assert '"score_set": 1' in loud.stdout
    assert counter.received > 0
