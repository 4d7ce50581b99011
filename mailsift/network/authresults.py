"""The Authentication-Results header (RFC 8601) for SPF, DKIM, DMARC and ARC, built with `authres`.

Downstream filters and mail clients read this header instead of repeating the checks, so it states
exactly what the rules saw: one entry per DKIM signature, the DMARC policy that applied, the ARC
chain when one sealed by a trusted forwarder was checked, and `none` for a method that had nothing
to check.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import authres
import authres.arc
import authres.dmarc

from mailsift.domains import ascii_domain
from mailsift.host import host_name
from mailsift.network.verdicts import NETWORK_KEY, NetworkVerdicts

if TYPE_CHECKING:
    from mailsift.rules.registry import CheckContext

Results = list[authres.BaseAuthenticationResult]
HEADER_PREFIX = "Authentication-Results: "
# An authserv-id written as a token: up to white space, a comment, a quoted string or the ';'
# before the results. Looser than RFC 2045's token, as a reader of the header is.
TOKEN = re.compile(r'[^\s;()"]*')


def authentication_results(ctx_or_facts: CheckContext | NetworkVerdicts, authserv_id: str) -> str:
    """The header's value (without the name): what the milter adds to the message."""
    if isinstance(ctx_or_facts, NetworkVerdicts):
        verdicts: NetworkVerdicts | None = ctx_or_facts
    else:
        verdicts = ctx_or_facts.cache.get(NETWORK_KEY)
    results = [] if verdicts is None else [*_spf(verdicts), *_dkim(verdicts), *_dmarc(verdicts),
                                           *_arc(verdicts)]
    if not results:
        results = [authres.NoneAuthenticationResult()]
    header = authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=results)
    return str(header).removeprefix(HEADER_PREFIX)


def authserv_id(configured: str, receiver: str) -> str:
    """The name our header opens with: dns.authserv_id, else the name the receiving MTA gave
    (Postfix's myhostname, the milter's `j` macro), as an admin expects the header to name the
    MX and a downstream filter (a Dovecot sieve, a mail client) trusts results by that name;
    else (`mailsift check`, a Postfix that sends no `j`) this host's name as myhostname takes
    it by default. It was socket.getfqdn(), which answers "localhost" where /etc/hosts maps the
    host name to 127.0.0.1 after "localhost" (many containers): every message said
    `localhost;`, trusted by nobody."""
    return configured or receiver or host_name()


def claimed_authserv_id(value: str) -> str:
    """The authserv-id an Authentication-Results value opens with, in the one spelling
    `ascii_domain` gives (lower case, no final dot, A-labels), so that a forged header claiming
    our name is known however it writes it; "" when it names none.

    RFC 8601 lets comments and folding white space come before the id (`(x) mx.example.org;`),
    lets it be a quoted string (`"mx.example.org";`) and a version follow it (`mx.example.org 1;`).
    Only the id is read: the first word before the first ';' missed the first two, and authres'
    parser refuses a quoted id, a final dot and any header whose results it cannot read, while
    a mail client or a Dovecot sieve may still trust such a header by its name. Never raises."""
    rest = _after_cfws(value)
    if rest.startswith('"'):
        return ascii_domain(_quoted(rest[1:]))
    found = TOKEN.match(rest)
    return ascii_domain(found.group() if found else "")


def _after_cfws(text: str) -> str:
    """`text` after its leading white space and comments (nested, with quoted pairs); "" when a
    comment is never closed."""
    index, depth = 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and depth:
            index += 1  # a quoted pair: the next character is the comment's text
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth and not char.isspace():
            return text[index:]
        index += 1
    return ""


def _quoted(text: str) -> str:
    """The content of a quoted string whose opening quote is already read, quoted pairs undone
    (the rest of `text` when the closing quote is missing)."""
    content: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            content.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            break
        else:
            content.append(char)
    return "".join(content)


def _spf(verdicts: NetworkVerdicts) -> Results:
    spf = verdicts.spf
    if spf is None:
        return []
    if spf.identity == "helo":
        return [authres.SPFAuthenticationResult(result=spf.result, smtp_helo=spf.domain)]
    return [authres.SPFAuthenticationResult(result=spf.result, smtp_mailfrom=spf.sender)]


def _dkim(verdicts: NetworkVerdicts) -> Results:
    if not verdicts.dkim:
        return [authres.DKIMAuthenticationResult(result="none")]
    return [authres.DKIMAuthenticationResult(result=s.result, reason=s.reason or None,
                                             header_d=s.domain or None, header_s=s.selector or None)
            for s in verdicts.dkim]


def _dmarc(verdicts: NetworkVerdicts) -> Results:
    dmarc = verdicts.dmarc
    if dmarc is None:
        return []
    policy = dmarc.policy if dmarc.result in ("pass", "fail") else None
    if dmarc.override:
        policy = "none"  # the policy applied, as pct= lowers it: downstream must not reject on it
    return [authres.dmarc.DMARCAuthenticationResult(result=dmarc.result, header_from=dmarc.from_domain,
                                                    policy=policy, reason=dmarc.override or None)]


def _arc(verdicts: NetworkVerdicts) -> Results:
    sealed = verdicts.arc
    if sealed is None:
        return []
    return [authres.arc.ARCAuthenticationResult(result=sealed.result, reason=sealed.reason or None)]
