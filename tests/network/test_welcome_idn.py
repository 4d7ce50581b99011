"""A welcome entry for an internationalised sender domain is confirmed by SPF or DKIM in either
spelling: the signer writes d=xn--bcher-kva.test, the SMTPUTF8 sender jörg@bücher.test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config import QuarantineConfig
from mailsift.quarantine.store import open_quarantine
from mailsift.rules.checks import userlists
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.zone import GOOD_IP, IDN_ASCII, IDN_DOMAIN, NO_PTR_IP

WELCOME_RULES = {"USER_IN_WELCOMELIST", "USER_WELCOME_UNVERIFIED"}
OWNER = "anna@our.test"


@pytest.fixture(params=[IDN_DOMAIN, IDN_ASCII])
def welcoming(request: pytest.FixtureRequest, test_dns: DnsFixture, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Scanner:
    """anna@our.test welcomes the IDN domain, stored in each form (older versions kept U-labels
    as typed); read afresh, not from another test's cached lists."""
    quarantine = QuarantineConfig(dir=str(tmp_path / "q"))
    open_quarantine(quarantine).backend.set_listed(OWNER, "welcome", request.param, True)
    config = network_config(test_dns.server.address).model_copy(update={"quarantine": quarantine})
    monkeypatch.setattr(userlists, "_CACHE", userlists._Cache())
    return Scanner(config)


@pytest.mark.parametrize("sender_domain", [IDN_DOMAIN, IDN_ASCII])
def test_a_dkim_signature_in_a_labels_confirms_the_welcomed_sender(
        welcoming: Scanner, test_dns: DnsFixture, sender_domain: str) -> None:
    """SPF fails (forwarded); the d=xn--bcher-kva.test signature verifies. A U-label sender's
    entry was never confirmed by it: its domain as written was compared with the ASCII d=."""
    sender = f"jörg@{sender_domain}"
    raw = signed(letter(f"Jörg <{sender}>"), test_dns.dkim_private_key, IDN_ASCII)
    names = set(scan(welcoming, raw, ip=NO_PTR_IP, mail_from=sender).rule_names)
    assert WELCOME_RULES & names == {"USER_IN_WELCOMELIST"}


@pytest.mark.parametrize("sender_domain", [IDN_DOMAIN, IDN_ASCII])
def test_spf_confirms_the_welcomed_sender_in_either_spelling(welcoming: Scanner,
                                                             sender_domain: str) -> None:
    sender = f"jörg@{sender_domain}"
    names = set(scan(welcoming, letter(f"Jörg <{sender}>"), ip=GOOD_IP, mail_from=sender).rule_names)
    assert WELCOME_RULES & names == {"USER_IN_WELCOMELIST"}


def test_an_unconfirmed_idn_sender_is_still_only_shown(welcoming: Scanner) -> None:
    sender = f"jörg@{IDN_DOMAIN}"
    names = set(scan(welcoming, letter(f"Jörg <{sender}>"), ip=NO_PTR_IP, mail_from=sender).rule_names)
    assert WELCOME_RULES & names == {"USER_WELCOME_UNVERIFIED"}
