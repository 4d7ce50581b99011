"""Autolearn: teach Bayes from the verdicts the rules alone are sure of.

The rules-only score decides (not the Bayes part), otherwise Bayes would confirm its own
mistakes. Mail that a `noautolearn` rule or a welcome/block list decided is never learned, and a
message that was already learned — by an administrator, a release, or an earlier autolearn — is
never relearned: a manual correction is not undone by autolearn.

With per-recipient Bayes, mail to one domain or address also teaches that recipient's store, as
SpamAssassin's autolearn teaches the user's own database: otherwise a recipient's store would
grow only by hand and seldom reach the size at which it is used. Each store keeps its own
"learned before" record, so a correction made in it is respected, and a message the site-wide
store counts as the other class (corrected by hand there) teaches no recipient's store.

A store that cannot be reached is marked down for the scanner (`StoreHealth`); one that is only
full (Redis under noeviction) is not, as it still answers the lookups that scoring needs.
"""

from __future__ import annotations

import time

from mailsift.analysis.model import Message
from mailsift.classifier.filter import BayesFilter, recipient_key, repair_named
from mailsift.classifier.store import Label, LearnItem, Outcome, StoreDamaged, StoreError, StoreFull
from mailsift.config import AutolearnConfig, Config
from mailsift.rules.result import Result

NO_AUTOLEARN = "noautolearn"
BAYES_FLAG = "learn"  # tflags of the rules that carry the Bayes verdict


def rules_only_score(result: Result) -> float:
    return result.score - sum(h.score for h in result.hits if BAYES_FLAG in h.tflags)


def autolearn_label(result: Result, config: AutolearnConfig) -> Label | None:
    """The class the message would be learned as, or None when it is not clear-cut enough."""
    if not config.enabled or any(NO_AUTOLEARN in h.tflags for h in result.hits):
        return None
    score = rules_only_score(result)
    if score >= config.spam_score:
        return Label.SPAM
    if score <= config.ham_score:
        return Label.HAM
    return None


def learns_from(config: AutolearnConfig, outbound: bool) -> bool:
    """Whether autolearn looks at mail judged so at all: mail judged as outbound only with
    autolearn.outbound (see its description)."""
    return config.outbound or not outbound


def would_learn(result: Result, config: Config, outbound: bool) -> str:
    """What the milter's autolearn would do with the message, learning nothing: the class it
    would teach its store the message as (spam, ham), else "no". `mailsift check` writes it in
    X-Spam-Status's autolearn=, where the milter writes what it did, so the header check prints
    is the one delivered. Whether the store already holds the message (kept) or fails it
    (unavailable, failed) only learning finds out."""
    label = (autolearn_label(result, config.autolearn)
             if config.bayes.enabled and learns_from(config.autolearn, outbound) else None)
    return "no" if label is None else label.value


def autolearn(msg: Message, result: Result, bayes: BayesFilter, config: AutolearnConfig) -> str:
    """Learn the message if its verdict is clear; returns what happened in the site-wide store,
    for the log line and X-Spam-Status."""
    label = autolearn_label(result, config)
    if label is None:
        return "no"
    if bayes.store_down:
        return "unavailable"  # the scanner already warned; don't wait on a dead store again
    try:
        return _learn_everywhere(msg, bayes, label)
    except Exception as exc:  # the message is scored; learning it is a bonus (see below)
        bayes.warnings.warn("autolearn", "Bayes autolearn failed on a message (%s: %s), "
                            "scoring goes on", type(exc).__name__, repair_named(bayes.config, exc))
        return "failed"


def _learn_everywhere(msg: Message, bayes: BayesFilter, label: Label) -> str:
    """Learn the message in the site-wide store and, if it agrees, its recipients' store. A
    store that is down or full is handled here; what nobody foresaw (a seen record holding no
    class, a tokenizer bug) is caught by the caller, which must still deliver the verdict."""
    item = bayes.item(msg)
    outcome, agrees = _learn_once(bayes, item, label)
    key = recipient_key(bayes.config, msg.envelope.rcpt_to, bayes.subaddressing)
    if key is not None and agrees:  # never against a correction made in the site-wide store
        _learn_once(bayes.for_recipient(key), item, label)
    return outcome


def _learn_once(bayes: BayesFilter, item: LearnItem, label: Label) -> tuple[str, bool]:
    """What happened, and whether the store now counts the message as `label`."""
    try:
        before = bayes.store.seen(item.digest)
        if before is not None:
            return "kept", before is label  # learned before, possibly by hand: never overridden
        outcome = bayes.store.learn(item, label, int(time.time()))
    except StoreFull as exc:
        # It still reads: taking it for down would score every message by rules alone, and log
        # "unavailable" and "back" in turn, for as long as it stays full.
        bayes.warnings.warn("full", "Bayes autolearn refused, scoring goes on (%s)", exc)
        return "failed", False
    except StoreDamaged:
        raise  # it answers too: this message's failure, which the caller warns of (throttled)
    except StoreError as exc:
        bayes.health.failed(exc)
        return "unavailable", False
    learned = outcome is Outcome.LEARNED
    return label.value if learned else "no", learned
