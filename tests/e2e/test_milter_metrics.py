"""The milter's Prometheus metrics, read from the /metrics endpoint of a running milter after
real mail went through the session Postfix: what an administrator graphs and alerts on must
count what happened to that mail (the workers score, the milter process exports)."""

from __future__ import annotations

import re
import sqlite3
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mailsift.analysis.parse import analyse
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label
from mailsift.config import parse_config
from mailsift.scanner import Scanner
from tests.e2e.conftest import MilterFactory, Mta, base_config
from tests.e2e.messages import SLOW_MARK, TAG_MARK, make_message
from tests.e2e.test_milter_failsafe import assert_on_error_outcome, kill_the_idle_worker
from tests.e2e.test_milter_network import RECIPIENT, dns_overrides
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import letter
from tests.network.zone import LISTED_IP
from tests.support.milter_process import MilterProcess, merge
from tests.support.ports import LOOPBACK, free_port
from tests.support.redis_server import RedisServer, wait_until

BOB = "bob@example.com"
README = Path(__file__).parents[2] / "README.md"
FIXED_LISTS = ["mailsift_messages_total", "mailsift_errors_total", "mailsift_bayes_skipped_total",
               "mailsift_autolearn_total", "mailsift_dns_errors_total"]


def start_exporting(start_milter: MilterFactory, overrides: dict[str, object] | None = None
                    ) -> MilterProcess:
    """A milter (base config + `overrides`) serving its metrics on a free loopback port."""
    return start_milter(merge(overrides or {}, {"milter": {"metrics_listen": f"{LOOPBACK}:{free_port()}"}}))


def samples(milter: MilterProcess) -> list[Sample]:
    """Every sample /metrics shows now."""
    url = f"http://{milter.config['milter']['metrics_listen']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def metric(milter: MilterProcess, name: str) -> float:
    """A counter without labels."""
    [value] = [s.value for s in samples(milter) if s.name == name]
    return float(value)


def every_series(milter: MilterProcess, name: str, label: str) -> dict[str, float]:
    """Every series of a counter with one label, as label value -> count, zeros included."""
    return {s.labels.get(label, ""): s.value for s in samples(milter) if s.name == name}


def series(milter: MilterProcess, name: str, label: str) -> dict[str, float]:
    """What a counter with one label counted, as label value -> count (none: nothing counted)."""
    return {value: count for value, count in every_series(milter, name, label).items() if count}


def readme_values(name: str) -> tuple[str, set[str]]:
    """The label of metric `name` and the values README's Monitoring table lists for it."""
    [row] = [line for line in README.read_text().splitlines() if line.startswith(f"| `{name}` |")]
    label, _, values = row.split("|")[2].strip().partition(":")
    values = re.sub(r"\([^)]*\)", "", values)  # the explanations in brackets hold commas
    return label.strip("` "), {value.strip() for value in values.split(",")}


def status_word(status: str, key: str) -> str:
    """A `key=value` of X-Spam-Status (folded over lines)."""
    found = re.search(rf"\b{key}=(\S+)", " ".join(status.split()))
    assert found, status
    return found.group(1)


def deliver(mta: Mta, *marks: str) -> str:
    """Send a message with these marker words to Bob; its X-Spam-Status as delivered."""
    raw, message_id = make_message(*marks)
    sent = mta.send(raw, BOB)
    assert sent.accepted, sent.reply
    return mta.delivered(message_id).header("X-Spam-Status") or ""


def test_autolearn_outcomes_are_counted_as_x_spam_status_names_them(
        mta: Mta, start_milter: MilterFactory) -> None:
    milter = start_exporting(start_milter)
    statuses = [deliver(mta), deliver(mta, TAG_MARK)]
    said = Counter(status_word(s, "autolearn") for s in statuses)
    assert said["spam"] == 1, statuses  # the tag mark scores far above autolearn's 12 points
    assert series(milter, "mailsift_autolearn_total", "outcome") == said


def test_rule_hits_are_counted_by_the_rules_x_spam_status_names(
        mta: Mta, start_milter: MilterFactory) -> None:
    milter = start_exporting(start_milter)
    status = deliver(mta, TAG_MARK)
    named = status_word(status, "tests").split(",")
    assert "E2E_TAG" in named
    assert series(milter, "mailsift_rule_hits_total", "rule") == dict.fromkeys(named, 1.0)


def test_a_rule_that_overruns_the_budget_is_counted_by_name(
        mta: Mta, start_milter: MilterFactory) -> None:
    milter = start_exporting(start_milter, {"scan": {"rule_budget": 0.2}})
    deliver(mta, SLOW_MARK)
    assert series(milter, "mailsift_rule_errors_total", "rule") == {"E2E_SLOW": 1.0}


def test_messages_scored_while_bayes_is_untrained_are_counted_apart_from_a_store_down(
        mta: Mta, start_milter: MilterFactory) -> None:
    """A new site's Bayes has no say until min_spam and min_ham are learned: no error, but
    the admin should see how much mail it still misses."""
    milter = start_exporting(start_milter)
    deliver(mta)
    deliver(mta)
    assert series(milter, "mailsift_bayes_skipped_total", "reason") == {"untrained": 2.0}
    assert metric(milter, "mailsift_store_errors_total") == 0


def test_messages_scored_while_the_store_is_down_are_counted_as_store_errors_only(
        mta: Mta, start_milter: MilterFactory, redis_for_bayes: RedisServer) -> None:
    """The worker used to report the store's state after autolearn; now the scan says why
    Bayes had no say, and a store that is down is not also counted as untrained."""
    milter = start_exporting(start_milter, {"bayes": {"store": redis_for_bayes.url}})
    redis_for_bayes.stop()
    deliver(mta)
    deliver(mta)
    assert metric(milter, "mailsift_store_errors_total") == 2
    assert series(milter, "mailsift_bayes_skipped_total", "reason") == {}


def damaged_store(directory: Path) -> str:
    """A SQLite Bayes store holding one ham, whose spam total is then overwritten with text,
    as a hand edit might: every lookup fails on it while the store itself answers."""
    url = f"sqlite:///{directory / 'damaged.sqlite'}"
    config = parse_config(merge(base_config(directory), {"bayes": {"store": url}}), "test")
    bayes = BayesFilter(config.bayes, open_store(config.bayes))
    bayes.learn(analyse(make_message()[0], config), Label.HAM)
    bayes.close()
    with sqlite3.connect(directory / "damaged.sqlite") as db:
        db.execute("UPDATE totals SET spam = 'lots'")
    db.close()
    return url


def test_a_message_bayes_fails_on_is_counted_as_failed_not_as_store_down(
        mta: Mta, start_milter: MilterFactory, tmp_path: Path) -> None:
    milter = start_exporting(start_milter, {"bayes": {"store": damaged_store(tmp_path)}})
    status = deliver(mta, TAG_MARK)
    assert "E2E_TAG" in status_word(status, "tests")
    assert series(milter, "mailsift_bayes_skipped_total", "reason") == {"failed": 1.0}
    assert metric(milter, "mailsift_store_errors_total") == 0


def test_dns_lookups_that_time_out_or_fail_are_counted_by_outcome(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture) -> None:  # noqa: F811
    """The counter existed but nothing fed it: it stayed at 0 while every lookup timed out."""
    milter = start_exporting(start_milter, dns_overrides(test_dns.server.address))
    # x.never.test never answers (timeout); unserved.example is refused by the server (servfail)
    raw = letter("Sam <sam@x.never.test>")
    sent = mta.send(raw, RECIPIENT, sender="ann@unserved.example",
                    xclient={"ADDR": LISTED_IP, "NAME": "mail.listed.test", "HELO": "mail.listed.test"})
    assert sent.accepted, sent.reply
    mta.delivered("<minutes-42@shop.test>")
    counted = series(milter, "mailsift_dns_errors_total", "outcome")
    assert set(counted) == {"timeout", "servfail"} and min(counted.values()) >= 1, counted


def test_every_series_of_a_fixed_list_label_is_there_at_zero_from_the_start(
        start_milter: MilterFactory) -> None:
    """Prometheus takes a series that first shows up at 1 for one that was always 1: README's
    `increase(mailsift_errors_total[10m]) > 0` stayed silent after the first on_error."""
    milter = start_exporting(start_milter)
    for name in FIXED_LISTS:
        label, values = readme_values(name)
        assert every_series(milter, name, label) == dict.fromkeys(values, 0.0), name


def test_every_rule_that_can_err_has_its_error_series_at_zero_from_the_start(
        start_milter: MilterFactory) -> None:
    """README's MailsiftSlowRule is `increase(mailsift_rule_errors_total[1h]) > 0`. A rule's
    series appeared at its first error: after a milter restart, a rule that had erred once
    before showed 1, then 1 again at its next error, which increase() takes for no change (and a
    series that first showed up at 1 needed a clause of its own in the alert)."""
    milter = start_exporting(start_milter)
    errors = every_series(milter, "mailsift_rule_errors_total", "rule")
    rules = Scanner(parse_config(milter.config, "test")).ruleset.rules
    assert errors == {name: 0.0 for name, rule in rules.items() if rule.kind != "meta"}
    assert {"E2E_SLOW", "E2E_TAG"} <= set(errors)


def test_on_error_is_counted_under_a_fixed_reason_not_the_logged_text(
        mta: Mta, start_milter: MilterFactory) -> None:
    """The label was the logged reason cut at 40 characters: mid-word, and carrying the
    configured timeout ("scoring took longer than 1s; worker rep")."""
    milter = start_exporting(start_milter, {"milter": {"workers": 1, "timeout": 1.0,
                                                       "on_error": "accept"},
                                            "scan": {"rule_budget": 20.0}})
    raw, message_id = make_message(SLOW_MARK)
    assert_on_error_outcome(mta, milter, "accept", mta.send(raw, BOB), message_id)
    assert series(milter, "mailsift_errors_total", "reason") == {"scoring_timeout": 1.0}
    assert series(milter, "mailsift_messages_total", "action") == {"error-accept": 1.0}
    assert metric(milter, "mailsift_worker_restarts_total") == 1  # replaced, and counted once


def test_a_worker_that_died_while_idle_is_counted_as_restarted_without_a_message(
        mta: Mta, start_milter: MilterFactory) -> None:
    """A worker killed between messages (the OOM killer's usual victim) is replaced and counted
    as it dies. It was replaced, and counted, only when a message next picked it (and only a
    worker lost with a message before that): on a quiet night mailsift_worker_restarts_total
    said nothing of workers being killed, and the next message paid for the rules loading."""
    milter = start_exporting(start_milter, {"milter": {"workers": 1}})
    deliver(mta)
    kill_the_idle_worker(milter)
    wait_until(lambda: metric(milter, "mailsift_worker_restarts_total") == 1,
               "the restart to be counted, no message sent")
    deliver(mta)
    assert metric(milter, "mailsift_worker_restarts_total") == 1
    assert series(milter, "mailsift_errors_total", "reason") == {}
