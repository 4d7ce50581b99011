"""Address headers that would make the stdlib parser recurse past Python's limit still give
their addresses to every reader of them: rules, tokenizer, sender identities, quarantine."""

from __future__ import annotations

import pytest

from mailsift.analysis.addresses import address_pairs, parse_address
from mailsift.analysis.parse import analyse
from mailsift.classifier.tokenizer import tokenize
from mailsift.config import Config
from mailsift.network.identities import identities
from mailsift.quarantine.model import address_of
from tests.malformed_messages import MALFORMED
from tests.support.cpu_time import cpu_time

HOSTILE = {"comments": "(" * 3000 + "a@example.com", "groups": "g: " * 3000 + "a@example.com;"}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE)
def test_a_header_too_nested_for_the_stdlib_falls_back_to_its_bare_addresses(value: str) -> None:
    assert address_pairs([value, "Bob <bob@example.net>"]) == (("", "a@example.com"),
                                                               ("", "bob@example.net"))
    assert parse_address(value) == ("", "a@example.com")
    assert address_of(value) == "a@example.com"


def test_ordinary_headers_keep_their_display_names() -> None:
    assert address_pairs(['"Ann (sales)" <ann@example.org>, bob@example.net (Bob)']) == (
        ("Ann (sales)", "ann@example.org"), ("Bob", "bob@example.net"))
    assert parse_address("Ann <ann@example.org>") == ("Ann", "ann@example.org")


@pytest.mark.parametrize("name", ["address_comments_3000", "address_groups_3000"])
def test_sender_identities_and_tokens_of_such_a_message(name: str) -> None:
    msg = analyse(MALFORMED[name], Config())
    assert msg.addresses("To") == [("", "a@example.com")]
    assert identities(msg, 10).from_address == "a@example.com"
    assert "from:domain:example.com" in tokenize(msg)


def test_the_fallback_reads_a_long_run_without_an_at_sign_in_linear_time() -> None:
    """The bare-address search was tried at each character of a run, so a run of 40 KB without
    "@" behind the comments that send a header to it took 4 s of CPU on the old code (the 97 KB
    Postfix lets through, some 24 s): in the milter, `mailsift learn` and the quarantine alike."""
    value = "(" * 3000 + "a" * 40_000 + " b@example.com"
    pairs, seconds = cpu_time(lambda: address_pairs([value]))  # 3 ms
    assert seconds < 0.5
    assert pairs == (("", "b@example.com"),)
