"""SpamAssassin rules hit the messages they hit under SpamAssassin: its documented header,
rawbody and mimeheader semantics, found where bench/sa_rule_agreement.py showed the stock rules
disagreeing.

Rules are our own text, read by the real parser; messages go through the real analysis.
"""

from __future__ import annotations

from pathlib import Path

from mailsift.analysis.parse import analyse
from mailsift.config import Config, ScanConfig
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.engine import Engine
from mailsift.rules.registry import CheckContext

CONFIG = Config()


def hits(tmp_path: Path, rules: str, raw: str, config: Config = CONFIG) -> dict[str, int]:
    """Every rule that hit (name -> count) when `rules` (.cf text) score the message `raw`."""
    cf = tmp_path / "rules.cf"
    cf.write_text(rules)
    ruleset = load_rule_files([cf], {})
    assert not ruleset.skipped, ruleset.skipped
    msg = analyse(raw.replace("\n", "\r\n").encode(), config)
    found = Engine(ruleset, {}).all_hits(CheckContext(msg, config), 0, 1.0, {})
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


# --- mimeheader: the named header of each MIME part, so that attachment policy rules (a zip
# archive, an .exe file name) hit the attachments they were written for


def mixed(*parts: str, boundary: str = "outer") -> str:
    """A multipart/mixed message of the given parts (each: header lines, empty line, body)."""
    body = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return ("From: a@example.org\nTo: b@example.net\nSubject: files\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n{body}--{boundary}--\n")


TEXT = "Content-Type: text/plain; charset=us-ascii\n\nSee the attachment.\n"
ZIP = ("Content-Type: application/zip; name=\"report.zip\"\n"
       "Content-Disposition: attachment; filename=\"report.zip\"\n"
       "Content-Transfer-Encoding: base64\n\nUEsDBAoAAAAAAA==\n")
ZIP_RULES = ("mimeheader ZIP_PART Content-Type =~ /application\\/zip/\n"
             "mimeheader NO_ZIP_PART Content-Type !~ /application\\/zip/\n")


def test_a_zip_rule_hits_the_message_with_a_zip_attachment_and_not_the_one_without(
        tmp_path: Path) -> None:
    with_zip = hits(tmp_path, ZIP_RULES, mixed(TEXT, ZIP))
    assert "ZIP_PART" in with_zip and "NO_ZIP_PART" not in with_zip
    without = hits(tmp_path, ZIP_RULES, mixed(TEXT, "Content-Type: text/html\n\n<p>no archive</p>\n"))
    assert "ZIP_PART" not in without and "NO_ZIP_PART" in without  # `!~`: no part matches


def test_an_exe_file_name_in_content_disposition_hits(tmp_path: Path) -> None:
    exe = ("Content-Type: application/octet-stream\n"
           "Content-Disposition: attachment;\n\tfilename=\"Setup.EXE\"\n\nMZ\n")
    rules = "mimeheader EXE_NAME Content-Disposition =~ /filename=.*\\.exe\\b/i\n"
    assert "EXE_NAME" in hits(tmp_path, rules, mixed(TEXT, exe))


def test_encoded_words_are_decoded_but_rfc2231_parameters_stay_as_written(tmp_path: Path) -> None:
    """SpamAssassin decodes RFC 2047 words in a part's header (clients write them into file
    names) but not RFC 2231 parameters: a rule for those must be written against `filename*=`."""
    encoded_word = ("Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment; filename=\"=?UTF-8?B?cGF5bWVudC5leGU=?=\"\n\nMZ\n")
    rfc2231 = ("Content-Type: application/octet-stream\n"
               "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.exe\n\nMZ\n")
    rules = ("mimeheader DECODED_NAME Content-Disposition =~ /filename=\"payment\\.exe\"/\n"
             "mimeheader RAW_NAME Content-Disposition:raw =~ /payment\\.exe/\n"
             "mimeheader PCT_NAME Content-Disposition =~ /filename\\*=UTF-8''r%C3%A9sum%C3%A9\\.exe/\n"
             "mimeheader PLAIN_NAME Content-Disposition =~ /filename=.*\\.exe/\n")
    assert set(hits(tmp_path, rules, mixed(TEXT, encoded_word))) == {"DECODED_NAME", "PLAIN_NAME"}
    assert set(hits(tmp_path, rules, mixed(TEXT, rfc2231))) == {"PCT_NAME"}


FORWARDED = """Content-Type: message/rfc822

From: c@example.com
Subject: inner
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain

plain
--alt
Content-Type: text/html

<p>html</p>
--alt--
--inner
Content-Type: image/gif;
\tname="logo.gif"
Content-ID: <logo.1@example.com>

R0lGODlh
--inner--
"""


def test_parts_of_nested_multiparts_and_forwarded_messages_are_each_seen(tmp_path: Path) -> None:
    rules = ("mimeheader TOP_LEVEL Content-Type =~ /^multipart\\/mixed; boundary=\"outer\"/\n"
             "mimeheader CONTAINER Content-Type =~ /^multipart\\/alternative/\n"
             "mimeheader DEEP_HTML Content-Type =~ /^text\\/html/\n"
             "mimeheader FORWARDED_FROM From =~ /c\\@example\\.com/\n"
             "mimeheader GIF_CID Content-ID =~ /^<logo\\.1\\@/\n"
             "mimeheader GIF_ID_IN_BLOCK ALL =~ /^Content-ID: <logo\\.1\\@example\\.com>$/m\n")
    assert set(hits(tmp_path, rules, mixed(TEXT, FORWARDED))) == {
        "TOP_LEVEL", "CONTAINER", "DEEP_HTML", "FORWARDED_FROM", "GIF_CID", "GIF_ID_IN_BLOCK"}


def test_raw_keeps_the_folding_and_never_applies_if_unset(tmp_path: Path) -> None:
    """`:raw` is the value as written; SpamAssassin reads an absent raw value as empty, so a
    `[if-unset: ...]` default applies to decoded values only (the top-level block here has no
    Content-Disposition)."""
    rules = ("mimeheader GIF_FOLDED_RAW Content-Type:raw =~ /^image\\/gif;\\n\\tname=\"logo\\.gif\"$/\n"
             "mimeheader GIF_FOLDED Content-Type =~ /^image\\/gif;\\n/\n"
             "mimeheader GIF_UNFOLDED Content-Type =~ /^image\\/gif;\\tname=\"logo\\.gif\"$/\n"
             "mimeheader NO_CD Content-Disposition =~ /^none$/ [if-unset: none]\n"
             "mimeheader NO_CD_RAW Content-Disposition:raw =~ /^none$/ [if-unset: none]\n")
    found = hits(tmp_path, rules, mixed(TEXT, FORWARDED))
    assert set(found) == {"GIF_FOLDED_RAW", "GIF_UNFOLDED", "NO_CD"}


def test_malformed_and_too_deeply_nested_mime_is_scored_within_the_limits(tmp_path: Path) -> None:
    """Hostile nesting never raises: the parts above scan.max_depth are matched, the ones below
    it are not looked at, and a part with a broken header block or no header is just a part."""
    depth = 40
    nested = "Content-Type: application/zip\n\nPK\n"
    for level in range(depth):
        nested = (f"Content-Type: multipart/mixed; boundary=\"b{level}\"\n\n"
                  f"--b{level}\nContent-Type: application/x-level-{level}\n\nx\n"
                  f"--b{level}\n{nested}\n--b{level}--\n")
    broken = "Content-Type: application/x-broken\nno colon on this line\n\nbody\n"
    headless = "\njust a body\n"
    unclosed = ("Content-Type: multipart/related; boundary=\"never\"\n\n"
                "--never\nContent-Type: text/x-last\n\nx\n")
    config = Config(scan=ScanConfig(max_depth=5))
    rules = ("mimeheader ABOVE_LIMIT Content-Type =~ /x-level-38/\n"
             "mimeheader BELOW_LIMIT Content-Type =~ /x-level-3[0-5]\\b|application\\/zip/\n"
             "mimeheader BROKEN_PART Content-Type =~ /x-broken/\n"
             "mimeheader UNCLOSED_PART Content-Type =~ /text\\/x-last/\n")
    found = hits(tmp_path, rules, mixed(broken, headless, nested, unclosed), config)
    assert set(found) == {"ABOVE_LIMIT", "BROKEN_PART", "UNCLOSED_PART"}
