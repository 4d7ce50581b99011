"""A stored message whose line ends are mixed is learned under the milter's digest.

Postfix hands the milter every line with CRLF. A file can mix them: headers in CRLF and some
body lines in LF (a message saved by one tool and edited by another, or a sender that mixes
them). The learning digest took the body from the file's first "\\n\\n", which there is a blank
line inside the body, so it hashed the body from its second paragraph on: `mailsift learn` of
the file after autolearn counted the message twice and `--forget` found nothing. It now splits
where the analysis does, as it does for a file whose header block ends at a line that is no
field (no empty line after it).
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from mailsift.analysis.model import Message
from mailsift.analysis.parse import analyse
from mailsift.classifier.digest import learn_digest
from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, Outcome, Totals
from mailsift.config import BayesConfig, Config
from mailsift.training.learn import learn
from mailsift.training.sources import iter_messages
from tests.training.test_big_message_digest import HEADERS, head, milter_job

LINES = ["Hello Bob,", "", "the figures are attached, region by region.", "",
         "Best regards,", "Ann"]
MIXED = "\r\n".join(LINES[:2]) + "\r\n" + "\n".join(LINES[2:5]) + "\n" + LINES[5] + "\r\n"
# The same message as files keep it: CRLF headers and a body whose middle lines end in LF; and
# one whose headers run straight into the body (the first body line ends the header block).
FILES = {
    "mixed line ends": (head(HEADERS, "\r\n") + MIXED).encode(),
    "no empty line after the headers": (head(HEADERS, "\n")[:-1] + "\n".join(LINES) + "\n").encode(),
}


def milters_copy(config: Config) -> Message:
    """The message as the milter's worker analyses it (every line CRLF, as Postfix sends it)."""
    job = milter_job(HEADERS, ("\r\n".join(LINES) + "\r\n").encode(), config)
    return analyse(job.raw, config, job.envelope, job.arrival, job.body_cut)


@pytest.mark.parametrize("raw", FILES.values(), ids=FILES)
def test_a_stored_copy_has_the_milters_digest(raw: bytes) -> None:
    config = Config()
    assert learn_digest(analyse(raw, config)) == learn_digest(milters_copy(config))


def test_a_mixed_file_learned_after_autolearn_is_counted_once_and_forgotten(tmp_path: Path) -> None:
    """Autolearn learned the milter's copy as spam; the admin then learns the saved file as spam
    (already learned) and forgets it (gone, no count left)."""
    config = Config(bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite"))
    file = tmp_path / "saved.eml"
    file.write_bytes(FILES["mixed line ends"])
    with closing(BayesFilter(config.bayes, open_store(config.bayes))) as bayes:
        assert bayes.learn(milters_copy(config), Label.SPAM) is Outcome.LEARNED
        by_hand = learn(iter_messages([str(file)]), Label.SPAM, config, bayes)
        assert (by_hand.changed, by_hand.already) == (0, 1)
        assert learn(iter_messages([str(file)]), None, config, bayes).changed == 1
        assert bayes.store.totals() == Totals(0, 0)
