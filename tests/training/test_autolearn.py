"""Autolearn as the milter runs it: real rules score corpus mail, and the thresholds are set
around the score they gave, so each test decides which side of a threshold the message falls."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope, Message
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, Totals
from mailsift.config import AutolearnConfig, BayesConfig, Config
from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from mailsift.training.autolearn import autolearn, rules_only_score
from tests.support.corpus import corpus_sample
from tests.support.cpu_time import wall_time
from tests.support.ports import LOOPBACK, unanswered_port
from tests.support.redis_server import RedisServer

SPAM_MAIL = corpus_sample("spam", 1, 10)[0]
HAM_MAIL = corpus_sample("easy_ham", 1, 10)[0]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite", min_spam=20,
                                    min_ham=20, per_recipient="domain"))


@pytest.fixture
def bayes(config: Config) -> BayesFilter:
    return BayesFilter(config.bayes, open_store(config.bayes))


@pytest.fixture
def scanner(config: Config, bayes: BayesFilter) -> Scanner:
    return Scanner(config, bayes=bayes)


def scored(scanner: Scanner, raw: bytes, *recipients: str) -> tuple[Message, Result]:
    msg = scanner.analyse(raw, Envelope(rcpt_to=list(recipients or ["ann@example.net"])))
    return msg, scanner.score(msg)


def as_spam(result: Result) -> AutolearnConfig:
    """Thresholds that make this result's rules-only score exactly clear-cut spam."""
    score = rules_only_score(result)
    return AutolearnConfig(spam_score=score, ham_score=score - 100)


def as_ham(result: Result) -> AutolearnConfig:
    score = rules_only_score(result)
    return AutolearnConfig(spam_score=score + 100, ham_score=score)


def test_clear_verdicts_are_learned_once_and_unclear_ones_never(scanner: Scanner, bayes: BayesFilter) -> None:
    spam, spam_result = scored(scanner, SPAM_MAIL)
    ham, ham_result = scored(scanner, HAM_MAIL)
    score = rules_only_score(spam_result)
    between = AutolearnConfig(spam_score=score + 0.01, ham_score=score - 0.01)
    assert autolearn(spam, spam_result, bayes, between) == "no"
    assert autolearn(spam, spam_result, bayes, as_spam(spam_result).model_copy(
        update={"enabled": False})) == "no"
    assert bayes.store.totals() == Totals(0, 0)
    assert autolearn(spam, spam_result, bayes, as_spam(spam_result)) == "spam"
    assert autolearn(ham, ham_result, bayes, as_ham(ham_result)) == "ham"
    assert autolearn(spam, spam_result, bayes, as_spam(spam_result)) == "kept"
    assert bayes.store.totals() == Totals(1, 1)


def test_a_message_learned_by_hand_is_never_relearned(scanner: Scanner, bayes: BayesFilter) -> None:
    msg, result = scored(scanner, SPAM_MAIL)
    bayes.learn(msg, Label.HAM)  # someone released it and said it is wanted
    assert autolearn(msg, result, bayes, as_spam(result)) == "kept"
    assert bayes.store.seen(bayes.item(msg).digest) is Label.HAM
    assert bayes.store.totals() == Totals(0, 1)


def test_the_bayes_points_do_not_count_towards_autolearn(config: Config, scanner: Scanner,
                                                         bayes: BayesFilter) -> None:
    """Bayes would otherwise confirm its own mistakes."""
    for raw in corpus_sample("spam", 20, 100):
        bayes.learn(scanner.analyse(raw), Label.SPAM)
    for raw in corpus_sample("easy_ham", 20, 100):
        bayes.learn(scanner.analyse(raw), Label.HAM)
    msg, result = scored(scanner, SPAM_MAIL)
    [bayes_hit] = [h for h in result.hits if h.name.startswith("BAYES_")]
    assert bayes_hit.score > 0
    threshold = rules_only_score(result) + bayes_hit.score / 2  # only reached with Bayes
    assert result.score >= threshold
    assert autolearn(msg, result, bayes, AutolearnConfig(spam_score=threshold)) == "no"


def test_a_store_that_is_down_costs_one_failure(config: Config, scanner: Scanner) -> None:
    """A store that does not answer (a firewalled host): each attempt on it costs its timeout,
    so the clock tells how many were made. The message's two stores (the site's and
    example.org's) cost one between them, and the next message none."""
    timeout = 0.2
    msg, result = scored(scanner, SPAM_MAIL, "bob@example.org")
    with unanswered_port() as port:
        down = BayesConfig(store=f"redis://{LOOPBACK}:{port}", per_recipient="domain", timeout=timeout)
        dead = BayesFilter(down, open_store(down))
        first, took = wall_time(lambda: autolearn(msg, result, dead, as_spam(result)))
        assert first == "unavailable" and dead.store_down
        again, took_again = wall_time(lambda: autolearn(msg, result, dead, as_spam(result)))
    assert again == "unavailable"
    assert timeout <= took < 2 * timeout, took
    assert took_again < timeout / 2, took_again  # not a second attempt on the dead store


def test_mail_to_one_domain_also_teaches_that_domains_store(scanner: Scanner, bayes: BayesFilter) -> None:
    msg, result = scored(scanner, SPAM_MAIL, "Bob@Example.org", "carol@example.org")
    assert autolearn(msg, result, bayes, as_spam(result)) == "spam"
    assert bayes.for_recipient("example.org").store.totals() == Totals(1, 0)
    ham, ham_result = scored(scanner, HAM_MAIL, "bob@example.org", "dan@other.example")
    assert autolearn(ham, ham_result, bayes, as_ham(ham_result)) == "ham"
    assert bayes.store.totals() == Totals(1, 1)  # the site learns both,
    assert bayes.for_recipient("example.org").store.totals() == Totals(1, 0)  # a domain its own
    assert bayes.for_recipient("other.example").store.totals() == Totals(0, 0)


def test_a_domains_store_learns_what_the_site_learned_before_unless_corrected(
        scanner: Scanner, bayes: BayesFilter) -> None:
    """The same spam reaching a second domain teaches that domain too; a message the site's
    store holds as the other class (corrected by hand) teaches no domain; a domain's own
    correction is never overridden."""
    spam, result = scored(scanner, SPAM_MAIL, "bob@example.org")
    assert autolearn(spam, result, bayes, as_spam(result)) == "spam"
    again, again_result = scored(scanner, SPAM_MAIL, "ann@other.example")
    assert autolearn(again, again_result, bayes, as_spam(again_result)) == "kept"
    assert bayes.for_recipient("other.example").store.totals() == Totals(1, 0)

    ham, ham_result = scored(scanner, HAM_MAIL, "bob@example.org")
    bayes.learn(ham, Label.HAM)  # the site's store says ham; the rules, here, say spam
    assert autolearn(ham, ham_result, bayes, as_spam(ham_result)) == "kept"
    assert bayes.for_recipient("example.org").store.totals() == Totals(1, 0)

    third = scanner.analyse(corpus_sample("spam", 1, 11)[0], Envelope(rcpt_to=["eve@third.example"]))
    third_result = scanner.score(third)
    bayes.for_recipient("third.example").learn(third, Label.HAM)
    assert autolearn(third, third_result, bayes, as_spam(third_result)) == "spam"
    domain = bayes.for_recipient("third.example").store
    assert (domain.totals(), domain.seen(bayes.item(third).digest)) == (Totals(0, 1), Label.HAM)


def test_a_full_redis_refuses_autolearn_but_bayes_keeps_scoring(
        config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Redis at maxmemory with noeviction refuses writes and still answers reads. A refused
    autolearn used to mark the store down: every message for the next 10 s was scored by rules
    alone, and "unavailable" and "is back" were logged in turn for as long as it stayed full."""
    server = RedisServer(tmp_path / "redis", "--maxmemory-policy", "noeviction")
    try:
        bayes_config = config.bayes.model_copy(update={"store": server.url, "min_spam": 1, "min_ham": 1})
        bayes = BayesFilter(bayes_config, open_store(bayes_config))
        scanner = Scanner(config.model_copy(update={"bayes": bayes_config}), bayes=bayes)
        bayes.learn(scanner.analyse(SPAM_MAIL), Label.SPAM)
        bayes.learn(scanner.analyse(HAM_MAIL), Label.HAM)
        with server.client() as client:
            client.config_set("maxmemory", client.info("memory")["used_memory"])
        caplog.set_level(logging.WARNING)
        for raw in corpus_sample("spam", 3, 20):
            msg, result = scored(scanner, raw)
            assert [h.name for h in result.hits if h.name.startswith("BAYES_")], "scored without Bayes"
            assert autolearn(msg, result, bayes, as_spam(result)) == "failed"
            assert not bayes.store_down
    finally:
        server.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"Bayes autolearn refused, scoring goes on (redis at 127.0.0.1:{server.port}: "
        "OutOfMemoryError: command not allowed when used memory > 'maxmemory'. (Redis is full: "
        "raise maxmemory, or set maxmemory-policy volatile-lru so that old tokens make room))"]


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_the_gtube_test_message_is_spam_at_every_threshold_and_never_learned(
        scanner: Scanner, bayes: BayesFilter) -> None:
    """An administrator's test message scores far above any threshold, and teaching Bayes that
    a colleague's ordinary wording (around the GTUBE line) is spam would be a mistake. Only the
    standard line counts: the variants other filters take to force a milder action would let a
    sender choose its own treatment."""
    test_letter = HAM_MAIL.replace(b"\n\n", f"\n\nChecking the filter:\n{GTUBE}\n\n".encode(), 1)
    msg, result = scored(scanner, test_letter)
    assert "GTUBE_TEST_MESSAGE" in result.rule_names and rules_only_score(result) >= 1000
    assert autolearn(msg, result, bayes, AutolearnConfig()) == "no"
    assert bayes.store.totals() == Totals(0, 0)
    for variant in ("Y" + GTUBE[1:], "A" + GTUBE[1:], GTUBE.replace("-", " ")):
        _, result = scored(scanner, HAM_MAIL.replace(b"\n\n", f"\n\n{variant}\n\n".encode(), 1))
        assert "GTUBE_TEST_MESSAGE" not in result.rule_names, variant
