"""Our headers carry no control characters, whatever the sender wrote: evidence quotes it."""

from __future__ import annotations

from mailsift.config import load_config
from mailsift.report import fold, report_text
from mailsift.rules.patterns import EVIDENCE_CHARS
from mailsift.rules.result import Hit, Result
from mailsift.scanner import Scanner

NUL_LINK = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n"
            b"Content-Type: text/html\r\n\r\n<a href=\"www.%00.com\">paypal.com</a>\r\n")


def test_nul_in_evidence_is_escaped_in_the_report_header() -> None:
    """A link with an encoded NUL put a NUL in X-Spam-Report's evidence, and pymilter refused
    the header (ValueError): the message met milter.on_error on every retry."""
    result = Scanner(load_config(None), network=False).scan(NUL_LINK)
    assert any("\0" in h.evidence for h in result.hits)  # URI_TEXT_MISMATCH: paypal.com -> \0.com
    header = fold("X-Spam-Report", report_text(result))
    assert "\0" not in header and "\\x00" in header


def test_fold_escapes_control_characters_and_keeps_one_header() -> None:
    folded = fold("X-Spam-Report", "R=1.0 [a\0b\x1b] c\r\nBcc: x")
    assert folded.startswith("X-Spam-Report: R=1.0 [a\\x00b\\x1b] c")
    assert all(line[:1] == "\t" for line in folded.split("\n")[1:])


def test_report_of_hundreds_of_hits_stays_within_what_libmilter_passes() -> None:
    """A site's own rule files hit 900 times by one crafted message made a report of over
    64 KiB, which libmilter refused: the message met milter.on_error on every retry. Measured
    as written: a NUL is four bytes once escaped, a Cyrillic letter two."""
    for evidence in ("x" * EVIDENCE_CHARS, "\0" * EVIDENCE_CHARS, "я" * EVIDENCE_CHARS):
        hits = [Hit(f"LOCAL_RULE_{n}", 0.1, "", evidence) for n in range(900)]
        report = report_text(Result(90.0, 5.0, hits))
        assert len(fold("X-Spam-Report", report).encode()) < 17_000
        kept = report.count("LOCAL_RULE_")
        assert 50 < kept < 900
        assert report.startswith("LOCAL_RULE_0=0.1 [") and report.endswith(f"; and {900 - kept} more rules")
    hits = [Hit(f"LOCAL_RULE_{n}", 0.1, "", "x" * EVIDENCE_CHARS) for n in range(2)]
    short = report_text(Result(0.2, 5.0, hits))
    assert short == f"LOCAL_RULE_0=0.1 [{'x' * EVIDENCE_CHARS}]; LOCAL_RULE_1=0.1 [{'x' * EVIDENCE_CHARS}]"
