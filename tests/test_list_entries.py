"""One list entry, three ways in: the site lists of mailsift.toml, the welcome and block lines of
local.cf, and a user's lists in the web UI. Each had its own normaliser, and they disagreed:
o'brien@partner.example was taken from mailsift.toml and refused from local.cf and the web UI,
1.2.3.4 and -bad.example the other way round. All three now go by `list_entry`, which refuses
what no sender can match (an IP address, a wildcard, a name the DNS cannot hold), saying what to
write instead: such entries were stored, and whoever typed one believed mail welcomed or blocked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config import ConfigError, parse_config
from mailsift.quarantine.model import list_entry
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.sa_lists import Untranslatable, entry_of

# Entries no sender can match, each with what its refusal must say to write instead
MATCHING_NOTHING = {
    "192.0.2.1": "client addresses are judged by the network checks ([[dns.blocklists]]",
    "[192.0.2.1]": "an IP address, not a sender: list the sender's address or domain",
    "2001:db8::1": "an IP address, not a sender",
    "::ffff:192.0.2.1": "an IP address, not a sender",
    "192.0.2.0/24": "an IP address, not a sender",
    "jane@[192.0.2.1]": "an IP address, not a sender",
    "-bad.example": "no domain has a label starting or ending with '-' (-bad)",
    "mail.bad-.example": "no domain has a label starting or ending with '-' (bad-)",
    "a..example": "two dots in a row",
    "jane@partner..example": "two dots in a row",
    ".partner.example": "a dot first; partner.example covers its subdomains as it is",
    "partner.123": "no domain ends in a number (123)",
    "10.0.1": "no domain ends in a number (1)",
    f"{'a' * 64}.example": "a label of 64 characters (aaaaaaaaaaaaaaaaaaaa...); a domain's labels "
                           "have at most 63",
    f"{'abcdefgh.' * 28}example": "a name of 259 characters; a domain has at most 253",
    # The rule mailsift.toml's domains went by refused these, the lists took them
    "exa+mple.org": "no domain has '+' in a label (exa+mple); labels have letters, digits, '-' "
                    "and '_' only",
    "jane@partner.e": "no top-level domain is one letter or has '_' (e)",
    "partner.ex_ample": "no top-level domain is one letter or has '_' (ex_ample)",
}


def from_config(value: str) -> str:
    """The entry lists.welcome holds for `value`; ValueError when mailsift.toml refuses it."""
    try:
        return parse_config({"lists": {"welcome": [value]}}, "mailsift.toml").lists.welcome[0]
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def from_local_cf(value: str) -> str:
    """The entry `whitelist_from` adds: an address as written, a domain as *@domain."""
    return entry_of(value if "@" in value else f"*@{value}")


@pytest.mark.parametrize("value", ["o'brien@partner.example", "O'Brien@Partner.Example",
                                   "Jane@Bücher.example", "@partner.example", "partner.example.",
                                   "jane@xn--bcher-kva.example", "_dmarc-style_.partner.example",
                                   f"{'a' * 63}.example", "mail-1.partner.example"])
def test_an_entry_taken_in_one_place_is_taken_alike_in_the_others(value: str) -> None:
    entry = list_entry(value)
    assert from_config(value) == entry
    assert from_local_cf(value.removeprefix("@")) == entry


@pytest.mark.parametrize("value", ["jane@", "partner", "a b@partner.example",
                                   "jane@partner.example\n@x.example", *MATCHING_NOTHING])
def test_an_entry_refused_in_one_place_is_refused_in_the_others(value: str) -> None:
    with pytest.raises(ValueError):
        list_entry(value)
    with pytest.raises(ValueError):
        from_config(value)
    with pytest.raises(Untranslatable):
        from_local_cf(value)


@pytest.mark.parametrize(("value", "instead"), MATCHING_NOTHING.items())
def test_an_entry_no_sender_can_match_is_refused_saying_what_to_write(value: str,
                                                                      instead: str) -> None:
    """Each was stored, and matched nobody: 1.2.3.4 is a client's address, not a sender's."""
    with pytest.raises(ValueError) as refused:
        list_entry(value)
    assert str(refused.value).startswith(f"{value!r}: ")
    assert instead in str(refused.value)


@pytest.mark.parametrize(("value", "instead"), [
    ("*@partner.example", "no wildcards; partner.example is every address of that domain and "
                          "its subdomains"),
    ("*.bücher.example", "no wildcards; bücher.example is every address of that domain"),
    ("news-*@partner.example", "no wildcards; write each address, or partner.example for every "
                               "address of that domain and its subdomains"),
    ("?ob@partner.example", "write each address, or partner.example"),
    ("*@*", "no wildcards; name each address or domain (a domain covers its subdomains)"),
])
def test_a_wildcard_is_refused_naming_the_domain_meant(value: str, instead: str) -> None:
    """The web UI stored *@partner.example as written, matching nobody; local.cf's
    `whitelist_from *@partner.example` is translated into partner.example before it gets here."""
    with pytest.raises(ValueError) as refused:
        list_entry(value)
    assert instead in str(refused.value)


def test_a_site_list_entry_matching_nothing_stops_start_up_naming_file_key_and_form() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"lists": {"block": ["junk.example", "192.0.2.1"]}},
                     "/etc/mailsift/mailsift.toml")
    assert str(refused.value) == (
        "/etc/mailsift/mailsift.toml: lists.block: '192.0.2.1': an IP address, not a sender: list "
        "the sender's address or domain; client addresses are judged by the network checks "
        "([[dns.blocklists]] and [[dns.allowlists]]) (got ['junk.example', '192.0.2.1']); "
        "allowed: addresses or domains (a domain covers its subdomains), e.g. "
        '["billing@bank.example", "partner.example"]')


def test_a_local_cf_line_matching_nothing_is_a_note_by_file_and_line(tmp_path: Path) -> None:
    """The configtest note said only "not an address or domain"; mailsift.toml's reason now."""
    local = tmp_path / "local.cf"
    local.write_text("whitelist_from *@partner.example\nblacklist_from *@-bad.example "
                     "*@192.0.2.1\n", encoding="utf-8")
    rules = load_rule_files([local], {})
    assert list(rules.site_lists["welcome"]) == ["partner.example"]
    assert rules.site_lists["block"] == {}
    assert [(item.source, item.value, item.message) for item in rules.notes] == [
        (f"{local}:2", "*@-bad.example",
         "'-bad.example': no domain has a label starting or ending with '-' (-bad); not taken"),
        (f"{local}:2", "*@192.0.2.1",
         "'192.0.2.1': an IP address, not a sender: list the sender's address or domain; client "
         "addresses are judged by the network checks ([[dns.blocklists]] and [[dns.allowlists]]); "
         "not taken")]
