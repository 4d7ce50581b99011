"""What `mailsift learn` does for each of its modes; the CLI only parses options and prints.

Store failures end the command with one clear line (the caller prints it): training that cannot
reach its store must say so and exit non-zero, never pretend it learned. So does a PATH named on
the command line that gave nothing to learn (a typo in a cron job would otherwise learn nothing,
night after night, with exit status 0); files that fail inside a folder are named in the report
and do not change the exit status, as one odd file in a spam folder is no reason to alarm.
"""

from __future__ import annotations

import gzip
import io
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tqdm import tqdm

from mailsift.classifier.filter import BayesFilter, for_name, recipient_prefix, repair_named
from mailsift.classifier.open_store import open_store, unmade_sqlite
from mailsift.classifier.store import (
    BackupError,
    Label,
    StoreDamaged,
    StoreError,
    TokenStore,
    Totals,
    read_backup,
    write_backup,
)
from mailsift.config import BayesConfig, Config
from mailsift.training.learn import LearnStopped, learn
from mailsift.training.pyzor import tell_pyzor
from mailsift.training.sources import Item, iter_messages, looks_like_mail

VERBS = {"spam": "Learned", "ham": "Learned", "report": "Learned", "revoke": "Learned",
         "forget": "Forgot"}
SHARING = {"report": "Reported", "revoke": "Revoked"}
GZIP_MAGIC = b"\x1f\x8b"
# The modes that read or maintain what a store learned, and never fill it (see _refuse_unmade).
LOOKING = frozenset({"dump", "expire", "clear", "clear-reports", "backup", "forget"})
LABELS = {"spam": Label.SPAM, "report": Label.SPAM, "ham": Label.HAM, "revoke": Label.HAM}


class LearnCommandError(Exception):
    """One line for the user: what failed and where."""


@dataclass(frozen=True)
class LearnOutput:
    """`text` for standard output; `errors`, when any, follow it on standard error, one line
    each, with a non-zero exit status."""

    text: str
    errors: tuple[str, ...] = ()


def run_learn(config: Config, mode: str, paths: list[str], file: str | None, mbox: bool,
              prefix: str | None, recipient: bool = False) -> LearnOutput:
    """`recipient`: `prefix` is the store of one recipient (`--for`), which shares the site's
    spam reports (see BayesFilter.reports)."""
    _refuse_unmade(config.bayes, mode)
    if mode == "stores" and (path := unmade_sqlite(config.bayes)) is not None:
        return LearnOutput(_no_store_file(path))
    try:
        bayes = _learn_filter(config.bayes, prefix, recipient)
        return _dispatch(config, bayes, mode, paths, file, mbox)
    except StoreDamaged as exc:  # the store answers: "unavailable" would mislead
        raise LearnCommandError(f"learn: {repair_named(config.bayes, exc, config.subaddressing)}") from None
    except BackupError as exc:
        raise LearnCommandError(f"learn: {exc}") from None
    except StoreError as exc:
        raise LearnCommandError(f"learn: Bayes store unavailable: {exc}") from None
    except OSError as exc:
        raise LearnCommandError(f"learn: {exc.filename or file}: {exc.strerror}") from None


def _refuse_unmade(config: BayesConfig, mode: str) -> None:
    """A mode that reads or maintains what was learned (LOOKING), given a SQLite store whose
    file does not exist: opening it created an empty store, so a mistyped bayes.store made
    `--backup` write an empty backup and exit 0 (a nightly cron job's backups were empty with
    nobody told), and `--dump` show zeros for a store that was elsewhere. Learning and
    `--restore` create the store, as they must on a new host."""
    path = unmade_sqlite(config) if mode in LOOKING else None
    if path is not None:
        raise LearnCommandError(f"learn --{mode}: no Bayes store at {path} (bayes.store): nothing "
                                "was ever learned there; check the path (learning or --restore "
                                "creates it)")


def _no_store_file(path: str) -> str:
    """`--stores` of a SQLite store whose file does not exist: one line, exit 0, as for a store
    holding no per-recipient store, but naming the path, and making no file. Opening it created
    an empty store there, so a mistyped bayes.store left a file that the milter never used and
    answered "none" as if the path were right."""
    return (f"No per-recipient store: no Bayes store at {path} (bayes.store) yet, nothing was "
            "ever learned there; check the path (learning, --restore or the milter's start "
            "creates it)")


def _learn_filter(config: BayesConfig, prefix: str | None, recipient: bool) -> BayesFilter:
    """A recipient's filter shares the site store's connection, as in the milter (a second
    client would double the connections and logins a busy Redis counts)."""
    if recipient and prefix is not None:
        site = BayesFilter(config, open_store(config))
        return BayesFilter(config, site.store.with_prefix(prefix), site=site)
    return BayesFilter(config, open_store(config, prefix))


def _dispatch(config: Config, bayes: BayesFilter, mode: str, paths: list[str], file: str | None,
              mbox: bool) -> LearnOutput:
    if mode in VERBS:
        bayes.store.totals()  # fail here, with one line, rather than after analysing 10,000 files
        return _learn_paths(config, bayes, mode, paths, mbox)
    if mode == "stores":
        return _stores(config, bayes.store)
    return LearnOutput(_maintain(config, bayes, mode, file))


def _maintain(config: Config, bayes: BayesFilter, mode: str, file: str | None) -> str:
    """The modes that take no messages and print only: dump, clear, clear-reports, expire,
    backup and (the last) restore."""
    if mode == "dump":
        return _dump(bayes)
    if mode == "clear":
        return _clear(config, bayes)
    if mode == "clear-reports":
        return _clear_reports(bayes)
    if mode == "expire":
        return f"Expired {bayes.expire()} token(s)"
    if mode == "backup":
        return _backup(bayes, file or "")
    name = "standard input" if file == "-" else file or ""
    with _backup_source(file or "") as source:
        count = read_backup(bayes.store, source, name, bayes.own_reports)
    return f"Restored {count} token(s) from {name}"


@contextmanager
def _backup_source(file: str) -> Iterator[IO[str]]:
    """The backup as seekable text, read twice (see read_backup): standard input is spooled to a
    temporary file first, and a gzip-compressed backup (`--backup - | gzip`) is read as it is."""
    with ExitStack() as stack:
        if file == "-":
            raw: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(sys.stdin.buffer, raw)
            raw.seek(0)
        else:
            raw = stack.enter_context(Path(file).open("rb"))
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw))
        raw.seek(0)
        yield stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8"))


def _stores(config: Config, store: TokenStore) -> LearnOutput:
    """Every store that can be read, and one error line for each that cannot: a hosting
    provider's one damaged domain must not hide the thousands of others, nor go unnoticed in a
    cron job (exit status 2)."""
    lines: list[str] = []
    errors: list[str] = []
    for nested in store.nested_stores():
        if nested.damage is not None:
            errors.append(f"learn: {repair_named(config.bayes, nested.damage, config.subaddressing)}")
        elif nested.totals is not None:
            lines.append(_store_line(nested.prefix.removeprefix(store.prefix), nested.totals, nested.tokens)
                         + _unreached(config, nested.prefix))
    if not lines and not errors:
        lines.append(_no_stores(config, store.prefix))
    return LearnOutput("\n".join(lines), tuple(errors))


def _no_stores(config: Config, prefix: str) -> str:
    """The one line of a listing with no store in it: printing nothing read as a command that
    failed, or one that found the stores elsewhere; it says how stores come to exist."""
    if prefix != config.bayes.key_prefix:
        return (f"No store under Bayes store {prefix!r} holds anything: the per-recipient stores "
                "are under the site-wide one (mailsift learn --stores without --for or --prefix)")
    if config.bayes.per_recipient == "off":
        return ('No per-recipient store holds anything: bayes.per_recipient = "off"; with "domain" '
                'or "address", autolearn, quarantine learning and mailsift learn --for NAME fill one')
    return ("No per-recipient store holds anything yet: autolearn, quarantine learning and "
            "mailsift learn --for NAME fill one (a store that learned nothing is not listed)")


def _store_line(name: str, totals: Totals, tokens: int) -> str:
    """One store of `learn --stores`: named as `--for` takes it, awk-able (no name holds a space)."""
    return f"{name.removesuffix(':')} {totals.spam} spam, {totals.ham} ham, {tokens} tokens"


def _unreached(config: Config, prefix: str) -> str:
    """What a store `--for` no longer reaches says after its counts: the store a subaddress had
    before milter.recipient_delimiter was set (jane+shop@example.com's), listed by that name,
    which --for now takes for its owner's store, the one the milter uses: `--clear --for` the
    name listed cleared Jane's and left this one. '' for any other store."""
    name = for_name(config.bayes, prefix)
    if not name or for_name(config.bayes, prefix, config.subaddressing):
        return ""
    owner = for_name(config.bayes, recipient_prefix(config.bayes, name, config.subaddressing))
    return (f"; unused: under milter.recipient_delimiter --for {name} names {owner}'s store; "
            f"this one is --prefix {shlex.quote(prefix)}")


def _clear(config: Config, bayes: BayesFilter) -> str:
    """Clear what Bayes learned, and say what stays: the shared spam reports (made by hand, and
    matched by every host: a retraining must not silently stop DIGEST_REPORTED everywhere), and
    the per-recipient stores under the site-wide one (each is cleared with --for)."""
    bayes.store.clear()
    lines = [f"Cleared Bayes store {bayes.store.prefix!r} in {bayes.store.where}: every learned "
             "token, the spam and ham counts and the learned-message records",
             f"Kept {len(bayes.reports.export())} shared spam report(s), which every host matches "
             "(DIGEST_REPORTED): withdraw one with mailsift learn --revoke MESSAGE"]
    if config.bayes.per_recipient != "off" and bayes.store.prefix == config.bayes.key_prefix:
        lines.append("Kept the per-recipient stores (mailsift learn --stores lists them; "
                     "--clear --for NAME clears one)")
    return "\n".join(lines)


def _clear_reports(bayes: BayesFilter) -> str:
    """Withdraw every shared spam report at once (a batch reported by mistake, a fresh start),
    and say what stays: what Bayes learned from the reported messages, as --report also
    learned each as spam, and --forget or --ham takes one back."""
    if bayes.own_reports is None:
        raise LearnCommandError("learn --clear-reports takes no --for: the shared spam reports "
                                "are the site's, matched for every recipient")
    withdrawn = bayes.own_reports.clear()
    return "\n".join([
        f"Withdrew {withdrawn} shared spam report(s) of Bayes store {bayes.store.prefix!r} in "
        f"{bayes.store.where}: no host matches their copies any more (DIGEST_REPORTED)",
        "Kept what Bayes learned from the reported messages, each as spam (mailsift learn "
        "--forget MESSAGE takes one back)"])


def _backup(bayes: BayesFilter, file: str) -> str:
    """`-` streams the backup to standard output (to gzip or ssh) and says nothing else there. A
    file is written under a temporary name and renamed when complete, so a full disk or a crash
    never leaves a truncated backup in place of yesterday's good one."""
    if file == "-":
        write_backup(bayes.store, sys.stdout, bayes.own_reports)
        return ""
    target = _backup_target(file)
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent,
                                         prefix=f".{target.name}.", delete=False) as out:
            try:
                count = write_backup(bayes.store, out, bayes.own_reports)
                out.flush()
                os.fsync(out.fileno())
                os.replace(out.name, target)
            except BaseException:  # the rename too: a whole backup left under a hidden name
                Path(out.name).unlink(missing_ok=True)
                raise
    except OSError as exc:  # named after the backup, not after its temporary file
        raise OSError(exc.errno, exc.strerror, file) from None
    return f"Wrote {count} token(s) to {file}"


def _backup_target(file: str) -> Path:
    """The file `--backup` writes, refused in one line when it is a folder or its folder is
    missing. A folder (`--backup /backups/` in a cron job) failed only at the final rename, as
    "Is a directory", after the whole backup was written beside it under a hidden temporary
    name, left there night after night; a missing folder said "No such file or directory" of
    a file that was to be made."""
    target = Path(file)
    if target.is_dir() or file.endswith("/"):  # Path drops the slash: /missing/ wrote /missing
        raise LearnCommandError(f"learn: --backup {file}: names a folder; name the file to write, "
                                f"e.g. {target / 'bayes.jsonl'}")
    if not target.parent.is_dir():
        raise LearnCommandError(f"learn: --backup {file}: there is no folder {target.parent} "
                                "to write it in")
    return target


def _learn_paths(config: Config, bayes: BayesFilter, mode: str, paths: list[str],
                 mbox: bool) -> LearnOutput:
    share = mode if mode in SHARING else ""
    with tempfile.TemporaryDirectory(prefix="mailsift-learn-") as spool:
        items = list(iter_messages(paths, force_mbox=mbox, spool=Path(spool)))
        try:
            with tqdm(total=len(items), unit="msg", disable=not sys.stderr.isatty(),
                      leave=False) as progress:
                report = learn(items, LABELS.get(mode), config, bayes, expected=len(items),
                               progress=progress, share=share)
        except LearnStopped as stopped:  # say what was done before, as it stays done
            return LearnOutput(stopped.report.summary(VERBS[mode]),
                               (_stopped(config, stopped.cause),))
        lines = [report.summary(VERBS[mode])]
        if share:
            lines.append(f"{SHARING[share]} digests of {report.shared} message(s)")
            if config.bayes.pyzor:  # while the spool lives: stdin messages are read from it
                lines.append(tell_pyzor(share, _mail(items)))
    given = {"<stdin>" if spec == "-" else str(Path(spec)) for spec in paths}
    unusable = [name for name, _ in report.failed if name in given]
    errors = (f"learn: nothing to learn in {', '.join(unusable)} (see above)",) if unusable else ()
    return LearnOutput("\n".join(lines), errors)


def _stopped(config: Config, cause: StoreError) -> str:
    """Why learning stopped part-way. Running again helps once a failing store is back, not
    while a record of it is damaged: the cause then says how to repair it."""
    if isinstance(cause, StoreDamaged):
        named = repair_named(config.bayes, cause, config.subaddressing)
        return f"learn: stopped: {named}; what is counted above stays learned"
    return (f"learn: stopped, the Bayes store failed: {cause}; what is counted above stays "
            "learned, run the same command again for the rest")


def _mail(items: list[Item]) -> list[bytes]:
    """The messages of `items` that are readable mail, read again for pyzor."""
    found = (item.content()[0] for item in items)
    return [raw for raw in found if raw and looks_like_mail(raw)]


def _dump(bayes: BayesFilter) -> str:
    info = bayes.store.dump_info()
    now = time.time()

    def age(stamp: int | None) -> str:
        if stamp is None:
            return "-"
        when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")
        return f"{when} UTC ({(now - stamp) / 86400:.0f} days ago)"

    return "\n".join([
        f"spam messages learned: {info.totals.spam}",
        f"ham messages learned:  {info.totals.ham}",
        f"tokens:                {info.tokens}",
        f"oldest token seen:     {age(info.oldest)}",
        f"newest token seen:     {age(info.newest)}",
        f"Bayes active:          {_active(bayes, info.totals.spam, info.totals.ham)}",
    ])


def _active(bayes: BayesFilter, spam: int, ham: int) -> str:
    need = bayes.config
    if need.speaks(spam, ham):
        return "yes"
    return f"no (needs {need.min_spam} spam and {need.min_ham} ham)"
