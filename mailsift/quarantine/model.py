"""What the quarantine knows about a message, and how a reviewer asks for messages.

The milter hands over raw facts (header values as sent, the verdict as a dict); `normalise` turns
them into the one record every backend stores and every page shows, so the CLI, the web UI and the
digest never decode a Subject or sort rules themselves.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mailsift.analysis.addresses import address_pairs
from mailsift.analysis.headers import decode_words, unfold
from mailsift.analysis.model import Facts
from mailsift.domains import (
    NO_SUBADDRESSES,
    Subaddressing,
    ascii_address,
    name_problem,
    unicode_address,
)
from mailsift.report import cap_rows

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")
SORT_KEYS = ("time", "score", "sender", "subject")
# The highest page number, and page size, a list may ask for: more than any quarantine holds,
# and small enough that the offset, (page - 1) * size, fits SQLite's 64-bit integers (20 digits
# overflowed them: "datatype mismatch").
MAX_PAGE = 999_999_999
LIST_KINDS = ("welcome", "block")
SUMMARY_FIELDS = ("id", "time", "score", "state", "recipients", "mail_from", "from", "subject")
# The index mark saying when the last filing of recipients in their compared form (`index_keys`)
# began; an index without it was never filed so (see `refiling_since`). The Redis index keeps one
# per recipient delimiter (`compared_mark`).
COMPARED_MARK = "index:recipients-compared"
# How much earlier than the last filing began the next one starts reading arrivals. A record's
# time is its MAIL FROM on the host that took it, and its index commit comes after the client's
# DATA (Postfix waits up to smtpd_timeout, 300 s, for each read of it), the scoring (Postfix gives
# the milter 2 * milter.timeout + 10 s) and the index's own waits (a 10 s busy timeout on SQLite,
# 5 s and one retry on Redis): minutes at worst. Hosts sharing a Redis index add their clocks'
# skew: milliseconds under NTP, seconds a day without. An hour covers both many times over, and
# costs a daily expire a 25th hour of arrivals. Only mail an older mailsift stored needs the
# filing (this one files each message as it arrives), so what a longer delay leaves out is an
# older host's mail committed over an hour after its time, such as a row an older mailsift's
# expire indexes again from its file after a power cut lost it (files over an hour old only):
# shown to admins only, as before the filing existed. Covering that would take days of margin.
REFILE_MARGIN = timedelta(hours=1)
REASON_RULES = 3  # rule names quoted in the one-line reason: enough to recognise the pattern
# The forged Authentication-Results a record keeps (see forged_evidence): three show whether one
# claim or several came, and 200 characters hold a claim's name and its methods' results; a
# message with thousands of them, or one of 100 kB, makes a record no bigger than this.
FORGED_KEPT = 3
FORGED_CHARS = 200
FORGED_KEY = "forged_auth_results"
# A list's and a digest's mark for such a message (forged_mark), and what it means: a reviewer
# going down a list, or a user reading a digest, learns the fact there; the page and `quarantine
# show` give the claims themselves, which are the sender's words and too long for a row.
FORGED_MARK = "[forged auth]"
FORGED_MEANS = ("came with a forged claim that this mail server had checked its sender (an "
                "Authentication-Results header, removed from the held copy): a strong sign of "
                "spam or phishing")
# The state of a message whose release began and was not recorded as done or failed since: the
# send may have happened (review.release). Its record's "releasing" maps each address of that
# release to when it began and who began it.
RELEASING = "releasing"
NOT_AN_ENTRY = ("not an address or domain; write an address (friend@example.com) or a domain "
                "(example.com, which covers its subdomains)")


class QuarantineError(Exception):
    """The store could not keep or find a message; the text says which and why."""


class NoSuchMessage(QuarantineError):
    """No message has this id (never held, or expired): for the web UI a 404 for everyone, where
    other failures to read a record (a damaged one) are worth an admin's reading."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"no quarantined message {message_id}")


class Deleted(QuarantineError):
    """The message was deleted: its bytes are gone, its record and history stay until it expires.
    One class for the backends' reads of its bytes and a release that meets it deleted."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"message {message_id} was deleted")


def unreadable_schema(where: str, found: str, reads: str) -> str:
    """The one line for an index another mailsift wrote: whose it is and what the admin does. A
    newer one means a rollback; this code must neither read nor rewrite what it does not know."""
    if found.isdigit() and reads.isdigit() and int(found) > int(reads):
        whose = "written by a newer mailsift"
    else:
        whose = "not one this mailsift can migrate"
    return (f"quarantine index {where}: schema version {found} ({whose}; this one reads version "
            f"{reads}): run that mailsift again, or put back the index's copy from before the "
            "upgrade (README: Backups and upgrades)")


class ServerFailed(QuarantineError):
    """A server an action needs failed (the index's Redis, the Bayes store, the release port):
    the text names it, which helps the admin and is not for a user (a hosting provider's
    customer) to see."""


class Refused(ServerFailed):
    """The release port answered and refused this message for good (a 5xx reply to its sender,
    a recipient, its size or content; an SMTPUTF8 it needs and the port does not offer): another
    message may well pass, where a server that does not answer, or answers "try later" (4xx),
    fails every one."""


class IndexUnavailable(ServerFailed):
    """The index failed: the shared index's Redis (down, hung, refused the command), or the
    local SQLite file (not opened, read or written). No answer about any message, which the
    web UI must not show as "no such message"."""


class IndexTimeout(IndexUnavailable):
    """The index did not answer in time (hung, overloaded, or its host gone without a reset).
    Unlike the other failures it leaves a write's fate unknown: Redis runs a transaction whose
    answer comes after the client gave up, so a change that timed out may have been made
    (review.release reads the record again then)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"quarantine store unavailable: {reason}")
        self.reason = reason


def new_id() -> str:
    """128 random bits, URL-safe; never starting with "-", which a command line reads as an option."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):
            return candidate


def valid_id(message_id: str) -> bool:
    """Ids come from URLs and command lines: only our own shape is accepted (no path tricks)."""
    return bool(ID_PATTERN.match(message_id))


def now() -> datetime:
    return datetime.now(UTC)


def decoded(value: str) -> str:
    """A header value as a person reads it: unfolded, RFC 2047 words decoded, never raising."""
    return decode_words(unfold(value or ""), Facts()).strip()


def address_of(value: str) -> str:
    """The bare lower-case address in a From-style value ('' when there is none)."""
    found = [addr for _name, addr in address_pairs([value]) if "@" in addr]
    return found[0].lower() if found else ""


def normalise(raw: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """The stored record: the milter's facts plus what review needs, computed once at arrival."""
    verdict = meta.get("verdict") or {}
    rules = sorted(({"name": r.get("name", ""), "score": float(r.get("score", 0)),
                     "description": r.get("description", ""), "evidence": r.get("evidence", "")}
                    for r in verdict.get("rules", [])), key=lambda r: -r["score"])
    score = float(verdict.get("score", meta.get("score", 0.0)))
    required = float(verdict.get("required_score", meta.get("required_score", 0.0)))
    names = ", ".join(r["name"] for r in rules[:REASON_RULES]) or "no rules"
    return {
        **meta,
        "time": meta.get("time") or now().isoformat(),
        "host": meta.get("host") or socket.gethostname(),
        "recipients": [r.strip().strip("<>").lower() for r in meta.get("recipients", [])],
        "mail_from": meta.get("mail_from", ""),
        "from": decoded(meta.get("from", "")),
        "subject": decoded(meta.get("subject", "")),
        "size": len(raw),
        "score": score,
        "required_score": required,
        "rules": rules,
        "action": meta.get("action", "quarantine"),
        "reason": meta.get("reason") or f"score {score:.1f} (required {required:.1f}): {names}",
        "state": "held",
        "events": [],
    }


def forged_evidence(values: list[str]) -> dict[str, Any] | None:
    """What the record keeps of the Authentication-Results the milter removed as forged (they
    claimed this host's authserv-id): their count and the first FORGED_KEPT, unfolded and cut to
    FORGED_CHARS. The held copy is without them, as the delivered one is, so a reviewer never
    learnt the message came with them, which is strong evidence against it. None for none."""
    if not values:
        return None
    kept = [" ".join(value.split()) for value in values[:FORGED_KEPT]]  # unfolded
    return {"count": len(values),
            "kept": [v if len(v) <= FORGED_CHARS else v[:FORGED_CHARS - 1] + "…" for v in kept]}


def _forged(record: dict[str, Any]) -> tuple[int, list[str]]:
    """The record's forged results: how many came and those kept; (0, []) for a message that
    came with none, or held by a version that did not keep them."""
    forged = record.get(FORGED_KEY)
    if not isinstance(forged, dict) or not forged.get("kept"):
        return 0, []
    kept = [str(v) for v in forged["kept"]]
    return forged.get("count") if isinstance(forged.get("count"), int) else len(kept), kept


def forged_text(record: dict[str, Any]) -> str:
    """The record's forged results in one line, for `quarantine show` and the message page;
    "" for a message without them (see `_forged`)."""
    count, kept = _forged(record)
    if not kept:
        return ""
    more = f" (and {count - len(kept)} more)" if count > len(kept) else ""
    return (f"{count} Authentication-Results claiming this host's name, removed from the held "
            f"copy: {' | '.join(kept)}{more}")


def forged_mark(record: dict[str, Any]) -> str:
    """FORGED_MARK for a message that came with forged results, "" for one without."""
    return FORGED_MARK if _forged(record)[1] else ""


def rule_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's rule table, for `quarantine show` and the web UI: its rules, highest first, then
    what each capped group lost, so the rows add up to the score. The caps are read from the
    stored verdict (the milter's `Result.as_dict()`), which every record keeps: messages held
    before this table had cap rows show them too. They are not rules, so `record["rules"]`
    (counted by the stats page) leaves them out."""
    capped = (record.get("verdict") or {}).get("capped_groups") or {}
    caps = [{"name": name, "score": score, "description": description, "evidence": ""}
            for score, name, description in cap_rows(capped)]
    return [*record["rules"], *caps]


def event(user: str, action: str, detail: str = "", attempt: str = "") -> dict[str, str]:
    """One line of a message's history: who did what, when ("released to x", "learned as ham").
    `attempt`: the release attempt that wrote it, kept so that it writes the line once (see
    review._record_outcome); pages show no such key."""
    line = {"time": now().isoformat(timespec="seconds"), "user": user, "action": action,
            "detail": detail}
    return {**line, "attempt": attempt} if attempt else line


def add_event(record: dict[str, Any], user: str, action: str, detail: str = "",
              attempt: str = "") -> None:
    """Add a line (`event`) to the end of the record's history."""
    record["events"] = [*record.get("events", []), event(user, action, detail, attempt)]


def recipient_filter(text: str) -> str:
    """What a reviewer typed as the recipient, as `Query.to` takes it: an address, or `@domain`
    for a bare or @-prefixed domain (a hosting provider looks up one customer's mail at once),
    with the domain in its ASCII form (see `addressed_to`)."""
    wanted = text.strip()
    return ascii_address(wanted if "@" in wanted else "@" + wanted)


def addressed_to(wanted: str, address: str, subaddressing: Subaddressing = NO_SUBADDRESSES) -> bool:
    """Whether a recipient is the address `wanted`, or in its domain when it is `@domain`.

    `wanted` is in ASCII form (`ascii_address`, as `Query` and `recipient_filter` give it); the
    recipient, stored as Postfix gave it, is compared in that form too, the one the milter's
    list lookups use: Jane@Example.COM, jane@example.com. (a final dot), jörg@bücher.example,
    jörg@xn--bcher-kva.example and jörg@ｂücher.example (a fullwidth letter, which IDNA maps to
    b) are each one mailbox, whichever way the owner's address was written. A look-alike
    (a Cyrillic letter, an accent dropped) is another address and another owner's mail, and a
    name IDNA refuses equals only itself. A user's access (`Viewer.owns`) is this test, and
    the indexes file every recipient under this form too (`index_keys`), so what a user may
    open is exactly what her list, search and digest show her. Under a recipient delimiter a
    subaddress is its owner's too (`Subaddressing.forms`): jane+shop@ is jane@example.com's,
    as Postfix delivers it to her, and still its own; janet@ and +jane@ are not hers, nor is
    jane+shop@ when it is a web user's address itself."""
    forms = subaddressing.forms(address)
    return forms[0].endswith(wanted) if wanted.startswith("@") else wanted in forms


def index_keys(recipients: list[str], delimiter: str = "") -> list[str]:
    """The addresses an index files a message under: each recipient as Postfix gave it, which
    an older mailsift looks up, and in the form `addressed_to` compares, which this one looks up
    (the same string for most mail); with a `delimiter`, a subaddress also under its owner's
    `extension_key` (for an index that cannot search by part of an address: the Redis one)."""
    return list(dict.fromkeys(key for r in recipients for key in (r, *_compared_keys(r, delimiter))))


def _compared_keys(recipient: str, delimiter: str) -> list[str]:
    """Every cut subaddress is filed, a web user's address too: what is shown is decided by
    `addressed_to` on what is found, so a login added later changes no filing."""
    compared, *owner = Subaddressing(delimiter).forms(recipient)
    return [compared, *(extension_key(o, delimiter) for o in owner)]


def extension_key(owner: str, delimiter: str) -> str:
    """The index key of mail to the subaddresses of `owner` (compared form) under `delimiter`:
    "+ jane@example.com" for jane+shop@example.com. Not `owner` itself: filed under the
    delimiter, it is looked up only while that delimiter is set (`Query.index_addresses`), so
    mail a changed delimiter no longer gives its owner is not even a candidate. A space is in
    no address outside quotes, so no recipient's own key is one of these."""
    return f"{delimiter} {owner}"


def compared_only(recipients: list[str], delimiter: str = "") -> list[str]:
    """The keys `index_keys` adds to the recipients as Postfix gave them: those an older
    mailsift, or this one before the delimiter was set, did not file a message under."""
    return [key for key in index_keys(recipients, delimiter) if key not in recipients]


def compared_mark(delimiter: str) -> str:
    """The mark of the last filing in compared form under `delimiter`, for an index that files
    subaddresses under `extension_key`: COMPARED_MARK without one, as before there were
    delimiters, so an older mailsift's filings count. A delimiter set or changed finds no mark
    of its own, so the next filing reads every message held, once, and files mail to a
    subaddress held since before under its owner too; one set again reads from its old mark."""
    return f"{COMPARED_MARK}:{delimiter}" if delimiter else COMPARED_MARK


def refiling_since(mark: str | None) -> datetime | None:
    """The arrival time from which a filing of compared forms must read, given COMPARED_MARK:
    REFILE_MARGIN before the last filing began, so that each reads what arrived since the last
    one and not the whole quarantine. None (read everything): no filing covered this index yet
    (mail held before the upgrade), or the mark is not a time with its offset (a hand edit),
    where a full pass is slow once but never wrong."""
    try:
        began = datetime.fromisoformat(mark) if mark is not None else None
    except ValueError:
        return None
    return began - REFILE_MARGIN if began is not None and began.tzinfo is not None else None


def note_filing(where: str, since: datetime | None, read: int, filed: int) -> None:
    """Say what a filing of compared forms read, for an administrator timing `quarantine
    expire` (and for the tests that hold its reading to the mail that arrived since the last)."""
    log.debug("quarantine index %s: filing recipients in their compared form read %d message(s), "
              "%s; %d filed", where, read, "every one held (the first filing)" if since is None
              else f"those that arrived since {since.isoformat(timespec='seconds')}", filed)


@dataclass(frozen=True)
class Purged:
    """What an expire did. Besides the messages it removed, the local index's sweep indexes
    again the message files whose row is missing (a power cut, or an older index copy put back
    after a rollback) and sets aside those whose record this mailsift cannot read: the admin
    who ran it to bring back a rollback's mail was told "Expired 0 message(s)" and nothing
    else. The Redis index keeps messages and records together and has neither."""

    expired: int
    reindexed: int = 0
    set_aside: int = 0


@dataclass(frozen=True)
class Query:
    """A search over the index; every field narrows it, `to` to any of the given addresses and
    `@domain`s.

    `to=None` means every recipient (an admin); `to=[]` matches nothing (a user without addresses).
    """

    to: list[str] | None = None
    sender: str = ""
    subject: str = ""
    min_score: float | None = None
    max_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "time"
    descending: bool = True
    offset: int = 0
    limit: int | None = 50
    include_deleted: bool = False

    def __post_init__(self) -> None:
        """`to` in ASCII form, as `addressed_to` compares: made once here, not once per record."""
        if self.to is not None:
            object.__setattr__(self, "to", [ascii_address(wanted) for wanted in self.to])

    def on_page(self, page: int, size: int) -> Query:
        """Page `page` (from 1) of `size` messages: the web UI's pages and `list --page` alike."""
        return replace(self, offset=(page - 1) * size, limit=size)

    def index_addresses(self, delimiter: str = "") -> list[str]:
        """The index keys of the addresses in `to` (not its `@domain`s): each address, and the
        key of mail to its subaddresses under `delimiter` (`extension_key`)."""
        addresses = [wanted for wanted in self.to or [] if not wanted.startswith("@")]
        extensions = [extension_key(wanted, delimiter) for wanted in addresses] if delimiter else []
        return addresses + extensions

    def matches(self, record: dict[str, Any], subaddressing: Subaddressing = NO_SUBADDRESSES) -> bool:
        """The same test the SQL of the SQLite index makes, for backends that filter in Python;
        `subaddressing`: the index's (`addressed_to`)."""
        if not self.include_deleted and record.get("state") == "deleted":
            return False
        if self.to is not None and not any(addressed_to(wanted, address, subaddressing)
                                           for wanted in self.to
                                           for address in record.get("recipients", [])):
            return False
        sender = folded(self.sender)
        if sender and sender not in folded(record.get("mail_from", "")) \
                and sender not in folded(record.get("from", "")):
            return False
        if self.subject and folded(self.subject) not in folded(record.get("subject", "")):
            return False
        return self._in_ranges(record)

    def _in_ranges(self, record: dict[str, Any]) -> bool:
        score = float(record.get("score", 0))
        when = datetime.fromisoformat(record["time"])
        return not ((self.min_score is not None and score < self.min_score)
                    or (self.max_score is not None and score > self.max_score)
                    or (self.since is not None and when < self.since)
                    or (self.until is not None and when >= self.until))


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a record that `Query.matches` and `sort_value` read: what a backend that
    searches in Python reads of every message, a tenth of the whole record (rules, evidence and
    history make up the rest)."""
    return {key: record[key] for key in SUMMARY_FIELDS if key in record}


def record_problem(record: Any, message_id: str) -> str:
    """What keeps `record` (a message file's first line, a record or summary in the shared index)
    from being read as message `message_id`'s ("" when nothing does): every field that searching,
    sorting and listing read, of the type this mailsift writes."""
    if not isinstance(record, dict):
        return "it is not a mailsift record"
    missing = [name for name in SUMMARY_FIELDS if name not in record]
    if missing:
        return f"its record lacks {', '.join(missing)}"
    if record["id"] != message_id:
        return f"its record is that of message {str(record['id'])[:40]!r}"
    texts = ("time", "mail_from", "from", "subject", "state")
    if (not all(isinstance(record[name], str) for name in texts)
            or not isinstance(record["score"], int | float) or isinstance(record["score"], bool)
            or not isinstance(record["recipients"], list)
            or not all(isinstance(r, str) for r in record["recipients"])):
        return "its record holds a field of another type than this mailsift writes"
    try:
        datetime.fromisoformat(record["time"])
    except ValueError:
        return f"its record's time {record['time'][:40]!r} is not one this mailsift writes"
    return ""


def folded(text: str) -> str:
    """`text` as a search or sort by sender or subject compares it, case aside in every script
    (str.casefold: 'Счёт' and 'счёт', 'STRASSE' and 'Straße' are one): the SQLite index calls
    it from its SQL, whose own lower() and LIKE fold ASCII letters only."""
    return text.casefold()


def page_count(total: int, size: int) -> int:
    """Pages of `size` that `total` messages fill; one when there are none (an empty page 1)."""
    return max(1, -(-total // size))


def in_list_order(records: list[dict[str, Any]], key: str, descending: bool) -> None:
    """Sort `records` (in place) as every backend lists them: by `key`, and among equals the
    newest first, then by id (equal times). Ties came in opposite orders: the SQLite index
    took them by their random id in every sort, Redis by the reverse of it in a descending one,
    so messages of one score or sender were listed, and paged, in two orders. The local
    index's SQL says the same (local.LocalBackend.search). Stable sorts, last key first."""
    records.sort(key=lambda r: r["id"])
    records.sort(key=lambda r: r.get("time", ""), reverse=True)
    records.sort(key=lambda r: sort_value(r, key), reverse=descending)


def sort_value(record: dict[str, Any], key: str) -> Any:
    if key == "score":
        return float(record.get("score", 0))
    if key == "sender":
        return folded(record.get("from") or record.get("mail_from", ""))
    if key == "subject":
        return folded(record.get("subject", ""))
    return record.get("time", "")


@dataclass
class UserLists:
    """One address's welcome and block lists: sender addresses or domains (`example.org`)."""

    welcome: set[str] = field(default_factory=set)
    block: set[str] = field(default_factory=set)

    def entries(self, kind: str) -> set[str]:
        return self.welcome if kind == "welcome" else self.block


def list_entry(value: str) -> str:
    """A list entry as stored: lower-case address, or a domain without a leading @, the domain in
    its ASCII form (`bücher.example` and `xn--bcher-kva.example` are one entry, as they are one
    domain). ValueError, saying what to write instead, for an entry no sender can match
    (`entry_problem`): such entries were stored, and whoever typed one believed mail welcomed
    or blocked that never was."""
    entry = _as_stored(value)
    problem = _problem(entry)
    if problem:
        raise ValueError(f"{value!r}: {problem}")
    return entry


def entry_problem(value: str) -> str:
    """Why no sender can match `value` as a list entry ('' when one can), without `value`
    itself: the lists page's note beside an entry an older version stored."""
    return _problem(_as_stored(value))


def _as_stored(value: str) -> str:
    return ascii_address(value.strip().removeprefix("@"))


def _problem(entry: str) -> str:
    """Why no sender can match `entry` (as `_as_stored` makes it): a domain IDNA refuses, an IP
    address, a wildcard, or a name the DNS cannot hold; '' for an entry that can match."""
    local, at, domain = entry.rpartition("@")
    host = domain if at else entry
    # A line break or tab inside (not printable) let a user's entry write lines of its own to the
    # log; an apostrophe is an address's own letter (o'brien@partner.example).
    if not host or any(c in entry for c in ' <>,;"') or (at and not local) \
            or not entry.isprintable():
        return NOT_AN_ENTRY
    return _wildcard_problem(entry) or _ip_problem(host) or _name_problem(host)


def _wildcard_problem(entry: str) -> str:
    """Why a wildcard cannot be an entry, naming the domain entry meant ('' without one). Stored
    as written, `*@partner.example` matched nobody; local.cf's globs are translated before they
    get here (rules/sa_lists.py)."""
    if "*" not in entry and "?" not in entry:
        return ""
    local, at, domain = entry.rpartition("@")
    domain = unicode_address(domain.lstrip("*."))  # as its people write it
    if not domain or "*" in domain or "?" in domain:
        return "no wildcards; name each address or domain (a domain covers its subdomains)"
    if at and local != "*":
        return (f"no wildcards; write each address, or {domain} for every address of that domain "
                "and its subdomains")
    return f"no wildcards; {domain} is every address of that domain and its subdomains"


def _ip_problem(host: str) -> str:
    """Why an IP address or network (1.2.3.4, [1.2.3.4], [IPv6:2001:db8::1], 2001:db8::/32) is
    no entry ('' for a name): lists hold senders, and a client's address is the network checks'."""
    literal = host.removeprefix("[").removesuffix("]").removeprefix("ipv6:")
    try:
        ipaddress.ip_network(literal, strict=False)
    except ValueError:
        return ""
    return ("an IP address, not a sender: list the sender's address or domain; client addresses "
            "are judged by the network checks ([[dns.blocklists]] and [[dns.allowlists]])")


def _name_problem(host: str) -> str:
    """Why `host` can name no sender's domain ('' when it can), by the rule mailsift.toml's domains
    go by too (`name_problem`). A dot first (.partner.example, as some filters' lists write a
    domain with its subdomains) is answered with the entry meant: a domain covers them as it is."""
    meant = host.lstrip(".")
    if meant != host and meant and not name_problem(meant):
        return f"a dot first; {meant} covers its subdomains as it is"
    return name_problem(host)


def listed(entries: set[str], sender: str) -> str:
    """The entry that covers `sender` (the address, its domain or a parent domain), or ''; both
    with the domain in ASCII form (`ascii_address`)."""
    if sender in entries:
        return sender
    domain = sender.rpartition("@")[2]
    parts = domain.split(".")
    for start in range(len(parts) - 1):
        candidate = ".".join(parts[start:])
        if candidate in entries:
            return candidate
    return ""
