"""`body` and `rawbody` rules see the first scan.body_part_scan_size / rawbody_part_scan_size
characters of each text part, as SpamAssassin's do: its stock rules, many of which run on the
`regex` engine, spent the whole rule budget on one large message and were counted as not hit.

Rules are our own text, read by the real parser; messages go through the real analysis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.analysis.parse import analyse
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import Config, parse_config
from mailsift.configtest import rules_check
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.engine import Engine
from mailsift.rules.patterns import REGEX_ONLY
from mailsift.rules.registry import CheckContext
from mailsift.rules.result import Result

CONFIG = Config()
# SpamAssassin's defaults of body_part_scan_size and rawbody_part_scan_size, which mailsift's
# scan.body_part_scan_size and scan.rawbody_part_scan_size keep (written out here, so that the
# tests run on a mailsift without these keys, too).
BODY_LIMIT = 50_000
RAWBODY_LIMIT = 500_000
# Plain office prose, one paragraph per line (SpamAssassin's body is one line per paragraph).
PROSE = ("The quarterly budget report for the sales team is attached below with notes from "
         "the meeting on the project update and the plan for next month.\n\n")
SPAM_PHRASE = "claim your prize now"


def scored(tmp_path: Path, rules: str, raw: bytes, config: Config = CONFIG) -> tuple[Engine, Result]:
    """The engine and its result when `rules` (.cf text) alone score `raw`."""
    cf = tmp_path / "rules.cf"
    cf.write_text(rules)
    ruleset = load_rule_files([cf], {})
    assert not ruleset.skipped, ruleset.skipped
    engine = Engine(ruleset, {})
    msg = analyse(raw, config)
    return engine, engine.run(CheckContext(msg, config), 0, 5.0, config.scan.rule_budget)


def prose(chars: int) -> str:
    return (PROSE * (chars // len(PROSE) + 1))[:chars]


def plain_message(text: str, content_type: str = "text/plain") -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.com\r\nSubject: notes\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}; charset=us-ascii\r\n\r\n{text}").encode()


def with_phrase_at(offset: int, total: int, phrase: str = SPAM_PHRASE) -> str:
    """Prose of `total` characters with `phrase` in a paragraph of its own starting at about `offset`."""
    return prose(offset) + f"\n\n{phrase} at http://prize.example/claim\n\n" + prose(total - offset)


@pytest.mark.parametrize(("offset", "hit"), [(BODY_LIMIT - 10_000, True), (BODY_LIMIT + 10_000, False)])
def test_a_body_rule_sees_the_first_body_part_scan_size_characters_of_a_part(
        tmp_path: Path, offset: int, hit: bool) -> None:
    """The phrase within the first 50,000 characters of a 120 KB part hits; past them it does
    not (it did, at the cost of the whole part through every rule). The link in the same
    paragraph is still read, and Bayes still gets its words: only body rules are cut."""
    rules = ("body PRIZE_PHRASE /claim\\s+your\\s+prize/i\n"
             "uri PRIZE_LINK /prize\\.example/\n")
    raw = plain_message(with_phrase_at(offset, 120_000))
    _, result = scored(tmp_path, rules, raw)
    assert ("PRIZE_PHRASE" in result.rule_names) is hit
    assert "PRIZE_LINK" in result.rule_names
    assert {"claim", "prize"} <= set(tokenize(analyse(raw, CONFIG)))


@pytest.mark.parametrize(("offset", "hit"), [(RAWBODY_LIMIT - 20_000, True), (RAWBODY_LIMIT + 10_000, False)])
def test_a_rawbody_rule_sees_the_first_rawbody_part_scan_size_characters_of_a_part(
        tmp_path: Path, offset: int, hit: bool) -> None:
    """rawbody rules read the part as sent (HTML tags kept), up to 500,000 characters."""
    html = with_phrase_at(offset, 520_000, phrase=f'<a href="x">{SPAM_PHRASE}</a>')
    _, result = scored(tmp_path, "rawbody PRIZE_ANCHOR /<a href=\"x\">claim your prize/i\n",
                       plain_message(html, "text/html"))
    assert ("PRIZE_ANCHOR" in result.rule_names) is hit


def test_a_phrase_across_the_limit_is_kept_to_the_end_of_its_line(tmp_path: Path) -> None:
    """As SpamAssassin cuts: at the first line end (else space) within 1 KiB past the limit, so
    a phrase the limit falls into is not cut in half; what follows that line is not seen."""
    line = "x " * 100 + SPAM_PHRASE + " and more words" * 20
    start = BODY_LIMIT - 210  # the limit falls inside the phrase, 300 characters before the line's end
    text = prose(start) + line + "\nlast words of the line after it: free money\n"
    _, result = scored(tmp_path, "body PRIZE_PHRASE /claim your prize now/\nbody AFTER /free money/\n",
                       plain_message(text))
    assert result.rule_names == ["PRIZE_PHRASE"]


def test_a_slow_spamassassin_style_rule_stays_within_the_budget_on_a_400_kb_message(
        tmp_path: Path) -> None:
    """A backtracking rule hyperscan cannot run (a Perl branch-reset group) goes over the
    message's text on the `regex` engine. Over the whole of a 400 KB part it took about 2.5 s of
    CPU, overran scan.rule_budget (1 s) and was counted as not hit, as was every `regex` rule
    after it: SpamAssassin's stock rules did that to messages of 100 KB and more. Over the
    first 50,000 characters it takes about a quarter of a second."""
    slow = ("body SLOW_PRIZE /(?|(?:[a-z]+\\s?){1,3}(claim|collect)|(?:[a-z]+\\s?){1,3}(get|win))"
            "\\s+(?:your|the|a)\\s+(?:prize|reward|cash)/i\n")
    engine, result = scored(tmp_path, slow + "body LATER /(?|(a)|(b))ttached below/\n",
                            plain_message(prose(400_000)))
    assert [entry.mode for entry in engine.plan(0).patterns["body"].entries] == [REGEX_ONLY] * 2
    assert result.rule_errors == {}
    assert result.rule_names == ["LATER"]


def test_configtest_names_spamassassin_scan_size_lines_with_the_key_to_set(tmp_path: Path) -> None:
    """A migrated local.cf's body_part_scan_size or rawbody_part_scan_size line was noted only as
    a setting mailsift does not use; it changes what rules see, so configtest names it with
    the key of mailsift.toml that does. A line giving the configured value is no news."""
    local = tmp_path / "local.cf"
    local.write_text("body_part_scan_size 100000\nrawbody_part_scan_size 500000\n")
    rules = load_rule_files([local], {})
    detail = rules_check(CONFIG, rules).detail
    assert (f"{local}:1 body_part_scan_size 100000: not read from rule files: set "
            "scan.body_part_scan_size in mailsift.toml") in detail
    assert "rawbody_part_scan_size" not in detail
    both_set = parse_config({"scan": {"body_part_scan_size": 100_000,
                                      "rawbody_part_scan_size": 0}}, "mailsift.toml")
    detail = rules_check(both_set, rules).detail
    assert "body_part_scan_size 100000" not in detail
    assert (f"{local}:2 rawbody_part_scan_size 500000: not read from rule files: set "
            "scan.rawbody_part_scan_size in mailsift.toml") in detail


def test_a_scan_size_of_zero_gives_rules_the_whole_part(tmp_path: Path) -> None:
    """0 turns the limit off, as in SpamAssassin."""
    config = parse_config({"scan": {"body_part_scan_size": 0}}, "mailsift.toml")
    _, result = scored(tmp_path, "body PRIZE_PHRASE /claim\\s+your\\s+prize/i\n",
                       plain_message(with_phrase_at(BODY_LIMIT + 10_000, 120_000)), config)
    assert result.rule_names == ["PRIZE_PHRASE"]
