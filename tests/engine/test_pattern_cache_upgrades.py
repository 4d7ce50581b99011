"""The compiled-rules cache (rules.cache_dir) as upgrades and power cuts leave it: a file cut
short, damaged or written by root must cost the milter start-up time and one warning, never its
start, and a damaged answer must never stand for a rule. A zero-length database file stopped
`mailsift check` with "internal error: InvalidError", and the milter's workers with it; a cache
root had written stopped the milter's user with a PermissionError."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hyperscan
import pytest
from hyperscan._hs_ext import HS_MODE_BLOCK

from mailsift.config import Config
from mailsift.rules import patterns
from mailsift.rules.engine import Engine
from mailsift.rules.model import RuleSet
from mailsift.rules.registry import CheckContext
from tests.engine.test_engine import message, rule
from tests.support.open_together import failures_opening_together

RULES = [rule("CHEAP_WATCHES", "body", r"cheap\s+watches", flags="i"),
         rule("A_URL", "uri", r"example\.test/x")]
TEXT = "Please buy CHEAP watches"
CASELESS_BODY_FLAGS = (hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
                       | hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_MULTILINE)
NOBODY = pwd.getpwnam("nobody")
as_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root writes files for another user")


class Collected(logging.Handler):
    """What the pattern module said about its cache, at any level (a scoring worker, daemonic
    as the test's child is, says it at info level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "cache" in record.getMessage():
            self.said.append(record.getMessage())


@pytest.fixture(autouse=True)
def said() -> Iterator[list[str]]:
    """Cache messages of this test alone: each process warns once per cache folder."""
    handler = Collected()
    logger = logging.getLogger(patterns.__name__)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    troubled = set(getattr(patterns, "_troubled", set()))
    yield handler.said
    logger.removeHandler(handler)
    logger.setLevel(level)
    if hasattr(patterns, "_troubled"):
        patterns._troubled.clear()
        patterns._troubled.update(troubled)


def scored(cache: Path) -> list[str]:
    engine = Engine(RuleSet(rules={r.name: r for r in RULES}), {}, cache)
    return engine.run(CheckContext(message(TEXT), Config()), 0, 5.0, 1.0).rule_names


@pytest.mark.parametrize("damage", [lambda data: b"", lambda data: data[: len(data) // 2],
                                    lambda data: os.urandom(len(data))],
                         ids=["zero-length", "cut-short", "garbage"])
def test_a_compiled_database_cut_short_or_damaged_is_compiled_again_with_one_warning(
        tmp_path: Path, said: list[str], damage: Callable[[bytes], bytes]) -> None:
    assert scored(tmp_path) == ["CHEAP_WATCHES"]
    databases = list(tmp_path.glob("*.hsdb"))
    assert databases
    for path in databases:
        path.write_bytes(damage(path.read_bytes()))
    said.clear()
    assert scored(tmp_path) == ["CHEAP_WATCHES"]
    assert len(said) == 1 and str(tmp_path) in said[0], said
    for path in databases:  # written again: the next start loads them
        hyperscan.loadb(path.read_bytes(), HS_MODE_BLOCK)


def test_a_modes_file_cut_short_mid_line_is_not_believed(tmp_path: Path) -> None:
    """A power cut in the middle of the last line left `... exact 2` for `... exact 29`: the
    caseless rule ran case-sensitive, and missed, until the cache was deleted by hand."""
    scored(tmp_path)
    [modes] = tmp_path.glob("modes-*")
    lines = modes.read_text().splitlines()
    [caseless] = [line for line in lines if line.endswith(f" {CASELESS_BODY_FLAGS}")]
    others = [line for line in lines if line != caseless]
    modes.write_text("".join(f"{line}\n" for line in others) + caseless[:-1])
    assert scored(tmp_path) == ["CHEAP_WATCHES"]


def test_a_modes_file_of_garbage_is_probed_again(tmp_path: Path, said: list[str]) -> None:
    scored(tmp_path)
    [modes] = tmp_path.glob("modes-*")
    modes.write_bytes(b"\x00\xff" * 200)
    said.clear()
    assert scored(tmp_path) == ["CHEAP_WATCHES"]
    assert len(said) == 1, said


@pytest.fixture
def milter_home() -> Iterator[Path]:
    """A state folder of the milter's user (nobody here), outside pytest's root-only tmp_path."""
    home = Path(tempfile.mkdtemp(prefix="mailsift-cache-"))
    home.chmod(0o755)
    os.chown(home, NOBODY.pw_uid, NOBODY.pw_gid)
    yield home
    shutil.rmtree(home)


def as_milter_user(work: Callable[[], object]) -> str:
    """Run `work` in a child that is the milter's user; what it raised, or ""."""
    def as_nobody(_: int) -> None:
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
        work()

    return "".join(failures_opening_together(as_nobody, rounds=1, processes=1))


def milter_start(cache: Path, said: list[str], warnings: int) -> Callable[[], None]:
    def start() -> None:
        said.clear()  # what the parent heard
        assert scored(cache) == ["CHEAP_WATCHES"]
        assert len(said) == warnings, said
    return start


@as_root_only
def test_files_root_writes_into_the_cache_are_the_milter_users(milter_home: Path,
                                                               said: list[str]) -> None:
    """`mailsift check` as root after an upgrade, with rules.cache_dir set: its files were
    root's, mode 0600, and the milter's user stopped on the first with a PermissionError."""
    cache = milter_home / "cache"
    assert scored(cache) == ["CHEAP_WATCHES"]
    assert {path.stat().st_uid for path in [cache, *cache.iterdir()]} == {NOBODY.pw_uid}
    assert as_milter_user(milter_start(cache, said, warnings=0)) == ""


@as_root_only
def test_a_cache_folder_root_made_costs_the_milter_user_one_warning(milter_home: Path,
                                                                    said: list[str]) -> None:
    """One a mailsift before this one made as root (mode 0700) stays root's: the milter's user
    compiles without it, and says so once."""
    cache = milter_home / "cache"
    cache.mkdir(mode=0o700)
    assert scored(cache) == ["CHEAP_WATCHES"]
    assert as_milter_user(milter_start(cache, said, warnings=1)) == ""


def test_cache_files_no_start_used_for_a_month_are_pruned(tmp_path: Path) -> None:
    """Each rule edit added databases and each hyperscan upgrade a modes file, and nothing removed
    the old ones. What a start loads is dated by that use and stays, however old the file; what
    no start used for CACHE_UNUSED_DAYS goes, and files the cache does not write stay."""
    scored(tmp_path)
    in_use = {path.name for path in tmp_path.iterdir()}
    for name in ["0123abcd.hsdb", "0123abcd.modes", "modes-hyperscan-0.1.0.txt", "tmpk2j3h4",
                 "notes.txt", "recent.hsdb"]:
        (tmp_path / name).write_bytes(b"x")
    month_ago = time.time() - (patterns.CACHE_UNUSED_DAYS + 1) * 86400
    for path in tmp_path.iterdir():
        os.utime(path, (month_ago, month_ago) if path.name != "recent.hsdb" else None)

    assert scored(tmp_path) == ["CHEAP_WATCHES"]  # the next start loads (and so dates) its files
    patterns.prune_cache(tmp_path)
    assert {path.name for path in tmp_path.iterdir()} == in_use | {"notes.txt", "recent.hsdb"}
    assert scored(tmp_path) == ["CHEAP_WATCHES"]
