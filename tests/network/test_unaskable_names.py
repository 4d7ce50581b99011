"""Names a sender writes that no DNS server can be asked about: an emoji or a U+FFFD in a From
domain or a DKIM d=. IDNA refuses to encode them, so no query is ever sent; the lookup used to
count as SERVFAIL, and every check that needed it said temperror for a question no server saw
(found by fuzzing the network checks). No such name can exist in the DNS: it is NXDOMAIN.
"""

from __future__ import annotations

from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.zone import NO_PTR_IP

UNASKABLE = "😀.test"


def test_domain_idna_refuses_is_no_dns_failure(scanner: Scanner, test_dns: DnsFixture) -> None:
    raw = signed(letter(f"Tom <tom@{UNASKABLE}>"), test_dns.dkim_private_key, UNASKABLE)
    result = scan(scanner, raw, ip=NO_PTR_IP, mail_from=f"bounce@{UNASKABLE}")
    assert result.dns_failures == []
    assert "DNS_SERVFAIL" not in result.rule_names
    assert "temperror" not in result.auth_results
    assert 'dkim=permerror reason="no key published for the selector"' in result.auth_results
