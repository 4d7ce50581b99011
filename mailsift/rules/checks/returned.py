"""`eval:returned_mail(verdict)`: bounces and auto-replies, judged by whether we sent the original.

A bounce of a message one of our users sent must reach them: it is how they learn their mail
did not arrive. A bounce of a message that never went through our relays answers spam that
someone sent in our name, and is junk to whoever gets it. The original's Received chain and
Message-ID tell the two apart, measured against `network.outbound_relays` and the hosts of
ours that passed the bounce on (our MX is often our relay too; they can only make more bounces
ours, never fewer).

Verdicts:
- "ours": the original passed one of those hosts, its Message-ID was made by one, or the
  auto-reply answers a Message-ID one made.
- "foreign": `outbound_relays` is set, the original's whole Received chain is there (down to
  the fields its sender wrote) and names none of them, and its Message-ID was not made by one.
- "unjudged": returned mail that is neither: no original (most vacation replies), headers cut
  short, or `outbound_relays` not set, which is every site until its administrator sets it.
  Also returned mail a mailing list passed on (List-Id): a list hosted elsewhere sends the
  bounces of its own mail to its owner, who may be one of our users (three such bounces are
  ham in the SpamAssassin corpus).
- "any": returned mail at all, whatever the verdict.

Only "foreign" scores by default, so a site that has not named its relays sees no change.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsift.analysis.returned import Returned, returned
from mailsift.domains import ascii_domain
from mailsift.network.identities import within_domains
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "returned"
VERDICT_KEY = "returned_mail"


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str  # "ours", "foreign" or "unjudged"
    evidence: str


@check("returned_mail",
       DefaultRule("__RETURNED_MAIL", 0, "A bounce or auto-reply", args=("any",), kind="header",
                   group=GROUP),
       DefaultRule("__RETURNED_OURS", 0, "A bounce or auto-reply of mail that went out through us",
                   args=("ours",), kind="header", group=GROUP),
       DefaultRule("__RETURNED_UNJUDGED", 0, "A bounce or auto-reply whose original cannot be judged",
                   args=("unjudged",), kind="header", group=GROUP),
       # 3.5: the bounce itself is junk, but alone it stays below the 5.0 threshold, so a relay
       # the administrator forgot to list quarantines nobody's real bounce; backscatter usually
       # quotes the spam it answers, whose own wording and links add the rest.
       DefaultRule("RETURNED_NOT_OURS", 3.5, "A bounce or auto-reply of mail that never went out "
                   "through our relays (backscatter)", args=("foreign",), kind="header", group=GROUP),
       # 0: off, so that no site's scores move; a site's local.cf gives it a score to see it in
       # X-Spam-Status, or a meta uses __RETURNED_UNJUDGED.
       DefaultRule("RETURNED_UNJUDGED", 0, "A bounce or auto-reply whose original cannot be judged",
                   args=("unjudged",), kind="header", group=GROUP))
def returned_mail(ctx: CheckContext, verdict: str) -> CheckResult:
    found: Verdict | None = ctx.memo(VERDICT_KEY, lambda: _judge(ctx))
    if found is None or verdict not in ("any", found.name):
        return None
    return found.evidence


def _judge(ctx: CheckContext) -> Verdict | None:
    mail = returned(ctx.msg)
    if mail is None:
        return None
    relays = ctx.config.network.outbound_relays
    ours = _ours(mail, [*relays, *_own_hosts(ctx)])
    if ours:
        return Verdict("ours", f"{mail.kind}: {ours}")
    original = mail.original
    if original is None:
        return Verdict("unjudged", f"{mail.kind}: no original message found")
    if not original.chain_complete:
        return Verdict("unjudged", f"{mail.kind}: the original's Received chain is incomplete "
                       f"({original.found_in})")
    if not relays:
        return Verdict("unjudged", f"{mail.kind}: network.outbound_relays is not set")
    if ctx.msg.has_header("List-Id"):
        return Verdict("unjudged", f"{mail.kind}: passed on by the list {ctx.msg.header('List-Id')[:60]}")
    hosts = original.relay_hosts
    return Verdict("foreign", f"{mail.kind}: the original passed {len(hosts)} host(s), "
                   f"none of ours ({original.found_in})")


def _ours(mail: Returned, names: list[str]) -> str:
    """Why the original is ours, '' if nothing says so."""
    if not names:
        return ""
    original = mail.original
    if original is not None:
        host = next((h for h in original.relay_hosts if within_domains(h, names)), "")
        if host:
            return f"the original went out by {host}"
        domains = original.message_id_domains
    else:
        domains = []
    made = next((d for d in [*domains, *mail.answered_domains] if within_domains(d, names)), "")
    return f"the original's Message-ID was made by {made}" if made else ""


def _own_hosts(ctx: CheckContext) -> list[str]:
    """The names our own hosts wrote after `by` in the returned mail's Received chain: those of
    the trusted hops and of the first untrusted one, which a trusted host recorded. Names
    without a dot (localhost, an amavis hop) are left out, as other sites' hosts write them too.
    In ASCII form (`ascii_domain`), as network.outbound_relays and `relay_hosts` are."""
    msg = ctx.msg
    written = [relay.by for relay in msg.relays if relay.trusted]
    outsider = msg.first_untrusted
    if outsider is not None:
        written.append(outsider.by)
    return [ascii_domain(name) for name in written if "." in name.strip(".")]
