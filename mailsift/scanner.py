"""Scoring a message end to end: analyse it once, add the Bayes verdict, run the rules.

A `Scanner` is built once per process (loading and compiling the rules takes about a second, or
milliseconds once cached) and then scores any number of messages; the milter workers,
`mailsift check`, `mailsift eval` and the benchmarks all go through it so that they agree on every
verdict.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from mailsift.analysis.model import Envelope, Message
from mailsift.analysis.parse import analyse
from mailsift.classifier.bayes import Verdict
from mailsift.classifier.filter import BayesFilter, repair_named
from mailsift.classifier.reports import ReportMatch
from mailsift.config import Config
from mailsift.network import NETWORK_KEY, authentication_results, authserv_id, gather
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.checks.bayes import BAYES_KEY
from mailsift.rules.checks.network_lists import list_rules
from mailsift.rules.checks.reports import REPORTS_KEY
from mailsift.rules.checks.sitelists import SITE_LISTS_KEY, site_lists
from mailsift.rules.engine import Engine
from mailsift.rules.model import RuleSet
from mailsift.rules.registry import Check, CheckContext, load_checks
from mailsift.rules.result import Result

log = logging.getLogger(__name__)

SHIPPED_RULES = Path(__file__).parent / "rules" / "shipped"


def rule_paths(config: Config) -> list[Path]:
    """Shipped rules first, then the configured paths, then the site's local.cf (whose scores win)."""
    paths = [SHIPPED_RULES] if config.rules.shipped else []
    paths += [Path(p) for p in config.rules.paths]
    local = Path(config.rules.local_cf)
    if local.exists():
        paths.append(local)
    return paths


def load_ruleset(config: Config, checks: dict[str, Check] | None = None) -> RuleSet:
    """The rules `config` names, as their files read now, and its DNS lists' rules."""
    ruleset = load_rule_files(rule_paths(config), load_checks() if checks is None else checks)
    # DNS lists are defined in the configuration, which is also the one place of their scores
    ruleset.rules.update(list_rules(config.dns))
    return ruleset


class BayesView(NamedTuple):
    """What Bayes had to say about one message, and why it said nothing (see Result.bayes_missing)."""

    verdict: Verdict | None
    reports: ReportMatch | None
    missing: str


class Scanner:
    def __init__(self, config: Config, *, network: bool | None = None,
                 bayes: BayesFilter | None = None, ruleset: RuleSet | None = None) -> None:
        """`ruleset`: rules read before (load_ruleset), else the files are read now. A milter
        worker gets those of the milter's start or last reload, whatever the files say since."""
        self.config = config
        # None: as configured (dns.enabled); True/False: forced, e.g. by `mailsift check --no-network`
        self.network = config.dns.enabled if network is None else network
        self.bayes = bayes
        checks = load_checks()
        self.ruleset = load_ruleset(config, checks) if ruleset is None else ruleset
        self.site_lists = site_lists(config.lists, self.ruleset)
        self.engine = Engine(self.ruleset, checks, config.rules.cache_path())
        self.engine.plan(self.score_set(bayes=False))
        if bayes is not None:
            self.engine.plan(self.score_set(bayes=True))

    def score_set(self, bayes: bool) -> int:
        """SpamAssassin's score set index: Bayes counts 2, network tests 1."""
        return 2 * bayes + self.network

    def analyse(self, raw: bytes, envelope: Envelope | None = None,
                arrival: datetime | None = None, body_cut: bool = False,
                later_hops: bool = False) -> Message:
        return analyse(raw, self.config, envelope, arrival, body_cut, later_hops)

    def score(self, msg: Message) -> Result:
        ctx = CheckContext(msg, self.config)
        bayes = self._bayes_view(msg)
        ctx.cache[BAYES_KEY], ctx.cache[REPORTS_KEY] = bayes.verdict, bayes.reports
        ctx.cache[SITE_LISTS_KEY] = self.site_lists
        if self.network:  # all DNS of the message, within dns.timeout, before any rule runs
            ctx.cache[NETWORK_KEY] = gather(msg, self.config)
        result = self.engine.run(ctx, self.score_set(bayes.verdict is not None),
                                 self.config.scoring.required_score, self.config.scan.rule_budget)
        result.bayes_missing = bayes.missing
        if self.network:
            auth_id = authserv_id(self.config.dns.authserv_id, msg.envelope.receiver)
            result.auth_results = authentication_results(ctx, auth_id)
            result.dns_failures = list(ctx.cache[NETWORK_KEY].failures.values())
        return result

    def _bayes_view(self, msg: Message) -> BayesView:
        """The Bayes verdict and the report match, or neither and why. A store that is down is handled
        inside BayesFilter; this catches what nobody foresaw (a count in the store that is not
        a number, a tokenizer bug on some input): it costs the message its Bayes rules, not its
        scan, as a failing network check or rule costs only itself."""
        if self.bayes is None:
            return BayesView(None, None, "off")
        try:
            verdict, reports = self.bayes.recipients_verdict(msg), self.bayes.reported(msg)
        except Exception as exc:  # see above: logged with its cause, the rules still score
            exc = repair_named(self.config.bayes, exc)
            self.bayes.warnings.warn("score", "Bayes failed on a message (%s: %s); it is scored "
                                     "by the rules alone", type(exc).__name__, exc)
            return BayesView(None, None, "failed")
        if verdict is not None:
            return BayesView(verdict, reports, "")
        # No verdict and no failure: the store was down (now or moments ago), else too small.
        return BayesView(None, reports, "unavailable" if self.bayes.store_down else "untrained")

    def scan(self, raw: bytes, envelope: Envelope | None = None,
             arrival: datetime | None = None) -> Result:
        return self.score(self.analyse(raw, envelope, arrival))
