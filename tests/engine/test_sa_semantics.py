"""SpamAssassin rules hit the messages they hit under SpamAssassin: its documented header and
rawbody semantics, found where bench/sa_rule_agreement.py showed the stock rules disagreeing.

Rules are our own text, read by the real parser; messages go through the real analysis.
"""

from __future__ import annotations

from pathlib import Path

from mailsift.analysis.parse import analyse
from mailsift.config import Config
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.engine import Engine
from mailsift.rules.registry import CheckContext

CONFIG = Config()


def hits(tmp_path: Path, rules: str, raw: str) -> dict[str, int]:
    """Every rule that hit (name -> count) when `rules` (.cf text) score the message `raw`."""
    cf = tmp_path / "rules.cf"
    cf.write_text(rules)
    ruleset = load_rule_files([cf], {})
    assert not ruleset.skipped, ruleset.skipped
    msg = analyse(raw.replace("\n", "\r\n").encode(), CONFIG)
    found = Engine(ruleset, {}).all_hits(CheckContext(msg, CONFIG), 0, 1.0, {})
    return {name: match.count for name, match in found.items()}


def test_exists_on_tocc_is_true_when_a_to_or_cc_header_is_there(tmp_path: Path) -> None:
    rules = "header RCPT_HEADER exists:ToCc\nmeta NO_RCPT_HEADER !RCPT_HEADER\n"
    with_cc = hits(tmp_path, rules, "From: a@example.org\nCc: b@example.org\nSubject: x\n\nhi\n")
    without = hits(tmp_path, rules, "From: a@example.org\nSubject: x\n\nhi\n")
    assert "RCPT_HEADER" in with_cc and "NO_RCPT_HEADER" not in with_cc
    assert "RCPT_HEADER" not in without and "NO_RCPT_HEADER" in without


def test_messageid_pseudo_header_is_spelled_in_capitals_and_reads_the_original_id(
        tmp_path: Path) -> None:
    rules = ("header ANY_ID exists:MESSAGEID\n"
             "header MIXED_CASE exists:MessageID\n"
             "header LIST_MOVED_ID MESSAGEID =~ /<moved\\.1@sender\\.example>/\n")
    raw = ("From: a@example.org\nX-Original-Message-ID: <moved.1@sender.example>\n"
           "Message-Id: <list.2@lists.example>\nSubject: x\n\nhi\n")
    found = hits(tmp_path, rules, raw)
    assert {"ANY_ID", "LIST_MOVED_ID"} <= found.keys()
    assert "MIXED_CASE" not in found  # an ordinary header of that name, absent here


def test_addr_and_name_see_every_address_not_only_the_first(tmp_path: Path) -> None:
    rules = ("header SECOND_RCPT ToCc:addr =~ /^carol\\@example\\.net$/m\n"
             "header QUOTE_IN_ADDR ToCc:addr =~ /'/\n"
             "header SECOND_NAME To:name =~ /^Dave Smith$/m\n")
    raw = ("From: a@example.org\nTo: \"O'Brien, Bob\" <bob@example.net>, Dave Smith <d@example.net>\n"
           "Cc: carol@example.net\nSubject: x\n\nhi\n")
    found = hits(tmp_path, rules, raw)
    assert {"SECOND_RCPT", "SECOND_NAME"} <= found.keys()
    assert "QUOTE_IN_ADDR" not in found  # the apostrophe is in a display name, not an address


RELAYED = """Received: from mx.example.org (localhost [127.0.0.1])
\tby filter.example.org with ESMTP id 1; Mon, 1 Jan 2024 10:00:03 +0000
X-Scanned: yes
Received: from out.sender.example (out.sender.example [192.0.2.7])
\tby mx.example.org with ESMTP id 2; Mon, 1 Jan 2024 10:00:02 +0000
Received: from pc (pc [10.0.0.5])
\tby out.sender.example with ESMTP id 3; Mon, 1 Jan 2024 10:00:01 +0000
From: a@example.org
Subject: x

hi
"""


def test_all_external_starts_at_the_received_header_of_the_first_outside_hop(tmp_path: Path) -> None:
    rules = ("header EXT_TWO_HOPS ALL-EXTERNAL =~ /^Received: from out\\.sender.*\\nReceived: from pc /ms\n"
             "header EXT_HAS_LOOPBACK ALL-EXTERNAL =~ /127\\.0\\.0\\.1/\n"
             "header EXT_HAS_FROM ALL-EXTERNAL =~ /^From: a\\@example\\.org$/m\n"
             "header INT_HAS_OUTSIDE_HOP ALL-INTERNAL =~ /192\\.0\\.2\\.7/\n"
             "header INT_HAS_OLDER_HOP ALL-INTERNAL =~ /10\\.0\\.0\\.5/\n"
             "header INT_HAS_SCANNED ALL-INTERNAL =~ /^X-Scanned: yes$/m\n")
    found = hits(tmp_path, rules, RELAYED)
    assert set(found) == {"EXT_TWO_HOPS", "EXT_HAS_FROM", "INT_HAS_OUTSIDE_HOP", "INT_HAS_SCANNED"}


MULTIPART = """From: a@example.org
Subject: x
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain

first line
> quoted reply
--b
Content-Type: text/html

<p>second part</p>
--b--
"""


def test_rawbody_caret_is_the_start_of_a_text_part_unless_the_rule_says_m(tmp_path: Path) -> None:
    rules = ("rawbody QUOTE_LINE /^> /\n"
             "rawbody QUOTE_LINE_M /^> /m\n"
             "rawbody PART_START /^<p>second/\n")
    found = hits(tmp_path, rules, MULTIPART)
    assert set(found) == {"QUOTE_LINE_M", "PART_START"}


def test_rawbody_multiple_counts_over_parts_up_to_maxhits(tmp_path: Path) -> None:
    rules = ("rawbody COUNT_E /e/\ntflags COUNT_E multiple maxhits=3\n"
             "rawbody COUNT_ALL /e/\ntflags COUNT_ALL multiple\n")
    found = hits(tmp_path, rules, MULTIPART)
    assert found["COUNT_E"] == 3
    assert found["COUNT_ALL"] == 4  # "line", "quoted", "reply" in one part, "second" in the other
