"""Do SpamAssassin rules hit the same messages under mailsift as under SpamAssassin?

An administrator migrating adds SpamAssassin's rule directories to `rules.paths` and expects
every rule that loads to fire where SpamAssassin fired it. This script checks that on a sample of
the train split (or on the admin's own mail, `--messages DIR`): SpamAssassin scores each message
through a private spamd (no network, no Bayes; it reads its own rules and /etc/spamassassin as
installed), mailsift loads `--rules` alone (no shipped rules), and the hit lists are compared.

Only rules both can run are compared: header, body, rawbody, uri and full rules that mailsift
loaded and that call no `eval:` check, and metas built only of such rules (transitively). Sub-rules
(`__NAME`) count, since most metas rest on them. The agreement figure is the share of (rule,
message) hits, by either filter, that both filters made.

    .venv/bin/python bench/sa_rule_agreement.py [--limit 400] [--rules DIR ...]
        [--messages DIR] [--sa-hits FILE] [--json FILE] [--show N]

`--sa-hits FILE` keeps SpamAssassin's hits between runs (read when it holds every sampled
message, else written), so a rule edit is rechecked in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import TYPE_CHECKING

from bench import spamassassin
from bench.corpus import stratified_subset, train_set
from mailsift.rules.cf_parser import CHECK_SOURCE

if TYPE_CHECKING:
    from mailsift.config import Config
    from mailsift.scanner import Scanner

STOCK_RULES = (Path("/usr/share/spamassassin"), Path("/etc/spamassassin"))
SCORE_SET = 0  # no Bayes, no network: what `spamd --local` with use_bayes 0 runs
NO_LOCAL_CF = "/nonexistent/mailsift-agreement/local.cf"
WORKERS = 2

_scanner: Scanner | None = None


@dataclass
class RuleTally:
    """One rule's (rule, message) hits: by both filters, by SpamAssassin only, by mailsift only."""

    kind: str
    both: int = 0
    sa_only: list[str] = field(default_factory=list)
    mailsift_only: list[str] = field(default_factory=list)


# --- mailsift ---------------------------------------------------------------------------------------


def _config(rules: Sequence[Path]) -> Config:
    from mailsift.config import Config, RulesConfig

    return Config(rules=RulesConfig(shipped=False, paths=[str(p) for p in rules], local_cf=NO_LOCAL_CF))


def _init_worker(rules: Sequence[Path]) -> None:
    """One Scanner per process, built from the rules under test only."""
    global _scanner
    from mailsift.scanner import Scanner

    if _scanner is None:  # a forked worker has the one comparable_rules built (1.5 s a build)
        _scanner = Scanner(_config(rules), network=False)


def _mailsift_hits(path: str) -> set[str]:
    """Every rule that hit, sub-rules included, as the engine saw them in score set 0."""
    from mailsift.rules.checks.bayes import BAYES_KEY
    from mailsift.rules.checks.reports import REPORTS_KEY
    from mailsift.rules.registry import CheckContext

    assert _scanner is not None, "worker initializer did not run"
    msg = _scanner.analyse(Path(path).read_bytes())
    ctx = CheckContext(msg, _scanner.config)
    ctx.cache[BAYES_KEY] = ctx.cache[REPORTS_KEY] = None  # rules only, as for SpamAssassin
    hits = _scanner.engine.all_hits(ctx, SCORE_SET, _scanner.config.scan.rule_budget, {})
    return {name for name, match in hits.items() if match.count}


def mailsift_hits(paths: Sequence[Path], rules: Sequence[Path]) -> list[set[str]]:
    with Pool(WORKERS, initializer=_init_worker, initargs=(rules,)) as pool:
        return pool.map(_mailsift_hits, [str(p) for p in paths], chunksize=8)


def comparable_rules(rules: Sequence[Path]) -> dict[str, str]:
    """name -> kind for the rules both filters run: loaded from the files, enabled in score set 0,
    no eval check, and for metas, made only of such rules."""
    _init_worker(rules)
    assert _scanner is not None
    plan = _scanner.engine.plan(SCORE_SET)
    defined = _scanner.ruleset.rules
    tests = {name: rule for name, rule in defined.items()
             if name in plan.scores and not rule.source.startswith(CHECK_SOURCE)}
    usable = {name: rule.kind for name, rule in tests.items()
              if rule.kind != "meta" and not rule.eval_name}
    for rule, expr in plan.metas:  # in dependency order, so a meta on metas comes after them
        if rule.name in tests and expr.names <= usable.keys():
            usable[rule.name] = "meta"
    return usable


# --- SpamAssassin -----------------------------------------------------------------------------------


def sa_hits(paths: Sequence[Path], cache: Path | None) -> list[set[str]]:
    """SpamAssassin's hits per message, from `cache` when it holds them all."""
    stored: dict[str, list[str]] = json.loads(cache.read_text()) if cache and cache.exists() else {}
    if all(str(p) in stored for p in paths):
        return [set(stored[str(p)]) for p in paths]
    lines = (*spamassassin.CONFIG_LINES, *spamassassin.HIT_HEADER_LINES)
    with spamassassin.Spamd(children=WORKERS, config_lines=lines) as spamd, \
            ThreadPoolExecutor(max_workers=WORKERS) as threads:
        found = list(threads.map(lambda p: spamassassin.all_hit_rules(p, spamd.port), paths))
    if cache:
        stored.update({str(p): sorted(names) for p, names in zip(paths, found, strict=True)})
        cache.write_text(json.dumps(stored))
    return found


# --- comparison -------------------------------------------------------------------------------------


def compare(paths: Sequence[Path], sa: Sequence[set[str]], ours: Sequence[set[str]],
            rules: dict[str, str]) -> dict[str, RuleTally]:
    tallies = {name: RuleTally(kind) for name, kind in rules.items()}
    for path, sa_names, our_names in zip(paths, sa, ours, strict=True):
        for name in (sa_names | our_names) & rules.keys():
            tally = tallies[name]
            if name in sa_names and name in our_names:
                tally.both += 1
            elif name in sa_names:
                tally.sa_only.append(str(path))
            else:
                tally.mailsift_only.append(str(path))
    return tallies


def agreement(tallies: dict[str, RuleTally]) -> tuple[int, int]:
    """(hits both made, hits either made) over every (rule, message)."""
    both = sum(t.both for t in tallies.values())
    either = both + sum(len(t.sa_only) + len(t.mailsift_only) for t in tallies.values())
    return both, either


def report(tallies: dict[str, RuleTally], messages: int, show: int) -> str:
    differing = sorted(((n, t) for n, t in tallies.items() if t.sa_only or t.mailsift_only),
                       key=lambda item: (-len(item[1].sa_only) - len(item[1].mailsift_only), item[0]))
    lines = [f"{'rule':<32} {'kind':<7} {'both':>5} {'SA only':>8} {'ms only':>8}"]
    for name, t in differing:
        lines.append(f"{name:<32} {t.kind:<7} {t.both:>5} {len(t.sa_only):>8} {len(t.mailsift_only):>8}")
        lines += [f"    SA only: {p}" for p in t.sa_only[:show]]
        lines += [f"    mailsift only: {p}" for p in t.mailsift_only[:show]]
    lines.append("")
    kinds = Counter(t.kind for t in tallies.values())
    for kind in sorted(kinds):
        both, either = agreement({n: t for n, t in tallies.items() if t.kind == kind})
        lines.append(f"{kind:<8} {kinds[kind]:>5} rules compared, hits agreeing: {both}/{either}"
                     f" ({100.0 * both / max(either, 1):.1f}%)")
    both, either = agreement(tallies)
    hit = sum(1 for t in tallies.values() if t.both or t.sa_only or t.mailsift_only)
    lines.append(f"{len(tallies)} rules compared over {messages} messages ({hit} hit at least once); "
                 f"{len(differing)} rules disagree on some message.")
    lines.append(f"Agreement: {both} of {either} (rule, message) hits made by both "
                 f"({100.0 * both / max(either, 1):.2f}%).")
    return "\n".join(lines)


def sample(limit: int, messages: Path | None) -> list[Path]:
    if messages is not None:
        return sorted(p for p in messages.rglob("*") if p.is_file())[:limit]
    return [path for path, _ in stratified_subset(train_set(), limit)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=400, help="messages to compare (train split)")
    parser.add_argument("--rules", type=Path, nargs="+", default=list(STOCK_RULES),
                        help="rule files or directories for mailsift: the ones SpamAssassin reads")
    parser.add_argument("--messages", type=Path, help="a directory of messages instead of the corpus")
    parser.add_argument("--sa-hits", type=Path, help="JSON file keeping SpamAssassin's hits")
    parser.add_argument("--json", type=Path, help="write per-rule disagreements (message paths) here")
    parser.add_argument("--show", type=int, default=2, help="messages listed per disagreeing rule")
    args = parser.parse_args(argv)
    paths = sample(args.limit, args.messages)
    rules = comparable_rules(args.rules)
    sa = sa_hits(paths, args.sa_hits)
    ours = mailsift_hits(paths, args.rules)
    tallies = compare(paths, sa, ours, rules)
    print(report(tallies, len(paths), args.show))
    if args.json:
        args.json.write_text(json.dumps({n: vars(t) for n, t in tallies.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
