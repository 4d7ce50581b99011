"""Our headers carry no control characters, whatever the sender wrote: evidence quotes it."""

from __future__ import annotations

from mailsift.config import load_config
from mailsift.report import fold, report_text
from mailsift.scanner import Scanner

NUL_LINK = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n"
            b"Content-Type: text/html\r\n\r\n<a href=\"www.%00.com\">paypal.com</a>\r\n")


def test_nul_in_evidence_is_escaped_in_the_report_header() -> None:
    """A link with an encoded NUL put a NUL in X-Spam-Report's evidence, and pymilter refused
    the header (ValueError): the message met milter.on_error on every retry."""
    result = Scanner(load_config(None), network=False).scan(NUL_LINK)
    assert "\0" in report_text(result)  # URI_TEXT_MISMATCH's evidence: paypal.com -> \0.com
    header = fold("X-Spam-Report", report_text(result))
    assert "\0" not in header


def test_fold_escapes_control_characters_and_keeps_one_header() -> None:
    folded = fold("X-Spam-Report", "R=1.0 [a\0b\x1b] c\r\nBcc: x")
    assert folded.startswith("X-Spam-Report: R=1.0 [a\\x00b\\x1b] c")
    assert all(line[:1] == "\t" for line in folded.split("\n")[1:])
