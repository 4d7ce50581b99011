"""Every key of mailsift.toml that names a domain takes what a mail domain can be, by the rule
list entries go by (`domains.name_problem`). The config had a pattern of its own, which took
192.0.2.44 (an IP address), partner.123 and partner.example- as domains: an admin who wrote one
in own_domains, a DNS zone, a policy's match or a user's address got no word, and the setting
matched no mail. What it refused it refused without saying why ("is not a domain name").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailsift.config import Config, ConfigError, parse_config
from mailsift.domains import ascii_domain
from mailsift.quarantine.model import list_entry

ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"  # the form; never checked here
SOURCE = "/etc/mailsift/mailsift.toml"


def _user(address: str) -> dict[str, Any]:
    return {"web": {"users": [{"name": "jane", "password_hash": ARGON2, "addresses": [address]}]}}


# Each key that names a domain: (the config holding `name` there, how it reads the key back)
KEYS: dict[str, tuple[Callable[[str], dict[str, Any]], Callable[[Config], str]]] = {
    "network.own_domains": (lambda name: {"network": {"own_domains": [name]}},
                            lambda config: config.network.own_domains[0]),
    "network.arc_trusted_sealers": (lambda name: {"network": {"arc_trusted_sealers": [name]}},
                                    lambda config: config.network.arc_trusted_sealers[0]),
    "network.outbound_relays": (lambda name: {"network": {"outbound_relays": [name]}},
                                lambda config: config.network.outbound_relays[0]),
    "dns.blocklists.0.zone": (
        lambda name: {"dns": {"blocklists": [{"zone": name, "rule": "RCVD_IN_X", "score": 1.0}]}},
        lambda config: config.dns.blocklists[0].zone),
    "dns.allowlists.0.zone": (
        lambda name: {"dns": {"allowlists": [{"zone": name, "rule": "RCVD_IN_Y", "score": -1.0}]}},
        lambda config: config.dns.allowlists[0].zone),
    "policy.0.match": (lambda name: {"policy": [{"match": [name]}]},
                       lambda config: config.policy[0].match[0]),
    "policy.0.match (@domain)": (lambda name: {"policy": [{"match": [f"@{name}"]}]},
                                 lambda config: config.policy[0].match[0].removeprefix("@")),
    "policy.0.match (address)": (lambda name: {"policy": [{"match": [f"abuse@{name}"]}]},
                                 lambda config: config.policy[0].match[0].removeprefix("abuse@")),
    "web.users.0.addresses": (lambda name: _user(f"jane@{name}"),
                              lambda config: config.web.users[0].addresses[0]
                              .removeprefix("jane@")),
    "lists.welcome": (lambda name: {"lists": {"welcome": [name]}},
                      lambda config: config.lists.welcome[0]),
}

# Names no mail domain can be, each with the reason the refusal must give
NO_DOMAIN = {
    "192.0.2.44": "an IP address, not a",  # a sender, lists.welcome says: see the list tests
    "partner.123": "no domain ends in a number (123)",
    "partner.example-": "no domain has a label starting or ending with '-' (example-)",
    "-x.example": "no domain has a label starting or ending with '-' (-x)",
    "a..example": "two dots in a row",
    "exa+mple.org": "no domain has '+' in a label (exa+mple); labels have letters, digits, '-' "
                    "and '_' only",
    "https://lists.example.org": "no domain has ':' in a label (https://lists)",
    f"{'a' * 64}.example": "a label of 64 characters (aaaaaaaaaaaaaaaaaaaa...); a domain's labels "
                           "have at most 63",
    f"{'abcdefgh.' * 28}example": "a name of 259 characters; a domain has at most 253",
    "partner": "one label only; a domain has a dot, e.g. example.org",
    "☃.example": "IDNA refuses it",
}


@pytest.mark.parametrize("name", NO_DOMAIN)
@pytest.mark.parametrize("key", KEYS)
def test_a_name_no_mail_domain_can_be_is_refused_naming_file_key_reason_and_form(
        key: str, name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(KEYS[key][0](name), SOURCE)
    message = str(refused.value)
    assert message.startswith(f"{SOURCE}: {key.partition(' ')[0]}: "), message
    assert NO_DOMAIN[name] in message
    assert "; allowed: " in message and "\n" not in message


@pytest.mark.parametrize("name", [n for n in NO_DOMAIN if n != "192.0.2.44"])
def test_the_config_and_the_lists_refuse_a_name_for_one_reason(name: str) -> None:
    """One rule, not two that disagree (a list entry names an IP address as the network checks'
    business instead)."""
    with pytest.raises(ValueError) as as_entry:
        list_entry(name)
    assert NO_DOMAIN[name] in str(as_entry.value)


def test_a_domain_key_says_which_name_and_why_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"network": {"own_domains": ["example.org", "192.0.2.44"]}}, SOURCE)
    assert str(refused.value) == (
        f"{SOURCE}: network.own_domains: '192.0.2.44' is not a domain name: an IP address, not a "
        "domain name (got ['example.org', '192.0.2.44']); allowed: domain names, e.g. "
        '["example.org"]')


# Written as admins write them today, and what each key keeps: its ASCII form
TAKEN = {
    "bücher.example": "xn--bcher-kva.example",
    "BÜCHER.Example。": "xn--bcher-kva.example",
    "xn--bcher-kva.example": "xn--bcher-kva.example",
    "Example.ORG.": "example.org",
    "mail-1.partner.example": "mail-1.partner.example",
    "_spf.partner.example": "_spf.partner.example",
    f"{'a' * 63}.example": f"{'a' * 63}.example",
    "shop.xn--p1ai": "shop.xn--p1ai",
    "1.2.3.zen.example": "1.2.3.zen.example",
    "42.example": "42.example",
}


@pytest.mark.parametrize("name", TAKEN)
@pytest.mark.parametrize("key", KEYS)
def test_every_domain_taken_before_is_taken_alike(key: str, name: str) -> None:
    """IDN, upper case, a final dot, digits and '_' in a label: nothing that matched mail is
    refused now. A user's address keeps its domain as written (its digest goes there), which
    compares as the others do."""
    kept = KEYS[key][1](parse_config(KEYS[key][0](name), SOURCE))
    assert ascii_domain(kept) == TAKEN[name]
    assert kept == TAKEN[name] or key == "web.users.0.addresses"
