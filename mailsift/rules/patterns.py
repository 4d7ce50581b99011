"""Matching many regex rules against one text in linear time, with a budget for the rest.

Hyperscan scans the text once for every pattern it can compile, so a ruleset's cost hardly grows
with its size and a pathological pattern such as `(a+)+$` cannot backtrack. A hyperscan hit is then
confirmed by the `regex` module, which gives the exact Python/Perl semantics and the matched text
for the report. Patterns hyperscan rejects even as a prefilter (rare constructs) run on `regex`
alone, under the message's time budget; a rule that overruns is logged by name and counts as no hit.

Two hyperscan databases per set. Patterns written in ASCII (nearly all) run in byte mode over a
one-byte-per-character image of the text in which every non-ASCII character is the byte 0xFF:
lengths in characters equal lengths in bytes, and an ASCII pattern can only match such a character
through a negated class or a dot, exactly as `regex` does in ASCII mode — which the confirming
`regex` uses for them (SpamAssassin matches bytes, so `\\w` and `\\b` were ASCII there too). Byte
mode also compiles bounded repeats like `[^>]{0,200}` fifty times faster than UTF-8 mode. Patterns
that name non-ASCII characters (Russian or German phrases) run in UTF-8 mode over UTF-8 text.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import hyperscan
import regex
from hyperscan._hs_ext import HS_MODE_BLOCK
from pebble import ProcessPool

from mailsift.ownership import adopt_folder_owner, make_folders, owner_hint
from mailsift.rules.model import RuleDef

log = logging.getLogger(__name__)

EVIDENCE_CHARS = 60

# Modes a compiled rule can be in: hyperscan decides alone (exact), hyperscan narrows the candidates
# that `regex` decides (prefilter), or `regex` alone under the time budget.
EXACT, PREFILTER, REGEX_ONLY = "exact", "prefilter", "regex"
MODES = frozenset({EXACT, PREFILTER, REGEX_ONLY})
CACHE_UNUSED_DAYS = 30  # see prune_cache
PROBE_SECONDS = 0.25  # a pattern hyperscan needs longer than this for runs on `regex` instead

HIGH_BYTE = "mailsift-high-byte"
codecs.register_error(HIGH_BYTE, lambda err: ("\xff" * (err.end - err.start), err.end))


def ascii_image(text: str) -> bytes:
    """One byte per character: ASCII as itself, everything else as 0xFF."""
    return text.encode("latin-1", HIGH_BYTE).translate(_HIGH_TO_FF)


_HIGH_TO_FF = bytes(range(128)) + b"\xff" * 128


class Budget:
    """Seconds left for the slow path of one message; shared by every pattern set and header rule.

    CPU seconds of this process, the clock `regex` counts its `timeout` on, so that the whole
    budget is spent as each rule's is: by the work the rules do. On the wall clock it ran out
    while other processes held the CPU, and a message that needed 0.6 s of CPU lost rules to a
    1.0 s budget on a busy host, so a verdict depended on the load and `mailsift check` could
    not show it again. milter.timeout bounds the message's wall time."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.process_time() + seconds

    def remaining(self) -> float:
        return self.deadline - time.process_time()


@dataclass
class Match:
    count: int
    evidence: str


def regex_flags(rule: RuleDef, multiline: bool) -> int:
    flags = regex.V0
    if "i" in rule.flags:
        flags |= regex.IGNORECASE
    if "s" in rule.flags:
        flags |= regex.DOTALL
    if "x" in rule.flags:
        flags |= regex.VERBOSE
    if multiline or "m" in rule.flags:
        flags |= regex.MULTILINE
    if _is_ascii_pattern(rule.pattern or ""):
        flags |= regex.ASCII
    return flags


def _is_ascii_pattern(pattern: str) -> bool:
    """True when the pattern names only ASCII characters, so ASCII class semantics lose nothing."""
    return pattern.isascii() and not regex.search(r"\\(?:x\{|u|U|N\{|p\{|P\{|x[89a-fA-F])", pattern)


def _hyperscan_source(rule: RuleDef, multiline: bool) -> tuple[bytes, int]:
    """The rule's pattern and flags as hyperscan (PCRE syntax, UTF-8 mode) expects them."""
    pattern = (rule.pattern or "").replace("(?P<", "(?<")
    pattern = regex.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1\\z", pattern)
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    if "i" in rule.flags:
        flags |= hyperscan.HS_FLAG_CASELESS
    if "s" in rule.flags:
        flags |= hyperscan.HS_FLAG_DOTALL
    if multiline or "m" in rule.flags:
        flags |= hyperscan.HS_FLAG_MULTILINE
    if "x" in rule.flags:
        pattern = "(?x)" + pattern
    if not _is_ascii_pattern(pattern):
        flags |= hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP
    return pattern.encode("utf-8"), flags


def _compiles(expression: bytes, flags: int) -> bool:
    try:
        hyperscan.Database().compile(expressions=[expression], ids=[0], elements=1, flags=[flags])
    except hyperscan.error:
        return False
    return True


def _hyperscan_mode(expression: bytes, flags: int) -> tuple[str, int]:
    if _compiles(expression, flags):
        return EXACT, flags
    # Case-insensitive non-ASCII text needs UCP, which refuses \b: such patterns stay on `regex`.
    prefilter = flags | hyperscan.HS_FLAG_PREFILTER
    if _compiles(expression, prefilter):
        return PREFILTER, prefilter
    return REGEX_ONLY, flags


def _modes(sources: list[tuple[bytes, int]], cache: Path | None) -> list[tuple[str, int]]:
    """Each pattern's mode. Probing compiles every pattern alone, which takes a SpamAssassin
    ruleset close to a minute, so each answer is cached by its own pattern: an edit to one rule
    file probes only the patterns that changed (a cache per whole set probed them all again)."""
    keys = [_mode_key(expression, flags) for expression, flags in sources]
    known = _read_modes(cache)
    missing = {key: source for key, source in zip(keys, sources, strict=True)
               if not _fits(known.get(key), source[1])}
    if missing:
        known.update(zip(missing, _probe_all(list(missing.values())), strict=True))
        if cache is not None:
            # Merged with what another process may have written meanwhile (workers start at once).
            merged = {**_read_modes(cache), **known}
            _write_atomically(_modes_file(cache), "".join(
                f"{key} {mode} {flags}\n" for key, (mode, flags) in merged.items()).encode())
    return [known[key] for key in keys]


def _mode_key(expression: bytes, flags: int) -> str:
    return hashlib.sha256(repr((expression, flags)).encode()).hexdigest()[:32]


def _modes_file(cache: Path) -> Path:
    return cache / f"modes-hyperscan-{hyperscan.__version__}.txt"


def _read_modes(cache: Path | None) -> dict[str, tuple[str, int]]:
    if cache is None:
        return {}
    try:
        text = _modes_file(cache).read_text(encoding="ascii")
    except FileNotFoundError:
        return {}
    except OSError as exc:  # unreadable for this user, say
        _cache_trouble(cache, _os_error_text(exc))
        return {}
    except ValueError:  # not text: damaged
        _cache_trouble(cache, f"{_modes_file(cache).name} is damaged")
        return {}
    _mark_used(_modes_file(cache))
    return dict(filter(None, map(_mode_line, text.split("\n")[:-1])))


def _mode_line(line: str) -> tuple[str, tuple[str, int]] | None:
    """One cached answer, or None for a line no mailsift wrote. Only lines ending in a newline
    are read (the split drops the last piece): a file cut short mid-line could otherwise turn
    flags 29 into 2, a caseless pattern into a case-sensitive one."""
    fields = line.split(" ")
    if len(fields) != 3 or fields[1] not in MODES or not fields[2].isdigit():
        return None
    key, mode, flags = fields
    return key, (mode, int(flags))


def _fits(known: tuple[str, int] | None, flags: int) -> bool:
    """A cached answer agrees with the flags it was asked for: the prefilter flag alone may differ
    (see `_hyperscan_mode`). Anything else is damage, and the pattern is probed again."""
    if known is None:
        return False
    mode, found = known
    return found == (flags | hyperscan.HS_FLAG_PREFILTER if mode == PREFILTER else flags)


def _probe_all(sources: list[tuple[bytes, int]]) -> list[tuple[str, int]]:
    """Probe each pattern in worker processes, with a time limit.

    Hyperscan compiles most patterns in a millisecond, but a few large ones (SpamAssassin's
    template-built rules) take seconds to minutes. A pattern that cannot be compiled within
    PROBE_SECONDS runs on `regex` under the message budget instead, so start-up stays bounded.
    However few patterns are new: probing small sets in-process saved ~50 ms a start, and one
    such rule added to a site's local.cf (or changed by sa-update) then held the start or reload
    for 40 s and more. A daemonic process may not start workers; the callers that run in one
    (scoring workers) find the modes cached by their parent.
    """
    if multiprocessing.current_process().daemon:
        return [_hyperscan_mode(expression, flags) for expression, flags in sources]
    # fork copies the calling thread alone: in the threaded milter (a reload) a lock another thread
    # held would stay held in the child for good. The fork server (started by the milter before
    # its first thread) hands out clean copies; forking is cheaper where no other thread exists.
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    with ProcessPool(max_workers=os.cpu_count() or 1, context=context, initializer=_killable) as pool:
        futures = [pool.schedule(_hyperscan_mode, args=source, timeout=PROBE_SECONDS)
                   for source in sources]
        return [_probe_result(future, flags) for future, (_, flags) in zip(futures, sources, strict=True)]


def _killable() -> None:
    """pebble stops an overrunning worker with SIGTERM, which its Python handler takes only once
    hyperscan's compile returns to the interpreter: each pattern over PROBE_SECONDS held its
    worker up to pebble's 3 s before SIGKILL (40 of the 45 s SpamAssassin's body rules took).
    The default action ends the worker at once; pebble stops no worker that holds its channel."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _probe_result(future: Future[tuple[str, int]], flags: int) -> tuple[str, int]:
    try:
        return future.result()
    except FutureTimeout:
        return REGEX_ONLY, flags


def _write_atomically(path: Path, data: bytes) -> None:
    """Several workers may start at once: write aside and rename, so nobody reads half a file;
    synced before the rename, so a power cut leaves the old file or the new one, not an empty
    one. As root (`mailsift check` after an upgrade), what is written takes the folder's owner,
    or the milter's user could no longer read the cache (see mailsift.ownership)."""
    try:
        make_folders(path.parent, 0o700)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            try:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
                adopt_folder_owner(Path(tmp.name))
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, path)
    except OSError as exc:
        _cache_trouble(path.parent, _os_error_text(exc))


def _load_database(path: Path) -> hyperscan.Database | None:
    """A database an earlier start compiled, or None to compile it again: a file cut short or
    damaged, one this user may not read (written by root), or one hyperscan will not load
    (another hyperscan build or CPU) must cost start-up time, never the start."""
    try:
        database = hyperscan.loadb(path.read_bytes(), HS_MODE_BLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _cache_trouble(path.parent, _os_error_text(exc))
        return None
    except hyperscan.error as exc:
        _cache_trouble(path.parent, f"{path.name} is damaged or was compiled by another hyperscan "
                                    f"build or CPU ({type(exc).__name__})")
        return None
    _mark_used(path)
    return database


def _mark_used(path: Path) -> None:
    """Date a cache file by its last use, which is what prune_cache goes by. A file the milter's
    user may read but not change (root's) keeps its date, and may be pruned and rebuilt."""
    with suppress(OSError):
        os.utime(path)


def _ours(name: str) -> bool:
    """A file this cache writes: a database, a modes file (`*.modes` from older mailsifts), or
    the temporary file of a write a crash cut short. Only these: rules.cache_dir may name a
    folder that holds other things."""
    return name.endswith((".hsdb", ".modes")) or name.startswith(("modes-hyperscan-", "tmp"))


def prune_cache(cache: Path) -> None:
    """Remove the cache files no start has used for CACHE_UNUSED_DAYS. Every edit of a rule file
    adds databases (half a megabyte for the shipped body rules), every hyperscan upgrade a new
    modes file, and nothing removed the old ones: the folder only grew. A file pruned that was
    still wanted (a config started once a quarter) costs that start a compile, no more."""
    old = time.time() - CACHE_UNUSED_DAYS * 86400
    with suppress(OSError):
        for path in cache.iterdir():
            with suppress(OSError):
                if _ours(path.name) and path.stat().st_mtime < old:
                    path.unlink()


_troubled: set[Path] = set()  # cache folders this process has warned about


def _os_error_text(exc: OSError) -> str:
    """The error and, when a file or folder is another user's, whose it is (root's, mostly)."""
    named = Path(exc.filename) if exc.filename else None
    return f"{exc}{(named and owner_hint(named)) or ''}"


def _cache_trouble(cache: Path, why: str) -> None:
    """One warning per folder and process, however many files fail: the cache is rebuilt or
    skipped, and the admin needs to hear it once. A scoring worker only logs it at info level,
    as the milter process, which builds the same rules just before, has warned already."""
    if cache in _troubled:
        return
    _troubled.add(cache)
    level = logging.INFO if multiprocessing.current_process().daemon else logging.WARNING
    log.log(level, "rules cache %s: %s; compiling instead of loading (a slower start)", cache, why)


@dataclass
class _Entry:
    rule: RuleDef
    compiled: regex.Pattern[str]
    mode: str
    multiple: bool


class _Database:
    """One hyperscan database and its scratch space; `image` turns the text into what it scans."""

    def __init__(self, image: Callable[[str], bytes]) -> None:
        self.image = image
        self.ids: list[int] = []
        self.expressions: list[bytes] = []
        self.flags: list[int] = []
        self.database: hyperscan.Database | None = None

    def add(self, entry_id: int, expression: bytes, flags: int) -> None:
        self.ids.append(entry_id)
        self.expressions.append(expression)
        self.flags.append(flags)

    def compile(self, cache: Path | None) -> None:
        """Compile, or load the same database compiled by an earlier start (it takes seconds)."""
        if not self.ids:
            return
        key = hashlib.sha256(repr((hyperscan.__version__, self.ids, self.expressions, self.flags))
                             .encode()).hexdigest()[:32]
        cached = cache / f"{key}.hsdb" if cache else None
        self.database = _load_database(cached) if cached is not None else None
        if self.database is None:
            self.database = hyperscan.Database()
            self.database.compile(expressions=self.expressions, ids=self.ids, elements=len(self.ids),
                                  flags=self.flags)
            if cached is not None:
                _write_atomically(cached, hyperscan.dumpb(self.database))
        self.scratch = hyperscan.Scratch(self.database)

    def scan(self, text: str, found: set[int]) -> None:
        if self.database is None:
            return

        def on_match(rule_id: int, _start: int, _end: int, _flags: int, _ctx: object) -> None:
            found.add(rule_id)

        self.database.scan(self.image(text), match_event_handler=on_match, scratch=self.scratch)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


class PatternSet:
    """All enabled rules of one kind (body, rawbody, uri or full), matched together."""

    def __init__(self, kind: str, rules: Iterable[tuple[RuleDef, regex.Pattern[str]]],
                 multiline: bool, cache: Path | None = None) -> None:
        self.kind = kind
        self.entries: list[_Entry] = []
        self.databases = (_Database(ascii_image), _Database(_utf8))
        sources = [(rule, compiled, *_hyperscan_source(rule, multiline)) for rule, compiled in rules]
        modes = _modes([(expression, flags) for _, _, expression, flags in sources], cache)
        for (rule, compiled, expression, _), (mode, flags) in zip(sources, modes, strict=True):
            if mode != REGEX_ONLY:
                utf8 = bool(flags & hyperscan.HS_FLAG_UTF8)
                self.databases[utf8].add(len(self.entries), expression, flags)
            self.entries.append(_Entry(rule, compiled, mode, "multiple" in rule.tflags))
        for database in self.databases:
            database.compile(cache)
        self.slow = [e for e in self.entries if e.mode == REGEX_ONLY]

    def counts(self) -> dict[str, int]:
        """How many rules run in each mode: for lint and the start-up log."""
        found = {EXACT: 0, PREFILTER: 0, REGEX_ONLY: 0}
        for entry in self.entries:
            found[entry.mode] += 1
        return found

    def match(self, text: str, budget: Budget, errors: dict[str, str]) -> dict[str, Match]:
        hits: dict[str, Match] = {}
        for entry in self._candidates(text):
            found = _confirm(entry, text, budget, errors)
            if found is not None:
                hits[entry.rule.name] = found
        return hits

    def _candidates(self, text: str) -> list[_Entry]:
        candidates: set[int] = set()
        if text:
            for database in self.databases:
                database.scan(text, candidates)
        return [self.entries[i] for i in sorted(candidates)] + self.slow


def _confirm(entry: _Entry, text: str, budget: Budget, errors: dict[str, str]) -> Match | None:
    """Run the exact regex for a candidate; decide what a budget overrun means for its mode."""
    remaining = budget.remaining()
    if remaining <= 0:
        return _overrun(entry, errors, "time budget for slow rules already spent")
    try:
        if entry.multiple:
            found = list(_limited(entry.compiled.finditer(text, timeout=remaining), entry.rule.maxhits))
            if not found:
                return None
            return Match(len(found), _evidence(found[0].group(0)))
        m = entry.compiled.search(text, timeout=remaining)
    except TimeoutError:
        return _overrun(entry, errors, "exceeded the per-message time budget")
    return Match(1, _evidence(m.group(0))) if m else None


def _overrun(entry: _Entry, errors: dict[str, str], why: str) -> Match | None:
    """An exact hyperscan hit stands without evidence; otherwise the rule counts as not hit."""
    if entry.mode == EXACT:
        return Match(1, "")
    log.warning("rule %s: %s; counted as not hit", entry.rule.name, why)
    errors[entry.rule.name] = why
    return None


def _limited(matches: Iterable[regex.Match[str]], limit: int) -> Iterable[regex.Match[str]]:
    for count, m in enumerate(matches, 1):
        yield m
        if limit and count >= limit:
            return


def _evidence(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"
