"""Names a sender writes that no DNS server can be asked about: an emoji or a U+FFFD in a From
domain or a DKIM d=. IDNA refuses to encode them, so no query is ever sent; the lookup used to
count as SERVFAIL, and every check that needed it said temperror for a question no server saw
(found by fuzzing the network checks). No such name can exist in the DNS: it is NXDOMAIN.

A name with a DNS escape (sh\\111p.test) is one too: ascii_domain keeps it as written, but
dns.name.from_text reads the escape, so _dmarc.sh\\111p.test was asked as _dmarc.shop.test and
shop.test's records judged a From domain every comparison holds as sh\\111p.test.
"""

from __future__ import annotations

import asyncio

from mailsift.network.resolver import Lookups, Outcome, encodable, shared_resolver
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.zone import NO_PTR_IP

UNASKABLE = "😀.test"
ESCAPED = "sh\\111p.test"  # \111 is an "o": shop.test, whose DMARC policy is p=reject


def test_domain_idna_refuses_is_no_dns_failure(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(f"Tom <tom@{UNASKABLE}>"), test_dns.dkim_private_key, UNASKABLE)
    result = scan(scanner, raw, ip=NO_PTR_IP, mail_from=f"bounce@{UNASKABLE}")
    assert result.dns_failures == []
    assert "DNS_SERVFAIL" not in result.rule_names
    assert "temperror" not in result.auth_results
    assert 'dkim=permerror reason="no key published for the selector"' in result.auth_results


def test_an_escaped_domain_is_not_asked_as_the_name_it_spells(scanner: Scanner) -> None:
    result = scan(scanner, letter(f"Tom <tom@{ESCAPED}>"), ip=NO_PTR_IP, mail_from=f"tom@{ESCAPED}")
    assert "DMARC_REJECT" not in result.rule_names
    assert "spf=fail" not in result.auth_results
    assert result.dns_failures == []


def test_a_name_with_a_backslash_is_nxdomain_without_a_query(test_dns: DnsFixture) -> None:
    async def ask() -> Outcome:
        lookups = Lookups(shared_resolver((test_dns.server.address,), 0), budget=2.0)
        return (await lookups.query(f"_dmarc.{ESCAPED}", "TXT")).outcome

    assert asyncio.run(ask()) == Outcome.NXDOMAIN
    assert not encodable(ESCAPED)
    assert not encodable("bü\\099her.test")
