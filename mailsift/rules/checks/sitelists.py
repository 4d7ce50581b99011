"""`eval:site_listed(kind)`: the sender is on the site's own welcome or block list.

The site's lists are `[lists] welcome` and `block` in mailsift.toml plus the entries a site's
SpamAssassin files give (`whitelist_from`, `blacklist_from` and their kin: rules/sa_lists.py),
merged when the rules are loaded (at start and at each reload), not per message. An entry is an
address or a domain covering its subdomains, compared in ASCII form, as users' entries are
(`listed`). Unlike a user's list, which speaks for its owner's mail only, the site's lists speak
for every recipient: the administrator chose them for all.

A welcome entry counts only for a sender SPF or DKIM confirms (sender_proof.py, shared with the
users' lists): forged bank mail must not be welcomed. Otherwise SITE_WELCOME_UNVERIFIED shows
the entry in the report and weighs nothing, so an administrator can see which partner's mail
fails both proofs. Both lists are looked for in the envelope sender and the From address
(sender_proof.claimed_senders). Block entries need no proof: a known bad sender is blocked
whichever one it is written in, and forging it gains a spammer nothing.

Scores: a welcome is -100 and a block +100, the users' scores, so either decides against any
content score, as SpamAssassin's site lists did; a site wanting a softer list rescores them in
local.cf (`score SITE_IN_BLOCKLIST 8`). A sender the site blocks and a user welcomes (or the other
way round) is judged by the content: both are deliberate choices by someone answerable for the
mailbox, and neither is taken as more certain than the other.
"""

from __future__ import annotations

from mailsift.config import ListsConfig
from mailsift.quarantine.model import UserLists, listed
from mailsift.rules.checks.sender_proof import claimed_senders, list_result, list_rules
from mailsift.rules.model import RuleSet
from mailsift.rules.registry import CheckContext, CheckResult, check

GROUP = "sitelists"
SITE_LISTS_KEY = "site_lists"  # ctx.cache: the `UserLists` of `site_lists`, set by the Scanner


def site_lists(config: ListsConfig, rules: RuleSet) -> UserLists:
    """The site's lists: mailsift.toml's and the rule files' entries, one set per kind."""
    return UserLists(welcome={*config.welcome, *rules.site_lists["welcome"]},
                     block={*config.block, *rules.site_lists["block"]})


@check("site_listed", *list_rules("SITE", "the site's", GROUP))
def site_listed(ctx: CheckContext, kind: str) -> CheckResult:
    """kind: "welcome" (a confirmed sender), "unverified" (an unconfirmed one) or "block"."""
    lists: UserLists | None = ctx.cache.get(SITE_LISTS_KEY)
    if lists is None or not lists.entries(kind if kind == "block" else "welcome"):
        return None
    entries = lists.block if kind == "block" else lists.welcome
    found = {sender: entry for sender in claimed_senders(ctx) if (entry := listed(entries, sender))}
    return list_result(ctx, kind, found)
