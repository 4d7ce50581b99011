"""A site's SpamAssassin welcome and block list lines become entries of its site lists; a glob
the lists cannot hold is a note configtest names with what to write instead. They were only
noted as unsupported: a migrated local.cf lost every partner and every known bad sender."""

from __future__ import annotations

from pathlib import Path

from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.model import RuleSet

LOCAL_CF = """\
whitelist_from tom@Shop.example *@partner.example
welcomelist_from *@*.supplier.example
whitelist_auth billing@bank.example
welcomelist_auth *@bücher.example
whitelist_from_dkim *@brand.example
whitelist_from_rcvd news@shop.example mail.shop.example
blacklist_from *@spam.example
blocklist_from offers@*.junk.example *@*.junk.example
whitelist_from *@old.example
unwhitelist_from *@old.example
blacklist_from *@later.example
unblocklist_from *@later.example
"""


def load(tmp_path: Path, text: str) -> RuleSet:
    path = tmp_path / "local.cf"
    path.write_text(text, encoding="utf-8")
    return load_rule_files([path], {})


def test_welcome_and_block_lines_become_site_entries(tmp_path: Path) -> None:
    rules = load(tmp_path, LOCAL_CF)
    assert sorted(rules.site_lists["welcome"]) == [
        "billing@bank.example", "brand.example", "news@shop.example", "partner.example",
        "supplier.example", "tom@shop.example", "xn--bcher-kva.example"]
    assert sorted(rules.site_lists["block"]) == ["junk.example", "spam.example"]
    assert rules.site_lists["welcome"]["partner.example"] == f"{tmp_path}/local.cf:1"


def test_lines_taken_are_no_longer_named_as_unsupported(tmp_path: Path) -> None:
    rules = load(tmp_path, LOCAL_CF)
    assert [(item.source.rpartition(":")[2], item.value) for item in rules.notes] == [
        ("8", "offers@*.junk.example")]
    assert not rules.skipped


def test_a_glob_the_lists_cannot_hold_is_named_with_what_to_write(tmp_path: Path) -> None:
    rules = load(tmp_path, "whitelist_from *-news@lists.example\nblacklist_from *@mail*.example\n"
                           "whitelist_from *@*\nwhitelist_from ?ob@partner.example\n")
    notes = {item.value: (item.source.rpartition(":")[2], item.message, item.verdict)
             for item in rules.notes}
    assert notes["*-news@lists.example"] == ("1", (
        "a partial wildcard is not taken: site lists hold an address or a domain with its "
        "subdomains; write each address, or *@lists.example for all of lists.example"), True)
    assert notes["*@mail*.example"][1].startswith("a wildcard within a domain name is not taken")
    assert notes["*@*"][1] == "would cover every sender; not taken: name the domains (*@domain)"
    assert "?ob@partner.example" in notes
    assert rules.site_lists == {"welcome": {}, "block": {}}


def test_a_third_party_dkim_signer_is_said_not_to_confirm(tmp_path: Path) -> None:
    """mailsift confirms by a signature of the sender's own domain: an email service's does not."""
    rules = load(tmp_path, "whitelist_from_dkim *@brand.example esp.example\n"
                           "whitelist_from_dkim *@own.example mail.own.example\n")
    assert list(rules.site_lists["welcome"]) == ["brand.example", "own.example"]
    assert [(item.value, item.message) for item in rules.notes] == [(
        "*@brand.example esp.example", "welcomed when SPF or a DKIM signature of its own domain "
        "confirms it; a signature of esp.example alone does not")]


def test_the_un_form_of_a_dkim_line_removes_its_entry_without_a_note(tmp_path: Path) -> None:
    """`unwhitelist_from_dkim ADDR SIGNER` read SIGNER as an address glob: a configtest note
    "not an address glob" for a line that did what it should."""
    rules = load(tmp_path, "whitelist_from_dkim *@shop.example shop.example\n"
                           "unwhitelist_from_dkim *@shop.example shop.example\n")
    assert rules.site_lists["welcome"] == {}
    assert not rules.notes
