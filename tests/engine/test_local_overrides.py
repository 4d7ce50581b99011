"""A site's local.cf overrides any rule's score and description, Python-declared ones included."""

from __future__ import annotations

from pathlib import Path

from mailsift.config import Config, RulesConfig
from mailsift.scanner import Scanner

HTML_IMAGE_ONLY = (b"From: a@example.com\nTo: b@example.org\nSubject: look\nDate: Mon, 1 Jan 2024 "
                   b"10:00:00 +0000\nMessage-ID: <x1@example.com>\nMIME-Version: 1.0\n"
                   b"Content-Type: text/html\n\n<html><body><img src=\"http://img.example.com/a.png\" "
                   b"width=600 height=400></body></html>\n")


def test_local_cf_rescores_a_rule_declared_by_a_python_check(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text("score HTML_IMAGE_ONLY_300 7.5\ndescribe HTML_IMAGE_ONLY_300 Site wording\n")
    scanner = Scanner(Config(rules=RulesConfig(local_cf=str(local))))
    hit = {h.name: h for h in scanner.scan(HTML_IMAGE_ONLY).hits}["HTML_IMAGE_ONLY_300"]
    assert (hit.score, hit.description) == (7.5, "Site wording")


def test_local_cf_score_zero_disables_a_rule(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text("score HTML_IMAGE_ONLY_300 0\n")
    scanner = Scanner(Config(rules=RulesConfig(local_cf=str(local))))
    assert "HTML_IMAGE_ONLY_300" not in scanner.scan(HTML_IMAGE_ONLY).rule_names
