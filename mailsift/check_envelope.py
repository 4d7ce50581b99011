"""The envelope `mailsift check` is told: what the milter learns from Postfix and a file lacks.

A file has no client, HELO, MAIL FROM or RCPT TO, so `check` judged SPF by its Received headers
and Return-Path, and a file without a Received header by nothing: an admin asking why the milter
gave a message SPF_FAIL or RDNS_NONE got another verdict. Told them (--client-ip, --helo, ...,
as rspamc's --ip, --helo, --from, --rcpt, --user), `check` builds the `Envelope` the milter
builds from Postfix's macros (milter.session), so the message takes the milter's code paths:
the connection becomes the newest relay (`analysis.parse._relays`; the hops a delivered file
carries above our record of it came later, and are no relays of the message), SPF, the HELO and DNS
list checks judge it, per-recipient policies and Bayes stores follow the recipients, and a SASL
login or a trusted client is treated as milter.authenticated and milter.trusted say
(`actions.client_mode`). What the milter would not score at all is refused, not scored.

Mail a local program hands to Postfix's sendmail command (--local) reaches the milter through
non_smtpd_milters with a connection Postfix makes up (`actions.SENDMAIL_CLIENT_IP`...): given
that connection, the message is judged as milter.local says, and a reject is a quarantine, as
the milter turns it for such mail (`actions.decide`, bounces). The client options describe no
such mail and are refused with it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, fields
from email.parser import BytesHeaderParser
from email.policy import compat32
from ipaddress import ip_address
from typing import Any

from mailsift.analysis.addresses import parse_address
from mailsift.analysis.headers import header_value
from mailsift.analysis.model import Envelope, Facts
from mailsift.analysis.relays import client_text
from mailsift.config import Config, DnsConfig, mail_address
from mailsift.milter.actions import (
    SENDMAIL_CLIENT_IP,
    SENDMAIL_CLIENT_NAME,
    SENDMAIL_HELO,
    Action,
    Decision,
    all_bypass,
    client_mode,
    decide,
    decision_of,
    site_action,
)
from mailsift.milter.subject import subject_written
from mailsift.network.hosts import confirmed_name
from mailsift.network.resolver import Lookups, shared_resolver
from mailsift.report import added_headers
from mailsift.rules.result import Result

# The options that describe the client's connection: without its address they describe nothing
# the milter could have seen (every SMTP client has one).
CONNECTION = {"client_name": "--client-name", "helo": "--helo", "mail_from": "--mail-from",
              "auth_user": "--auth-user"}
# What mail of Postfix's sendmail command (--local) cannot have: it has no client to describe.
NOT_LOCAL = {"client_ip": "--client-ip", **{name: option for name, option in CONNECTION.items()
                                            if name != "mail_from"}}
NO_NAME = "unknown"  # Postfix's name for a client whose reverse name does not forward-confirm


# Without --rcpt, check decides for a recipient no [[policy]] names, by this key; its words:
UNNAMED = ""
UNNAMED_TEXT = "a recipient no [[policy]] names (no --rcpt given)"


class EnvelopeError(ValueError):
    """An envelope option that is wrong, or one the milter would not score: one line."""


@dataclass(frozen=True)
class Told:
    """The envelope options as given; None (or no recipient): not given."""

    client_ip: str | None = None
    client_name: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    rcpt: tuple[str, ...] = ()
    auth_user: str | None = None
    local: bool = False  # handed to Postfix's sendmail command, not sent over SMTP

    @property
    def given(self) -> bool:
        return any(getattr(self, name.name) not in (None, (), False) for name in fields(self))


@dataclass(frozen=True)
class Judged:
    """The envelope a message is scored with, and how the milter treats mail that has it."""

    envelope: Envelope
    outbound: bool  # milter.authenticated / milter.trusted = "outbound": the [outbound] thresholds
    config: Config = field(repr=False, compare=False)
    local: bool = False  # mail of Postfix's sendmail command (Told.local)

    def actions(self, score: float) -> dict[str, str] | None:
        """What the milter does for each recipient at `score` (`actions.decide`): a recipient
        whose policy rejects is quarantined unless every one's does; None without recipients."""
        if not self.envelope.rcpt_to:
            return None
        decision = self._decision(score)
        return {recipient: Action.REJECT if decision.reject
                else Action.QUARANTINE if recipient in decision.quarantine else action
                for recipient, action in decision.per_recipient.items()}

    def _decision(self, score: float) -> Decision:
        """What the milter does; without --rcpt, for a recipient no [[policy]] names (UNNAMED).
        check decided nothing then, and so showed no Subject, while it showed the headers of a
        copy passed on, also of a message the site's thresholds reject."""
        if not self.envelope.rcpt_to:
            return decision_of({UNNAMED: site_action(score, self.config, self.outbound, self.local)})
        return decide(score, self.envelope.rcpt_to, self.config, self.outbound, bounces=self.local)

    def headers(self, result: Result, extra: str = "") -> tuple[list[tuple[str, str]], str | None]:
        """The headers the milter adds to the message it passes on (`report.added_headers`,
        `extra` as there), and when it adds none, why: an admin reading X-Spam headers in
        check's output took them for what the recipients' mail showed, of outbound mail that
        gets none."""
        decision = self._decision(result.score)
        if decision.reject:
            return [], "the milter rejects the message"
        if not decision.deliver:
            return [], "the milter passes no copy on (every recipient's is held in quarantine)"
        added = added_headers(result, self.config, self.outbound, extra)
        if not added:
            return [], "the milter adds none to outbound mail (outbound.add_headers = false)"
        return added, None

    def subject(self, score: float, subject: str | None) -> tuple[str, list[str]] | None:
        """The Subject the milter writes when it tags the copy it passes on (an action "tag"
        among the recipients it delivers to: `subject.subject_written`), and those recipients,
        given the message's first Subject as the analysis reads it (None: it has none); None
        when it writes none. check said "tag" and left the admin to guess the Subject the
        recipients see."""
        decision = self._decision(score)
        if not decision.tag_subject:
            return None
        written = subject_written(subject, self.config.actions.subject_tag)
        return None if written is None else (written, decision.deliver)

    def as_dict(self, score: float, subject: str | None) -> dict[str, Any]:
        """The envelope used, for `check --json`, with how it was judged, each recipient's
        action and the Subject the milter writes (`subject`: the message's, as for `subject`):
        as written, and as mail clients show it."""
        used = {k: v for k, v in asdict(self.envelope).items() if k not in ("queue_id", "receiver")}
        tagged = self.subject(score, subject)
        return {**used, "local": self.local, "judged_as": "outbound" if self.outbound else "inbound",
                "actions": self.actions(score),
                "unnamed_action": None if self.envelope.rcpt_to else self._unnamed_action(score),
                "subject": None if tagged is None else {"written": tagged[0],
                                                        "shown": header_value(tagged[0], Facts())}}

    def lines(self, score: float, subject: str | None) -> list[str]:
        """The envelope as the milter's log line names it, each recipient's action, and the
        Subject the milter writes as mail clients show it, with the recipients who get it."""
        envelope = self.envelope
        said = [f"client={client_text(envelope.client_name, envelope.client_ip)}"
                if envelope.client_ip else "client=none (the Received headers judged)"]
        if self.local:  # as the milter's log line names such mail
            said += ["via=sendmail", f"from=<{envelope.mail_from}>"]
        elif envelope.client_ip:
            said += [f"helo={envelope.helo}", f"from=<{envelope.mail_from}>"]
        said += [f"login={envelope.auth_user}"] if envelope.auth_user else []
        said += [f"to={','.join(f'<{r}>' for r in envelope.rcpt_to)}"] if envelope.rcpt_to else []
        found = [f"Envelope: {' '.join(said)}; judged as {'outbound' if self.outbound else 'inbound'} mail"]
        actions = self.actions(score)
        if actions is not None:
            found.append("Action: " + ", ".join(f"{action} for <{recipient}>"
                                                for recipient, action in actions.items()))
        else:
            found.append(f"Action: {self._unnamed_action(score)} for {UNNAMED_TEXT}")
        tagged = self.subject(score, subject)
        if tagged is not None:
            written, delivered = tagged
            whom = ", ".join(f"<{r}>" for r in delivered) if self.envelope.rcpt_to else UNNAMED_TEXT
            found.append(f"Subject for {whom}: {header_value(written, Facts())}")
        return found

    def _unnamed_action(self, score: float) -> str:
        return str(self._decision(score).per_recipient[UNNAMED])


def judged(told: Told, raw: bytes, config: Config, network: bool) -> Judged | None:
    """The envelope `told` describes, judged as the milter would; None when nothing was told (the
    message is scored as before, by its headers alone). Raises EnvelopeError."""
    if not told.given:
        return None
    envelope = _envelope(told, raw, config.dns if network else None)
    setting, mode = client_mode(config, envelope.auth_user, told.local, envelope.client_ip)
    if mode == "skip":
        raise EnvelopeError(f"the milter does not scan mail {_whose(setting, envelope)} "
                            f'(milter.{setting} = "skip"): it gives no verdict to compare with')
    if all_bypass(envelope.rcpt_to, config, mode == "outbound"):
        raise EnvelopeError("the milter does not scan mail to these recipients (a [[policy]] "
                            "with bypass = true for each): it gives no verdict to compare with")
    return Judged(envelope, mode == "outbound", config, told.local)


def _whose(setting: str | None, envelope: Envelope) -> str:
    if setting == "authenticated":
        return f"of SASL login {envelope.auth_user}"
    if setting == "local":
        return "handed to Postfix's sendmail command"
    return f"from {envelope.client_ip}, a client in network.trusted_networks"


def _envelope(told: Told, raw: bytes, dns: DnsConfig | None) -> Envelope:
    """`dns`: the network checks are on, and the client's name may be looked up."""
    recipients = [_address("--rcpt", r) for r in told.rcpt]
    if told.local:
        return _sendmail_envelope(told, raw, recipients)
    if told.client_ip is None:
        named = [option for name, option in CONNECTION.items() if getattr(told, name) is not None]
        if named:
            raise EnvelopeError(f"{', '.join(named)} describe{'s' if len(named) == 1 else ''} the "
                                "client's connection: give its address with --client-ip too")
        return Envelope(rcpt_to=recipients)
    ip = client_address(told.client_ip)
    name = told.client_name.strip() if told.client_name is not None else _looked_up(ip, dns)
    return Envelope(client_ip=ip, client_name=name or NO_NAME, helo=(told.helo or "").strip(),
                    mail_from=_sender("--client-ip", told.mail_from, raw), rcpt_to=recipients,
                    auth_user=(told.auth_user or "").strip())


def _sendmail_envelope(told: Told, raw: bytes, recipients: list[str]) -> Envelope:
    """The envelope the milter has for mail of Postfix's sendmail command: the connection
    Postfix makes up for it, the envelope sender, no SASL login."""
    named = [option for name, option in NOT_LOCAL.items() if getattr(told, name) is not None]
    if named:
        raise EnvelopeError(f"--local (mail of Postfix's sendmail command) has no client "
                            f"connection: leave out {', '.join(named)}")
    return Envelope(client_ip=SENDMAIL_CLIENT_IP, client_name=SENDMAIL_CLIENT_NAME,
                    helo=SENDMAIL_HELO, mail_from=_sender("--local", told.mail_from, raw),
                    rcpt_to=recipients)


def client_address(text: str) -> str:
    """An IPv4 or IPv6 address as Postfix reports a client's (an IPv4 client of a dual-stack
    socket as IPv4, never as ::ffff:192.0.2.1)."""
    try:
        address = ip_address(text.strip())
    except ValueError:
        raise EnvelopeError(f"--client-ip {text!r}: not an IPv4 or IPv6 address (the client's "
                            "address as Postfix logs it, e.g. 192.0.2.7 or 2001:db8::7)") from None
    return str(getattr(address, "ipv4_mapped", None) or address)


def _looked_up(ip: str, dns: DnsConfig | None) -> str:
    """The name Postfix would report for `ip` now (`hosts.confirmed_name`) with the network
    checks on; without them no query leaves the host, and the client is one without a name."""
    if dns is None:
        return NO_NAME

    async def ask() -> str:
        lookups = Lookups(shared_resolver(tuple(dns.nameservers), dns.cache_size), dns.timeout)
        return await confirmed_name(ip, lookups)

    return asyncio.run(ask())


def _sender(option: str, mail_from: str | None, raw: bytes) -> str:
    """The envelope sender: --mail-from (<> for a bounce), else the Return-Path that delivery
    wrote from it, which a delivered file carries. Neither is refused: taken as a bounce, the
    message would be judged as one (SPF by the HELO name, the bounce rules). `option`: the one
    that needs it."""
    if mail_from is None:
        return_path = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Return-Path")
        if return_path is None:
            raise EnvelopeError(f"{option} needs --mail-from, the envelope sender (<> for a "
                                "bounce): the message has no Return-Path to take it from")
        return parse_address(str(return_path))[1]
    return "" if mail_from.strip() in ("", "<>") else _address("--mail-from", mail_from)


def _address(option: str, written: str) -> str:
    """One address as Postfix resolves it (no angle brackets), refused unless it is one."""
    address = written.strip().removeprefix("<").removesuffix(">").strip()
    try:
        mail_address(address, local_hosts=True)
    except ValueError as exc:
        one = " (one address per --rcpt)" if option == "--rcpt" else ""
        raise EnvelopeError(f"{option} {exc}{one}") from None
    return address
