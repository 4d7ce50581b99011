"""The sender's domains, and From lines that lean on free mail or on our own domains."""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.messages import letter, scan
from tests.network.zone import OWN_DOMAIN

DOMAIN_RULES = {"SENDER_NXDOMAIN", "SENDER_NO_MX", "SENDER_WEAK_AUTH"}
FROM_RULES = {"FREEMAIL_REPLYTO", "FROM_NAME_OWN_DOMAIN", "FROM_LOOKALIKE"}


@pytest.mark.parametrize(("address", "expected"), [
    ("tom@shop.test", set()),
    ("tom@ghost.test", {"SENDER_NXDOMAIN"}),
    ("tom@nomx.test", {"SENDER_NO_MX", "SENDER_WEAK_AUTH"}),
    ("tom@nospf.test", {"SENDER_WEAK_AUTH"}),
    ("tom@neutral.test", set()),  # SPF and DMARC published, however lax
])
def test_sender_domain(scanner: Scanner, address: str, expected: set[str]) -> None:
    result = scan(scanner, letter(f"Tom <{address}>"), mail_from=address)
    assert DOMAIN_RULES & set(result.rule_names) == expected


def test_envelope_sender_domain_is_checked_too(scanner: Scanner) -> None:
    result = scan(scanner, letter(), mail_from="bounce@ghost.test")
    assert "SENDER_NXDOMAIN" in result.rule_names
    assert "ghost.test" in next(h.evidence for h in result.hits if h.name == "SENDER_NXDOMAIN")


@pytest.mark.parametrize(("sender", "reply_to", "expected"), [
    ("Lucky Winner <winner@gmail.com>", "claims@payout.test", {"FREEMAIL_REPLYTO"}),
    ("Lucky Winner <winner@gmail.com>", "winner@gmail.com", set()),
    ("Tom <tom@shop.test>", "sales@payout.test", set()),
    (f"IT Desk {OWN_DOMAIN} <helpdesk@shop.test>", None, {"FROM_NAME_OWN_DOMAIN"}),
    (f"IT Desk <helpdesk@{OWN_DOMAIN}>", None, set()),
    ("Payroll <pay@0ur.test>", None, {"FROM_LOOKALIKE"}),  # confusable digit
    ("Payroll <pay@ourr.test>", None, {"FROM_LOOKALIKE"}),  # one letter off
    ("Payroll <pay@xn--ur-emc.test>", None, {"FROM_LOOKALIKE"}),  # Cyrillic о (IDN homograph)
    ("Payroll <pay@mail.our.test>", None, set()),  # a subdomain of ours is ours
    ("Payroll <pay@shop.test>", None, set()),
])
def test_from_line(scanner: Scanner, sender: str, reply_to: str | None, expected: set[str]) -> None:
    result = scan(scanner, letter(sender, reply_to=reply_to), mail_from="")
    assert FROM_RULES & set(result.rule_names) == expected


def test_mailing_list_reply_to_is_not_a_freemail_trick(scanner: Scanner) -> None:
    post = letter("Ann <ann@gmail.com>", reply_to="users@lists.shop.test")
    raw = b"List-Id: <users.lists.shop.test>\r\n" + post
    assert "FREEMAIL_REPLYTO" not in scan(scanner, raw, mail_from="").rule_names
