"""`mailsift check` shows what the milter writes into the copy it passes on: the Subject it tags
and the autolearn= of its X-Spam-Status, not only its other headers.

check said "tag" for a recipient and left the admin to guess the Subject the recipients see, and
its X-Spam-Status had no autolearn=, so the header it printed was not the one delivered. Run
in-process (click's CliRunner), with one rule of the test's own: no shipped rules to compile.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import Totals
from mailsift.cli import cli
from tests.support.milter_process import merge, to_toml

# Bob's policy tags from 1 point, where everyone else's (the site's actions) tags from 6; the
# one rule gives 2 points to a body saying "offer".
BOB, ANNA = "bob@our.test", "anna@our.test"


@pytest.fixture
def check(tmp_path: Path) -> Any:
    """`mailsift check --json` of a message with the envelope options given, in-process:
    (the verdict, the plain output); `sections` add to the test config."""
    rules = tmp_path / "offer.cf"
    rules.write_text("body OFFER /offer/\nscore OFFER 2.0\n")

    def run(raw: bytes, *options: str, **sections: Any) -> tuple[dict[str, Any], str]:
        config = tmp_path / "mailsift.toml"
        config.write_text(to_toml(merge({
            "bayes": {"store": f"sqlite:///{tmp_path}/bayes.sqlite"},
            "rules": {"shipped": False, "paths": [str(rules)], "local_cf": str(tmp_path / "no.cf")},
            "policy": [{"match": [BOB], "rewrite_subject": 1.0}]}, sections)))
        message = tmp_path / "message.eml"
        message.write_bytes(raw)
        found = []
        for output in ("--json", None):
            done = CliRunner().invoke(cli, ["--config", str(config), "check", str(message),
                                            *options, *([output] if output else [])])
            assert done.exit_code == 0, done.output
            found.append(done.output)
        return json.loads(found[0]), found[1]

    return run


def message(subject: bytes | None, body: str = "A special offer.") -> bytes:
    head = b"From: shop@shop.test\nTo: bob@our.test\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
    return head + (b"Subject: " + subject + b"\n" if subject is not None else b"") + \
        f"Message-ID: <1@shop.test>\n\n{body}\n".encode()


def koi8r(text: str) -> bytes:
    return b"=?koi8-r?B?" + base64.b64encode(text.encode("koi8-r")) + b"?="


def test_check_shows_the_subject_the_recipients_get_when_the_milter_tags_it(check: Any) -> None:
    """Encoded in its own charset as the milter writes it, shown as a mail client shows it, for
    every recipient of the copy passed on: Anna's action is "pass", and she shares Bob's copy."""
    verdict, shown = check(message(koi8r("Отчёт за год")), "--rcpt", BOB, "--rcpt", ANNA)
    assert verdict["envelope"]["actions"] == {BOB: "tag", ANNA: "pass"}
    subject = verdict["envelope"]["subject"]
    assert subject["shown"] == "[SPAM] Отчёт за год"
    assert subject["written"].lower().startswith("=?koi8-r?b?") and subject["written"].isascii()
    assert shown.endswith("Action: tag for <bob@our.test>, pass for <anna@our.test>\n"
                          "Subject for <bob@our.test>, <anna@our.test>: [SPAM] Отчёт за год\n")


def test_the_subject_shown_follows_the_tag_and_is_none_when_the_milter_leaves_it(
        check: Any) -> None:
    tagged, _ = check(message(b"Hello"), "--rcpt", BOB, actions={"subject_tag": "[Spam?]"})
    assert tagged["envelope"]["subject"] == {"written": "[Spam?] Hello", "shown": "[Spam?] Hello"}
    made, _ = check(message(None), "--rcpt", BOB)  # the milter adds the tag as its Subject
    assert made["envelope"]["subject"] == {"written": "[SPAM]", "shown": "[SPAM]"}
    for raw, options in ((message(b"[SPAM] Hello"), ("--rcpt", BOB)),  # tagged already
                         (message(b"Hello"), ("--rcpt", ANNA)),  # "pass"
                         (message(b"Hello", "nothing to sell"), ("--rcpt", BOB))):
        verdict, shown = check(raw, *options)
        assert verdict["envelope"]["subject"] is None
        assert "\nSubject for" not in shown


@pytest.mark.parametrize(("body", "options", "sections", "learned"), [
    ("A special offer.", (), {}, "spam"),  # 2 points of rules, spam_score 2: learned as spam
    ("Nothing to sell.", ("--rcpt", BOB), {}, "ham"),
    ("Nice offer, cheap.", (), {"bayes": {"enabled": False}}, "no"),  # no store to teach
    # Mail judged as outbound is learned only with autolearn.outbound
    ("A special offer.", ("--client-ip", "192.0.2.7", "--auth-user", "joe", "--mail-from",
                          "joe@our.test", "--rcpt", "tom@shop.test"),
     {"milter": {"authenticated": "outbound"}, "outbound": {"add_headers": True}}, "no"),
])
def test_x_spam_status_says_what_autolearn_would_do_and_check_learns_nothing(
        check: Any, tmp_path: Path, body: str, options: tuple[str, ...], sections: dict[str, Any],
        learned: str) -> None:
    store = SQLiteStore(str(tmp_path / "bayes.sqlite"))  # a store the milter has made
    store.totals()
    verdict, shown = check(message(b"Hello", body), *options, autolearn={"spam_score": 2.0},
                           **sections)
    status = next(h["value"] for h in verdict["headers"] if h["name"] == "X-Spam-Status")
    assert f" autolearn={learned} version=mailsift-" in status
    assert verdict["autolearn"] == learned
    assert f" autolearn={learned} version=mailsift-" in shown.replace("\n\t", " ")  # unfolded
    assert store.totals() == Totals(0, 0)  # check never learns
    store.close()


UNNAMED = "a recipient no [[policy]] names (no --rcpt given)"
CLIENT = ("--client-ip", "192.0.2.7", "--client-name", "mx.shop.test", "--helo", "mx.shop.test",
          "--mail-from", "shop@shop.test")


def test_without_rcpt_check_shows_the_action_and_subject_for_a_recipient_no_policy_names(
        check: Any) -> None:
    """Told the client but no --rcpt, check decided no action and so showed no Subject, while
    it printed the headers of a copy passed on, also of a message the milter would reject. It
    decides now as for a recipient no [[policy]] names: the site's thresholds."""
    verdict, shown = check(message(b"Hello"), *CLIENT, actions={"rewrite_subject": 1.0})
    assert (verdict["envelope"]["actions"], verdict["envelope"]["unnamed_action"]) == (None, "tag")
    assert verdict["envelope"]["subject"] == {"written": "[SPAM] Hello", "shown": "[SPAM] Hello"}
    assert shown.endswith(f"Action: tag for {UNNAMED}\nSubject for {UNNAMED}: [SPAM] Hello\n")
    verdict, shown = check(message(b"Hello"), *CLIENT, actions={
        "rewrite_subject": 0.5, "quarantine": 1.0, "reject": 1.5})
    assert (verdict["headers"], verdict["no_headers"]) == ([], "the milter rejects the message")
    assert verdict["envelope"]["subject"] is None and "X-Spam" not in shown
    assert shown.endswith(f"Action: reject for {UNNAMED}\n")
    verdict, shown = check(message(b"Hello"), *CLIENT)  # 2 points: under the site's thresholds
    assert verdict["envelope"]["unnamed_action"] == "pass" and verdict["headers"]
    assert shown.endswith(f"Action: pass for {UNNAMED}\n")
