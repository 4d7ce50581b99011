"""Look-alike domains: confusable characters, IDN homographs and typing slips, and their limits."""

from __future__ import annotations

import pytest

from mailsift.network.confusables import edit_distance, imitated, skeleton

OWN = ["example.org", "northwind-traders.com"]


@pytest.mark.parametrize("domain", [
    "examp1e.org", "exarnple.org", "exmaple.org", "exampel.org", "examples.org", "xn--xample-2of.org",
    "еxample.org", "example.org.phish.test", "northwindtraders.com", "north-wind-traders.com",
    "northwind-tradres.com", "n0rthwind-traders.com",
])
def test_imitations_are_caught(domain: str) -> None:
    assert imitated(domain, OWN) is not None


@pytest.mark.parametrize("domain", [
    "example.org", "mail.example.org", "sample.net", "exemplary.org", "northwind.com",
    "southwind-traders.com", "",
])
def test_our_own_and_unrelated_domains_are_not_imitations(domain: str) -> None:
    assert imitated(domain, OWN) is None


def test_skeleton_maps_cyrillic_and_punycode_to_the_same_letters() -> None:
    assert skeleton("xn--xample-2of.org") == skeleton("еxample.org") == "example.org"


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("exmaple", "example", 2) == 1
    assert edit_distance("abc", "abcdef", 1) == 2  # beyond the limit: stops early
