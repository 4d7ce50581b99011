"""Scoring a message end to end: analyse it once, run the rules, return the explained score.

A `Scanner` is built once per process (loading and compiling the rules takes about a second) and
then scores any number of messages; the milter workers, `mailsift check` and the benchmarks all go
through it so that they agree on every verdict.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from mailsift.analysis.model import Envelope
from mailsift.analysis.parse import analyse
from mailsift.config import Config
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.engine import Engine
from mailsift.rules.registry import CheckContext, load_checks
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


class Scanner:
    def __init__(self, config: Config, *, network: bool = False) -> None:
        self.config = config
        self.network = network
        checks = load_checks()
        self.ruleset = load_rule_files(rule_paths(config), checks)
        self.engine = Engine(self.ruleset, checks, config.rules.cache_path())
        self.engine.plan(self.score_set)

    @property
    def score_set(self) -> int:
        """SpamAssassin's score set index: Bayes counts 2, network tests 1 (Bayes arrives later)."""
        return int(self.network)

    def scan(self, raw: bytes, envelope: Envelope | None = None,
             arrival: datetime | None = None) -> Result:
        msg = analyse(raw, self.config, envelope, arrival)
        ctx = CheckContext(msg, self.config)
        return self.engine.run(ctx, self.score_set, self.config.scoring.required_score,
                               self.config.scan.rule_budget)
