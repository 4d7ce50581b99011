"""A lasting condition is warned about once per interval, and the next warning counts the repeats."""

from __future__ import annotations

import logging

import pytest

from mailsift.log_throttle import ThrottledWarning


def test_repeats_within_the_interval_are_counted_into_the_next_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    warn = ThrottledWarning(logging.getLogger("mailsift.test"), every=600, clock=lambda: now[0]).warn
    with caplog.at_level(logging.WARNING, logger="mailsift.test"):
        for second in (0, 1, 2, 599):
            now[0] = second
            warn("zone a", "list %s refuses us", "a.test")
        warn("zone b", "list %s refuses us", "b.test")  # another condition has its own interval
        now[0] = 600
        warn("zone a", "list %s refuses us", "a.test")
        now[0] = 1300
        warn("zone a", "list %s refuses us", "a.test")
    assert [r.getMessage() for r in caplog.records] == [
        "list a.test refuses us",
        "list b.test refuses us",
        "list a.test refuses us (3 more time(s) since the last such warning)",
        "list a.test refuses us",
    ]
