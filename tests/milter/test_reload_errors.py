"""A reload that cannot read the configuration keeps the running one and the reload thread.

The thread that waits for SIGUSR1 is the only one: an exception raised out of `Reloader.reload`
ended it, and every later `systemctl reload` did nothing, without a word in the log. A typo
(ConfigError) was always caught; these are the other faults reading the file can meet.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailsift.config import Config
from mailsift.milter.reload import Reloader
from mailsift.milter.session import Service


def never_started(config: Config, running: Service) -> Service:
    raise AssertionError("a reload that could not read its config started a service")


@pytest.mark.parametrize("config_file", ["/etc/mailsift/mail\0sift.toml", "deep.toml"])
def test_a_config_that_cannot_be_read_keeps_the_running_one(
        tmp_path: Path, config_file: str, caplog: pytest.LogCaptureFixture) -> None:
    """A path with a NUL byte (Path raises ValueError, no OSError) and TOML nested too deep
    for tomllib's recursion: reload returns False, logs one error and raises nothing."""
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    path = str(deep) if config_file == "deep.toml" else config_file
    reloader = Reloader(path, Config(), never_started)
    with caplog.at_level(logging.ERROR, logger="mailsift.milter"):
        assert reloader.reload() is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "still running the previous" in errors[0], errors
    assert reloader.config == Config()
