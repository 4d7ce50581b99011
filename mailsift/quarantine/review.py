"""What a reviewer does to a quarantined message: release it, delete it, or teach Bayes with it.

The CLI and the web UI both call these functions, so an action means the same everywhere, is
recorded in the message's history with who did it, and is logged once.

Release hands the stored bytes, unchanged, to the Postfix smtpd that runs without the milter
(`quarantine.release_via`, the master.cf entry `mailsift postfix` prints), with the original
envelope sender: the message arrives as it was sent and is not caught a second time.
"""

from __future__ import annotations

import logging
import re
import secrets
import smtplib
import threading
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

from mailsift.analysis.model import Message
from mailsift.analysis.parse import analyse
from mailsift.classifier.filter import BayesFilter, recipient_key, repair_named
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label, Outcome, StoreDamaged, StoreError
from mailsift.config import Config, split_host_port
from mailsift.quarantine.local import UNREADABLE
from mailsift.quarantine.model import (
    RELEASING,
    Deleted,
    IndexTimeout,
    IndexUnavailable,
    Purged,
    QuarantineError,
    Refused,
    ServerFailed,
    add_event,
    now,
)
from mailsift.quarantine.store import QuarantineStore
from mailsift.quarantine.text import MAY_HAVE_BEEN_RELEASED, UNRECORDED, unsure_releases

log = logging.getLogger("mailsift.quarantine")

SMTP_TIMEOUT_S = 30.0
HEADER_END = re.compile(rb"\r?\n\r?\n")
LEARN_MODES = ("ham", "spam", "forget", "spam-report", "ham-revoke")
_RELEASING = threading.Lock()  # see release


def smtp_send(via: str, sender: str, recipients: list[str], raw: bytes) -> dict[str, Any]:
    """Hand bytes to an SMTP server unchanged (only dot-stuffed); returns refused recipients.
    Refused when the server answered and refused this message, ServerFailed when it failed."""
    host, port = split_host_port(via, default_port=25)
    international = next((a for a in (sender, *recipients) if not a.isascii()), None)
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_S) as smtp:
            smtp.ehlo()
            options = ["BODY=8BITMIME"] if not raw.isascii() and smtp.has_extn("8bitmime") else []
            if international is not None:  # without SMTPUTF8 smtplib raised UnicodeEncodeError
                if not smtp.has_extn("smtputf8"):
                    raise Refused(f"cannot hand the message to {via}: it does not offer "
                                  f"SMTPUTF8, which {international} needs")
                options.append("SMTPUTF8")
            elif _utf8_header(raw) and smtp.has_extn("smtputf8"):
                options.append("SMTPUTF8")
            return smtp.sendmail(sender, recipients, raw, mail_options=options)
    except smtplib.SMTPException as exc:  # an OSError too: first
        failed = Refused if _refused(exc) else ServerFailed
        raise failed(f"cannot hand the message to {via} (quarantine.release_via): {exc}") from None
    except OSError as exc:  # nothing answers there: "[Errno 111] Connection refused" said no more
        raise ServerFailed(f"cannot hand the message to {via} (quarantine.release_via): "
                           f"{exc.strerror or exc}; is Postfix's smtpd without the milter, the "
                           "master.cf entry `mailsift postfix` prints, running there?") from None


def _refused(exc: smtplib.SMTPException) -> bool:
    """Whether the server refused this message (its sender, its recipients, its data) for good,
    which another message may pass, rather than failed: no greeting, a dropped connection, or a
    temporary (4xx) reply, which speaks of the server's state now, not of the message (421 as it
    shuts down, Postfix's 452 on a full queue, 451 on a map it cannot read) and which the next
    message meets too. A 421 to RCPT comes as SMTPRecipientsRefused, with no code of its own:
    a bulk release went on past it, and past a 452, message by message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
    elif isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        codes = [exc.smtp_code]
    else:
        return False
    return bool(codes) and all(500 <= code < 600 for code in codes)


def _utf8_header(raw: bytes) -> bool:
    """Whether the header holds raw UTF-8 (RFC 6532): mail that came with SMTPUTF8, as a From of
    jörg@bücher.example does, even when both envelope addresses are ASCII. Released without it,
    Postfix no longer knew the message as SMTPUTF8 mail and passed its 8-bit header on to servers
    that never offered SMTPUTF8. Legacy 8-bit text that is not UTF-8 is no such mail, and a
    server without SMTPUTF8 still takes such a header as it took it before."""
    end = HEADER_END.search(raw)
    head = raw[:end.start()] if end else raw  # not split(): it copies the body too
    if head.isascii():
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class AlreadyReleased(QuarantineError):
    """Every recipient asked for had the message released before, or may have had (a release
    that began and was not recorded: `unsure`, see `release`): nothing was sent. The text names
    `--again`, the command's way to send one more; the web UI, which has none, words it from
    `recipients` and `unsure`."""

    def __init__(self, message_id: str, recipients: list[str], record: dict[str, Any]) -> None:
        self.recipients = recipients
        self.unsure = {a: t for a, t in (record.get("releasing") or {}).items() if a in recipients}
        was = "was " if self.unsure.keys() != set(recipients) else ""
        super().__init__(f"message {message_id} {was}{self.before()} (release again on purpose: "
                         "--again)")

    def before(self) -> str:
        """Whom it was released to, and whom a release not recorded may have reached."""
        released = [r for r in self.recipients if r not in self.unsure]
        said = [f"already released to {', '.join(released)}"] if released else []
        if self.unsure:
            said.append(f"{unsure_releases({'releasing': self.unsure})}: {UNRECORDED}")
        return " and ".join(said)


class NothingSent(IndexUnavailable):
    """The index failed before a release was recorded as begun (see `release`): the message
    was not sent. Kept apart from a failure after it, where the mail may have gone out (the web
    UI's bulk report says "Unsure" of that one, "Not done" of this)."""


def release(config: Config, store: QuarantineStore, message_id: str, user: str,
            to: list[str] | None = None, again: bool = False) -> list[str]:
    """Deliver the original message to `to` (default: its quarantined recipients), once each.

    A recipient it was released to before is skipped: a double click, a bulk release over a page
    that shows released mail, or a retried command each delivered another copy. `again` sends
    one more on purpose.

    The release is recorded before the message is handed over (state RELEASING, and to whom,
    when and by whom it began) and its outcome after. It was recorded after only: when the index
    failed in between (Redis down, SQLite locked past its busy timeout, the process killed), the
    mail had gone out and the message still read "held", so the next release (an admin releasing
    the list again after the outage) sent every recipient another copy. A recipient of a release
    left so "may have been released" (text.unsure_releases) and is skipped as a released one is,
    until `again`. A send that fails withdraws its record; if the index fails then too, the
    message says "may have been" of mail that never went, which costs a deliberate `--again`,
    never a duplicate.

    The recipients are chosen in the change that records the release (`_begun`), which the
    index makes atomic across processes: a second release from another process (the web UI
    while `quarantine release` sends, a second web UI process, another host on a shared Redis)
    sees the first one's record and is refused (AlreadyReleased) as a second release in one
    process is. They were chosen from a record read before that change, and only the releases
    of one process took turns: two processes both read "held" and both sent, so every
    recipient got two copies. That lock (`_RELEASING`) no longer keeps a copy from going
    twice; it stays so that a second release in one process (a double click) waits for the
    first to end and is told what it did, "already released to ...", rather than the "may
    have been released" of a release still being sent, which another process meets meanwhile.
    An index that fails before the release is recorded raises NothingSent.

    Each release is one `attempt`, a token its record carries (in "releasing" and in its history
    line), so that it knows its own writes: a Redis change whose answer came after the timeout
    may have been made (see RedisBackend.change). The record then read "may have been released"
    of mail that was never sent, and the release that wrote it was refused by it, or raised
    NothingSent, until an admin's `--again`; and a history line came twice. Now a change run
    again on its own begun record goes on and sends, once; a timed-out begin takes back what it
    may have begun (`_not_begun`); an outcome is written once, and one that timed out is read
    back before the release is called unrecorded."""
    attempt = secrets.token_urlsafe(12)
    with _RELEASING:  # see the docstring's last paragraph
        try:
            raw = store.raw(message_id)  # before the intent: a deleted message has none to record
        except IndexUnavailable as exc:
            raise NothingSent(str(exc)) from None
        try:
            sender, recipients = _begun(store, message_id, user, to, again, attempt)
        except IndexUnavailable as exc:
            raise NothingSent(_not_begun(store, message_id, attempt, exc)) from None
        try:
            refused = smtp_send(config.quarantine.release_via, sender, recipients, raw)
        except QuarantineError:
            _withdraw(store, message_id, attempt, recipients)
            raise
        delivered = [r for r in recipients if r not in refused]
        _record_outcome(store, message_id, user, attempt, delivered)
    log.info("%s: released to %s by %s", message_id, ",".join(delivered), user)
    return delivered


def _begun(store: QuarantineStore, message_id: str, user: str, to: list[str] | None,
           again: bool, attempt: str) -> tuple[str, list[str]]:
    """Choose whom to send to and record the release begun, in one change (see `release`):
    the message's envelope sender and the recipients chosen. AlreadyReleased when every one
    asked for was released to, or may have been; nothing is recorded then. Run again on the
    record its first run wrote (see `release`), it chooses the same recipients: its own
    begun entries are no release before it."""
    chosen: list[str] = []

    def choose(record: dict[str, Any]) -> None:  # may run more than once: see store.change
        wanted = to or record["recipients"]
        others = [a for a, began in (record.get("releasing") or {}).items()
                  if began.get("attempt") != attempt]
        before = set() if again else {*record.get("released_to", []), *others}
        chosen[:] = [r for r in wanted if r not in before]
        if not chosen:
            raise AlreadyReleased(message_id, wanted, record)
        if record["state"] == "deleted":  # since its bytes were read: it stays deleted
            raise Deleted(message_id)
        _begin(record, user, chosen, attempt)

    record = store.change(message_id, choose)
    return record["mail_from"], chosen


def _begin(record: dict[str, Any], user: str, recipients: list[str], attempt: str) -> None:
    """Record a release about to be sent (see `release`)."""
    began = {"time": now().isoformat(timespec="seconds"), "by": user, "attempt": attempt}
    record["releasing"] = {**(record.get("releasing") or {}), **dict.fromkeys(recipients, began)}
    record["state"] = RELEASING


def _not_begun(store: QuarantineStore, message_id: str, attempt: str,
               exc: IndexUnavailable) -> str:
    """NothingSent's text for a release whose begun record the index failed to take. After a
    timeout the index may have taken it all the same (see `release`), and the message would read
    "may have been released" of mail that was not sent: what this attempt began, if anything,
    is taken back (an index that failed otherwise wrote nothing, and is not asked again). When
    the index fails that too, the text says what the admin may find."""
    if not isinstance(exc, IndexTimeout):
        return str(exc)
    try:
        store.change(message_id, lambda record: _settle(record, attempt))
    except QuarantineError:
        return (f"{exc}; nothing was sent, but the index may have recorded the release as begun: "
                f"if the message reads \"{MAY_HAVE_BEEN_RELEASED}\", send it with `mailsift "
                f"quarantine release {message_id} --again`")
    return str(exc)


def _settle(record: dict[str, Any], attempt: str) -> None:
    """Close the release `attempt`: what it did is recorded (or it failed); the state is what it
    would be without it, unless another release is still open. Only its own entries: another
    release to the same recipient (`--again`) meanwhile is still open."""
    releasing = {a: t for a, t in (record.get("releasing") or {}).items()
                 if t.get("attempt") != attempt}
    record.pop("releasing", None)
    if releasing:
        record["releasing"] = releasing
    if record["state"] == RELEASING:  # not "deleted": a delete meanwhile stands
        released = any(e.get("action") == "released" for e in record.get("events", []))
        record["state"] = RELEASING if releasing else "released" if released else "held"


def _record_outcome(store: QuarantineStore, message_id: str, user: str, attempt: str,
                    delivered: list[str]) -> None:
    """Record a release sent: its history line, `released_to`, and its open record closed,
    once: run again on the record it wrote (see `release`), it changes nothing. If the index
    fails here, the message stays "may have been released" and the log says what went; after
    a timeout the record is read once more, and a release it shows recorded is not an error."""
    def released(record: dict[str, Any]) -> None:
        if _recorded(record, attempt):
            return
        add_event(record, user, "released", "to " + ", ".join(delivered), attempt)
        record["released_to"] = sorted({*record.get("released_to", []), *delivered})
        _settle(record, attempt)

    try:
        store.change(message_id, released)
    except QuarantineError as exc:
        if isinstance(exc, IndexTimeout) and _read_recorded(store, message_id, attempt):
            return
        log.warning("%s: released to %s by %s, but the quarantine index could not record it "
                    "(%s): the message shows as may have been released", message_id,
                    ",".join(delivered) or "nobody", user, exc)
        raise


def _recorded(record: dict[str, Any], attempt: str) -> bool:
    """Whether the record holds the outcome of the release `attempt` (its history line)."""
    return any(e.get("attempt") == attempt for e in record.get("events", []))


def _read_recorded(store: QuarantineStore, message_id: str, attempt: str) -> bool:
    """Whether the index, read again, holds the outcome of `attempt`; False when it fails."""
    try:
        return _recorded(store.meta(message_id), attempt)
    except QuarantineError:
        return False


def _withdraw(store: QuarantineStore, message_id: str, attempt: str, recipients: list[str]) -> None:
    """Take back the record of a release whose send failed (the caller raises its error)."""
    try:
        store.change(message_id, lambda r: _settle(r, attempt))
    except QuarantineError as exc:
        log.warning("%s: not released to %s (the send failed), but the quarantine index could not "
                    "record that (%s): the message shows as may have been released",
                    message_id, ",".join(recipients), exc)


def delete(store: QuarantineStore, message_id: str, user: str) -> None:
    store.delete(message_id, user)
    log.info("%s: deleted by %s", message_id, user)


def learn(config: Config, store: QuarantineStore, message_id: str, user: str, mode: str) -> str:
    """Teach Bayes with the message: ham, spam, forget, spam-report or ham-revoke; says what changed."""
    if mode not in LEARN_MODES:
        raise QuarantineError(f"unknown learn mode {mode!r}; use one of {', '.join(LEARN_MODES)}")
    msg = analyse(store.raw(message_id), config)
    key = recipient_key(config.bayes, store.meta(message_id)["recipients"], config.subaddressing)
    try:  # closed after the action: each open store holds connections (every node's, in a cluster)
        with closing(BayesFilter(config.bayes, open_store(config.bayes))) as bayes:
            outcome = _learn_and_share(bayes, msg, mode)
            if key is not None:  # a reviewer's verdict is what the recipients' own store is for
                outcome += f"; {key}'s store: {_learn_recipient(bayes.for_recipient(key), msg, mode)}"
    except StoreDamaged as exc:  # the store answers: "unavailable" would mislead
        raise ServerFailed(f"Bayes: {repair_named(config.bayes, exc)}") from None
    except StoreError as exc:
        raise ServerFailed(f"Bayes store unavailable: {exc}") from None
    store.log(message_id, user, "learned", f"{mode}: {outcome}")
    log.info("%s: learned %s by %s: %s", message_id, mode, user, outcome)
    return outcome


def _learn_and_share(bayes: BayesFilter, msg: Message, mode: str) -> str:
    if mode == "forget":
        return forgotten(bayes.forget(msg))
    label = _label(mode)
    outcome = learned(bayes.learn(msg, label), label)
    if mode == "spam-report":
        outcome += ", reported" if bayes.report(msg) else ", already reported"
    elif mode == "ham-revoke":
        outcome += ", report revoked" if bayes.revoke(msg) else ", no report to revoke"
    return outcome


def _learn_recipient(bayes: BayesFilter, msg: Message, mode: str) -> str:
    """The same verdict into a recipient's store (digests are shared site-wide, not per store)."""
    if mode == "forget":
        return forgotten(bayes.forget(msg))
    label = _label(mode)
    return learned(bayes.learn(msg, label), label)


def learned(outcome: Outcome, label: Label) -> str:
    """What a learn did, in words: the store's outcome name read "already as ham" for a message
    the store had counted as ham before, and a recipient's store said only "already"."""
    if outcome is Outcome.ALREADY:
        return f"already learned as {label} (nothing changed)"
    return f"{outcome} as {label}"


def forgotten(outcome: Outcome) -> str:
    """What a forget did, in `mailsift learn --forget`'s words (sa-learn's): the store's own
    outcome names, printed as "forgotten (unknown)" and "forgotten (forgotten)", left a reviewer
    guessing whether anything was taken back."""
    if outcome is Outcome.UNKNOWN:
        return "nothing to forget (never learned)"
    return "forgot its tokens"


def _label(mode: str) -> Label:
    return Label.HAM if mode.startswith("ham") else Label.SPAM


def expire(config: Config, store: QuarantineStore) -> Purged:
    """Delete what is older than quarantine.keep_days, history included (and, on the local
    index, index again the message files that lack their row: see Purged)."""
    done = store.expire(now() - timedelta(days=config.quarantine.keep_days))
    log.info("expired %d quarantined message(s); %d message file(s) indexed again, %d set aside",
             done.expired, done.reindexed, done.set_aside)
    return done


def expired_text(done: Purged, directory: Path) -> str:
    """What `quarantine expire` prints: the messages removed, and the files indexed again or set
    aside, when there were any (after a rollback, README's Backups and upgrades)."""
    lines = [f"Expired {done.expired} message(s)"]
    if done.reindexed:
        lines.append(f"Indexed {done.reindexed} message file(s) the index lacked (a crash, or an "
                     "older index copy put back): listed again")
    if done.set_aside:
        lines.append(f"Set aside {done.set_aside} message file(s) whose record this mailsift "
                     f"cannot read, in {directory / UNREADABLE} (the log names each)")
    return "\n".join(lines)
