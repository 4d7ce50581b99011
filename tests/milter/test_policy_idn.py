"""Per-recipient policies for internationalised addresses: a domain written in U-labels in the
config or in RCPT TO (SMTPUTF8) is the same domain as its xn-- form."""

from __future__ import annotations

import pytest

from mailsift.config import parse_config
from mailsift.milter.actions import limits_for


@pytest.mark.parametrize("pattern", ["bücher.example", "@bücher.example", "jörg@bücher.example",
                                     "xn--bcher-kva.example", "jörg@XN--BCHER-KVA.example"])
@pytest.mark.parametrize("recipient", ["jörg@bücher.example", "jörg@xn--bcher-kva.example",
                                       "<Jörg@BÜCHER.example>"])
def test_policy_matches_a_recipient_whichever_form_either_uses(pattern: str, recipient: str) -> None:
    """A bypass for the company's own domain, written as it spells it, was refused as no domain
    name; written as xn--, it never matched the U-label RCPT TO of SMTPUTF8 mail."""
    config = parse_config({"policy": [{"match": [pattern], "bypass": True}]}, "m.toml")
    assert limits_for(recipient, config, False) is None
    assert limits_for("jörg@other.example", config, False) is not None
