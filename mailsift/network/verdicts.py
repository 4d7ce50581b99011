"""What the network checks found for one message; the `eval:` checks and the milter only read this.

Gathering (DNS, signatures) and judging (rules, scores) are kept apart so that all lookups of a
message can run together before any rule looks at them, and so the Authentication-Results header
tells the same story as the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Where the scanner leaves the verdicts for the checks: `CheckContext.cache[NETWORK_KEY]`.
NETWORK_KEY = "network"

# The reason of a signature whose body the milter cut at scan.max_bytes: its hash cannot match.
BODY_CUT = "body cut at scan.max_bytes"

# The reason of a signature that verifies with rsa-sha1, which no verifier may accept (RFC 8301 3.1).
HISTORIC_HASH = "rsa-sha1 is not accepted (RFC 8301)"

# Why a DMARC failure is not held against the From domain's policy (RFC 7489 6.7, local policy):
# the domain's own signature verifies over the start of the body, and only what follows is unsigned.
PARTLY_SIGNED = "local policy: the From domain signed the body up to its l= count only"

# SPF results (RFC 7208 section 2.6), as pyspf names them.
SPF_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")


@dataclass(frozen=True)
class SpfVerdict:
    result: str  # one of SPF_RESULTS
    identity: str  # "mailfrom", or "helo" when the envelope sender was empty
    domain: str  # the domain whose policy was evaluated
    sender: str  # what was checked: the envelope sender, or postmaster@HELO
    client_ip: str
    explanation: str = ""


@dataclass(frozen=True)
class DkimSignature:
    domain: str  # d=
    selector: str  # s=
    # pass, fail (signature or body hash broken), permerror (bad key or tags), temperror (key lookup),
    # neutral (body cut at scan.max_bytes, so its hash cannot match), policy (verifies, but with
    # rsa-sha1, or its l= leaves body content after the signed part: RFC 8601's "not acceptable to
    # the verifier")
    result: str
    reason: str = ""
    b_prefix: str = ""  # the first characters of b=, to tell signatures apart in the header
    unsigned_bytes: int = 0  # body bytes after the l= count (canonicalised as signed); 0: all signed

    @property
    def undecided(self) -> bool:
        """No verdict yet: the key did not arrive, or the body was cut; it might well verify."""
        return self.result == "temperror" or self.reason == BODY_CUT


@dataclass(frozen=True)
class DmarcVerdict:
    result: str  # pass, fail, none (no record), temperror
    policy: str  # none, quarantine, reject: what the domain asks for mail that fails
    from_domain: str
    record_domain: str = ""  # where the record was found: the From domain or its organisational domain
    spf_aligned: bool = False
    dkim_aligned: bool = False
    override: str = ""  # why this failure is not scored as the domain's policy; '' when it is
    forwarder: str = ""  # the trusted ARC sealer whose record is that reason; '' for other reasons
    # The record's tag `policy` comes from: p, sp (a subdomain) or np (a subdomain that does not
    # exist, RFC 9091); '' without a record
    policy_tag: str = ""
    # The policy that tag names when `policy` is one level below it, and the tag asking for that
    # ('t=y', RFC 9989's testing mode, or 'pct=N' of an RFC 7489 record); '' when it applies as is
    published: str = ""
    testing: str = ""


@dataclass(frozen=True)
class ArcVerdict:
    """An ARC chain (RFC 8617) whose most recent seal is by a sealer in network.arc_trusted_sealers;
    chains sealed by anyone else are not checked at all."""

    result: str  # pass, fail (the chain does not validate), temperror (a sealer's key did not arrive)
    sealer: str  # d= of the most recent ARC-Seal
    instance: int  # its i=, the number of forwarders that sealed the message
    reason: str = ""
    # What that sealer's ARC-Authentication-Results recorded as passing, as (method, domain):
    # ("dmarc", header.from), ("dkim", header.d), ("spf", the smtp.mailfrom domain).
    passes: tuple[tuple[str, str], ...] = ()


@dataclass
class NetworkVerdicts:
    """Everything gathered; `findings` holds the simple yes/no signs as NAME -> evidence."""

    from_domain: str = ""
    spf: SpfVerdict | None = None  # None: nothing to check (no untrusted client, or a lookup failed)
    dkim: list[DkimSignature] = field(default_factory=list)
    dmarc: DmarcVerdict | None = None  # None: no From domain
    arc: ArcVerdict | None = None  # None: no ARC chain sealed by a trusted sealer was checked
    listed: dict[str, str] = field(default_factory=dict)  # DNS list rule -> what was listed
    findings: dict[str, str] = field(default_factory=dict)  # e.g. "rdns.none" -> "192.0.2.7"
    failures: dict[str, str] = field(default_factory=dict)  # "name/TYPE" -> timeout | servfail
