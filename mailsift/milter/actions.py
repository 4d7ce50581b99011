"""From a score to what happens to the message, recipient by recipient.

Recipients of one message can have different policies. Each gets its own outcome, and no mail is
ever silently lost: the message is rejected only when every recipient's policy rejects it;
otherwise a recipient whose policy would reject or quarantine is quarantined (removed from the
envelope, the message kept for review) and the others still receive it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from ipaddress import ip_address

from mailsift.analysis.relays import networks
from mailsift.config import Config, Policy, Thresholds
from mailsift.domains import NO_SUBADDRESSES, Subaddressing

# The connection Postfix's cleanup makes up for mail of its sendmail command (non_smtpd_milters):
# localhost[127.0.0.1] from port 0, HELO localhost, as measured through the real Postfix
# (tests/e2e/test_milter_local_submission.py). The milter knows such mail by it, and
# `mailsift check --local` gives a message it to be judged as the milter judges that mail.
SENDMAIL_CLIENT_NAME = "localhost"
SENDMAIL_CLIENT_IP = "127.0.0.1"
SENDMAIL_CLIENT_PORT = 0
SENDMAIL_HELO = "localhost"


class Action(StrEnum):
    PASS = "pass"
    TAG = "tag"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    BYPASS = "bypass"


@dataclass(frozen=True)
class Limits:
    rewrite_subject: float | None
    quarantine: float | None
    reject: float | None
    no_reject: bool = False


@dataclass
class Decision:
    per_recipient: dict[str, Action]
    reject: bool = False
    deliver: list[str] = field(default_factory=list)
    quarantine: list[str] = field(default_factory=list)
    tag_subject: bool = False

    @property
    def summary(self) -> str:
        """One word for the log line and the metrics: the strongest thing that happened."""
        if self.reject:
            return Action.REJECT
        if self.quarantine:
            return Action.QUARANTINE if not self.deliver else "partial-quarantine"
        if self.tag_subject:
            return Action.TAG
        if all(a is Action.BYPASS for a in self.per_recipient.values()):
            return Action.BYPASS
        return Action.PASS


def _domain_matches(pattern: str, forms: tuple[str, ...]) -> int:
    """How specifically `pattern` (as the config stores it) names the recipient of `forms`
    (`Subaddressing.forms`; 0: not at all); the most specific policy wins. A pattern naming the
    address beats one naming its owner (jane+shop@ before jane@, as Postfix looks them up),
    and either beats a domain."""
    domain = forms[0].rpartition("@")[2]
    if "@" in pattern and not pattern.startswith("@"):
        return 1000 - forms.index(pattern) if pattern in forms else 0
    if pattern.startswith("@"):
        return 500 if domain == pattern[1:] else 0
    if domain == pattern or domain.endswith("." + pattern):
        return len(pattern)  # example.org and its subdomains; longer suffixes are more specific
    return 0


def policy_for(recipient: str, policies: Sequence[Policy],
               subaddressing: Subaddressing = NO_SUBADDRESSES) -> Policy | None:
    """The policy that names `recipient` most specifically; its forms are compared as the config
    stores patterns (jörg@bücher.example is ours too), a subaddress also as its owner's
    (`subaddressing`: Config.subaddressing)."""
    forms = subaddressing.forms(recipient.strip("<>"))
    best, best_rank = None, 0
    for policy in policies:
        rank = max((_domain_matches(p, forms) for p in policy.match), default=0)
        if rank > best_rank:
            best, best_rank = policy, rank
    return best


def client_mode(config: Config, auth_user: str, local: bool, client_ip: str
                ) -> tuple[str | None, str]:
    """How mail from this client is treated: (the milter setting that decides it,
    "authenticated", "local" or "trusted", or None for inbound mail; the mode it gives, "scan",
    "skip" or "outbound"). The milter asks it per message, and `mailsift check` told an
    envelope asks it too, to judge as the milter does."""
    setting = _client_setting(config, auth_user, local, client_ip)
    return setting, "scan" if setting is None else getattr(config.milter, setting)


def _client_setting(config: Config, auth_user: str, local: bool, client_ip: str) -> str | None:
    milter = config.milter
    if auth_user and milter.authenticated != "scan":
        return "authenticated"
    if local and milter.local != "scan":
        return "local"
    if client_ip and milter.trusted != "scan" and _trusted_client(config, client_ip):
        return "trusted"
    return None


def _trusted_client(config: Config, client_ip: str) -> bool:
    """Whether `client_ip` is in network.trusted_networks, for milter.trusted. A loopback client
    is not: local submission (e.g. the test client, or a content filter) is scanned."""
    address = ip_address(client_ip)
    if address.is_loopback:
        return False
    return any(address in net for net in networks(tuple(config.network.trusted_networks)))


def limits_for(recipient: str, config: Config, outbound: bool) -> Limits | None:
    """The thresholds for one recipient; None when its policy bypasses scanning."""
    base = _site_limits(config, outbound)
    if outbound:
        return base
    policy = policy_for(recipient, config.policy, config.subaddressing)
    if policy is None:
        return base
    if policy.bypass:
        return None
    return Limits(
        rewrite_subject=_pick(policy.rewrite_subject, base.rewrite_subject),
        quarantine=_pick(policy.quarantine, base.quarantine),
        reject=_pick(policy.reject, base.reject),
        no_reject=policy.no_reject,
    )


def _site_limits(config: Config, outbound: bool) -> Limits:
    """The site's thresholds, which a recipient no [[policy]] names gets ([outbound]'s for
    outbound mail, whatever the policies)."""
    return _limits(config.outbound if outbound else config.actions)


def _limits(thresholds: Thresholds) -> Limits:
    return Limits(thresholds.rewrite_subject, thresholds.quarantine, thresholds.reject)


def _pick(override: float | None, default: float | None) -> float | None:
    return default if override is None else override


def _reached(score: float, threshold: float | None) -> bool:
    return threshold is not None and score >= threshold


def action_for(score: float, limits: Limits | None) -> Action:
    if limits is None:
        return Action.BYPASS
    if _reached(score, limits.reject):
        return Action.QUARANTINE if limits.no_reject else Action.REJECT
    if _reached(score, limits.quarantine):
        return Action.QUARANTINE
    if _reached(score, limits.rewrite_subject):
        return Action.TAG
    return Action.PASS


def _no_reject(limits: Limits | None, no_reject: bool) -> Limits | None:
    return replace(limits, no_reject=True) if limits is not None and no_reject else limits


def _action(score: float, limits: Limits | None, bounces: bool) -> Action:
    """One recipient's action, a reject held when it would bounce (see `decide`)."""
    return action_for(score, _no_reject(limits, bounces))


def all_bypass(recipients: Sequence[str], config: Config, outbound: bool) -> bool:
    """True when no recipient wants the message scanned, so scoring can be skipped entirely."""
    return bool(recipients) and all(limits_for(r, config, outbound) is None for r in recipients)


def decide(score: float, recipients: Sequence[str], config: Config, outbound: bool,
           bounces: bool = False) -> Decision:
    """`bounces`: a reject would come back as a bounce to the envelope sender, as Postfix does
    for mail of its sendmail command (there is no client to tell). That sender is the script's
    choice, often a stranger's address, so such mail is quarantined instead: a rejected spam run
    would have sent backscatter from our host, one bounce per message."""
    return decision_of({r: _action(score, limits_for(r, config, outbound), bounces)
                        for r in recipients})


def site_action(score: float, config: Config, outbound: bool, bounces: bool = False) -> Action:
    """The action for a recipient no [[policy]] names: the site's thresholds ([outbound]'s for
    outbound mail), as `decide` gives it; `mailsift check` without --rcpt."""
    return _action(score, _site_limits(config, outbound), bounces)


def decision_of(actions: dict[str, Action]) -> Decision:
    """What the milter does with the message, given each recipient's action."""
    decision = Decision(actions)
    if actions and all(a is Action.REJECT for a in actions.values()):
        decision.reject = True
        return decision
    for recipient, action in actions.items():
        if action in (Action.REJECT, Action.QUARANTINE):
            decision.quarantine.append(recipient)
        else:
            decision.deliver.append(recipient)
    decision.tag_subject = any(actions[r] is Action.TAG for r in decision.deliver)
    return decision
