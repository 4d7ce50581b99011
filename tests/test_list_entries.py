"""One list entry, three ways in: the site lists of mailsift.toml, the welcome and block lines of
local.cf, and a user's lists in the web UI. Each had its own normaliser, and they disagreed:
o'brien@partner.example was taken from mailsift.toml and refused from local.cf and the web UI,
1.2.3.4 and -bad.example the other way round. All three now go by `list_entry`.
"""

from __future__ import annotations

import pytest

from mailsift.config import ConfigError, parse_config
from mailsift.quarantine.model import list_entry
from mailsift.rules.sa_lists import Untranslatable, entry_of


def from_config(value: str) -> str:
    """The entry lists.welcome holds for `value`; ValueError when mailsift.toml refuses it."""
    try:
        return parse_config({"lists": {"welcome": [value]}}, "mailsift.toml").lists.welcome[0]
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def from_local_cf(value: str) -> str:
    """The entry `whitelist_from` adds: an address as written, a domain as *@domain."""
    return entry_of(value if "@" in value else f"*@{value}")


@pytest.mark.parametrize("value", ["o'brien@partner.example", "1.2.3.4", "-bad.example",
                                   "Jane@Bücher.example", "@partner.example"])
def test_an_entry_taken_in_one_place_is_taken_alike_in_the_others(value: str) -> None:
    entry = list_entry(value)
    assert from_config(value) == entry
    assert from_local_cf(value.removeprefix("@")) == entry


@pytest.mark.parametrize("value", ["jane@", "partner", "a b@partner.example",
                                   "jane@partner.example\n@x.example"])
def test_an_entry_refused_in_one_place_is_refused_in_the_others(value: str) -> None:
    with pytest.raises(ValueError):
        list_entry(value)
    with pytest.raises(ValueError):
        from_config(value)
    with pytest.raises(Untranslatable):
        from_local_cf(value)
