"""`mailsift check` of a DKIM-signed or ARC-sealed message over scan.max_bytes gets the milter's
DKIM and ARC results.

The milter verifies the body it holds, the first scan.max_bytes (1 MiB) of the CRLF body, and a
signature whose body hash then cannot match is `neutral` ("body cut at scan.max_bytes"). Check
gave dkimpy the file itself, whole: the signature verified, DKIM_VALID hit, and DMARC or a
welcome list could pass in check what the milter had scored without them. So did an ARC chain,
whose message signature covers the body too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import dkim
import pytest

from mailsift.config import ScanConfig
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import BODY, letter, signed
from tests.network.zone import SELECTOR, TRUSTED_SEALER
from tests.test_check_big_message import CUTS, Big, hits, scored_by_milter

COPIES: dict[str, Callable[[Big], bytes]] = {"LF file": Big.file, "CRLF file": Big.crlf_file,
                                             "mbox": Big.mbox}


def signed_big(cut: str, private_key: bytes) -> Big:
    """The message of CUTS[cut] under a DKIM-Signature of shop.test by the key the DNS serves."""
    mail = CUTS[cut]()
    return with_fields(mail, signed(mail.crlf_file(), private_key))


def sealed_big(cut: str, private_key: bytes) -> Big:
    """The message of CUTS[cut] as a trusted forwarder sends it on: sealed in one ARC set over
    its Authentication-Results, which recorded a DMARC pass."""
    mail = CUTS[cut]()
    received = (b"Authentication-Results: " + TRUSTED_SEALER.encode() + b"; spf=pass "
                b"smtp.mailfrom=ann@example.org; dmarc=pass header.from=example.org\r\n"
                + mail.crlf_file())
    arc_set = dkim.arc_sign(received, SELECTOR.encode(), TRUSTED_SEALER.encode(), private_key,
                            TRUSTED_SEALER.encode())
    return with_fields(mail, b"".join(arc_set) + received)


def with_fields(mail: Big, raw: bytes) -> Big:
    """`mail` with the header fields `raw` has on top of its own, as Postfix hands a milter
    each field: its name, and its value from after the colon, lines joined by LF."""
    added = raw[:len(raw) - len(mail.crlf_file())].decode()
    fields = [field.partition(":") for field in added.replace("\r\n", "\n").split("\n") if field]
    joined: list[tuple[str, str]] = []
    for name, colon, value in fields:
        if colon and not name[0].isspace():
            joined.append((name, value.strip()))
        else:  # a folded line of the field before
            joined[-1] = (joined[-1][0], f"{joined[-1][1]}\n{name}{colon}{value}")
    return replace(mail, headers=(*joined, *mail.headers))


@pytest.fixture(scope="module")
def scanner(test_dns: DnsFixture) -> Scanner:
    """The network checks on, the forwarder's seals trusted."""
    config = network_config(test_dns.server.address)
    network = config.network.model_copy(update={"arc_trusted_sealers": [TRUSTED_SEALER]})
    return Scanner(config.model_copy(update={"network": network}))


# How each is made, and what the milter finds: the body hash cannot match the body it holds.
MADE: dict[str, tuple[Callable[[str, bytes], Big], str]] = {
    "DKIM": (signed_big, "dkim=neutral"), "ARC": (sealed_big, "arc=fail")}


@pytest.mark.parametrize("copy", COPIES)
@pytest.mark.parametrize(("kind", "cut"), [("DKIM", "in a base64 line"), ("DKIM", "between CR and LF"),
                                           ("ARC", "in a base64 line")])
def test_check_of_a_big_signed_message_gets_the_milters_result(
        kind: str, cut: str, copy: str, scanner: Scanner, test_dns: DnsFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    make, found = MADE[kind]
    mail = make(cut, test_dns.dkim_private_key)
    milter = scored_by_milter(mail, scanner, monkeypatch)
    checked = scanner.scan(COPIES[copy](mail))
    assert found in milter.auth_results
    assert checked.auth_results == milter.auth_results
    assert hits(checked) == hits(milter)
    assert checked.score == milter.score


def test_the_signature_verifies_where_the_milter_reads_the_body_whole(test_dns: DnsFixture) -> None:
    """Under a scan.max_bytes the body fits in, every copy verifies (a guard: the signature and
    the seal are good, so the neutral and the fail above are the cut's doing)."""
    signed_mail = signed_big("in a base64 line", test_dns.dkim_private_key)
    sealed_mail = sealed_big("in a base64 line", test_dns.dkim_private_key)
    config = network_config(test_dns.server.address)
    network = config.network.model_copy(update={"arc_trusted_sealers": [TRUSTED_SEALER]})
    whole = Scanner(config.model_copy(update={
        "scan": ScanConfig(max_bytes=4 * 1024 * 1024), "network": network}))
    for copy in COPIES.values():
        assert "DKIM_VALID" in dict(hits(whole.scan(copy(signed_mail))))
        assert "arc=pass" in whole.scan(copy(sealed_mail)).auth_results


def test_check_of_a_signed_message_read_from_an_mbox_verifies_as_sent(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """An mbox quotes a body line starting "From " as ">From ": check of that copy verified
    the quoted body, DKIM_INVALID (body hash), where the milter had the sent one, a pass."""
    sent = signed(letter(body=BODY + "From the desk of Tom: see you Friday.\n"),
                  test_dns.dkim_private_key)
    mbox = b"From tom@shop.test Tue Aug  6 10:55:03 2024\r\n" + sent.replace(b"\nFrom the", b"\n>From the")
    assert b"\n>From the desk" in mbox
    assert dict(hits(scanner.scan(mbox))) == dict(hits(scanner.scan(sent)))
    assert "DKIM_VALID" in dict(hits(scanner.scan(mbox)))
