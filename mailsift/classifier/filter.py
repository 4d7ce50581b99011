"""Bayes as the scanner and `mailsift learn` use it: tokens in, a verdict or a learn outcome out.

A store that is down must not hold mail up: the first failure logs one warning, and for the next
`RETRY_AFTER` seconds messages are scored by rules alone without touching the store again, so a
dead Redis costs each message nothing rather than a connection timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mailsift.analysis.model import Message
from mailsift.classifier.bayes import BayesParams, Verdict, classify
from mailsift.classifier.digest import learn_digest, report_digests
from mailsift.classifier.reports import ReportMatch, digest_store, match
from mailsift.classifier.store import Label, LearnItem, Outcome, StoreError, TokenStore, token_key
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import BayesConfig

log = logging.getLogger(__name__)

RETRY_AFTER = 10.0
DAY = 86400


class BayesFilter:
    def __init__(self, config: BayesConfig, store: TokenStore,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.params = BayesParams(config.strength, config.unknown_prob, config.min_distance,
                                  config.max_tokens)
        self._clock = clock
        self._down_until = 0.0
        self._down = False

    @property
    def store_down(self) -> bool:
        """True while the last store access failed (messages are then scored by rules alone)."""
        return self._down

    def tokens(self, msg: Message) -> list[str]:
        return tokenize(msg, self.config.bigrams)

    def item(self, msg: Message) -> LearnItem:
        return LearnItem(learn_digest(msg), [token_key(t) for t in self.tokens(msg)])

    def verdict(self, msg: Message) -> Verdict | None:
        """The spam probability, or None while Bayes is untrained or its store unreachable."""
        if not self.config.enabled or self._clock() < self._down_until:
            return None
        tokens = self.tokens(msg)
        try:
            totals, counts = self.store.lookup([token_key(t) for t in tokens])
        except StoreError as exc:
            self._store_failed(exc)
            return None
        self._store_ok()
        if totals.spam < self.config.min_spam or totals.ham < self.config.min_ham:
            return None
        return classify(tokens, counts, totals, self.params)

    def reported(self, msg: Message) -> ReportMatch | None:
        """How much of the message matches shared spam reports; None while the store is down."""
        if self._clock() < self._down_until:
            return None
        try:
            found = match(digest_store(self.store), report_digests(msg))
        except StoreError as exc:
            self._store_failed(exc)
            return None
        self._store_ok()
        return found

    def report(self, msg: Message) -> bool:
        """Share the message's digests so every host recognises copies of it (after learning it)."""
        return digest_store(self.store).report(learn_digest(msg), report_digests(msg))

    def revoke(self, msg: Message) -> bool:
        return digest_store(self.store).revoke(learn_digest(msg))

    def learn(self, msg: Message, label: Label) -> Outcome:
        return self.store.learn(self.item(msg), label, int(time.time()))

    def forget(self, msg: Message) -> Outcome:
        return self.store.forget(self.item(msg))

    def expire(self) -> int:
        return self.store.expire(int(time.time()), self.config.token_ttl_days * DAY,
                                 self.config.hapax_ttl_days * DAY)

    def _store_failed(self, exc: StoreError) -> None:
        self._down_until = self._clock() + RETRY_AFTER
        if not self._down:
            log.warning("Bayes store unavailable (%s); scoring with rules only until it is back", exc)
        self._down = True

    def _store_ok(self) -> None:
        if self._down:
            log.warning("Bayes store is back; Bayes verdicts resume")
        self._down = False
