"""Servers shared by the test packages for the whole session: a redis-server, one speaking TLS
only, and a Redis Cluster, each emptied by the fixtures that hand them to a test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisClusterServers, RedisServer, make_certificates


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
