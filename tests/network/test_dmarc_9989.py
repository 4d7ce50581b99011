"""DMARC as RFC 9989 (DMARCbis, which replaced RFC 7489 and RFC 9091) asks of a receiver.

Testing mode: a domain publishing `p=reject; t=y` is trying its policy out and asks for the next
lower one (RFC 9989 4.7); t= was ignored, so its failing mail scored DMARC_REJECT, the owner's own
mail among it while it still fixes its senders. pct= (RFC 7489) is still honoured for records
without t=.

Validity: a record without p= is p=none (RFC 9989 4.7), where it was no DMARC; a p=, sp= or np=
that is no policy makes the record p=none with a reporting URI and no DMARC without one (4.10.1),
where an invalid np= was ignored and the record's p=reject stood; a rua= that names no URI is no
reporting URI.
"""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.test_dmarc import failing
from tests.network.test_dmarc_records import dmarc_evidence


def test_testing_mode_applies_the_next_lower_policy(scanner: Scanner) -> None:
    result = failing(scanner, "tom@trial.test")  # v=DMARC1; p=reject; t=y
    assert dmarc_evidence(result) == {
        "DMARC_QUARANTINE": "trial.test (record at trial.test, p=reject, t=y: applied as quarantine)"}
    assert "dmarc=fail header.from=trial.test policy.dmarc=quarantine" in result.auth_results


@pytest.mark.parametrize(("sender", "rule", "evidence"), [
    ("tom@trialq.test", "DMARC_NONE", "trialq.test (record at trialq.test, p=quarantine, t=y: "
                                      "applied as none)"),
    # the subdomain policy is tested as well: t= covers p=, sp= and np= alike
    ("tom@made-up.trialsub.test", "DMARC_QUARANTINE",
     "made-up.trialsub.test (record at trialsub.test, sp=reject, t=y: applied as quarantine)"),
])
def test_testing_mode_lowers_each_policy_by_one_level(
        scanner: Scanner, sender: str, rule: str, evidence: str) -> None:
    assert dmarc_evidence(failing(scanner, sender)) == {rule: evidence}


def test_explicit_t_n_enforces_the_policy_whatever_pct_says(scanner: Scanner) -> None:
    """`p=reject; pct=0; t=n`: t=n asks for the policy "as specified" (RFC 9989 4.7), written out
    though it is the default; the pct=0 left from testing is an RFC 7489 tag RFC 9989 removed."""
    assert dmarc_evidence(failing(scanner, "tom@enforced.test")) == {
        "DMARC_REJECT": "enforced.test (record at enforced.test, p=reject)"}


@pytest.mark.parametrize(("sender", "evidence"), [
    # t=y and pct=0 are the same request (RFC 9989 A.6): one level down, not two
    ("tom@trialpct.test", "trialpct.test (record at trialpct.test, p=reject, t=y: applied as quarantine)"),
    # t=yes is no t= value: as if absent (RFC 9989 4.8), so the record's pct=0 decides
    ("tom@trialbad.test", "trialbad.test (record at trialbad.test, p=reject, pct=0: applied as quarantine)"),
    # a record of RFC 7489 days: pct=0 still asks for the next lower policy
    ("tom@pct.test", "pct.test (record at pct.test, p=reject, pct=0: applied as quarantine)"),
])
def test_pct_counts_only_where_t_does_not_decide(scanner: Scanner, sender: str, evidence: str) -> None:
    assert dmarc_evidence(failing(scanner, sender)) == {"DMARC_QUARANTINE": evidence}


@pytest.mark.parametrize(("sender", "rule", "evidence"), [
    ("tom@nop.test", "DMARC_NONE", "nop.test (record at nop.test, p=none)"),  # v=DMARC1; sp=quarantine
    ("x@made-up.nop.test", "DMARC_QUARANTINE", "made-up.nop.test (record at nop.test, sp=quarantine)"),
])
def test_record_without_p_counts_as_p_none(scanner: Scanner, sender: str, rule: str, evidence: str) -> None:
    assert dmarc_evidence(failing(scanner, sender)) == {rule: evidence}


@pytest.mark.parametrize(("sender", "rule"), [
    ("tom@npbadreject.test", "DMARC_MISSING"),  # p=reject; np=rejected: no DMARC, not p=reject
    ("tom@npbadrua.test", "DMARC_NONE"),  # the same with a rua=mailto: p=none
    ("tom@badrua.test", "DMARC_MISSING"),  # p=rejected; rua=dmarc@badrua.test: no URI, no DMARC
    ("tom@ruasize.test", "DMARC_NONE"),  # one URI of two is enough, its !size suffix allowed
])
def test_invalid_policy_tags_follow_rfc_9989(scanner: Scanner, sender: str, rule: str) -> None:
    assert set(dmarc_evidence(failing(scanner, sender))) == {rule}
