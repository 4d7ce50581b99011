"""DMARC (RFC 9989, which replaced RFC 7489 and RFC 9091): does the From domain's owner vouch for
this message, and what does it ask for?

The policy record is looked up at `_dmarc.<From domain>` and, at the same time rather than after a
miss, at the organisational domain (Public Suffix List). The message passes when SPF or a DKIM
signature passed for a domain aligned with the From domain (strict: the same name; relaxed: the
same organisational domain). A failure is reported together with the published policy, so a site
can decide per policy: score a p=none failure lightly, reject on p=reject.

RFC 9989 finds the organisational domain by walking up the DNS tree (4.10) instead of by the
PSL; the PSL stays, for now: PSD records published under RFC 9091 cannot carry the psd=y the walk
needs (the tag is new), and without it the walk makes such a suffix the organisational domain of
every domain under it, so relaxed alignment would let any registrant pass DMARC for the others.

A signature of the From domain that covers only the start of the body (l=, with content after it)
is no pass: the domain did not vouch for what was appended, and a pass would let anyone append his
own text to a bank's signed mail. Nor is the failure scored as the domain's policy asks (RFC 7489
6.7 lets a receiver override it): the domain did sign the message, and a mailing list's footer
looks the same. The verdict says `fail` with the override as its reason.

A From domain that does not exist, judged by its organisational domain's record, gets that record's
np= (RFC 9091, now RFC 9989) when it has one: phishing invents subdomains
(secure-login.bank.example), and a bank can ask for them to be rejected while its real subdomains
stay at sp=none.

A domain still testing its policy asks for one level less: t=y (RFC 9989), or pct= under 100 in a
record written for RFC 7489 (see `testing_tag`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mailsift.network.identities import org_domain
from mailsift.network.resolver import Answer, Lookups, Outcome
from mailsift.network.verdicts import PARTLY_SIGNED, DkimSignature, DmarcVerdict, SpfVerdict

POLICIES = ("none", "quarantine", "reject")
# The version tag that makes a TXT record a DMARC record: its name in either case, its value exactly
# so. RFC 9989 4.8's ABNF (as RFC 7489 6.4's) reads `dmarc-version = "v" equals %s"DMARC1" ; case
# sensitive`: a quoted ABNF string matches in either case (RFC 5234 2.3), a %s one only as written
# (RFC 7405; RFC 7489 spelled it %x44 %x4d ...), and 4.7 adds "The value of this tag MUST match
# precisely; if it does not or it is absent, the entire record MUST be ignored".
VERSION_TAG = ("v", "DMARC1")
FULL_PERCENT = 100
# t= (RFC 9989 4.7): y, the owner is testing its policy; n, the default, apply it as published
TESTING_VALUES = ("y", "n")
# A URI (RFC 3986): a scheme, a colon, and something after it; values reach us lowercased
REPORTING_URI = re.compile(r"[a-z][a-z0-9+.-]*:\S+")
# A domain does not exist for DMARC when the DNS answers NXDOMAIN for it (RFC 9989, after RFC
# 8020). The sender-domain check asks these three questions of the From domain anyway
# (sender.check_domains), so the test costs no lookup of its own and waits for nothing the
# message's budget would not; all three must say so, as a stricter policy needs a sure answer.
EXISTENCE_TYPES = ("A", "AAAA", "MX")


@dataclass(frozen=True)
class DmarcRecord:
    domain: str  # where it was published
    policy: str
    subdomain_policy: str
    strict_dkim: bool
    strict_spf: bool
    # The tag asking for one policy below the published one: 't=y', or 'pct=N' (N < 100) in a
    # record without a t= of its own; '' when the published policy applies (`testing_tag`)
    testing: str = ""
    nonexistent_policy: str = ""  # np= (RFC 9989, after RFC 9091); '' when the record has none
    from_domain_missing: bool = False  # the From domain, a subdomain of `domain`, does not exist


def record_names(from_domain: str) -> list[str]:
    names = [f"_dmarc.{from_domain}"]
    organisational = org_domain(from_domain)
    if organisational != from_domain:
        names.append(f"_dmarc.{organisational}")
    return names


async def fetch_record(from_domain: str, lookups: Lookups) -> DmarcRecord | Answer | None:
    """The record that applies; the failed Answer when a lookup gave no verdict; None: no record.

    A name's records count when exactly one of them is a DMARC record: none, or several, are
    "discarded" and the search goes on to the organisational domain (RFC 9989 4.10 steps 2 and 6;
    RFC 7489 6.6.3 ended it at two records, so a subdomain publishing two escaped the parent's
    sp=). One record that gives no policy (`parse_record`) ends it: the owner wrote a record of
    its own, and RFC 9989 4.10.1 then applies no DMARC processing rather than the parent's.
    """
    names = record_names(from_domain)
    answers = await lookups.query_all([(n, "TXT") for n in names])
    for name, answer in zip(names, answers, strict=True):
        if answer.unknown:
            return answer
        found = [tags for tags in map(_tags, answer.records) if _is_dmarc(tags)]
        if len(found) == 1:
            return await _note_existence(parse_record(name.removeprefix("_dmarc."), found[0]),
                                         from_domain, lookups)
    return None


async def _note_existence(record: DmarcRecord | None, from_domain: str,
                          lookups: Lookups) -> DmarcRecord | None:
    """`record`, saying whether the From domain is missing when its np= could apply: the record
    has one and was found at the organisational domain (np= is for subdomains of the domain that
    publishes it, never for that domain itself: RFC 9091 3.2).

    Missing is RFC 9989's test: NXDOMAIN for the name. RFC 9091 (2.1), which it replaced, took
    NODATA for A, AAAA and MX alike too, which made a real subdomain holding only TXT records (an
    SPF record for a sending service, say) "missing" and put the bank's np=reject on its mail; its
    one gain, made-up names in zones that answer NODATA for what they lack (DNSSEC "compact
    denial", RFC 9824), is given up. An answer that did not arrive proves nothing: the name counts
    as existing, and sp= applies, as DNS trouble must not make a policy stricter.
    """
    if record is None or record.domain == from_domain or not record.nonexistent_policy:
        return record
    answers = await lookups.query_all([(from_domain, kind) for kind in EXISTENCE_TYPES])
    return replace(record, from_domain_missing=all(a.outcome is Outcome.NXDOMAIN for a in answers))


def _tags(text: str) -> list[tuple[str, str]]:
    """'V=DMARC1; P=Reject' -> [('v', 'DMARC1'), ('p', 'reject')]: names lowercased, and values but
    the version's, which must match as written (VERSION_TAG). RFC 7489 6.4 writes the other tag
    names (`"p" *WSP "="`), and RFC 9989 4.8 as it the values read here (`"none" / "quarantine" /
    "reject"`, `"y" / "n"`, `"r" / "s"`), as quoted strings, which match in either case."""
    pairs = []
    for part in text.split(";"):
        key, _, value = part.partition("=")
        if name := key.strip().lower():
            pairs.append((name, value.strip() if name == VERSION_TAG[0] else value.strip().lower()))
    return pairs


def _is_dmarc(tags: list[tuple[str, str]]) -> bool:
    """A DMARC record starts with the tag v=DMARC1 ('v=DMARC1 p=reject' does not: no separator).
    'v=dmarc1' does not either: a domain publishing it has no DMARC policy (see VERSION_TAG)."""
    return bool(tags) and tags[0] == VERSION_TAG


def parse_record(domain: str, tags: list[tuple[str, str]]) -> DmarcRecord | None:
    """The record's policy; None, no DMARC, for a record naming a tag twice (`_repeats_a_tag`).

    A record without p= counts as p=none (RFC 9989 4.7: "If this tag is not present in an
    otherwise syntactically valid DMARC Policy Record, then the record is treated as if it
    included p=none"; RFC 7489 required p=). A p=, sp= or np= that is no policy (p=rejected)
    makes the whole record p=none when rua= names a reporting URI, and no DMARC otherwise
    (4.10.1): an np= typo does not leave p= and sp= in force, as RFC 9989 receivers apply none.
    """
    if _repeats_a_tag(tags):
        return None
    values = dict(tags)
    policy = values.get("p", "none")
    subdomain, nonexistent = values.get("sp", policy), values.get("np", "")
    if not {policy, subdomain, nonexistent or "none"} <= set(POLICIES):
        if not _reports(values.get("rua", "")):
            return None
        policy, subdomain, nonexistent = "none", "none", ""
    return DmarcRecord(domain, policy, subdomain, values.get("adkim") == "s", values.get("aspf") == "s",
                       testing_tag(values), nonexistent_policy=nonexistent)


def _reports(rua: str) -> bool:
    """rua= names at least one syntactically valid reporting URI (RFC 9989 4.10.1), a scheme and
    what follows it (RFC 3986), an obsolete '!size' suffix allowed: 'mailto:d@x.example'; neither
    'd@x.example' nor an empty rua= is one."""
    return any(REPORTING_URI.fullmatch(uri.strip().partition("!")[0]) for uri in rua.split(","))


def _repeats_a_tag(tags: list[tuple[str, str]]) -> bool:
    """'v=DMARC1; p=none; p=reject' is no valid record, neither the first nor the last p= counts.

    RFC 7489 6.3 (and DMARCbis after it) writes DMARC records in DKIM's tag=value syntax, and RFC
    6376 3.2 says a tag-list naming a tag twice is invalid as a whole; RFC 7489's grammar (6.4)
    has room for each tag once. So the record gives no policy, whatever its rua= says.
    """
    names = [name for name, _ in tags]
    return len(set(names)) != len(names)


def testing_tag(tags: dict[str, str]) -> str:
    """'t=y' when the owner is testing its policy, 'pct=N' when a record without t= applies it to
    N% of failing mail only, '' when the published policy applies to all of it.

    RFC 9989 replaced pct= by t= (4.7, A.6): with t=y, "the policy applied to any failing messages
    will be one level below the specified policy". pct= is gone from RFC 9989, but records written
    for RFC 7489 still carry it, and their owners published pct=0 expecting the next lower policy,
    so a record without t= is read as RFC 7489 6.6.4 asks (see `applied_policy`). A record with
    t= was written for RFC 9989 and t= decides, whatever pct= says: t=n is "a request to apply the
    Domain Owner Assessment Policy as specified to any message that produces a DMARC fail result"
    (4.7), written out although it is the default, so `pct=0; t=n` is a domain enforcing its policy
    that left a pct= from its testing days behind; and with t=y and pct=0 both, each names the
    same request (A.6: t=y and t=n are "analogous" to pct=0 and pct=100), so the policy drops one
    level, not two. A t= other than y or n is a syntax error, "discarded in favor of default values"
    (4.8): as if the record had none.
    """
    testing = tags.get("t")
    if testing in TESTING_VALUES:
        return "t=y" if testing == "y" else ""
    text = tags.get("pct", "")
    percent = int(text) if text.isdigit() and int(text) <= FULL_PERCENT else FULL_PERCENT
    return f"pct={percent}" if percent < FULL_PERCENT else ""


def evaluate(from_domain: str, found: DmarcRecord | Answer | None, spf: SpfVerdict | None,
             signatures: list[DkimSignature]) -> DmarcVerdict:
    if isinstance(found, Answer):
        return DmarcVerdict("temperror", "none", from_domain)
    if found is None:
        return DmarcVerdict("none", "none", from_domain)
    spf_ok = spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, found.strict_spf)
    dkim_ok = signed_by(signatures, from_domain, found.strict_dkim) is not None
    if spf_ok or dkim_ok:
        result = "pass"
    elif _undecided(from_domain, found, spf, signatures):
        result = "temperror"
    else:
        result = "fail"
    partly = result == "fail" and _partly_signed(signatures, from_domain, found.strict_dkim)
    published, applied = published_policy(from_domain, found), applied_policy(from_domain, found)
    lowered = published != applied
    return DmarcVerdict(result, applied, from_domain, found.domain, spf_ok, dkim_ok,
                        PARTLY_SIGNED if partly else "", policy_tag=policy_tag(from_domain, found),
                        published=published if lowered else "",
                        testing=found.testing if lowered else "")


def _partly_signed(signatures: list[DkimSignature], from_domain: str, strict: bool) -> bool:
    """An aligned signature verified, but its l= left the end of the body unsigned."""
    return any(s.unsigned_bytes and aligned(s.domain, from_domain, strict) for s in signatures)


def _undecided(from_domain: str, found: DmarcRecord, spf: SpfVerdict | None,
               signatures: list[DkimSignature]) -> bool:
    """Could an aligned identifier still pass? An SPF temperror, or a signature whose key did not
    arrive or whose body the milter cut: failing DMARC then would weigh DNS trouble (or our own
    scan limit) as forgery, and a p=reject domain's real mail would pay for it."""
    if spf is not None and spf.result == "temperror" and aligned(spf.domain, from_domain, found.strict_spf):
        return True
    return any(s.undecided and aligned(s.domain, from_domain, found.strict_dkim) for s in signatures)


def policy_tag(from_domain: str, found: DmarcRecord) -> str:
    """The tag whose policy applies: p= in the From domain's own record; for a subdomain judged
    by the organisational domain's record np= (RFC 9989) when it does not exist and the record
    has one, else sp= (which `parse_record` fills with p= when absent)."""
    if found.domain == from_domain:
        return "p"
    return "np" if found.from_domain_missing and found.nonexistent_policy else "sp"


def published_policy(from_domain: str, found: DmarcRecord) -> str:
    """The policy the record's `policy_tag` names."""
    return {"p": found.policy, "sp": found.subdomain_policy,
            "np": found.nonexistent_policy}[policy_tag(from_domain, found)]


def applied_policy(from_domain: str, found: DmarcRecord) -> str:
    """The published policy; one level lower while the owner is testing it (`testing_tag`).

    t=y asks for exactly that (RFC 9989 4.7), and has no effect on a policy of none. For pct=,
    RFC 7489 6.6.4 picks the mail outside pct= by chance and gives it the next lower policy. A
    score must not depend on chance, so the lower policy stands for all of it: a domain still
    rolling out (pct=0 is common) has not yet vouched that all its failing mail is forged.
    """
    policy = published_policy(from_domain, found)
    if found.testing:
        policy = POLICIES[max(POLICIES.index(policy) - 1, 0)]
    return policy


def signed_by(signatures: Iterable[DkimSignature], domain: str, strict: bool) -> DkimSignature | None:
    """A verifying signature aligned with `domain` (DMARC's test; also the welcome lists'), if any."""
    return next((s for s in signatures if s.result == "pass" and aligned(s.domain, domain, strict)),
                None)


def aligned(domain: str, from_domain: str, strict: bool) -> bool:
    if not domain:
        return False
    if strict:
        return domain == from_domain
    return org_domain(domain) == org_domain(from_domain)
