"""Servers shared by the test packages for the whole session: one redis-server and one Redis
Cluster, each emptied by the fixtures that hand them to a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisClusterServers, RedisServer


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
