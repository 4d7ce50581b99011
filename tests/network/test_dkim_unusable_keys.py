"""DKIM keys nobody can use are a permerror of the signer's DNS, not a failed signature.

RFC 6376 6.1.2 makes a key record that cannot be used a PERMFAIL, written `permerror` in
Authentication-Results (RFC 8601 2.7.1), as RFC 8301 3.2 does RSA keys under 1024 bits. dkimpy
answered such keys with False, as for a signature that does not verify, and the header said
`dkim=fail`: to a downstream filter, a forged or altered message. The rules score both alike.
"""

from __future__ import annotations

import pytest

from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.test_dkim import DKIM_RULES


@pytest.mark.parametrize(("domain", "reason"), [
    ("notbase64.test", "unusable key: p= is not base64"),  # p=!!not-base64!!
    ("notakey.test", "unusable key: could not parse RSA public key: Unparsable public key"),  # AAAA
    ("unknownalg.test", "unusable key: unknown algorithm in k= tag: foo"),  # k=foo
    ("shortkey.test", "key too short (512 bits)"),
])
def test_signature_under_an_unusable_key_is_a_permerror_scored_as_invalid(
        scanner: Scanner, test_dns: DnsFixture, domain: str, reason: str) -> None:
    """Signed with the test key, which is not the one published: a verifier cannot get that far."""
    raw = signed(letter(f"Tom <tom@{domain}>"), test_dns.dkim_private_key, domain=domain)
    result = scan(scanner, raw, mail_from=f"tom@{domain}")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert f'dkim=permerror reason="{reason}" header.d={domain}' in result.auth_results
    hit = next(h for h in result.hits if h.name == "DKIM_INVALID")
    assert (hit.score, hit.evidence) == (0.3, f"{domain}: {reason}")

