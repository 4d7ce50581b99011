"""`eval:dns_list(RULE)`: the block and allow lists of the configuration, as rules.

A site picks its lists (and their scores) in `[[dns.blocklists]]` / `[[dns.allowlists]]`; each
becomes a rule here, so it is reported, capped and overridden like any shipped rule, while its
score lives in one place only: the configuration.
"""

from __future__ import annotations

from mailsift.config import DnsConfig, DnsList
from mailsift.network.dnslists import all_lists
from mailsift.rules.checks.network_auth import network_verdicts
from mailsift.rules.model import RuleDef
from mailsift.rules.registry import CheckContext, CheckResult, check


@check("dns_list")
def dns_list(ctx: CheckContext, rule: str) -> CheckResult:
    """Hit when the configured list behind `rule` lists a relay or a link domain of the message."""
    return network_verdicts(ctx).listed.get(rule)


def list_rules(config: DnsConfig) -> dict[str, RuleDef]:
    """One network rule per configured list, scored only in the network score sets."""
    return {entry.rule: _rule(entry) for entry in all_lists(config)}


def _rule(entry: DnsList) -> RuleDef:
    """A uri list is asked about the domains of links and those written in the text without one
    (`identities._uri_domains`), so its description names both: "Linked domain" read as wrong
    beside the evidence of a domain the message only wrote."""
    looked_up = "Relay address" if entry.kind == "ip" else "Domain linked or written in the text"
    return RuleDef(
        name=entry.rule, kind="header", source=f"config dns list {entry.zone}",
        eval_name="dns_list", eval_args=(entry.rule,),
        describe=entry.describe or f"{looked_up} listed in {entry.zone}",
        tflags={"net"},
        scores=(0.0, entry.score, 0.0, entry.score), group="dnslist")
