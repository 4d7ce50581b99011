"""Pausing a sender whose outbound mail keeps scoring as spam.

A compromised customer account sends thousands of messages an hour. Each one over the outbound
quarantine or reject threshold is stopped, but the rest, scored a little lower, still leaves and
gets the provider's relays listed. So once a sender has sent `limit` such messages within
`minutes`, all their mail is deferred (451) until the oldest of them falls out of that window:
nothing is lost, a legitimate user sees their client retry, and a spam run stalls. A sender is the
SASL login, or the client address for hosts in trusted_networks.

The moving window comes from the `limits` library (Flask-Limiter's engine). Counts are kept per
milter host, in memory: a restart forgives, as it does for the web UI's login throttle.
"""

from __future__ import annotations

import logging

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("mailsift.milter")

HOLD_REPLY = ("451", "4.7.1", "Sending paused: too much of your recent mail looked like spam; "
              "it will resume by itself, or ask your provider")


class SenderHold:
    """`held(sender)` before scoring; `spam(sender)` for each outbound message stopped as spam."""

    def __init__(self, limit: int, minutes: int) -> None:
        self.limit = limit
        self.minutes = minutes
        self.window = RateLimitItemPerMinute(max(limit, 1), minutes)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def held(self, sender: str) -> bool:
        return self.limit > 0 and not self.limiter.test(self.window, sender)

    def spam(self, sender: str) -> None:
        if self.limit > 0 and self.limiter.hit(self.window, sender) and self.held(sender):
            log.warning("outbound mail of %s paused: %d messages in %d minutes scored as spam; "
                        "their mail is deferred until the window lets one go", sender, self.limit,
                        self.minutes)
