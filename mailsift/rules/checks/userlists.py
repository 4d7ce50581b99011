"""`eval:user_listed(kind)`: the sender is on the recipients' own welcome or block list.

Users keep their lists in the review UI (`mailsift web`, page "My lists"); they are stored in the
quarantine index — `quarantine.index`: the SQLite file beside the quarantine, or the shared Redis —
which is where each scoring process reads them, all lists at once, at most every
`REFRESH_S` seconds. A user's change therefore counts within a minute, without a reload.

A message is scored once for all its recipients, so one user's list must not decide for another:
a rule hits only when every envelope recipient has the sender on that list. The sender is the
envelope sender or the From address (either may be listed: a user lists the From they see, and a
newsletter's envelope sender is its mailing service's); an entry is an address or a domain
(covering its subdomains). Owners, entries and senders are compared with their domains in ASCII form, as an
internationalised domain is one domain in U-labels and A-labels; the lists are brought into that
form once per read, entries that older versions stored as typed included, so a message costs a
set lookup per recipient, whatever the lists' size. Under milter.recipient_delimiter a
subaddress has its owner's lists (jane+shop@ Jane's), unless it has lists of its own: the whole
address is looked up first, as Postfix does (`_recipients_lists`). A store that cannot be read never fails a
scan: the lists read before stay in use (none, if it never could be read), as a blip of the
shared Redis must not drop every user's lists for a minute, and a warning says so at most
every 10 minutes. A read waits at most LOAD_TIMEOUT_S, twice with the retry: with a hung Redis
one message per worker and minute waits about a second, not the quarantine's 10 s.

Anyone can write any sender address, and spam that forges a bank or a colleague is common: a
welcome entry (-100) counts only for a sender SPF or DKIM confirms (sender_proof.py, shared with
the site's lists), as SpamAssassin's welcomelist_auth. Otherwise USER_WELCOME_UNVERIFIED shows
the entry in the report and weighs nothing. Block entries need no proof: forging a sender to be
blocked gains a spammer nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from mailsift.config import QuarantineConfig
from mailsift.domains import ascii_address
from mailsift.log_throttle import ThrottledWarning
from mailsift.quarantine.model import LIST_KINDS, QuarantineError, UserLists, listed
from mailsift.rules.checks.sender_proof import claimed_senders, evidence, list_result, list_rules
from mailsift.rules.registry import CheckContext, CheckResult, check

log = logging.getLogger(__name__)

GROUP = "userlists"
REFRESH_S = 60.0
LOAD_TIMEOUT_S = 0.5  # a read of small sets, in the mail path: as bayes.timeout's default


class _Cache:
    """Every list of every user, per process, reloaded when older than REFRESH_S."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = -REFRESH_S
        self.source: QuarantineConfig | None = None
        self.lists: dict[str, UserLists] = {}
        self.unavailable = ThrottledWarning(log)

    def get(self, config: QuarantineConfig) -> dict[str, UserLists]:
        with self.lock:
            if config != self.source or time.monotonic() - self.loaded_at >= REFRESH_S:
                try:
                    self.lists = _load(config)
                except (QuarantineError, OSError, ValueError) as exc:
                    if config != self.source:
                        self.lists = {}  # another index's lists are no one's here
                    self.unavailable.warn("lists", "users' welcome/block lists unavailable, "
                                          "scoring with those read before, if any: %s", exc)
                self.source, self.loaded_at = config, time.monotonic()
            return self.lists


def _load(config: QuarantineConfig) -> dict[str, UserLists]:
    from mailsift.quarantine.store import open_quarantine

    return _comparable(open_quarantine(config, timeout=LOAD_TIMEOUT_S).backend.all_lists())


def _comparable(lists: dict[str, UserLists]) -> dict[str, UserLists]:
    """`lists` keyed and filled in ASCII form (`ascii_address`): an owner configured as
    jörg@bücher.example has the lists of a RCPT TO in either form, and entries stored in U-labels
    before entries were stored in ASCII form keep covering their senders."""
    found: dict[str, UserLists] = {}
    for owner, kept in lists.items():
        merged = found.setdefault(ascii_address(owner), UserLists())
        for kind in LIST_KINDS:
            merged.entries(kind).update(ascii_address(entry) for entry in kept.entries(kind))
    return found


_CACHE = _Cache()


def _recipients_lists(lists: dict[str, UserLists], forms: tuple[str, ...]) -> UserLists:
    """The lists of a recipient's first form that has some (`Subaddressing.forms`): its own,
    else its owner's. Mail to jane+shop@, which Postfix delivers to Jane, was judged by no
    list, as the lists of jane+shop@ (none) alone were looked up."""
    return next((lists[form] for form in forms if form in lists), UserLists())


@check("user_listed", *list_rules("USER", "the recipient's", GROUP))
def user_listed(ctx: CheckContext, kind: str) -> CheckResult:
    """kind: "welcome" (a confirmed sender), "unverified" (an unconfirmed one) or "block"."""
    # Cheapest test first: most mail has no recipient with lists, and parsing From is not free.
    recipients = [ctx.config.subaddressing.forms(r) for r in ctx.msg.envelope.rcpt_to]
    lists = _CACHE.get(ctx.config.quarantine) if recipients else None
    if not lists:
        return None
    kept = "block" if kind == "block" else "welcome"  # "unverified" reads the welcome lists
    found: dict[str, str] = {}
    for sender in claimed_senders(ctx):
        entries = [listed(_recipients_lists(lists, forms).entries(kept), sender)
                   for forms in recipients]
        if all(entries):
            found[sender] = evidence(entries) or ""
    return list_result(ctx, kind, found)
