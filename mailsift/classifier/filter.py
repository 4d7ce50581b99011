"""Bayes as the scanner and `mailsift learn` use it: tokens in, a verdict or a learn outcome out.

A store that is down must not hold mail up: the first failure logs one warning, and for the next
`RETRY_AFTER` seconds (mailsift.breaker) messages are scored by rules alone without touching the
store again, so a dead Redis costs each message nothing rather than a connection timeout. The milter's scoring
workers share one `StoreHealth` in shared memory: one timeout and one warning for the whole pool,
not one per worker.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

from mailsift.analysis.model import Message
from mailsift.breaker import Breaker
from mailsift.classifier.bayes import BayesParams, Verdict, classify
from mailsift.classifier.digest import learn_digest, report_digests
from mailsift.classifier.reports import DigestStore, ReportMatch, digest_store, match
from mailsift.classifier.store import (
    Label,
    LearnItem,
    Outcome,
    StoreDamaged,
    StoreError,
    TokenStore,
    token_key,
)
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import BayesConfig
from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.log_throttle import ThrottledWarning

log = logging.getLogger(__name__)

DAY = 86400
# Per-recipient stores kept open per process, least recently used closed first: a hosting
# provider's milter sees thousands of domains, each store a namespace (and, on SQLite, a file
# connection).
RECIPIENT_STORES = 256
DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*")  # labels of letters (any script), digits, hyphens


class StoreHealth(Breaker):
    """The Bayes store's breaker; the milter's workers pass one `shared` value (see above)."""

    def __init__(self, shared: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("Bayes store", "scoring with rules only until it is back",
                         "Bayes verdicts resume", log, shared, clock)


def recipient_key(config: BayesConfig, recipients: Sequence[str],
                  subaddressing: Subaddressing = NO_SUBADDRESSES) -> str | None:
    """The domain or address (bayes.per_recipient) that every recipient shares, or None: mail
    to several of them, or no per-recipient Bayes, is judged by the site-wide store.
    `subaddressing`: Config.subaddressing (see `_recipient_key`)."""
    if config.per_recipient == "off":
        return None
    keys = {_recipient_key(recipient, config.per_recipient, subaddressing) for recipient in recipients}
    if len(keys) != 1:
        return None
    return keys.pop() or None


def _recipient_key(recipient: str, mode: str, subaddressing: Subaddressing) -> str:
    """The domain (of an address, or a bare domain) or the whole address; "" when there is none.
    The domain is in its ASCII form (`ascii_address`): bücher.example and xn--bcher-kva.example
    are one domain with one store, and mail to both spellings is still mail to one domain.
    A subaddress is its owner's (`Subaddressing.forms`, the last form): jane+shop@ and
    jane+news@ are scored by and teach jane@'s store, where each would have had one of its own
    that nothing trains. A name with braces gets none: braces would break the Redis hash tag
    of its store's keys."""
    address = subaddressing.forms(recipient.strip().strip("<>"))[-1]
    local, at, domain = address.rpartition("@")
    if not domain or "{" in address or "}" in address:
        return ""
    if mode == "domain":
        return domain
    return address if local and at else ""


def recipient_prefix(config: BayesConfig, name: str,
                     subaddressing: Subaddressing = NO_SUBADDRESSES) -> str:
    """The key prefix of the store of one domain or address, for `mailsift learn --for`: a
    subaddress names its owner's, which its mail is scored with (`subaddressing`, as the
    milter's)."""
    if config.per_recipient == "off":
        raise ValueError("--for needs bayes.per_recipient = \"domain\" or \"address\"")
    key = _recipient_key(name, config.per_recipient, subaddressing)
    domain = key.rpartition("@")[2]
    if not key or not DOMAIN.fullmatch(domain) or any(c.isspace() for c in key):
        # A typo would otherwise make a store that no mail is ever scored with.
        wanted = "a domain" if config.per_recipient == "domain" else "an address"
        raise ValueError(f"--for {name!r}: not {wanted}")
    return _store_prefix(config, key)


def for_name(config: BayesConfig, prefix: str,
             subaddressing: Subaddressing = NO_SUBADDRESSES) -> str:
    """The NAME by which `learn --for NAME` reaches the recipient's store under `prefix`; ''
    when none does: the site-wide store, another prefix, or the store a subaddress had before
    milter.recipient_delimiter was set (`subaddressing`), as --for now takes its name for its
    owner's store (jane+shop@example.com: jane@example.com's)."""
    name = prefix.removeprefix(config.key_prefix).removesuffix(":")
    try:
        return name if recipient_prefix(config, name, subaddressing) == prefix else ""
    except ValueError:  # bayes.per_recipient is off, or the prefix holds no domain or address
        return ""


def repair_named(config: BayesConfig, damage: Exception,
                 subaddressing: Subaddressing = NO_SUBADDRESSES) -> Exception:
    """`damage` (a StoreDamaged; any other error is returned as it is) with its repair naming
    the store as the administrator does in `mailsift learn`: nothing for the site-wide store,
    `--for NAME` for a recipient's (the store's prefix would send them looking for an option
    they never needed), `--prefix` for any other (`for_name`, under `subaddressing`). For every
    place that shows it: learn, the milter log of a scan or an autolearn, a quarantine review."""
    if not isinstance(damage, StoreDamaged):
        return damage
    prefix = damage.store.prefix
    if prefix == config.key_prefix:
        return damage.named_by("")
    name = for_name(config, prefix, subaddressing)
    return damage.named_by(f"--for {shlex.quote(name)}") if name else damage


def _store_prefix(config: BayesConfig, key: str) -> str:
    return f"{config.key_prefix}{key}:"


class BayesFilter:
    def __init__(self, config: BayesConfig, store: TokenStore, health: StoreHealth | None = None,
                 site: BayesFilter | None = None,
                 subaddressing: Subaddressing = NO_SUBADDRESSES) -> None:
        """`site`: for a per-recipient filter, the site-wide one whose health it shares and
        whose tokenisation of the message it reuses. `subaddressing`: Config.subaddressing, by
        which the recipients' store is chosen (`recipient_key`)."""
        self.config = config
        self.store = store
        self.subaddressing = subaddressing
        self.params = BayesParams(config.strength, config.unknown_prob, config.min_distance,
                                  config.max_tokens)
        self.health = site.health if site is not None else health or StoreHealth()
        # Damaged store data, a full store: the same news for message after message.
        self.warnings = site.warnings if site is not None else ThrottledWarning(log)
        self._site = site
        # The message last tokenised, and its tokens: scoring and then autolearning one message
        # would otherwise tokenise it twice.
        self._tokenised: tuple[Message, list[str]] | None = None
        self._recipients: OrderedDict[str, BayesFilter] = OrderedDict()
        self._recipients_lock = threading.Lock()

    @cached_property
    def reports(self) -> DigestStore:
        """The shared report digests, beside the site-wide tokens (made once). A recipient's
        filter has the site's: every message is matched against those alone, so a report kept
        under a recipient's store (`learn --report --for`) was never matched."""
        return self._site.reports if self._site is not None else digest_store(self.store)

    @property
    def own_reports(self) -> DigestStore | None:
        """The reports that belong to this store (in its backup, cleared by --clear-reports):
        a recipient's store has none."""
        return self.reports if self._site is None else None

    @property
    def store_down(self) -> bool:
        """True while the store is considered down (messages are then scored by rules alone)."""
        return self.health.retry_at != 0

    def tokens(self, msg: Message) -> list[str]:
        if self._site is not None:
            return self._site.tokens(msg)
        memo = self._tokenised  # read once: the web UI may call from several threads
        if memo is None or memo[0] is not msg:
            memo = (msg, tokenize(msg, self.config.bigrams))
            self._tokenised = memo
        return memo[1]

    def item(self, msg: Message) -> LearnItem:
        return LearnItem(learn_digest(msg), [token_key(t) for t in self.tokens(msg)])

    def verdict(self, msg: Message) -> Verdict | None:
        """The spam probability, or None while Bayes is untrained or its store unreachable."""
        if not self.config.enabled or self.health.skip():
            return None
        tokens = self.tokens(msg)
        try:
            totals, counts = self.store.lookup([token_key(t) for t in tokens])
        except StoreDamaged:
            raise  # the store answers: this message's failure (see Scanner._bayes_view), not an outage
        except StoreError as exc:
            self.health.failed(exc)
            return None
        self.health.ok()
        if not self.config.speaks(totals.spam, totals.ham):
            return None
        return classify(tokens, counts, totals, self.params)

    def for_recipient(self, key: str) -> BayesFilter:
        """The filter of one recipient domain or address (see `recipient_key`), on the same
        backend under the prefix key_prefix + KEY + ':'."""
        with self._recipients_lock:
            found = self._recipients.pop(key, None)
            if found is None:
                found = BayesFilter(self.config, self.store.with_prefix(_store_prefix(self.config, key)),
                                    site=self)
                if len(self._recipients) >= RECIPIENT_STORES:
                    self._recipients.popitem(last=False)[1].store.close()
            self._recipients[key] = found
        return found

    def recipients_verdict(self, msg: Message) -> Verdict | None:
        """The verdict of the store of the message's recipients when it has learned enough,
        else the site-wide one (see bayes.per_recipient)."""
        key = recipient_key(self.config, msg.envelope.rcpt_to, self.subaddressing)
        if key is not None:
            found = self.for_recipient(key).verdict(msg)
            if found is not None:
                return replace(found, store=key)
        return self.verdict(msg)

    def close(self) -> None:
        """Close the store and those of the recipients opened through it."""
        with self._recipients_lock:
            for recipient in self._recipients.values():
                recipient.store.close()
            self._recipients.clear()
        self.store.close()

    def reported(self, msg: Message) -> ReportMatch | None:
        """How much of the message matches shared spam reports; None while the store is down."""
        if self.health.skip():
            return None
        try:
            found = match(self.reports, report_digests(msg))
        except StoreDamaged:
            raise  # as in `verdict`: the store answers, so it is not taken for down
        except StoreError as exc:
            self.health.failed(exc)
            return None
        self.health.ok()
        return found

    def report(self, msg: Message) -> bool:
        """Share the message's digests so every host recognises copies of it (after learning it)."""
        return self.reports.report(learn_digest(msg), report_digests(msg))

    def revoke(self, msg: Message) -> bool:
        return self.reports.revoke(learn_digest(msg))

    def learn(self, msg: Message, label: Label) -> Outcome:
        return self.store.learn(self.item(msg), label, int(time.time()))

    def forget(self, msg: Message) -> Outcome:
        return self.store.forget(self.item(msg))

    def expire(self) -> int:
        return self.store.expire(int(time.time()), self.config.token_ttl_days * DAY,
                                 self.config.hapax_ttl_days * DAY)
