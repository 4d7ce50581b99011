"""Prometheus metrics of the milter: what administrators graph and alert on.

Only the milter process exports (workers report what they saw in their results), on a loopback
address chosen in the config.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from mailsift.config import host_port


class MetricsListenError(Exception):
    """milter.metrics_listen cannot be bound: one line naming the key and the address."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("mailsift_messages", "Messages handled, by action",
                                ["action"], registry=self.registry)
        self.latency = Histogram(
            "mailsift_scoring_seconds", "Time from end of message to verdict",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
            registry=self.registry)
        self.store_errors = Counter("mailsift_store_errors", "Messages scored without Bayes "
                                    "because its store failed", registry=self.registry)
        self.dns_errors = Counter("mailsift_dns_errors", "DNS lookups that failed or timed out",
                                  registry=self.registry)
        self.worker_restarts = Counter("mailsift_worker_restarts", "Scoring workers replaced "
                                       "after dying or overrunning the budget",
                                       registry=self.registry)
        self.errors = Counter("mailsift_errors", "Messages that got milter.on_error, by reason",
                              ["reason"], registry=self.registry)

    def serve(self, listen: str) -> None:
        host, port = host_port(listen)
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:  # the port is taken (an old milter still running), or no such address
            why = exc.strerror or str(exc)
            raise MetricsListenError(f"milter.metrics_listen {listen}: {why[:1].lower()}{why[1:]}") from None
