"""A site's SpamAssassin welcome and block list lines become entries of its site lists; a glob
the lists cannot hold is a note configtest names with what to write instead. They were only
noted as unsupported: a migrated local.cf lost every partner and every known bad sender."""

from __future__ import annotations

from pathlib import Path

import pytest

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


# SpamAssassin's welcome families (Mail::SpamAssassin::Conf, its SPF and DKIM plugins): the lines
# of each, by old and new name; `unwhitelist_X` and `unwelcomelist_X` take back family X's only.
WELCOME_FAMILIES = {
    "from": ["whitelist_from", "welcomelist_from"],
    "auth": ["whitelist_auth", "welcomelist_auth"],
    "from_spf": ["whitelist_from_spf", "welcomelist_from_spf"],
    "from_dkim": ["whitelist_from_dkim", "welcomelist_from_dkim"],
    "from_rcvd": ["whitelist_from_rcvd", "welcomelist_from_rcvd"],
}
BILLING = "billing@bank.example"


def _welcome_line(directive: str) -> str:
    relay = " mail.bank.example" if directive.endswith("_rcvd") else ""
    return f"{directive} {BILLING}{relay}\n"


@pytest.mark.parametrize("family", WELCOME_FAMILIES)
@pytest.mark.parametrize("prefix", ["unwhitelist", "unwelcomelist"])
def test_an_un_line_takes_back_only_what_its_own_family_welcomed(
        tmp_path: Path, prefix: str, family: str) -> None:
    """Any un- line removed the entry whichever line added it: `unwhitelist_from x` undid a
    `whitelist_auth x`, so a site that dropped an unproven whitelist_from but kept the
    whitelist_auth (as SpamAssassin's own documentation advises) lost the welcome."""
    undo = f"{prefix}_{family} {BILLING}\n"
    for lines in WELCOME_FAMILIES.values():
        for directive in lines:
            rules = load(tmp_path, _welcome_line(directive) + undo)
            kept = BILLING in rules.site_lists["welcome"]
            assert kept == (directive not in WELCOME_FAMILIES[family]), (directive, undo)


@pytest.mark.parametrize("blocking", ["blacklist_from", "blocklist_from"])
@pytest.mark.parametrize("undo", ["unblacklist_from", "unblocklist_from"])
def test_either_name_of_unblocklist_from_takes_back_a_block_and_no_welcome(
        tmp_path: Path, blocking: str, undo: str) -> None:
    rules = load(tmp_path, f"{blocking} *@spam.example\nwhitelist_from *@spam.example\n"
                           f"{undo} *@spam.example\nblacklist_from *@junk.example\n"
                           "unwhitelist_from *@junk.example\n")
    assert rules.site_lists == {"welcome": {"spam.example": f"{tmp_path}/local.cf:2"},
                                "block": {"junk.example": f"{tmp_path}/local.cf:4"}}


def test_an_entry_two_families_hold_goes_with_the_last_of_their_un_lines(tmp_path: Path) -> None:
    """configtest counts the entry for the file of a line still holding it."""
    both = f"whitelist_from {BILLING}\nwelcomelist_auth {BILLING}\n"
    rules = load(tmp_path, both + f"unwhitelist_from {BILLING}\n")
    assert rules.site_lists["welcome"] == {BILLING: f"{tmp_path}/local.cf:2"}
    rules = load(tmp_path, both + f"unwhitelist_auth {BILLING}\nunwelcomelist_from {BILLING}\n")
    assert rules.site_lists["welcome"] == {}


def test_an_un_line_takes_back_only_the_glob_it_names(tmp_path: Path) -> None:
    """SpamAssassin matches an un- line's glob with the added one as written (case aside): both
    `*@shop.example` and `*@*.shop.example` are the entry shop.example here, but taking back
    the subdomains' glob leaves the domain's line, and its entry, in place."""
    added = "whitelist_from *@shop.example\n"
    rules = load(tmp_path, added + "unwhitelist_from *@*.shop.example\n")
    assert list(rules.site_lists["welcome"]) == ["shop.example"]
    rules = load(tmp_path, added + "unwhitelist_from *@SHOP.example\n")
    assert rules.site_lists["welcome"] == {}


def test_unwhitelist_from_dkim_takes_back_only_a_line_with_the_signer_it_names(
        tmp_path: Path) -> None:
    """SpamAssassin's unwhitelist_from_dkim must repeat the signing domain its line named."""
    added = "whitelist_from_dkim *@shop.example esp.example\n"
    for undo in ("unwhitelist_from_dkim *@shop.example", "unwhitelist_from_dkim *@shop.example x.example"):
        rules = load(tmp_path, f"{added}{undo}\n")
        assert list(rules.site_lists["welcome"]) == ["shop.example"], undo
    rules = load(tmp_path, added + "unwelcomelist_from_dkim *@shop.example ESP.example\n")
    assert rules.site_lists["welcome"] == {}


@pytest.mark.parametrize(("lines", "held_by"), [
    # another family's line holds the entry: taken back by any un- line before becdf72
    (f"whitelist_auth {BILLING}\nunwhitelist_from {BILLING}\n", 1),
    # the un- line's own line goes, the other family's stays
    (f"whitelist_from {BILLING}\nwelcomelist_auth {BILLING}\nunwelcomelist_from {BILLING}\n", 2),
    # the same entry by another glob of the same family
    ("whitelist_from *@bank.example\nunwhitelist_from *@*.bank.example\n", 1),
])
def test_an_un_line_that_leaves_its_entry_listed_is_named_for_configtest(
        tmp_path: Path, lines: str, held_by: int) -> None:
    """Such an un- line took the entry off the list before un- lines went by family, and now
    leaves it there: a local.cf relying on that welcomed again after the upgrade, with no word
    from configtest. The note names the line that keeps it."""
    rules = load(tmp_path, lines)
    [entry] = rules.site_lists["welcome"]
    [note] = rules.notes
    undo = len(lines.splitlines())
    assert (note.source, note.verdict) == (f"{tmp_path}/local.cf:{undo}", True)
    assert note.message.endswith(f"{entry} stays on the welcome list, held by "
                                 f"{tmp_path}/local.cf:{held_by}; remove that line or add its own "
                                 "un- line")
    assert "takes back only what whitelist_from/welcomelist_from lines with this glob" in note.message


def test_an_un_line_whose_entry_a_later_line_takes_back_is_not_named(tmp_path: Path) -> None:
    """The note says where the entry stays; one that goes in the end needs none."""
    rules = load(tmp_path, f"whitelist_auth {BILLING}\nunwhitelist_from {BILLING}\n"
                           f"unwhitelist_auth {BILLING}\n")
    assert (rules.site_lists["welcome"], rules.notes) == ({}, [])
