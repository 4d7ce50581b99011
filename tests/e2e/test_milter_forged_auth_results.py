"""Forged Authentication-Results claiming our name are removed from mail we let through (RFC 8601
section 5), whether or not the milter adds its own header, through the real Postfix.

The forged headers name Postfix's myhostname (the `j` macro: our authserv-id while
dns.authserv_id is unset) in each way RFC 8601 allows writing it; a Dovecot sieve or a mail
client that trusts results by that name would believe `dkim=pass` for a bank's domain. The
milter removed them only beside a header of its own: with dns.enabled off (the default here),
for outbound mail without outbound.add_headers and for skipped mail they reached the mailbox,
as they did from a quarantined message once released, and a comment or quotes before the name
hid it in every case. Another host's header and ARC-Authentication-Results (sealed) stay.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from mailsift.quarantine.model import FORGED_KEY
from mailsift.quarantine.text import show_text
from tests.e2e.conftest import Mta, module_milter
from tests.e2e.messages import QUARANTINE_MARK, make_message
from tests.support.milter_process import MilterProcess

BOB = "bob@example.com"
UNSCANNED = "eve@bypass.example.org"  # a bypass policy
OUR_RELAY = "10.0.0.5"  # in trusted_networks, whose mail milter.trusted = "skip" leaves alone
OVERRIDES = {"policy": [{"match": ["bypass.example.org"], "bypass": True}],
             "network": {"trusted_networks": [OUR_RELAY]}, "milter": {"trusted": "skip"}}
OTHERS = "mx.other.test; dkim=pass header.d=bank.example"


def forged(ours: str) -> list[tuple[str, str]]:
    """Headers claiming `ours`: plain, after a comment, quoted, in capitals with a final dot,
    with a version, folded."""
    return [("Authentication-Results", f"{ours}; dkim=pass header.d=bank.example"),
            ("Authentication-Results", f"(checked; ok) {ours}; dkim=pass header.d=bank.example"),
            ("Authentication-Results", f'"{ours}"; dmarc=pass header.from=bank.example'),
            ("Authentication-Results", f"{ours.upper()}.; spf=pass smtp.mailfrom=bank.example"),
            ("Authentication-Results", f"{ours} 1; dkim=pass header.d=bank.example"),
            ("Authentication-Results", f"\r\n\t{ours}\r\n\t;\r\n\tdkim=pass header.d=bank.example")]


def sealed(ours: str) -> tuple[str, str]:
    return "ARC-Authentication-Results", f"i=1; {ours}; dkim=pass header.d=bank.example"


milter = module_milter(OVERRIDES, "One milter for the module, dns.enabled off and dns.authserv_id "
                       "unset (the defaults).")


def values(head: email.message.Message, name: str) -> list[str]:
    return [" ".join(str(v).split()) for v in head.get_all(name) or []]


CASES = {  # how the message is sent: recipient, XCLIENT
    "inbound": (BOB, None),
    "outbound": (BOB, {"LOGIN": "alice"}),  # SASL-authenticated, no outbound.add_headers
    "bypass-policy": (UNSCANNED, None),  # skipped: not scanned at all
}


@pytest.mark.parametrize("case", list(CASES))
def test_forged_results_in_our_name_never_reach_the_mailbox(
        mta: Mta, milter: MilterProcess, case: str) -> None:
    ours = mta.postfix.hostname
    raw, message_id = make_message(
        headers=[*forged(ours), ("Authentication-Results", OTHERS), sealed(ours)])
    recipient, xclient = CASES[case]
    sent = mta.send(raw, recipient, xclient=xclient)
    assert sent.accepted, sent.reply
    delivered = mta.delivered(message_id).message
    assert values(delivered, "Authentication-Results") == [OTHERS]
    assert values(delivered, "ARC-Authentication-Results") == [" ".join(sealed(ours)[1].split())]


def test_a_quarantined_copy_holds_no_forged_results_to_release_and_its_record_names_them(
        mta: Mta, milter: MilterProcess) -> None:
    """Release hands the held bytes to Postfix's port without the milter: they must be the
    message as it would have been delivered. Its reviewer then never learnt it had come with
    forged results, strong evidence against it: the record keeps them (the first three of
    six here, unfolded) for the message page and `quarantine show`."""
    ours = mta.postfix.hostname
    raw, message_id = make_message(QUARANTINE_MARK,
                                   headers=[*forged(ours), ("Authentication-Results", OTHERS)])
    assert mta.send(raw, BOB).accepted
    assert mta.not_delivered(message_id)
    [held] = mta.quarantined(milter, message_id)
    head = email.message_from_bytes(held.raw, policy=email.policy.compat32)
    assert values(head, "Authentication-Results") == [OTHERS]
    assert held.meta[FORGED_KEY] == {"count": 6, "kept": [
        " ".join(value.split()) for _, value in forged(ours)[:3]]}
    assert f"removed from the held copy: {ours}; dkim=pass header.d=bank.example | (checked; ok) " \
        f"{ours}; dkim=pass header.d=bank.example | \"{ours}\"; dmarc=pass header.from=bank.example " \
        "(and 3 more)" in show_text(held.meta)


def test_mail_a_trusted_host_passes_on_unscanned_keeps_its_results(
        mta: Mta, milter: MilterProcess) -> None:
    """milter.trusted = "skip" says that host's mail is done: a host of ours (an edge MX running
    mailsift under the same dns.authserv_id) wrote those results, and removing them left the
    mailbox none."""
    ours = mta.postfix.hostname
    ours_kept = [("Authentication-Results", f"{ours}; dkim=pass header.d=bank.example")]
    raw, message_id = make_message(headers=ours_kept)
    sent = mta.send(raw, BOB, xclient={"ADDR": OUR_RELAY, "NAME": "[UNAVAILABLE]",
                                       "HELO": "edge.our.test"})
    assert sent.accepted, sent.reply
    delivered = mta.delivered(message_id).message
    assert values(delivered, "Authentication-Results") == [ours_kept[0][1]]
