"""DKIM keys nobody can use are a permerror of the signer's DNS, not a failed signature.

RFC 6376 6.1.2 makes a key record that cannot be used a PERMFAIL, written `permerror` in
Authentication-Results (RFC 8601 2.7.1), as RFC 8301 3.2 does RSA keys under 1024 bits, and so it
does a key that refuses the signature: one not for mail (s=), of another type (k=) or not for its
hash (h=). dkimpy answered such keys with False, as for a signature that does not verify, and the
header said `dkim=fail`: to a downstream filter, a forged or altered message. The rules score both
alike.
"""

from __future__ import annotations

import pytest

from mailsift.rules.result import Result
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture
from tests.network.messages import letter, scan, signed
from tests.network.test_dkim import DKIM_RULES


def signed_by(test_dns: DnsFixture, domain: str, *, altered: bool = False) -> bytes:
    """A letter from `domain` signed with the test key; `altered` changes its body afterwards."""
    raw = signed(letter(f"Tom <tom@{domain}>"), test_dns.dkim_private_key, domain=domain)
    return raw.replace(b"before Friday", b"before Monday") if altered else raw


def assert_permerror(result: Result, domain: str, reason: str) -> None:
    """The header says permerror with `reason`, and DKIM_INVALID scores it as it scored fail."""
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_INVALID"}
    assert f'dkim=permerror reason="{reason}" header.d={domain}' in result.auth_results
    hit = next(h for h in result.hits if h.name == "DKIM_INVALID")
    assert (hit.score, hit.evidence) == (0.3, f"{domain}: {reason}")


@pytest.mark.parametrize(("domain", "reason"), [
    ("notbase64.test", "unusable key: p= is not base64"),  # p=!!not-base64!!
    ("notakey.test", "unusable key: could not parse RSA public key: Unparsable public key"),  # AAAA
    ("unknownalg.test", "unusable key: unknown algorithm in k= tag: foo"),  # k=foo
    ("shortkey.test", "key too short (512 bits)"),
    # the reason quoted the record ("incomplete RSA public key: b'v=DKIM1"), or its parser's
    # leftovers ("p", "")
    ("typokey.test", "unusable key: no p= tag in the record"),  # pp=<key>
    ("twicekey.test", "unusable key: p= named twice"),
    ("semicolons.test", "unusable key: the record is not a tag=value list"),  # k=rsa;; p=<key>
])
def test_signature_under_an_unusable_key_is_a_permerror_scored_as_invalid(
        scanner: Scanner, test_dns: DnsFixture, domain: str, reason: str) -> None:
    """Signed with the test key, whether or not the record holds it: no verifier can read it."""
    result = scan(scanner, signed_by(test_dns, domain), mail_from=f"tom@{domain}")
    assert_permerror(result, domain, reason)


@pytest.mark.parametrize(("domain", "altered", "reason"), [
    ("tlsrptkey.test", False, "key not for mail (s=tlsrpt)"),  # was fail, "Message is not tlsrpt"
    ("chatkey.test", False, "key not for mail (s=chat:web)"),  # was permerror, reason "None"
    ("chatkey.test", True, "key not for mail (s=chat:web)"),  # was fail, "body hash mismatch"
])
def test_signature_under_a_key_not_for_mail_is_a_permerror(
        scanner: Scanner, test_dns: DnsFixture, domain: str, altered: bool, reason: str) -> None:
    """RFC 6376 3.6.1: a key whose s= names neither email nor * is ignored by a mail verifier."""
    result = scan(scanner, signed_by(test_dns, domain, altered=altered), mail_from=f"tom@{domain}")
    assert_permerror(result, domain, reason)



@pytest.mark.parametrize("domain", [
    "mailtls.test",  # s=email:tlsrpt
    "mailupper.test",  # s=Email (ABNF words match in either case)
])
def test_good_signature_under_a_key_for_mail_and_more_passes(
        scanner: Scanner, test_dns: DnsFixture, domain: str) -> None:
    """dkimpy took only s=*, s=email and s=tlsrpt and dropped the key for any other s=, so the
    signer's good mail got permerror (reason "None"), DKIM_INVALID, and no DKIM for DMARC."""
    result = scan(scanner, signed_by(test_dns, domain), mail_from=f"tom@{domain}")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert f"dkim=pass header.d={domain}" in result.auth_results

@pytest.mark.parametrize(("domain", "algorithm"), [("rsaupper.test", "rsa-sha256"),  # k=RSA
                                                 ("edupper.test", "ed25519-sha256")])  # k=Ed25519
def test_a_key_type_written_in_capitals_verifies(
        scanner: Scanner, test_dns: DnsFixture, domain: str, algorithm: str) -> None:
    """RFC 6376 3.6.1's ABNF writes k= values as quoted strings, which match in either case;
    dkimpy compares them exactly and called the key unusable: the signer's good mail got
    permerror "unusable key: unknown algorithm in k= tag: RSA", DKIM_INVALID, and no DKIM for
    DMARC. An altered message under the key still fails, as under k=rsa."""
    key = test_dns.dkim_private_key if algorithm.startswith("rsa") else test_dns.ed25519_private_key
    raw = signed(letter(f"Tom <tom@{domain}>"), key, domain, algorithm=algorithm)
    result = scan(scanner, raw, mail_from=f"tom@{domain}")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert f"dkim=pass header.d={domain}" in result.auth_results
    broken = scan(scanner, raw.replace(b"before Friday", b"before Monday"), mail_from=f"tom@{domain}")
    assert DKIM_RULES & set(broken.rule_names) == {"DKIM_INVALID"}
    assert 'dkim=fail reason="body hash mismatch' in broken.auth_results


def test_broken_signature_under_a_key_for_another_hash_is_a_permerror(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """RFC 6376 6.1.2: h=sha1 refuses an rsa-sha256 signature (PERMFAIL); dkimpy ignores h=, and
    this broken body gave dkim=fail."""
    result = scan(scanner, signed_by(test_dns, "sha1key.test", altered=True),
                  mail_from="tom@sha1key.test")
    assert_permerror(result, "sha1key.test", "key is for h=sha1, signature uses sha256")


@pytest.mark.parametrize(("domain", "algorithm", "reason"), [
    ("ed.test", "rsa-sha256", "key is ed25519, signature is rsa-sha256"),  # was "unreadable (ValueError)"
    ("shop.test", "ed25519-sha256", "key is rsa, signature is ed25519-sha256"),  # was fail
])
def test_signature_under_a_key_of_another_type_is_a_permerror(
        scanner: Scanner, test_dns: DnsFixture, domain: str, algorithm: str, reason: str) -> None:
    """RFC 6376 6.1.2: a key whose k= is not the signature's key type cannot verify it ("PERMFAIL
    (inappropriate key algorithm)"), which says nothing about the message (ed.test publishes an
    ed25519 key, shop.test an RSA one)."""
    key = test_dns.dkim_private_key if algorithm.startswith("rsa") else test_dns.ed25519_private_key
    raw = signed(letter(f"Tom <tom@{domain}>"), key, domain, algorithm=algorithm)
    assert_permerror(scan(scanner, raw, mail_from=f"tom@{domain}"), domain, reason)


def test_good_signature_under_a_key_for_another_hash_still_passes(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """The key's owner made it: a stale h= must not fail DMARC for the signer's good mail, though
    RFC 6376 6.1.2 asks for PERMFAIL here. Guards that choice (it passed on the old code too)."""
    result = scan(scanner, signed_by(test_dns, "sha1key.test"), mail_from="tom@sha1key.test")
    assert DKIM_RULES & set(result.rule_names) == {"DKIM_VALID", "DKIM_VALID_AU"}
    assert "dkim=pass header.d=sha1key.test" in result.auth_results
