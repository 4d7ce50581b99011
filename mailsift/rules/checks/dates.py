"""The Date header: whether it can be read, and how far it lies from when the message arrived.

Offsets are measured against `Message.received_time` (the newest Received date, or the arrival
time the milter saw), never against the clock: a message from 2002 scanned today is not late, and
a benchmark must not punish a corpus for its age. Without a known arrival time no offset rule hits.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from email.utils import parsedate_tz

from mailsift.analysis.model import Message
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "date"
HOUR = 3600.0
FOREVER = 1e9  # hours: an open end for an offset band
# A zone after the time of day: numeric (+0200) or a name (GMT, EST, UT, Z).
ZONE = re.compile(r"\d:\d\d(?::\d\d)?\s*(?:[+-]\d{4}|[A-Za-z]{1,5}\b)")


def _parsed(msg: Message) -> tuple[int, ...] | None:
    """The Date header as `parsedate_tz` reads it, or None when absent or unreadable."""
    value = msg.header("Date")
    if not value:
        return None
    try:
        return parsedate_tz(value)
    except (ValueError, IndexError, OverflowError):
        return None


def _date_seconds(ctx: CheckContext) -> float | None:
    """Seconds since the epoch of the Date header (UTC assumed without a zone), once per message."""

    def compute() -> float | None:
        fields = _parsed(ctx.msg)
        if fields is None:
            return None
        try:
            return float(calendar.timegm((*fields[:6], 0, 0, 0)) - (fields[9] or 0))
        except (ValueError, OverflowError, TypeError):
            return None

    return ctx.memo("date_seconds", compute)


def _arrival_seconds(msg: Message) -> float | None:
    when = msg.received_time
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@check("date_malformed",
       DefaultRule("DATE_MALFORMED", 1.4, "Date header cannot be read as a date", group=GROUP,
                   kind="header"))
def date_malformed(ctx: CheckContext) -> CheckResult:
    """Every mail program writes RFC 5322 dates; a hand-rolled bulk tool often does not."""
    value = ctx.msg.header("Date")
    if not value or _date_seconds(ctx) is not None:
        return None
    return value[:60]


@check("date_no_zone",
       DefaultRule("DATE_NO_ZONE", 2.7, "Date header has no time zone", group=GROUP, kind="header"))
def date_no_zone(ctx: CheckContext) -> CheckResult:
    """A Date without a zone means the sending program did not use a mail library to write it."""
    value = ctx.msg.header("Date")
    if _parsed(ctx.msg) is None or ZONE.search(value):
        return None
    return value[:60]


@check("date_offset",
       DefaultRule("DATE_FUTURE_3_48", 3, "Date is 3 to 48 hours after the message arrived",
                   args=(3, 48), group=GROUP, kind="header"),
       DefaultRule("DATE_FUTURE_48", 2, "Date is more than 48 hours after the message arrived",
                   args=(48, FOREVER), group=GROUP, kind="header"),
       DefaultRule("DATE_PAST_4_30D", 1.7, "Date is 4 to 30 days before the message arrived",
                   args=(-720, -96), group=GROUP, kind="header"),
       DefaultRule("DATE_PAST_30D", 1.5, "Date is more than 30 days before the message arrived",
                   args=(-FOREVER, -720), group=GROUP, kind="header"))
def date_offset(ctx: CheckContext, low_hours: float, high_hours: float) -> CheckResult:
    """Hit when Date minus arrival time lies in [low, high) hours (negative: Date in the past).

    Forward dates keep a message on top of a date-sorted inbox; old dates come from bulk tools
    replaying a template. Real mail is seldom off by more than a clock error or a queue delay.
    """
    sent = _date_seconds(ctx)
    arrived = _arrival_seconds(ctx.msg)
    if sent is None or arrived is None:
        return None
    hours = (sent - arrived) / HOUR
    if not (low_hours <= hours < high_hours):
        return None
    return f"{hours:+.0f} h from arrival {datetime.fromtimestamp(arrived, UTC):%Y-%m-%d %H:%M}"
