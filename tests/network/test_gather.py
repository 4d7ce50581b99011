"""One network check that fails in a way nobody foresaw costs that check only."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mailsift.network.gather import _isolated


async def _library_bug() -> list[str]:
    raise KeyError("a record the library did not expect")


async def _answer() -> list[str]:
    return ["pass"]


def test_a_check_that_raises_gives_no_verdict_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        assert asyncio.run(_isolated("DKIM", _library_bug(), [])) == []
    assert asyncio.run(_isolated("DKIM", _answer(), [])) == ["pass"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("network check DKIM failed (KeyError:") and "not hit" in warning
