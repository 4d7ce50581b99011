"""The pure parts of bench/milter.py: percentiles, outcome accounting, log parsing.

No Postfix here: these are the parts whose mistakes would silently misreport a run (a lost message
counted as delivered, a p99 off by one rank), so they are pinned down on their own.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.milter import (
    Outcome,
    added_latencies,
    dump_recipients,
    index_of,
    lost,
    milter_errors,
    milter_scores,
    mismatches,
    observed_outcome,
    outcomes,
    per_index,
    percentile,
    predicted_outcome,
    recipient,
    same_scores,
    unaccounted_detail,
)
from mailsift.milter.actions import Action, Decision


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0


def test_percentile_ignores_input_order_and_handles_one_value() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_recipient_round_trips_and_other_addresses_are_not_messages() -> None:
    assert index_of(recipient(1510)) == 1510
    assert index_of("<U7@Bench.Example>") == 7  # as Postfix or the sink may spell it
    assert index_of("warm3@bench.example") is None
    assert index_of("u7@other.example") is None
    assert index_of("bench@sender.example") is None  # e.g. a bounce to the sender


@pytest.mark.parametrize(("code", "delivered", "quarantined", "expected"), [
    (250, 1, 0, Outcome.DELIVERED),
    (250, 0, 1, Outcome.QUARANTINED),  # the milter discarded it after quarantining
    (550, 0, 0, Outcome.REJECTED),
    (451, 0, 0, Outcome.TEMPFAIL),
    (250, 0, 0, Outcome.LOST),  # accepted, then found nowhere
    (0, 0, 0, Outcome.LOST),  # the session broke
    (250, 2, 0, Outcome.DUPLICATED),
    (250, 1, 1, Outcome.DUPLICATED),
    (550, 1, 0, Outcome.DUPLICATED),  # refused to the client but delivered anyway
])
def test_observed_outcome(code: int, delivered: int, quarantined: int, expected: Outcome) -> None:
    assert observed_outcome(code, delivered, quarantined) is expected


def test_outcomes_account_for_every_message_by_its_recipient() -> None:
    codes = [250, 250, 550, 250, 451]
    delivered = Counter({recipient(0): 1, "warm0@bench.example": 1, "bench@sender.example": 1})
    quarantined = Counter({recipient(1): 1})
    found = outcomes(codes, delivered, quarantined)
    assert found == [Outcome.DELIVERED, Outcome.QUARANTINED, Outcome.REJECTED, Outcome.LOST,
                     Outcome.TEMPFAIL]
    assert lost(found) == 2


def test_per_index_merges_spellings_of_one_recipient() -> None:
    assert per_index({recipient(4): 1, "U4@BENCH.EXAMPLE": 1, "x@y.example": 3}) == Counter({4: 2})


def test_predicted_outcome_follows_the_decision() -> None:
    rcpt = recipient(0)
    assert predicted_outcome(Decision({rcpt: Action.REJECT}, reject=True)) is Outcome.REJECTED
    assert predicted_outcome(Decision({rcpt: Action.QUARANTINE}, quarantine=[rcpt])) is \
        Outcome.QUARANTINED
    assert predicted_outcome(Decision({rcpt: Action.TAG}, deliver=[rcpt], tag_subject=True)) is \
        Outcome.DELIVERED


def test_mismatches_and_added_latencies_pair_messages_by_position() -> None:
    predicted = [Outcome.DELIVERED, Outcome.REJECTED, Outcome.QUARANTINED]
    observed = [Outcome.DELIVERED, Outcome.QUARANTINED, Outcome.QUARANTINED]
    assert mismatches(predicted, observed) == [1]
    assert added_latencies([0.3, 0.1], [0.1, 0.2]) == pytest.approx([0.2, -0.1])
    with pytest.raises(ValueError):
        added_latencies([0.3], [0.1, 0.2])


def test_milter_log_parsing() -> None:
    lines = [
        "mailsift: INFO mailsift.milter: 4ABC: client=localhost[127.0.0.1] from=<bench@sender.example> "
        "to=<u12@bench.example> score=15.7 action=reject rules=A,B time=12ms",
        "mailsift: INFO mailsift.milter: 4ABD: client=localhost[127.0.0.1] from=<bench@sender.example> "
        "to=<warm1@bench.example> score=1.0 action=pass rules=- time=3ms",
        "Traceback (most recent call last):",
        '  File "/x/Milter/__init__.py", line 855, in <lambda>',
        '  File "/x/mailsift/milter/subject.py", line 51, in tagged_subject',
        "    return Header(new, DEFAULT_CHARSET, header_name='Subject').encode()",
        "UnicodeEncodeError: 'utf-8' codec can't encode characters in position 8-11: surrogates",
    ]
    assert milter_scores(lines) == {12: "15.7"}
    assert milter_errors(lines) == Counter({"UnicodeEncodeError at subject.py:51 in tagged_subject": 1})


def test_same_scores_compares_at_the_logged_precision() -> None:
    assert same_scores([15.66, 2.04, 3.0], {0: "15.7", 1: "2.1"}) == 1


def test_unaccounted_detail_names_what_happened_instead() -> None:
    assert unaccounted_detail([Outcome.DELIVERED, Outcome.REJECTED]) == ""
    assert unaccounted_detail([Outcome.TEMPFAIL, Outcome.LOST, Outcome.TEMPFAIL]) == \
        " (lost 1, tempfail 2)"


def test_dump_recipients_reads_only_the_envelope_of_an_smtp_sink_dump() -> None:
    """A body line that looks like an envelope line must not count as a delivery."""
    dump = (b"X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: mx.test\n"
            b"X-Mail-Args: <bench@sender.example> SIZE=120\n"
            b"X-Rcpt-Args: <U7@bench.example> ORCPT=rfc822;u7@bench.example\n"
            b"X-Rcpt-Args: <u8@bench.example>\n"
            b"Received: from mx.test\n\tby smtp-sink\nSubject: x\n\n"
            b"X-Rcpt-Args: <u9@bench.example>\n")
    assert dump_recipients(dump) == ["u7@bench.example", "u8@bench.example"]
