"""DKIM (RFC 6376) with dkimpy: every signature of the message verified, keys fetched in advance.

The selectors' key records are looked up together with all other lookups of the message, then
dkimpy verifies offline, in a worker thread, with a DNS function that only reads those answers.
So a slow signer's DNS costs no more than the message's budget, and a key that did not arrive in
time gives `temperror`, never `fail`: the signature may well be good. Likewise a body the milter
cut at scan.max_bytes gives `neutral` rather than a broken body hash, and so does a failure under a
key in testing mode (t=y). A key nobody can use (not base64, no key, an unknown k=, an RSA key under
1024 bits) gives `permerror`, the signer's DNS being wrong, never `fail`, which tells downstream
filters the message was altered or forged (RFC 6376 6.1.2); the rules score both alike. ed25519
signatures (RFC 8463) need PyNaCl, a dependency for that reason.

A signature with a body length count (l=, RFC 6376 3.5) vouches for the first l bytes of the body
only, and anyone may append to it: a paragraph, a link, a MIME part (RFC 6376 8.2). When something
follows the signed part, the signature verifies but is not counted as a pass: its result is
`policy` (RFC 8601: signed, but not acceptable to the verifier), so it earns no DKIM credit, no
DMARC pass and no welcome-list entry. It is no failure either, as a mailing list's footer does the
same; DMARC weighs it (see dmarc.py) and the rule DKIM_UNSIGNED_TAIL shows it. An l= that reaches the
end of the body is an ordinary pass.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
from dataclasses import replace

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList, parse_tag_value

from mailsift.domains import ascii_domain
from mailsift.network.resolver import Answer, Lookups
from mailsift.network.verdicts import BODY_CUT, DkimSignature


class LibraryLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to dkimpy. It reports what a sender got wrong (a body hash mismatch, a
    key it cannot read) at error level, one line per such message, which buried the milter's own
    errors and tripped alerts on error lines; the verdict and Authentication-Results carry the
    reason, so every line of it, at whatever level a later dkimpy logs, goes at debug level. A
    whole logger (not two methods) so that no call dkimpy makes can raise on it."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.getLogger(name), {})

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)  # type: ignore[arg-type]


log = LibraryLog(__name__)
MAX_SIGNATURES = 5  # real mail carries one to three; more is an attempt to make us work
# What dkimpy raises besides its own errors on input a sender controls: IndexError splitting a
# message whose first line continues no header, AssertionError reading a malformed key record,
# binascii.Error (a ValueError) decoding a bh= tag that is not base64. Each stopped the network
# checks, so the message was not scored at all (milter.on_error). Found by fuzzing.
LIBRARY_ERRORS = (dkim.DKIMException, IndexError, AssertionError, ValueError)


def _signature_tags(raw: bytes) -> list[dict[bytes, bytes] | None]:
    """The tags of each DKIM-Signature in header order (None for one that cannot be read)."""
    try:
        headers = dkim.DKIM(raw).headers
    except LIBRARY_ERRORS:
        return []
    tags: list[dict[bytes, bytes] | None] = []
    for name, value in headers:
        if name.lower() != b"dkim-signature":
            continue
        try:
            tags.append(parse_tag_value(value))
        except InvalidTagValueList:
            tags.append(None)
    return tags[:MAX_SIGNATURES]


def key_name(tags: dict[bytes, bytes]) -> str:
    """Where the signature's key is published, in the ASCII form the DNS holds. RFC 8616 lets s=
    and d= be written in UTF-8 U-labels (d=bücher.example): read as ASCII, their bytes became
    U+FFFD, a name no server holds, and a good signature got `temperror`."""
    return ascii_domain((tags[b"s"] + b"._domainkey." + tags[b"d"]).decode("utf-8", "replace"))


async def check_dkim(raw: bytes, lookups: Lookups, max_body: int) -> list[DkimSignature]:
    """Verify every signature; `max_body` is scan.max_bytes, where the milter cuts long bodies."""
    signatures = _signature_tags(raw)
    names = sorted({key_name(t) for t in signatures if t and b"s" in t and b"d" in t})
    keys = dict(zip(names, await lookups.query_all([(n, "TXT") for n in names]), strict=True))
    if not signatures:
        return []
    cut = body_length(raw) >= max_body
    return await asyncio.to_thread(_verify_all, raw, signatures, keys, cut)


def body_length(raw: bytes) -> int:
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
    return len(raw) - min(ends) if ends else 0


def _verify_all(raw: bytes, signatures: list[dict[bytes, bytes] | None],
                keys: dict[str, Answer], cut: bool) -> list[DkimSignature]:
    verifier = dkim.DKIM(raw, logger=log)
    results = [_verify(verifier, index, tags, keys) for index, tags in enumerate(signatures)]
    return [_excuse_cut_body(r) for r in results] if cut else results


def _excuse_cut_body(signature: DkimSignature) -> DkimSignature:
    """A body cut at the scan limit cannot match its hash: that says nothing about the sender."""
    if signature.result == "fail" and "body hash" in signature.reason:
        return replace(signature, result="neutral", reason=BODY_CUT)
    return signature


def _verify(verifier: dkim.DKIM, index: int, tags: dict[bytes, bytes] | None,
            keys: dict[str, Answer]) -> DkimSignature:
    if tags is None or b"s" not in tags or b"d" not in tags:
        return DkimSignature("", "", "permerror", "unreadable signature")
    domain = ascii_domain(tags[b"d"].decode("utf-8", "replace"))  # RFC 8616 allows U-labels
    selector = tags[b"s"].decode("ascii", "replace")
    b_prefix = tags.get(b"b", b"").decode("ascii", "replace").replace(" ", "")[:8]
    result, reason = _judge(verifier, index, keys[key_name(tags)])
    unsigned = _unsigned_tail(verifier.body, tags) if result == "pass" else 0
    if unsigned:
        result, reason = "policy", f"l={int(tags[b'l'])} leaves {unsigned} body bytes unsigned"
    return DkimSignature(domain, selector, result, reason, b_prefix, unsigned)


def _unsigned_tail(body: bytes, tags: dict[bytes, bytes]) -> int:
    """How many bytes of the body follow the part a verified signature's l= covers.

    Counted on the body canonicalised as the signer did (c=), as l= is: trailing empty lines, and
    under relaxed also trailing blanks, are no content. Only called after dkimpy verified the
    signature, so l= is a number and c= is valid.
    """
    if b"l" not in tags:
        return 0
    policy = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
    return max(len(policy.canonicalize_body(body)) - int(tags[b"l"]), 0)


def _judge(verifier: dkim.DKIM, index: int, key: Answer) -> tuple[str, str]:
    if key.unknown:
        return "temperror", f"key lookup {key.outcome}"
    record = next((r for r in key.records if "p=" in r), None)
    if record is None:
        return "permerror", "no key published for the selector"
    tags = _key_tags(record)
    if tags.get(b"p") == b"":
        result, reason = "permerror", "key revoked (empty p=)"
    elif problem := _unusable(record, verifier.minkey):
        result, reason = "permerror", problem
    else:
        result, reason = _run(verifier, index, record)
    if result != "pass" and _testing(tags):
        return "neutral", f"key in testing mode (t=y): {reason}"
    return result, reason


def _unusable(record: str, min_bits: int) -> str:
    """Why the published key can verify nothing; '' when it can.

    RFC 6376 6.1.2 makes a key record that cannot be used (p= not base64 or not a key, an unknown
    k= algorithm, a v= other than DKIM1) a PERMFAIL, which RFC 8601 2.7.1 writes `permerror`: the
    signer's DNS is wrong, which says nothing about the message. dkimpy reads the key inside
    verify() and answers such a key with False, as it does a signature that does not verify, so
    the key is read first here, with dkimpy's own reader. RSA keys under `min_bits` (dkimpy's
    minkey, RFC 8301 3.2's 1024) verify nothing either; dkimpy says so only when the signature
    verifies, and called a broken signature under such a key `fail`.
    """
    try:
        _key, bits, kind, _report = dkim.evaluate_pk(b"", record.encode())
    except LIBRARY_ERRORS as exc:
        return f"unusable key: {_key_fault(exc)}"[:80]
    if kind == b"rsa" and bits < min_bits:
        return f"key too short ({bits} bits)"
    return ""


def _key_fault(exc: Exception) -> str:
    """dkimpy's complaint about a key as a reason an admin can read: without the key's bytes, and
    only up to the first ';' of its parser's details."""
    if isinstance(exc, binascii.Error):
        return "p= is not base64"
    if isinstance(exc, dkim.KeyFormatError):  # "unknown algorithm in k= tag: b'foo'"
        text = re.sub(r" \(b'[^']*'\)", "", str(exc)).split(";")[0]
        return re.sub(r"b'([^']*)'", r"\1", text)
    return f"unreadable ({type(exc).__name__})"  # AssertionError from its ASN.1 reader


def _key_tags(record: str) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(record.encode())
    except InvalidTagValueList:
        return {}  # dkimpy says what is wrong with it when it reads the key


def _testing(key_tags: dict[bytes, bytes]) -> bool:
    """t=y: the signer is trying DKIM out, and RFC 6376 3.6.1 says its failures must weigh as
    unsigned mail does; they become neutral (no rule fires), passes stay passes."""
    return b"y" in [flag.strip() for flag in key_tags.get(b"t", b"").split(b":")]


def _run(verifier: dkim.DKIM, index: int, record: str) -> tuple[str, str]:
    def dnsfunc(_name: bytes, timeout: float = 0) -> bytes:
        return record.encode()

    try:
        valid = verifier.verify(idx=index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        return "fail", str(exc)[:80]
    except dkim.DKIMException as exc:
        return "permerror", str(exc)[:80]
    except LIBRARY_ERRORS as exc:
        return "permerror", f"unreadable ({type(exc).__name__})"
    return ("pass", "") if valid else ("fail", "signature does not verify")
