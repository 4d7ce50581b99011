"""One SMTP session as Postfix reports it to the milter, and what mailsift does at end of message.

pymilter creates one object per SMTP connection, and a connection may carry several messages:
connection facts are kept for the session, message state is reset at each MAIL FROM. Callbacks
run in libmilter threads (one connection may move between threads), so nothing here is
thread-local and the shared service objects are thread-safe.
"""

from __future__ import annotations

import io
import logging
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, ClassVar

import Milter

from mailsift.analysis.charsets import decode_short
from mailsift.analysis.headers import body_charset, text_of
from mailsift.analysis.model import Envelope, Facts
from mailsift.analysis.relays import client_text
from mailsift.config import Config
from mailsift.domains import ascii_domain
from mailsift.host import host_name
from mailsift.milter.actions import (
    SENDMAIL_CLIENT_IP,
    SENDMAIL_CLIENT_NAME,
    SENDMAIL_CLIENT_PORT,
    Decision,
    all_bypass,
    client_mode,
    decide,
)
from mailsift.milter.metrics import INTERNAL_ERROR, QUARANTINE_FAILED, RECIPIENT_STUCK, Metrics
from mailsift.milter.sender_hold import SenderHold, sender_name
from mailsift.milter.subject import subject_written
from mailsift.milter.trace import Hop, received_header
from mailsift.milter.workers import Job, Scored, ScoringError, WorkerPool
from mailsift.network.authresults import authserv_id, claimed_authserv_id
from mailsift.quarantine.model import FORGED_KEY, forged_evidence
from mailsift.quarantine.store import QuarantineError, QuarantineStore
from mailsift.report import AUTH_RESULTS_NAME, added_headers, fold
from mailsift.rules.result import Result

log = logging.getLogger("mailsift.milter")

OUR_HEADER_PREFIX = "x-spam-"
AUTH_RESULTS = AUTH_RESULTS_NAME.lower()
TOP_RULES_LOGGED = 5
BLANK_CHUNK = 64 * 1024  # read past the scan limit, looking for more than blank space


@dataclass
class Service:
    """What every session shares: built by the daemon at start and on each reload."""

    config: Config
    pool: WorkerPool
    quarantine: QuarantineStore
    metrics: Metrics
    hold: SenderHold


@dataclass(frozen=True)
class Recipient:
    written: str  # RCPT TO as the client wrote it
    address: str  # as Postfix resolved it: for policies, the log and the quarantine


class InFlight:
    """Counts the messages between end of message and their answer. At a stop the milter waits
    for them once the scoring workers are closed (daemon.run): the answer of a message whose
    scoring the stop ended (milter.on_error) still reached Postfix, but its log lines came
    after the log writer had stopped, and the journal had no word of it."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_answered(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every message in flight to be answered."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)


class MailsiftMilter(Milter.Base):
    # What new messages use; a reload (mailsift.milter.reload) replaces it. Each message takes
    # it once, at end of message, so one message is never scored and acted on by two configs.
    current: ClassVar[Service]
    in_flight: ClassVar[InFlight] = InFlight()

    def __init__(self) -> None:
        self.service = self.current
        self.client_ip = ""
        self.client_name = ""
        self.helo = ""
        self.local = False  # handed to Postfix's sendmail command, not over SMTP (see connect)
        self._new_message()

    def _new_message(self) -> None:
        self.mail_from = ""
        self.recipients: list[Recipient] = []
        self.headers: list[tuple[str, str]] = []
        if hasattr(self, "spool"):
            self.spool.close()
        # Lives across callbacks until eom/abort/close, so no `with`: in memory up to the scan
        # limit, on disk beyond, and always whole: a quarantined message is kept complete.
        self.spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.service.config.scan.max_bytes)
        self.auth_user = ""
        self.arrival = datetime.now(UTC)

    # --- callbacks -------------------------------------------------------------------------
    # Until end of message mailsift only collects, so these ask Postfix for no reply
    # (milter protocol 6): Postfix streams envelope, headers and body without waiting on us.

    @Milter.noreply
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        self.client_name = hostname or ""
        if family in (socket.AF_INET, socket.AF_INET6) and hostaddr:
            # (address, port) for IPv4, (address, port, flow info, scope id) for IPv6; Postfix
            # reports an IPv4 client on a dual-stack socket as IPv4, never as ::ffff:192.0.2.1
            self.client_ip = str(hostaddr[0])
        self.local = _local_submission(self.client_name, family, hostaddr)
        return Milter.CONTINUE

    @Milter.noreply
    def hello(self, heloname: str) -> int:
        self.helo = heloname or ""
        return Milter.CONTINUE

    @Milter.noreply
    def envfrom(self, mailfrom: str, *esmtp: str) -> int:
        self._new_message()
        self.mail_from = self._resolved("{mail_addr}", mailfrom)
        self.auth_user = self._macro("{auth_authen}") or ""
        return Milter.CONTINUE

    @Milter.noreply
    def envrcpt(self, to: str, *esmtp: str) -> int:
        self.recipients.append(Recipient(to, self._resolved("{rcpt_addr}", to)))
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name: str, value: str) -> int:
        self.headers.append((name, value))
        return Milter.CONTINUE

    @Milter.noreply
    def body(self, chunk: bytes) -> int:
        self.spool.write(chunk)
        return Milter.CONTINUE

    def eom(self) -> int:
        started = time.monotonic()
        self.service = self.current
        queue_id = self.getsymval("{i}") or "-"
        with self.in_flight:
            try:
                return self._end_of_message(queue_id, started)
            except Exception as exc:  # nothing a sender writes may bypass milter.on_error
                log.exception("%s: internal error", queue_id)
                return self._on_error(queue_id, f"internal error: {type(exc).__name__}",
                                      INTERNAL_ERROR, started)
            finally:
                self.spool.close()

    def abort(self) -> int:
        self.spool.close()
        return Milter.CONTINUE

    def close(self) -> int:
        self.spool.close()
        return Milter.CONTINUE

    def _resolved(self, macro: str, written: str) -> str:
        """An envelope address as Postfix resolves it, which is where it delivers the mail.

        Postfix hands the milter the address as the client wrote it. Judged by that, a recipient
        with needless quotes (`<"bob"@example.com>`), a trailing dot or a source route
        (`<@relay:bob@example.com>`) met another policy than its own. The macro ({mail_addr},
        {rcpt_addr}, sent by Postfix by default) holds the resolved form; without it, as written."""
        resolved = self._macro(macro)
        return milter_text(_address(written)) if resolved is None else resolved

    def _macro(self, name: str) -> str | None:
        """A macro's value; None when Postfix did not send it, or when it holds raw 8-bit bytes.

        pymilter decodes macros as strict UTF-8 and raises on anything else, and Postfix with
        `smtputf8_enable = no` takes raw 8-bit addresses and SASL names: the exception left the
        callback half done, and such a recipient went missing from the milter's view."""
        try:
            return self.getsymval(name)
        except UnicodeDecodeError:
            return None

    # --- end of message --------------------------------------------------------------------

    @property
    def addresses(self) -> list[str]:
        return [r.address for r in self.recipients]

    def _sender(self) -> str:
        """Who sends outbound mail: the SASL login, the local envelope sender, else the trusted
        client's address."""
        return sender_name(self.auth_user, self.client_ip, self.service.hold.settings.ipv6_prefix,
                           self.mail_from if self.local else None)

    def _end_of_message(self, queue_id: str, started: float) -> int:
        config = self.service.config
        setting, mode = client_mode(config, self.auth_user, self.local, self.client_ip)
        outbound = mode == "outbound"
        if mode == "skip" or all_bypass(self.addresses, config, outbound):
            if not (mode == "skip" and setting == "trusted"):
                self._remove_forged_auth_results()  # see _remove_forged_auth_results
            self._log(queue_id, None, "skip", started)
            self.service.metrics.messages.labels("skip").inc()
            return Milter.ACCEPT
        if outbound and self.service.hold.held(self._sender()):
            self._reply("451", "4.7.1", config.outbound.pause_text)
            self._log(queue_id, None, "paused", started)
            self.service.metrics.messages.labels("paused").inc()
            return Milter.TEMPFAIL
        try:
            scored = self.service.pool.score(self._job(queue_id, outbound),
                                             self.service.metrics.worker_wait.observe)
        except ScoringError as exc:
            return self._on_error(queue_id, str(exc), exc.kind, started)
        self.service.metrics.scored(scored)
        decision = decide(scored.result.score, self.addresses, config, outbound, bounces=self.local)
        if outbound and (decision.reject or decision.quarantine):
            self.service.hold.spam(self._sender(), f"{queue_id} from client {self._client()}")
        return self._act(queue_id, scored, decision, started, outbound)

    def _job(self, queue_id: str, outbound: bool) -> Job:
        envelope = Envelope(client_ip=self.client_ip, client_name=self.client_name, helo=self.helo,
                            mail_from=self.mail_from, rcpt_to=self.addresses,
                            auth_user=self.auth_user, queue_id=queue_id, receiver=self._myhostname())
        size = self.spool.seek(0, io.SEEK_END)
        self.spool.seek(0)
        body = self.spool.read(self.service.config.scan.max_bytes)
        # Without body_cut, the end of a big message's attachment, cut here, was scored as the
        # sender's broken MIME (FACT_BOUNDARY_UNCLOSED, FACT_BAD_BASE64: 2.5 points).
        return Job(self._raw_headers() + body, envelope, self.arrival, outbound,
                   body_cut=size > len(body) and not _blank_rest(self.spool))

    def _myhostname(self) -> str:
        """Postfix's name for itself (myhostname, the `j` macro it sends at connect by default):
        the host our Received trace and Authentication-Results name, as its own headers do.
        Without it, this host's name as myhostname takes it by default."""
        return self._macro("j") or host_name()

    def _raw_headers(self, forged: bool = True) -> bytes:
        """The header as Postfix gave it, with CRLF line ends; without `forged`, not the
        Authentication-Results that claim our name, which the delivered copy loses too."""
        lines = []
        for name, value in self.headers:
            if not forged and self._forged(name, value):
                continue
            value = value.replace("\r\n", "\n").replace("\n", "\r\n")
            lines.append(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape"))
        return b"".join(lines) + b"\r\n"

    def _held_copy(self, queue_id: str, recipients: list[str]) -> bytes:
        """The message for the quarantine as Postfix would have delivered it: whole, and headed
        by the Received header of this hop, which Postfix never shows a milter (see trace)."""
        hop = Hop(helo=self.helo, client_name=self.client_name, client_ip=self.client_ip,
                  by=self._myhostname(), queue_id=queue_id,
                  authenticated=bool(self.auth_user), tls=bool(self.getsymval("{tls_version}")),
                  recipients=recipients, arrival=self.arrival)
        self.spool.seek(0)
        return received_header(hop) + self._raw_headers(forged=False) + self.spool.read()

    def _act(self, queue_id: str, scored: Scored, decision: Decision, started: float,
             outbound: bool) -> int:
        config = self.service.config
        result = scored.result
        if decision.reject:
            self._reply("550", "5.7.1", config.actions.reject_text)
            return self._done(queue_id, result, decision.summary, started, Milter.REJECT)
        held = ""  # the log line's quarantine fields
        if decision.quarantine:
            stuck = self._unremovable(decision.quarantine) if decision.deliver else []
            if stuck:
                return self._on_error(queue_id, f"recipient not removable: {_addresses(stuck)} written "
                                      "in raw 8-bit bytes, which pymilter's delrcpt cannot pass",
                                      RECIPIENT_STUCK, started)
            try:
                stored = self.service.quarantine.put(self._held_copy(queue_id, decision.quarantine),
                                                     self._quarantine_meta(queue_id, result, decision))
            except QuarantineError as exc:
                return self._on_error(queue_id, str(exc), QUARANTINE_FAILED, started)
            held = f" quarantine_id={stored} held_for={_addresses(decision.quarantine)}"
            if not decision.deliver:
                return self._done(queue_id, result, decision.summary, started, Milter.DISCARD, held)
            for recipient in self.recipients:
                if recipient.address in decision.quarantine:
                    self._remove(recipient)
        self._remove_forged_auth_results()
        # None for outbound mail without outbound.add_headers: the sender's own verdict goes,
        # ours is kept back
        ours = added_headers(result, config, outbound, f"autolearn={scored.autolearned}")
        self._replace_spam_headers([(n, v) for n, v in ours if n != AUTH_RESULTS_NAME])
        for name, value in ours:
            if name == AUTH_RESULTS_NAME:  # on top, as the newest trace field
                self.addheader(name, fold(name, value).partition(": ")[2], 1)
        if decision.tag_subject:
            self._tag_subject()
        return self._done(queue_id, result, decision.summary, started, Milter.ACCEPT, held)

    def _unremovable(self, addresses: list[str]) -> list[str]:
        """Those of `addresses` that delrcpt cannot name: pymilter passes text to Postfix as
        UTF-8, so a recipient written in raw 8-bit bytes cannot be matched (see `_macro`)."""
        return [r.address for r in self.recipients
                if r.address in addresses and _has_raw_bytes(r.written)]

    def _remove(self, recipient: Recipient) -> None:
        """Take a recipient out of the envelope. Postfix's delrcpt matches the address as smtpd
        parsed it, which keeps a trailing dot but drops a source route: neither the written nor
        the resolved form finds every recipient, so both are asked for. A form that matches no
        recipient removes nothing, and both forms name the same address, so no other goes."""
        for form in dict.fromkeys((recipient.written.strip(), f"<{recipient.address}>")):
            self.delrcpt(form)

    def _first(self, name: str) -> str | None:
        """The first `name` header's value as pymilter gave it (raw 8-bit bytes as surrogates)."""
        return next((v for n, v in self.headers if n.lower() == name), None)

    def _header_text(self, name: str) -> str | None:
        """The first `name` header as text, raw 8-bit bytes decoded as the analysis decodes them
        (UTF-8, else the body's charset: `headers.text_of`). A tagged Subject is written encoded
        (RFC 2047), and the delivered copy's Subject is read from that: decoded as Windows-1252
        (`milter_text`), a KOI8-R Subject became other words than the ones the milter's copy gave
        Bayes. The quarantine's record takes its Subject and From so too, so its list, page and
        digest show the words scored: decoded as Windows-1252, a KOI8-R name was mojibake."""
        value = self._first(name)
        if value is None or not _has_raw_bytes(value):
            return value
        fields = ((n, v.encode("utf-8", "surrogateescape")) for n, v in self.headers)
        return text_of(value.encode("utf-8", "surrogateescape"), body_charset(fields), Facts())

    def _quarantine_meta(self, queue_id: str, result: Result, decision: Decision) -> dict[str, Any]:
        subject = self._header_text("subject") or ""
        sender = self._header_text("from") or ""
        # The held copy is without them (see _held_copy), the record keeps them for the reviewer.
        forged = forged_evidence([milter_text(v) for n, v in self.headers if self._forged(n, v)])
        return {
            "time": self.arrival.isoformat(), "queue_id": queue_id, "client_ip": self.client_ip,
            "client_name": self.client_name, "helo": self.helo, "mail_from": self.mail_from,
            "recipients": decision.quarantine, "from": sender, "subject": subject,
            "action": decision.summary, "verdict": result.as_dict(),
            **({FORGED_KEY: forged} if forged else {}),
        }

    def _replace_spam_headers(self, ours: list[tuple[str, str]]) -> None:
        """Remove every X-Spam-* header that came from outside, then add ours: no forged verdicts."""
        counts: dict[str, tuple[str, int]] = {}
        for name, _ in self.headers:
            if name.lower().startswith(OUR_HEADER_PREFIX):
                first, count = counts.get(name.lower(), (name, 0))
                counts[name.lower()] = (first, count + 1)
        for name, count in counts.values():
            # Last first: the indexes of the ones before stay valid however the MTA applies them.
            for index in range(count, 0, -1):
                self.chgheader(name, index, "")
        for name, value in ours:
            self._add(name, value)

    def _remove_forged_auth_results(self) -> None:
        """Remove every Authentication-Results that came in claiming our authserv-id: only we
        write our name, so such a header is forged (RFC 8601 section 5), and a Dovecot sieve or
        a mail client that trusts results by our name would believe `dkim=pass` for a bank's
        domain. Done on all mail we let through, whether or not we add our own header: it was
        done only beside ours, so with dns.enabled off (the default), for outbound mail without
        outbound.add_headers and for skipped mail, forged results reached the mailbox. Other
        hosts' headers, and ARC-Authentication-Results (sealed), are left alone."""
        existing = [v for n, v in self.headers if n.lower() == AUTH_RESULTS]
        for index in range(len(existing), 0, -1):  # last first: the earlier indexes stay valid
            if self._forged(AUTH_RESULTS_NAME, existing[index - 1]):
                self.chgheader(AUTH_RESULTS_NAME, index, "")

    def _forged(self, name: str, value: str) -> bool:
        """True for an Authentication-Results field claiming our name (see above)."""
        return name.lower() == AUTH_RESULTS and claimed_authserv_id(value) == self._our_authserv_id()

    def _our_authserv_id(self) -> str:
        """The name our Authentication-Results header gives (as the worker computes it from
        the Envelope's receiver), spelt as `claimed_authserv_id` spells a claimed one."""
        return ascii_domain(authserv_id(self.service.config.dns.authserv_id, self._myhostname()))

    def _add(self, name: str, value: str) -> None:
        self.addheader(name, fold(name, value).partition(": ")[2])

    def _tag_subject(self) -> None:
        subject = self._header_text("subject")
        # None when tagged already: a change could only fail on a Subject too long
        written = subject_written(subject, self.service.config.actions.subject_tag)
        if written is None:
            return
        if subject is None:
            self.addheader("Subject", written)
        else:
            self.chgheader("Subject", 1, written)

    def _on_error(self, queue_id: str, reason: str, kind: str, started: float) -> int:
        """The configured safe outcome: never lose the message, never leave it unexplained. The
        log line gives `reason`, the metrics `kind` (one of metrics.ERROR_REASONS)."""
        config = self.service.config
        log.error("%s: %s; applying on_error=%s", queue_id, reason, config.milter.on_error)
        self.service.metrics.errors.labels(kind).inc()
        if config.milter.on_error == "tempfail":
            self.setreply("451", "4.7.1", "Temporary failure while scanning, try again later")
            self._log(queue_id, None, "tempfail", started)
            self.service.metrics.messages.labels("tempfail").inc()
            return Milter.TEMPFAIL
        status = f"Unknown, score=0.0 required={config.scoring.required_score:.1f} tests=none error"
        self._remove_forged_auth_results()
        self._replace_spam_headers([("X-Spam-Status", status)])
        self._log(queue_id, None, "error-accept", started)
        self.service.metrics.messages.labels("error-accept").inc()
        return Milter.ACCEPT

    def _done(self, queue_id: str, result: Result, action: str, started: float, reply: int,
              held: str = "") -> int:
        self._log(queue_id, result, action, started, held)
        self.service.metrics.messages.labels(action).inc()
        self.service.metrics.latency.observe(time.monotonic() - started)
        return reply

    def _reply(self, code: str, extended: str, text: str) -> None:
        """A configured reply text: libmilter reads '%' as an escape (pymilter refuses a single
        one), so it is doubled."""
        self.setreply(code, extended, text.replace("%", "%%"))

    def _client(self) -> str:
        return client_text(self.client_name, self.client_ip)

    def _log(self, queue_id: str, result: Result | None, action: str, started: float,
             held: str = "") -> None:
        """The one line per message; `held`: its quarantine fields, when a copy was held. The
        SASL login is named, as the outbound pause counts by it: the envelope sender is the
        spammer's choice, and many customers share one webmail or NAT address. Mail of the
        sendmail command says `via=sendmail`: it is counted by its from=<...> (`sender_name`)."""
        score = f"{result.score:.1f}" if result is not None else "-"
        rules = ",".join(result.rule_names[:TOP_RULES_LOGGED]) if result is not None else "-"
        login = f" login={self.auth_user}" if self.auth_user else " via=sendmail" if self.local else ""
        log.info("%s: client=%s%s from=<%s> to=%s score=%s action=%s%s rules=%s time=%.0fms",
                 queue_id, self._client(), login, self.mail_from,
                 _addresses(self.addresses), score, action, held, rules,
                 (time.monotonic() - started) * 1000)


def _blank_rest(spool: IO[bytes]) -> bool:
    """Whether what is left to read is blank space only (spaces, tabs, line ends), which is
    no part of the message's text: a body over scan.max_bytes by its last line end alone is not
    cut, as `analyse` judges a whole copy of it, so both name it by one learning digest
    (classifier.digest) and see the same MIME. Reads until the first other byte: one chunk."""
    while chunk := spool.read(BLANK_CHUNK):
        if chunk.strip():
            return False
    return True


def _local_submission(hostname: str, family: int, hostaddr: Any) -> bool:
    """True for mail Postfix's cleanup hands over for its sendmail command (non_smtpd_milters):
    it makes up a connection from localhost[127.0.0.1] port 0. An SMTP client, even a local one,
    always comes from a real port, so none can pass for local submission."""
    return (family == socket.AF_INET and hostname == SENDMAIL_CLIENT_NAME
            and tuple(hostaddr or ()) == (SENDMAIL_CLIENT_IP, SENDMAIL_CLIENT_PORT))


def _address(written: str) -> str:
    return written.strip().strip("<>")


def _addresses(addresses: list[str]) -> str:
    return ",".join(f"<{a}>" for a in addresses)


def milter_text(value: str) -> str:
    """A header value or envelope address as real text. pymilter hands raw 8-bit bytes over as
    surrogate escapes, which cannot be written anywhere (the quarantine refused such a message,
    and it was deferred on every retry): turn them back into bytes and decode them (UTF-8, else
    Windows-1252, which maps every byte)."""
    if not _has_raw_bytes(value):
        return value
    return decode_short(value.encode("utf-8", "surrogateescape"), "")[0]


def _has_raw_bytes(value: str) -> bool:
    """True when pymilter's text holds bytes that were not UTF-8 (as surrogate escapes)."""
    return any("\udc80" <= c <= "\udcff" for c in value)
