"""rsa-sha1 signatures count for nothing (RFC 8301 3.1), yet are no forgery.

SHA-1 collisions can be computed, and RFC 8301 forbids verifiers to consider an rsa-sha1 signature
valid; mailsift passed them, so such a signature earned DKIM_VALID(_AU), DMARC alignment and
welcome-list entries. Now one that verifies is `dkim=policy`: no credit, no alignment, but no rule
scores it above an unsigned message either, as it is most likely a genuine signer's old software.
"""

from __future__ import annotations

from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.test_dkim import DKIM_RULES
from tests.network.test_dmarc import DMARC_RULES
from tests.network.zone import NO_PTR_IP

SHA1_RULES = {*DKIM_RULES, "DKIM_RSA_SHA1"}
REFUSED = 'dkim=policy reason="rsa-sha1 is not accepted (RFC 8301)"'


def sha1_signed(test_dns: DnsFixture, domain: str = "shop.test", *, altered: bool = False) -> bytes:
    """A letter from `domain` signed rsa-sha1 with the test key; `altered` changes its body after."""
    raw = signed(letter(f"Tom <tom@{domain}>"), test_dns.dkim_private_key, domain, algorithm="rsa-sha1")
    return raw.replace(b"before Friday", b"before Monday") if altered else raw


def from_elsewhere(scanner: Scanner, raw: bytes, domain: str = "shop.test") -> Result:
    """`raw` through a host the domain's SPF does not allow: only DKIM could pass DMARC."""
    return scan(scanner, raw, ip=NO_PTR_IP, mail_from=f"tom@{domain}")


def test_verifying_rsa_sha1_signature_is_policy_not_pass(scanner: Scanner, test_dns: DnsFixture) -> None:
    """It scored DKIM_VALID and DKIM_VALID_AU; now only the reason is shown, at DKIM_ABSENT's 0.001."""
    result = from_elsewhere(scanner, sha1_signed(test_dns))
    assert SHA1_RULES & set(result.rule_names) == {"DKIM_RSA_SHA1"}
    hit = next(h for h in result.hits if h.name == "DKIM_RSA_SHA1")
    assert (hit.score, hit.evidence) == (0.001, "shop.test: rsa-sha1 is not accepted (RFC 8301)")
    assert f"{REFUSED} header.d=shop.test" in result.auth_results


def test_rsa_sha1_only_signer_fails_dmarc_under_its_policy(scanner: Scanner, test_dns: DnsFixture) -> None:
    """shop.test publishes p=reject: with SPF not aligned, its rsa-sha1 signature passed DMARC, and
    now the message fails it as RFC 8301 and RFC 9989 ask (and as at Exim since 4.93)."""
    result = from_elsewhere(scanner, sha1_signed(test_dns))
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_REJECT"}
    assert "dmarc=fail header.from=shop.test policy.dmarc=reject" in result.auth_results


def test_rsa_sha1_signature_scores_as_an_unsigned_message(scanner: Scanner, test_dns: DnsFixture) -> None:
    """Not as forgery: the same letter unsigned scores the same (DKIM_ABSENT and DKIM_RSA_SHA1 both
    weigh 0.001). On the old code the signature's DKIM and DMARC credit scored it lower."""
    refused = from_elsewhere(scanner, sha1_signed(test_dns))
    unsigned = from_elsewhere(scanner, letter("Tom <tom@shop.test>"))
    assert refused.score == unsigned.score
    assert "DKIM_INVALID" not in refused.rule_names


def test_rsa_sha256_signature_beside_an_rsa_sha1_one_still_passes(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """Signers moving to rsa-sha256 often sign both ways for a while: the rsa-sha256 one counts."""
    raw = signed(sha1_signed(test_dns), test_dns.dkim_private_key)
    result = from_elsewhere(scanner, raw)
    assert SHA1_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert DMARC_RULES & set(result.rule_names) == {"DMARC_PASS"}
    assert "dkim=pass header.d=shop.test" in result.auth_results
    assert f"{REFUSED} header.d=shop.test" in result.auth_results


def test_broken_rsa_sha1_signature_is_still_a_failure(scanner: Scanner, test_dns: DnsFixture) -> None:
    """Else a forger would write a=rsa-sha1 to escape DKIM_INVALID. A guard: as on the old code."""
    result = from_elsewhere(scanner, sha1_signed(test_dns, altered=True))
    assert SHA1_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert "dkim=fail" in result.auth_results


def test_rsa_sha1_signature_under_a_key_for_sha256_gives_the_rsa_sha1_reason(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """The key's h=sha256 refuses it too (RFC 6376 6.1.2), but the rsa-sha1 reason is the one the
    signer must act on (its key already says what to sign with), and the one every rsa-sha1
    signature gives; so it is policy, as elsewhere, not permerror. It passed on the old code."""
    result = from_elsewhere(scanner, sha1_signed(test_dns, "sha256key.test"), "sha256key.test")
    assert SHA1_RULES & set(result.rule_names) == {"DKIM_RSA_SHA1"}
    assert f"{REFUSED} header.d=sha256key.test" in result.auth_results


def test_broken_rsa_sha1_signature_under_a_key_for_sha256_is_refused_by_the_key(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """A guard: as on the old code, a signature that does not verify gets the key's reason."""
    result = from_elsewhere(scanner, sha1_signed(test_dns, "sha256key.test", altered=True),
                            "sha256key.test")
    assert SHA1_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert ('dkim=permerror reason="key is for h=sha256, signature uses sha1" header.d=sha256key.test'
            in result.auth_results)
