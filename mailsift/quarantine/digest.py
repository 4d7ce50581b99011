"""The daily digest: one mail per user listing what was quarantined for them since the last one.

Users do not look at a quarantine they are not reminded of, and a false positive found after a
week is a lost customer. Each user's last digest time is kept in the store (a mark), so a missed
or repeated run neither skips nor repeats messages. Digests enter Postfix through the no-milter
port like released mail: a digest quoting spam subjects must not be quarantined itself.
"""

from __future__ import annotations

import email.policy
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from mailsift.config import Config, WebUser, split_host_port
from mailsift.host import host_name
from mailsift.quarantine.model import FORGED_MARK, FORGED_MEANS, QuarantineError, Query, forged_mark, now
from mailsift.quarantine.review import smtp_send
from mailsift.quarantine.store import QuarantineStore
from mailsift.quarantine.text import marked
from mailsift.web.server import EVERY_ADDRESS, ui_url

log = logging.getLogger("mailsift.quarantine")

FIRST_DIGEST = timedelta(days=1)  # a user's first digest covers one day, not the whole quarantine
SUBJECT_WIDTH = 50
SENDER_WIDTH = 30


@dataclass(frozen=True)
class Sent:
    user: str
    to: str
    messages: int
    error: str = ""  # why it was not sent: its messages go in this user's next digest


@dataclass(frozen=True)
class DigestRun:
    """What one run did: a timer's log must tell "ran, nothing new to send" from "did not run",
    so a run that sends nothing still says since when nothing new was held."""

    sent: list[Sent]  # one per user with new mail, sent or not
    quiet_since: datetime  # nothing new was held for users without a digest since then


def base_url(config: Config) -> str:
    """Where the digest's links lead: web.base_url, else the review UI's own address. A listen
    on every address (":8025") has no address of its own, and its link was "http://:8025/...",
    which no browser opens: this host's name stands for it."""
    if config.web.base_url:
        return config.web.base_url.rstrip("/")
    host, port = split_host_port(config.web.listen)
    return ui_url(host_name() if host in EVERY_ADDRESS else host, port).rstrip("/")


def nobody_to_mail(config: Config) -> str:
    """Why no digest can go to anyone ('' when someone can get one): a timer's run that sends
    nothing should say so, or a site missing `web.users` never learns why no digest arrives."""
    if not config.web.users:
        return "no user is configured (web.users)"
    if not any(user.addresses for user in config.web.users):
        return "no user in web.users has addresses"
    return ""


def send_digests(config: Config, store: QuarantineStore, at: datetime | None = None) -> DigestRun:
    """Mail every user with addresses who has new quarantined mail; returns what was sent.

    quiet_since is the latest start of the users' windows, so "nothing new since" holds for
    every user: a run marks them all alike, but a new user's first window is FIRST_DIGEST. Only
    the users' windows count: starting from FIRST_DIGEST, a weekly run said "since" one day back."""
    at = at or now()
    sent = []
    windows = []
    for user in config.web.users:
        if not user.addresses:
            continue
        mark = f"digest:{user.name}"
        last = store.backend.mark(mark)
        since = datetime.fromisoformat(last) if last else at - FIRST_DIGEST
        windows.append(since)
        records, _ = store.search(Query(to=user.addresses, since=since, until=at, sort="time",
                                        descending=False, limit=None))
        if records:
            # One user's refused address (or a hiccup) must not cost every later user their
            # digest: it used to end the run there.
            try:
                smtp_send(config.quarantine.release_via, config.quarantine.digest_from,
                          [user.addresses[0]], digest_mail(config, user, records, at))
            except QuarantineError as exc:
                log.error("digest for %s <%s> not sent: %s", user.name, user.addresses[0], exc)
                sent.append(Sent(user.name, user.addresses[0], len(records), str(exc)))
                continue  # the mark stays: these messages go in the next digest
            sent.append(Sent(user.name, user.addresses[0], len(records)))
            log.info("digest of %d message(s) sent to %s", len(records), user.addresses[0])
        store.backend.set_mark(mark, at.isoformat())
    return DigestRun(sent, max(windows, default=at - FIRST_DIGEST))


def nothing_new_text(run: DigestRun) -> str:
    """The one line of a run that had nothing to send (the timer's journal shows only this)."""
    return ("No digest sent: nothing new held for any user since "
            f"{run.quiet_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def digest_mail(config: Config, user: WebUser, records: list[dict[str, Any]], at: datetime) -> bytes:
    url = base_url(config)
    rows = [f"{'Score':>6}  {'From':<{SENDER_WIDTH}}  Subject", "-" * 90]
    for record in records:
        sender = record.get("from") or record.get("mail_from") or "<>"
        rows.append(f"{record['score']:6.1f}  {_cut(sender, SENDER_WIDTH):<{SENDER_WIDTH}}  "
                    f"{marked(_cut(record.get('subject') or '(no subject)', SUBJECT_WIDTH), record)}")
        rows.append(f"{'':8}{url}/message/{record['id']}")
    if any(forged_mark(r) for r in records):  # what the mark means, for a user deciding to release
        rows += ["", f"{FORGED_MARK}: the message {FORGED_MEANS}."]
    text = (f"{len(records)} message(s) addressed to you were held as probable spam.\n"
            "Open a link to read one and release it if it is yours; held mail is deleted after "
            f"{config.quarantine.keep_days} days.\n\n" + "\n".join(rows) + "\n")
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = config.quarantine.digest_from
    mail["To"] = user.addresses[0]
    mail["Subject"] = f"Quarantine: {len(records)} new message(s)"
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = make_msgid(domain=config.quarantine.digest_from.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(text)
    return mail.as_bytes()
