"""The quarantine as plain text for the terminal: the list, one message, and time arguments."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mailsift.analysis.relays import client_text
from mailsift.quarantine.model import (
    FORGED_MARK,
    FORGED_MEANS,
    RELEASING,
    forged_mark,
    forged_text,
    rule_rows,
)
from mailsift.report import score_table, with_evidence

RELATIVE = re.compile(r"^(\d+)([dh])$")
SUBJECT_WIDTH = 40
SENDER_WIDTH = 28


SINCE_FORMS = "7d, 12h, 2024-05-01 or an ISO time"  # what parse_since reads, for its users
# The state a list shows for a message whose release began and was never recorded as done or
# failed (review.release): "released" with a doubt, in the list's own word for released mail.
MAYBE_RELEASED = "released?"
MAY_HAVE_BEEN_RELEASED = "may have been released"  # the same state in words: the web UI's
# Why such a release is unsure: another process (the CLI, a second web UI) meets it while it is
# still being sent as well as after a failure; naming only the failure read as an alarm then.
UNRECORDED = ("it began, and whether the mail was sent is not recorded: it is still being sent, "
              "or the quarantine index failed or the release was stopped before it recorded that")


def parse_since(value: str) -> datetime:
    """'7d', '12h', '2024-05-01' or an ISO time (UTC unless it says otherwise); ValueError."""
    try:
        relative = RELATIVE.match(value.strip())
        if relative:  # 99999999999d overflows: as any time no calendar holds, a ValueError
            amount = int(relative[1])
            delta = timedelta(days=amount) if relative[2] == "d" else timedelta(hours=amount)
            return datetime.now(UTC) - delta
        when = datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        raise ValueError(f"--since {value!r}: use {SINCE_FORMS}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def short_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def state_word(record: dict[str, Any], maybe_released: str = MAYBE_RELEASED) -> str:
    """A message's state for the lists: `maybe_released` for one whose release was not
    recorded (see `unsure_releases`; the web UI's list says it in words)."""
    return maybe_released if record["state"] == RELEASING else str(record["state"])


def unsure_releases(record: dict[str, Any]) -> str:
    """What a record left "releasing" says: "may have been released at 2024-05-01 10:00 UTC to
    jane@example.org (by admin)", one clause per release that began ('' when none is open).
    It said "held", and the next release sent every recipient another copy."""
    began: dict[tuple[str, str], list[str]] = {}
    for address, attempt in (record.get("releasing") or {}).items():
        began.setdefault((attempt["time"], attempt["by"]), []).append(address)
    return "; ".join(f"{MAY_HAVE_BEEN_RELEASED} at {short_time(when)} UTC to {', '.join(to)} "
                     f"(by {by})" for (when, by), to in sorted(began.items()))


def list_text(records: list[dict[str, Any]], total: int, page: int, pages: int) -> str:
    """The list, then a line saying which page this is and what to type for the next one, and
    what MAYBE_RELEASED and FORGED_MARK (after the subject) mean when a row says them."""
    rows = [f"{'ID':<22}  {'Time (UTC)':<16}  {'Score':>6}  {'State':<9}  "
            f"{'From':<{SENDER_WIDTH}}  Subject"]
    for r in records:
        sender = r.get("from") or r.get("mail_from") or "<>"
        rows.append(f"{r['id']:<22}  {short_time(r['time']):<16}  {r['score']:6.1f}  "
                    f"{state_word(r):<9}  {_cut(sender, SENDER_WIDTH):<{SENDER_WIDTH}}  "
                    f"{marked(_cut(r.get('subject') or '(no subject)', SUBJECT_WIDTH), r)}")
    footer = f"{len(records)} of {total} message(s)"
    if pages > 1 or page > pages:  # past the last page too: "0 of 3 message(s)" alone said not why
        footer += f", page {page} of {pages}"
    if page < pages:
        footer += f"; next: --page {page + 1} (every one: --all)"
    if any(r["state"] == RELEASING for r in records):
        footer += (f"\n{MAYBE_RELEASED}: may have been released: {UNRECORDED}; `quarantine show ID` "
                   "says when and to whom")
    if any(forged_mark(r) for r in records):
        footer += f"\n{FORGED_MARK}: {FORGED_MEANS}; `quarantine show ID` lists them"
    return "\n".join([*rows, footer])


def marked(subject: str, record: dict[str, Any]) -> str:
    """A row's subject with FORGED_MARK after it for a message that came with forged results:
    the CLI's list and the digest, whose rows end with the subject."""
    mark = forged_mark(record)
    return f"{subject}  {mark}" if mark else subject


def show_text(r: dict[str, Any]) -> str:
    """One message for `quarantine show`. The score line names the action only: the stored reason
    ("score 11.0 (required 5.0): RULES") repeats the score beside it and the rules below."""
    lines = [
        f"Id:          {r['id']}   ({state_word(r)})",
        *_unsure_line(r),
        f"Arrived:     {short_time(r['time'])} UTC on {r.get('host', '-')}, "
        f"queue id {r.get('queue_id', '-')}",
        f"Client:      {client_text(r.get('client_name') or '', r.get('client_ip') or '')} "
        f"HELO {r.get('helo') or '-'}",
        f"Envelope:    <{r['mail_from']}> -> {', '.join(f'<{a}>' for a in r['recipients'])}",
        f"From:        {r.get('from', '')}",
        f"Subject:     {r.get('subject', '')}",
        *_labelled("Forged auth: ", forged_text(r)),
        f"Size:        {r['size']} bytes",
        f"Score:       {r['score']:.1f} (required {r['required_score']:.1f}), {r['action']}",
        "",
        score_table([(rule["score"], rule["name"], with_evidence(rule["description"], rule["evidence"]))
                     for rule in rule_rows(r)], "Matching rule"),
    ]
    history = [f"  {e['time']}  {e['user']}: {e['action']} {e['detail']}".rstrip()
               for e in r.get("events", [])]
    lines += ["", "History:", *(history or ["  (nothing done yet)"])]
    return "\n".join(lines)


def _labelled(label: str, text: str) -> list[str]:
    """`show`'s line for a fact most messages lack: none without it."""
    return [label + text] if text else []


def _unsure_line(record: dict[str, Any]) -> list[str]:
    """`show`'s line for a release that was not recorded, with the way to send another copy."""
    unsure = unsure_releases(record)
    if not unsure:
        return []
    return [f"Released?:   {unsure[0].upper()}{unsure[1:]}: {UNRECORDED}; to send another copy: "
            f"mailsift quarantine release {record['id']} --again"]
