"""DKIM (RFC 6376) with dkimpy: every signature of the message verified, keys fetched in advance.

The selectors' key records are looked up together with all other lookups of the message, then
dkimpy verifies offline, in a worker thread, with a DNS function that only reads those answers.
So a slow signer's DNS costs no more than the message's budget, and a key that did not arrive in
time gives `temperror`, never `fail`: the signature may well be good. Likewise a body the milter
cut at scan.max_bytes gives `neutral` rather than a broken body hash, and so does a failure under a
key in testing mode (t=y). A key nobody can use (not base64, no p=, an unknown k=, an RSA key under
1024 bits) gives `permerror`, the signer's DNS being wrong, never `fail`, which tells downstream
filters the message was altered or forged (RFC 6376 6.1.2); the rules score both alike. So does a
signature that does not verify under a key that refuses it: one not for mail (s=), of another type
(k=ed25519 under a=rsa-sha256), or not for the signature's hash (h=). ed25519 signatures (RFC 8463)
need PyNaCl, a dependency for that reason.

RFC 6376's ABNF writes the words of its tags as quoted strings, which match in either case. The
key record is rewritten for dkimpy, which compares s= and k= exactly (`_as_dkimpy_reads`), so a
key published as k=RSA or s=Email verifies. The signature's own a= cannot be: the DKIM-Signature
field is itself signed, so a=RSA-SHA256 rewritten would no longer verify. dkimpy refuses such a
signature before verifying anything, and it gets `fail`, reason "unknown signature algorithm:
b'RSA-SHA256'", scored DKIM_INVALID and of no use to DMARC, whether or not the message is intact.

A signature made with rsa-sha1 is no pass, though it verifies: RFC 8301 3.1 forbids verifiers to
consider it valid, as SHA-1 collisions can be computed (a chosen prefix makes a signature the signer
gave one text fit another). Its result is `policy`, which RFC 8601 2.7.1 gives a signature "not
acceptable to the ADMD", the verifier's administration: not `fail` (it was checked and broke) nor
`permerror` (it could not be processed), which tell downstream filters the message or the signer's
DNS is broken and which DKIM_INVALID scores, nor `neutral` (a signature with syntax errors). The
mail is most likely genuine, from a signer not yet updated, so no rule scores it above what an
unsigned message gets (DKIM_RSA_SHA1 shows it at 0.001, as DKIM_ABSENT shows unsigned mail); but it
earns no DKIM credit, no DMARC alignment and no welcome-list entry, so a p=reject domain signing
with rsa-sha1 alone fails DMARC unless SPF aligns, as at Exim (which dropped sha1 from
dkim_verify_hashes in 4.93). It is still verified, only to tell a broken one, `fail` as before, from
an intact one: else writing a=rsa-sha1 would spare a forged signature DKIM_INVALID.

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

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import DuplicateTag, InvalidTagValueList, parse_tag_value

from mailsift.domains import ascii_domain
from mailsift.network.resolver import Answer, Lookups
from mailsift.network.verdicts import BODY_CUT, HISTORIC_HASH, DkimSignature

# RFC 6376 3.6.1: the service types of a key (s=) that make it a key for mail
MAIL_SERVICES = frozenset({b"email", b"*"})
# RFC 8301 3.1: signing algorithms (a=) no verifier may accept, "historic" in its words
HISTORIC_ALGORITHMS = frozenset({b"rsa-sha1"})
DEFAULT_KEY_TYPE = b"rsa"  # k= when the key record has none (RFC 6376 3.6.1)


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
    return [_verify(verifier, index, tags, keys, cut) for index, tags in enumerate(signatures)]


def _verify(verifier: dkim.DKIM, index: int, tags: dict[bytes, bytes] | None,
            keys: dict[str, Answer], cut: bool) -> DkimSignature:
    if tags is None or b"s" not in tags or b"d" not in tags:
        return DkimSignature("", "", "permerror", "unreadable signature")
    domain = ascii_domain(tags[b"d"].decode("utf-8", "replace"))  # RFC 8616 allows U-labels
    selector = tags[b"s"].decode("ascii", "replace")
    b_prefix = tags.get(b"b", b"").decode("ascii", "replace").replace(" ", "")[:8]
    algorithm = tags.get(b"a", b"")
    result, reason = _judge(verifier, index, keys[key_name(tags)], algorithm, cut)
    if result == "pass" and algorithm.strip().lower() in HISTORIC_ALGORITHMS:
        result, reason = "policy", HISTORIC_HASH  # see the module docstring
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


def _judge(verifier: dkim.DKIM, index: int, key: Answer, algorithm: bytes,
           cut: bool) -> tuple[str, str]:
    """The signature's result and reason under its key; `algorithm` is its a=, `cut` whether the
    milter cut the body at scan.max_bytes."""
    if key.unknown:
        return "temperror", f"key lookup {key.outcome}"
    record = next((r for r in key.records if "p=" in r), None)
    if record is None:
        return "permerror", "no key published for the selector"
    tags = _key_tags(record)
    readable = _as_dkimpy_reads(record, tags)
    if tags.get(b"p") == b"":
        result, reason = "permerror", "key revoked (empty p=)"
    elif problem := _unusable(readable, tags, verifier.minkey):
        result, reason = "permerror", problem
    else:
        verdict = _run(verifier, index, readable)
        result, reason = _checked(verdict, _refusal(tags, algorithm), cut)
    if result != "pass" and _testing(tags):
        return "neutral", f"key in testing mode (t=y): {reason}"
    return result, reason


def _checked(verdict: tuple[str, str], refusal: str, cut: bool) -> tuple[str, str]:
    """dkimpy's `verdict` under a usable key, as it counts here.

    A body cut at the scan limit cannot match its hash: that says nothing about the sender, and
    the whole message might have verified, so the result is `neutral`. A signature that did not
    verify under a key that refuses it (`refusal`, see `_refusal`) is a `permerror` saying why:
    dkimpy gave `fail` ("body hash mismatch", for s=tlsrpt "Message is not tlsrpt") or a
    `permerror` reading "None". One that verifies under an h= without its hash stays a pass,
    although RFC 6376 6.1.2 asks for PERMFAIL: the key's owner signed it, and scoring it as
    broken would fail DMARC for the signer's good mail over a stale tag.
    """
    result, reason = verdict
    if cut and result == "fail" and "body hash" in reason:
        return "neutral", BODY_CUT
    if result != "pass" and refusal:
        return "permerror", refusal
    return verdict


def _refusal(tags: dict[bytes, bytes], algorithm: bytes) -> str:
    """Why the key record refuses a signature made with `algorithm` (a=); '' when it does not.

    RFC 6376 3.6.1: a verifier ignores a key whose s= names neither `email` nor `*` (it is not
    for mail), and (6.1.2) a signature whose hash (a=rsa-sha256) the key's h= does not list.
    dkimpy reads neither list: it drops a key whose s= is anything but exactly `*`, `email` or
    `tlsrpt`, and ignores h=. A key of another type than the signature's (k=ed25519 under
    a=rsa-sha256) can verify nothing: 6.1.2 asks for "PERMFAIL (inappropriate key algorithm)";
    dkimpy called it `fail` ("signature does not verify"), or `permerror` with the reason
    "unreadable (ValueError)".
    """
    if not _for_mail(tags):
        return f"key not for mail (s={_shown(tags[b's'])})"[:80]
    if mismatch := _other_key_type(tags, algorithm):
        return mismatch
    _, dash, hashed = algorithm.lower().rpartition(b"-")  # a=rsa-sha256, ed25519-sha256: sha256
    if b"h" in tags and dash and hashed not in _listed(tags[b"h"]):
        return f"key is for h={_shown(tags[b'h'])}, signature uses {_shown(hashed)}"[:80]
    return ""


def _other_key_type(tags: dict[bytes, bytes], algorithm: bytes) -> str:
    """'key is ed25519, signature is rsa-sha256' when the key's k= is not the key type of the
    signature's a= (its part before the dash, as RFC 6376 3.5 builds it); '' when it is, or when
    a= names none. Words compared in either case, as the ABNF compares them."""
    key_type = tags.get(b"k", DEFAULT_KEY_TYPE).strip().lower()
    signature_type, dash, _ = algorithm.strip().lower().partition(b"-")
    if not dash or signature_type == key_type:
        return ""
    return f"key is {_shown(key_type)}, signature is {_shown(algorithm.strip())}"[:80]


def _as_dkimpy_reads(record: str, tags: dict[bytes, bytes]) -> str:
    """`record` in words dkimpy takes, for it to read the key and verify with.

    dkimpy compares s= whole with `*`, `email` and `tlsrpt` and drops the key for any other
    value, so under a key for mail and TLS reports (s=email:tlsrpt; RFC 8460 asks keys signing
    TLS reports for tlsrpt) or s=Email a good signature got `permerror`, scored DKIM_INVALID and
    failed DMARC. Such an s= is left out: without it the key is for every service (RFC 6376
    3.6.1), as it is for mail; a key not for mail keeps its s=, and `_refusal` says why it
    verifies nothing. dkimpy compares k= exactly too, with `rsa` and `ed25519`, and called a key
    published as k=RSA unusable ("unknown algorithm in k= tag: RSA"), though RFC 6376 3.6.1's
    ABNF writes its values as quoted strings, which match in either case: k= is given in lower
    case. dkimpy does not read the key's h= and t= (`_refusal` and `_testing` do)."""
    read = {name: value.lower() if name == b"k" else value for name, value in tags.items()
            if name != b"s" or tags[name] in (b"*", b"email") or not _for_mail(tags)}
    if read == tags:
        return record
    return "; ".join(f"{name.decode()}={value.decode()}" for name, value in read.items())


def _for_mail(tags: dict[bytes, bytes]) -> bool:
    """s= (default *) names `email` or `*` (RFC 6376 3.6.1)."""
    return b"s" not in tags or bool(_listed(tags[b"s"]) & MAIL_SERVICES)


def _listed(value: bytes) -> set[bytes]:
    """A key tag's colon-separated list (s=email:tlsrpt, h=sha1 : sha256), its words compared as
    RFC 6376's ABNF compares them: without the blanks around them, upper and lower case alike."""
    return {word.strip().lower() for word in value.split(b":")}


def _shown(value: bytes) -> str:
    return value.decode("ascii", "replace")


def _unusable(record: str, tags: dict[bytes, bytes], min_bits: int) -> str:
    """Why the published key can verify nothing; '' when it can.

    RFC 6376 6.1.2 makes a key record that cannot be used (p= not base64 or not a key, an unknown
    k= algorithm, a v= other than DKIM1) a PERMFAIL, which RFC 8601 2.7.1 writes `permerror`: the
    signer's DNS is wrong, which says nothing about the message. dkimpy reads the key inside
    verify() and answers such a key with False, as it does a signature that does not verify, so
    the key is read first here, with dkimpy's own reader. RSA keys under `min_bits` (dkimpy's
    minkey, RFC 8301 3.2's 1024) verify nothing either; dkimpy says so only when the signature
    verifies, and called a broken signature under such a key `fail`. A record that mentions p=
    without a p= tag (pp=..., n=see p=) has no key; dkimpy's complaint quoted the record itself.
    """
    if tags and b"p" not in tags:
        return "unusable key: no p= tag in the record"
    try:
        _key, bits, kind, _report = dkim.evaluate_pk(b"", record.encode())
    except LIBRARY_ERRORS as exc:
        return f"unusable key: {_key_fault(exc)}"[:80]
    if kind == b"rsa" and bits < min_bits:
        return f"key too short ({bits} bits)"
    return ""


def _key_fault(exc: Exception) -> str:
    """dkimpy's complaint about a key as a reason an admin can read: without the key's bytes, and
    only up to the first ';' of its parser's details. A record that is no tag=value list comes
    wrapped, as the bytes its parser stopped at (b' ' for '; ;'), which said nothing."""
    if isinstance(exc, binascii.Error):
        return "p= is not base64"
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, DuplicateTag):
        return f"{_shown(cause.args[0])}= named twice"
    if isinstance(cause, InvalidTagValueList):
        return "the record is not a tag=value list"
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
    unsigned mail does; they become neutral (no rule fires), passes stay passes. t=Y too: the
    flags are quoted strings in its ABNF, which match in either case."""
    return b"y" in _listed(key_tags.get(b"t", b""))


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
