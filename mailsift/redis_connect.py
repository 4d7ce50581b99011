"""How mailsift reaches a Redis: one URL plus the settings a site's Redis needs (ACL user,
password, TLS files, Sentinel or Cluster), turned into a client factory.

The Bayes store and the shared quarantine index both connect this way, so a site that runs
Redis behind Sentinel, or with its own CA, sets the same keys for both. Nothing connects here:
the factory is called on first use, so a component can be built while Redis is down and fail
(with its own error) when it is used, like one whose Redis died.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import AuthenticationError, RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from mailsift.config import host_port
from mailsift.secrets import REDIS_PASSWORD_ENV, UNITS_ENVIRONMENT_FILE, masked_urls

# What a failed call may raise: redis-py raises RedisClusterException, which is not a
# RedisError, when no node of a cluster answers or the slot map is incomplete.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)
# Said instead of what a Redis that wants a password answers a client that gave none: "HELLO must
# be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option
# can be used ..." names no password, and the usual cause is a command run by hand without the
# unit's EnvironmentFile (root-only, read by systemd before it drops to the mailsift user).
NO_PASSWORD = (f"the server wants a password and none was given (password_file in the config section "
               f"of this Redis, or ${REDIS_PASSWORD_ENV}, which the systemd units read from "
               f"{UNITS_ENVIRONMENT_FILE}: a command run by hand needs it too)")
# Keys a SCAN call looks at, and so what a pipeline of its findings carries: a Redis the milter
# hosts share holds the Bayes tokens too, so a command must not walk it in one go.
SCAN_COUNT = 1000
# What a Sentinel connection takes from the client's settings (not the master's credentials).
TIMEOUT_KEYS = ("socket_connect_timeout", "socket_timeout", "retry")


class RedisSettingsError(ValueError):
    """The settings cannot name a Redis (bad URL, Sentinel and Cluster together, ...)."""


@dataclass(frozen=True)
class RedisSettings:
    url: str  # redis://, rediss:// (TLS) or unix://; with sentinels or cluster only its scheme counts
    username: str | None = None  # overrides the URL's
    password: str | None = None  # overrides the URL's
    sentinels: Sequence[tuple[str, int]] = ()  # the master of sentinel_service is found through them
    sentinel_service: str = "mymaster"
    cluster: Sequence[tuple[str, int]] = ()  # some nodes of a Redis Cluster
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    connect_timeout: float = 0.5
    timeout: float = 1.0
    retry: Retry | None = None  # None: redis-py's default


@dataclass(frozen=True)
class Connector:
    connect: Callable[[], Any]  # makes the client
    where: str  # "HOST:PORT", a socket path, "sentinel SERVICE via ...", "cluster via ..."
    password: str  # the one in use (settings or URL), for masking in error messages; "" if none


class RedisKeys(Protocol):
    """The connection keys a config section with a Redis URL carries ([bayes], [quarantine])."""

    username: str
    sentinels: list[str]
    sentinel_service: str
    cluster_nodes: list[str]
    tls_ca_file: str
    tls_cert_file: str
    tls_key_file: str


def settings_for(section: RedisKeys, url: str, password: str | None, **more: Any) -> RedisSettings:
    """RedisSettings from a config section's keys (empty strings meaning "not set"); `more`
    sets the fields the section decides itself (timeouts)."""
    return RedisSettings(
        url, username=section.username or None, password=password,
        sentinels=[host_port(node) for node in section.sentinels],
        sentinel_service=section.sentinel_service,
        cluster=[host_port(node) for node in section.cluster_nodes], ssl_ca_certs=section.tls_ca_file or None,
        ssl_certfile=section.tls_cert_file or None, ssl_keyfile=section.tls_key_file or None,
        **more)


def connector(settings: RedisSettings) -> Connector:
    """A factory of the client the settings name, and what error messages need.

    The Sentinels themselves are asked without AUTH (the usual setup); the credentials are for
    the master. A cluster client follows the slot map through fail-overs and resharding.
    """
    try:
        parsed = parse_url(settings.url)
    except ValueError as exc:
        raise RedisSettingsError(f"bad Redis URL: {exc}") from None
    if settings.sentinels and settings.cluster:
        raise RedisSettingsError("a Redis is reached through Sentinels or is a Redis Cluster, not both")
    kwargs = _client_kwargs(settings, parsed)
    password = kwargs["password"] or ""
    if settings.cluster:
        return _cluster(settings, kwargs, password)
    if settings.sentinels:
        service = settings.sentinel_service
        sentinel_kwargs = {key: kwargs[key] for key in TIMEOUT_KEYS if key in kwargs}
        client = Sentinel(list(settings.sentinels), sentinel_kwargs=sentinel_kwargs,
                          **kwargs).master_for(service)
        return Connector(lambda: client, f"sentinel {service} via {host_ports(settings.sentinels)}",
                         password)
    if "path" in parsed:
        kwargs["unix_socket_path"] = where = parsed["path"]
    else:
        kwargs["host"], kwargs["port"] = parsed.get("host", "localhost"), parsed.get("port", 6379)
        where = f"{kwargs['host']}:{kwargs['port']}"
    return Connector(functools.partial(redis.Redis, **kwargs), where, password)


def _client_kwargs(settings: RedisSettings, parsed: dict[str, Any]) -> dict[str, Any]:
    """What every kind of client takes: timeouts, credentials (settings before URL), database,
    TLS for rediss://."""
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout, "socket_timeout": settings.timeout,
        "username": (settings.username if settings.username is not None else parsed.get("username")) or None,
        "password": (settings.password if settings.password is not None else parsed.get("password")) or None,
        "db": parsed.get("db", 0)}
    if settings.retry is not None:
        kwargs["retry"] = settings.retry
    if settings.url.startswith("rediss://"):
        kwargs.update(ssl=True, ssl_ca_certs=settings.ssl_ca_certs, ssl_certfile=settings.ssl_certfile,
                      ssl_keyfile=settings.ssl_keyfile, ssl_check_hostname=settings.ssl_check_hostname,
                      ssl_cert_reqs="required")
    return kwargs


def _cluster(settings: RedisSettings, kwargs: dict[str, Any], password: str) -> Connector:
    if kwargs.pop("db"):
        url = masked_urls(repr(settings.url))
        raise RedisSettingsError(f"bad Redis URL for a cluster: {url} names a database "
                                 "other than 0, and a Redis Cluster has only database 0")
    nodes = [ClusterNode(host, port) for host, port in settings.cluster]
    return Connector(functools.partial(RedisCluster, startup_nodes=nodes, **kwargs),
                     "cluster via " + host_ports(settings.cluster), password)


def host_ports(nodes: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes)


def failure_text(exc: BaseException, password: str) -> str:
    """One line for a failed Redis call: the error's class and text, with the password in use
    (`Connector.password`) and any URL's masked, and a missing password said in plain words."""
    if isinstance(exc, AuthenticationError) and not password:
        return f"{type(exc).__name__}: {NO_PASSWORD}"
    text = masked_urls(f"{type(exc).__name__}: {exc}")
    return text.replace(password, "***") if password else text


def glob_escaped(text: str) -> str:
    """`text` matched literally by a SCAN pattern (a prefix may hold `[` or `*`)."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
