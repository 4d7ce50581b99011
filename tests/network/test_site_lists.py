"""The site's own welcome and block lists ([lists] in mailsift.toml, whitelist_from and
blacklist_from lines of a migrated local.cf): a welcome counts for a sender SPF or DKIM confirms,
as users' welcomes do, a block needs no proof, and both speak for every recipient. A migrating
site's lines were only named as unsupported, and its partners and bad senders were lost."""

from __future__ import annotations

import pytest

from mailsift.analysis.model import Envelope
from mailsift.config import ListsConfig, RulesConfig
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.zone import GOOD_IP, IDN_ASCII, IDN_DOMAIN, NO_PTR_IP

SITE_RULES = {"SITE_IN_WELCOMELIST", "SITE_WELCOME_UNVERIFIED", "SITE_IN_BLOCKLIST"}


@pytest.fixture(scope="module")
def site(test_dns: DnsFixture, tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    """Welcomes shop.test and the IDN domain (written in U-labels), blocks neutral.test and
    ned@soft.test; a local.cf adds a welcome of mia@soft.test and a block of *@*.bad.test."""
    directory = tmp_path_factory.mktemp("site-lists")
    local = directory / "local.cf"
    local.write_text("whitelist_from mia@soft.test\nblacklist_from *@*.bad.test\n")
    lists = ListsConfig.model_validate({"welcome": ["shop.test", IDN_DOMAIN],
                                        "block": ["neutral.test", "ned@soft.test"]})
    rules = RulesConfig(local_cf=str(local))
    return Scanner(network_config(test_dns.server.address).model_copy(
        update={"lists": lists, "rules": rules}))


def site_hits(scanner: Scanner, raw: bytes, ip: str, mail_from: str = "tom@shop.test") -> set[str]:
    return SITE_RULES & set(scan(scanner, raw, ip=ip, mail_from=mail_from).rule_names)


def test_a_welcomed_sender_spf_confirms_is_welcomed(site: Scanner) -> None:
    result = scan(site, letter(), ip=GOOD_IP)
    hit = next(h for h in result.hits if h.name == "SITE_IN_WELCOMELIST")
    assert (hit.score, hit.evidence) == (-100.0, "shop.test")
    assert SITE_RULES & set(result.rule_names) == {"SITE_IN_WELCOMELIST"}


def test_a_dkim_signature_of_the_senders_domain_confirms_it(site: Scanner,
                                                             test_dns: DnsFixture) -> None:
    """Forwarded: SPF fails, the signature survives."""
    raw = signed(letter(), test_dns.dkim_private_key)
    assert site_hits(site, raw, NO_PTR_IP) == {"SITE_IN_WELCOMELIST"}


def test_forged_mail_of_a_welcomed_sender_is_shown_but_not_welcomed(site: Scanner) -> None:
    result = scan(site, letter(), ip=NO_PTR_IP)  # neither SPF nor a signature
    assert SITE_RULES & set(result.rule_names) == {"SITE_WELCOME_UNVERIFIED"}
    hit = next(h for h in result.hits if h.name == "SITE_WELCOME_UNVERIFIED")
    assert (hit.score, hit.evidence) == (0.001, "shop.test")


def test_a_welcomed_domain_covers_its_subdomains(site: Scanner) -> None:
    """bounces.shop.test has an SPF record of its own that passes for GOOD_IP."""
    assert site_hits(site, letter(), GOOD_IP, "news@bounces.shop.test") == {"SITE_IN_WELCOMELIST"}


@pytest.mark.parametrize("sender_domain", [IDN_DOMAIN, IDN_ASCII])
def test_an_internationalised_entry_covers_both_spellings(site: Scanner, sender_domain: str) -> None:
    sender = f"jörg@{sender_domain}"
    assert site_hits(site, letter(f"Jörg <{sender}>"), GOOD_IP, sender) == {"SITE_IN_WELCOMELIST"}


def test_a_block_entry_needs_no_proof(site: Scanner) -> None:
    result = scan(site, letter("Ned <ned@neutral.test>"), ip=NO_PTR_IP, mail_from="ned@neutral.test")
    hit = next(h for h in result.hits if h.name == "SITE_IN_BLOCKLIST")
    assert (hit.score, hit.evidence) == (100.0, "neutral.test")


def test_a_blocked_from_address_is_blocked_whatever_the_envelope_sender(site: Scanner) -> None:
    raw = letter("Ned <ned@soft.test>")
    assert site_hits(site, raw, NO_PTR_IP, "bounce-7@random.test") == {"SITE_IN_BLOCKLIST"}


def test_site_lists_speak_for_every_recipient(site: Scanner) -> None:
    """Users' lists need every recipient to agree; the site's are the site's for all."""
    envelope = Envelope(client_ip=NO_PTR_IP, helo="mail.shop.test", mail_from="ned@neutral.test",
                        rcpt_to=["anna@our.test", "ben@our.test", "carl@elsewhere.test"])
    result = site.scan(letter("Ned <ned@neutral.test>"), envelope)
    assert "SITE_IN_BLOCKLIST" in result.rule_names


def test_local_cf_lines_are_site_entries(site: Scanner, test_dns: DnsFixture) -> None:
    """whitelist_from is confirmed like any welcome: mia@soft.test signs with soft.test's key
    nowhere, so only SPF (soft.test allows GOOD_IP) welcomes her."""
    mia = letter("Mia <mia@soft.test>")
    assert site_hits(site, mia, GOOD_IP, "mia@soft.test") == {"SITE_IN_WELCOMELIST"}
    assert site_hits(site, mia, NO_PTR_IP, "mia@soft.test") == {"SITE_WELCOME_UNVERIFIED"}
    spam = letter("Offers <win@mx.bad.test>")
    assert site_hits(site, spam, NO_PTR_IP, "win@mx.bad.test") == {"SITE_IN_BLOCKLIST"}


def test_without_lists_no_site_rule_hits(scanner: Scanner) -> None:
    assert not SITE_RULES & set(scan(scanner, letter(), ip=GOOD_IP).rule_names)


def test_a_newsletter_is_welcomed_by_its_from_and_the_partners_signature(
        site: Scanner, test_dns: DnsFixture) -> None:
    """The partner's From, the mailing service's envelope sender, the partner's signature."""
    newsletter = signed(letter(), test_dns.dkim_private_key)
    assert site_hits(site, newsletter, NO_PTR_IP, "bounce-7@random.test") == {"SITE_IN_WELCOMELIST"}
    assert site_hits(site, letter(), NO_PTR_IP, "bounce-7@random.test") == {"SITE_WELCOME_UNVERIFIED"}


def test_no_site_welcome_without_proof_or_for_our_own_mail(site: Scanner, test_dns: DnsFixture) -> None:
    """Without the network checks (dns.enabled off, the default) a welcome counted as written,
    so a phishing From of a welcomed bank got -100; and a migrated `whitelist_from *@ourdomain`
    carried a compromised account's spam past the outbound pause."""
    offline = Scanner(site.config, network=False)
    assert site_hits(offline, letter(), NO_PTR_IP) == {"SITE_WELCOME_UNVERIFIED"}
    authenticated = scan(site, letter(), ip=GOOD_IP, auth_user="tom")
    assert SITE_RULES & set(authenticated.rule_names) == {"SITE_WELCOME_UNVERIFIED"}
