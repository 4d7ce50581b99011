"""An mbox's From line is taken off; a header field in the obsolete form `From : ...` is not.

RFC 5322 section 4.5.1 allows white space before a field's colon in obsolete syntax, and mail
still carries `From : Ann <ann@example.org>`. It starts with "From " as an mbox's line before
each message does, so `mailsift check` and `learn` dropped it from the top of a message file
(its From gone). An mbox line is still recognised with or without a date, as the stdlib and
lax writers have it. Inside an mbox, the stdlib's reader still starts a message at every line
beginning "From ", that field included, as mutt and most readers do: telling them apart there
would mean replacing the reader's private table of contents, tying learning to the stdlib's
internals for a field hardly any mail still carries.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from mailsift.analysis.parse import analyse
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label
from mailsift.config import BayesConfig, Config
from mailsift.training.learn import learn
from mailsift.training.sources import iter_messages

REST = b"To: bob@example.net\nSubject: figures\n\nHello Bob,\n\nthe figures are attached.\n"
ANN = "Ann Example <ann@example.org>"
OBSOLETE = {"one space": b"From : ", "several": b"From   : "}
MBOX_LINES = {
    "mboxrd": b"From ann@example.org Tue Nov 24 10:00:00 2026\n",
    "Thunderbird": b"From - Tue Nov 24 10:00:00 2026\n",
    "no date": b"From ann@example.org\n",
}


def from_of(raw: bytes) -> str:
    return analyse(raw, Config()).header("From")


@pytest.mark.parametrize("field", OBSOLETE.values(), ids=OBSOLETE)
def test_a_message_starting_with_the_obsolete_from_field_keeps_its_from(field: bytes) -> None:
    raw = field + ANN.encode() + b"\n" + REST
    message = analyse(raw, Config())
    assert message.header("From") == ANN
    assert message.raw == raw


@pytest.mark.parametrize("line", MBOX_LINES.values(), ids=MBOX_LINES)
def test_an_mbox_line_with_or_without_a_date_is_taken_off(line: bytes) -> None:
    message = analyse(line + b"From: " + ANN.encode() + b"\n" + REST, Config())
    assert [h.name for h in message.headers] == ["From", "To", "Subject"]
    assert message.raw.startswith(b"From: ")


def test_a_message_file_starting_with_the_obsolete_field_is_learned_as_one_message(
        tmp_path: Path) -> None:
    """Its body has a paragraph starting "From ": with the field taken for an mbox line, the
    file was read as an mbox of two messages, the first without its From, the second no mail."""
    file = tmp_path / "saved.eml"
    file.write_bytes(b"From : " + ANN.encode() + b"\n" + REST + b"\nFrom the desk of Ann\n")
    [item] = iter_messages([str(file)])
    assert from_of(item.content()[0] or b"") == ANN
    config = Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite"))
    with closing(BayesFilter(config.bayes, open_store(config.bayes))) as bayes:
        report = learn(iter_messages([str(file)]), Label.SPAM, config, bayes)
    assert (report.changed, report.failed) == (1, [])
