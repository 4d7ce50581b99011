"""The logger dkimpy gets: whatever level a dkimpy release logs at, nothing raises and nothing
reaches the log above debug level (a sender's broken signature is no error of ours)."""

from __future__ import annotations

import logging

import pytest

from mailsift.network.dkim import LibraryLog


def test_every_level_dkimpy_may_use_is_debug_and_none_raises(caplog: pytest.LogCaptureFixture) -> None:
    """It offered only debug and error: a later dkimpy calling warning or exception on a path a
    sender controls would have raised AttributeError out of the DKIM check."""
    caplog.set_level(logging.DEBUG, logger="mailsift.network.dkim")
    log = LibraryLog("mailsift.network.dkim")
    for call in (log.debug, log.info, log.warning, log.error, log.critical, log.exception):
        call("bad key %s", "sel._domainkey.shop.test")
    assert log.isEnabledFor(logging.DEBUG)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] * 6
