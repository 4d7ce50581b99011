"""`mailsift postfix`: the main.cf lines follow the milter's own settings."""

from __future__ import annotations

from mailsift.config import parse_config
from mailsift.milter.postfix import postfix_lines


def test_postfix_waits_for_two_milter_timeouts() -> None:
    """Under a burst a message may wait for a libmilter thread while others use their whole
    milter.timeout; Postfix then waited up to twice it (measured in test_milter_burst). The lines
    said timeout + 30 s: with a 60 s timeout Postfix gave up at 90 s and applied
    milter_default_action itself (with accept, the message left unfiltered)."""
    lines = postfix_lines(parse_config({"milter": {"timeout": 60}}, "m.toml")).splitlines()
    assert "milter_content_timeout = 130s" in lines
