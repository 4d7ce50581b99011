"""Servers shared by the test packages for the whole session: a redis-server, one speaking TLS
only, and a Redis Cluster, each emptied by the fixtures that hand them to a test; one
compiled-rules cache; and quarantine index writers that end soon when idle."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.quarantine import local
from tests.support.redis_server import RedisClusterServers, RedisServer, make_certificates


@pytest.fixture(scope="session", autouse=True)
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One compiled-rules cache for every scanner, CLI and milter the tests start, through the
    default rules.cache_dir ($XDG_CACHE_HOME/mailsift): compiling the shipped rules takes seconds
    and loading them milliseconds, so a cache per test made the suite pay those seconds hundreds of
    times, and none was written to the home directory of whoever runs the tests. Its entries are
    named by what was compiled, so a test's own local.cf gets its own. The cache itself is tested
    with directories of its own (tests/engine/test_pattern_cache_upgrades.py)."""
    base = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(base))
        yield base / "mailsift"


@pytest.fixture(scope="session", autouse=True)
def short_lived_index_writers() -> Iterator[None]:
    """A local quarantine index's writer thread ends after WRITER_IDLE_S (5 s) without work; the
    tests that fork while several processes open one index first wait for every writer an earlier
    test left (tests/support/open_together.py says why), and in the whole suite that wait was up
    to 10 s. Writers in the tests' own process end after half a second instead; the idle end and
    restart itself is tested with its own setting (tests/quarantine/test_group_commit.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "WRITER_IDLE_S", 0.5)
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """Three primaries sharing the slots: stores with different prefixes land on different nodes."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_seeds(redis_cluster: RedisClusterServers) -> list[tuple[str, int]]:
    """The shared cluster's node addresses, emptied for this test."""
    redis_cluster.flush()
    return redis_cluster.seeds


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    directory = tmp_path_factory.mktemp("redis-tls")
    server = RedisServer(directory / "server", tls=make_certificates(directory / "certs"))
    yield server
    server.stop()
