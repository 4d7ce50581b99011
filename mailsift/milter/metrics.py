"""Prometheus metrics of the milter: what administrators graph and alert on.

Only the milter process exports (workers report what they saw in their results), on a loopback
address chosen in the config.

Every label takes its values from a small fixed set or from the site's own rules, never from
what a sender writes, so the number of series stays bounded. Hits by rule name are exported
although a ruleset is large: they are what an administrator tunes scores by, and through the
BAYES_* bands they show how sure Bayes is (no separate histogram needed). Only rules that hit
get a series, bounded by the rules loaded (190 scoring rules shipped; Debian's stock
SpamAssassin rules add about 650), and counting a message's hits costs microseconds, against
the milliseconds of scoring it.

Each label with a fixed list of values has every series from the start, at zero. Prometheus
sees no increase in a series whose first sample is already 1, so an alert such as
`increase(mailsift_errors_total[10m]) > 0` missed the first on_error after a start, and with
it a fault that struck once. So do the rule errors, one series per rule that can err (every
rule loaded but a meta, which only combines others): a rule whose series appeared at its first
error showed 1 before a restart and 1 again at its first error after it, no increase, and
README's MailsiftSlowRule stayed silent about the rule erring again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from mailsift.config import host_port
from mailsift.milter.actions import Action
from mailsift.milter.workers import SCORING_FAILURES
from mailsift.network.resolver import UNKNOWN

if TYPE_CHECKING:
    from mailsift.milter.workers import Scored
    from mailsift.rules.model import RuleSet


# Why a message got milter.on_error beyond scoring's own reasons (see the session's _on_error).
INTERNAL_ERROR, RECIPIENT_STUCK, QUARANTINE_FAILED = (
    "internal_error", "recipient_not_removable", "quarantine_failed")

# The values of each fixed-list label, as README's Monitoring table names them.
MESSAGE_ACTIONS = (*Action, "partial-quarantine", "skip", "paused", "tempfail", "error-accept")
ERROR_REASONS = (*SCORING_FAILURES, INTERNAL_ERROR, RECIPIENT_STUCK, QUARANTINE_FAILED)
BAYES_SKIPPED = ("untrained", "failed")
AUTOLEARN_OUTCOMES = ("spam", "ham", "kept", "no", "failed", "unavailable")
DNS_ERRORS = tuple(sorted(UNKNOWN))


def _from_zero(counter: Counter, values: Iterable[str]) -> Counter:
    """`counter` with a series at zero for each of `values` (see the module's docstring)."""
    for value in values:
        counter.labels(value)
    return counter


class MetricsListenError(Exception):
    """milter.metrics_listen cannot be bound: one line naming the key and the address."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = _from_zero(Counter("mailsift_messages", "Messages handled, by action",
                                           ["action"], registry=self.registry), MESSAGE_ACTIONS)
        self.latency = Histogram(
            "mailsift_scoring_seconds", "Time from end of message to verdict",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
            registry=self.registry)
        # From end of message to a free worker: above zero only while every worker is busy, and
        # up to half of milter.timeout (then on_error), so what tells an admin to add workers.
        self.worker_wait = Histogram(
            "mailsift_worker_wait_seconds", "Time a message waited for a free scoring worker",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 150),
            registry=self.registry)
        self.store_errors = Counter("mailsift_store_errors", "Messages scored without Bayes "
                                    "because its store failed", registry=self.registry)
        self.bayes_skipped = _from_zero(Counter(
            "mailsift_bayes_skipped", "Messages scored without Bayes although its store "
            "answered, by reason (untrained, failed)", ["reason"], registry=self.registry),
            BAYES_SKIPPED)
        self.autolearn = _from_zero(Counter(
            "mailsift_autolearn", "Messages scored, by what autolearn did (spam, ham, kept, "
            "failed, unavailable, no)", ["outcome"], registry=self.registry), AUTOLEARN_OUTCOMES)
        self.dns_errors = _from_zero(Counter(
            "mailsift_dns_errors", "DNS lookups of the network checks that timed out or failed, "
            "by outcome", ["outcome"], registry=self.registry), DNS_ERRORS)
        self.rule_hits = Counter("mailsift_rule_hits", "Scoring hits, by rule", ["rule"],
                                 registry=self.registry)
        self.rule_errors = Counter("mailsift_rule_errors", "Rules counted as not hit because they "
                                   "overran scan.rule_budget or their check raised, by rule",
                                   ["rule"], registry=self.registry)
        self.worker_restarts = Counter("mailsift_worker_restarts", "Scoring workers replaced "
                                       "after dying or overrunning the budget",
                                       registry=self.registry)
        self.errors = _from_zero(Counter("mailsift_errors", "Messages that got milter.on_error, "
                                         "by reason", ["reason"], registry=self.registry),
                                 ERROR_REASONS)

    def rules_loaded(self, ruleset: RuleSet) -> None:
        """The rules of a start or a reload: each that can err has its error series, at 0 until
        it does (see the module's docstring); a series of a rule since removed stays as it was."""
        _from_zero(self.rule_errors, (name for name, rule in ruleset.rules.items()
                                      if rule.kind != "meta"))

    def scored(self, scored: Scored) -> None:
        """Count what a worker saw while scoring one message."""
        result = scored.result
        self.autolearn.labels(scored.autolearned).inc()
        if result.bayes_missing == "unavailable":
            self.store_errors.inc()
        elif result.bayes_missing in BAYES_SKIPPED:  # "off" is the config, not news
            self.bayes_skipped.labels(result.bayes_missing).inc()
        for outcome in result.dns_failures:
            self.dns_errors.labels(outcome).inc()
        for hit in result.hits:
            self.rule_hits.labels(hit.name).inc()
        for rule in result.rule_errors:
            self.rule_errors.labels(rule).inc()

    def serve(self, listen: str) -> None:
        host, port = host_port(listen)
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:  # the port is taken (an old milter still running), or no such address
            why = exc.strerror or str(exc)
            raise MetricsListenError(f"milter.metrics_listen {listen}: {why[:1].lower()}{why[1:]}") from None
