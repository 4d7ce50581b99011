"""The `mailsift` command. Every error reaches the user as one line and a non-zero exit status.

Administrators run these commands from cron, shell loops and Postfix pipes, where a traceback is
noise; `MAILSIFT_DEBUG=1` brings the traceback back for bug reports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailsift.config import Config, ConfigError, load_config
from mailsift.quarantine.model import MAX_PAGE, SORT_KEYS

if TYPE_CHECKING:
    from mailsift.check_envelope import Judged
    from mailsift.milter.sender_hold import SenderHold, SharedCounts
    from mailsift.rules.result import Result
    from mailsift.scanner import Scanner

EXIT_HAM, EXIT_SPAM, EXIT_ERROR = 0, 1, 2


class CliError(click.ClickException):
    """An error the user can act on; printed as `mailsift: message`."""

    exit_code = EXIT_ERROR

    def show(self, file: object = None) -> None:
        click.echo(f"mailsift: {self.message}", err=True)


def _config(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _read_message(source: str) -> bytes:
    """The message to check. Empty input is refused: it is a mistake (a wrong file, a pipe that
    failed), and scored it looked like spam (missing headers) with exit status 1."""
    name = "standard input" if source == "-" else source
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"{source}: cannot read message: {exc.strerror}") from None
    if not raw.strip():
        raise CliError(f"{name}: empty, no message to check")
    return raw


def _use_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.obj = value  # what @click.pass_obj hands the command: it wins over the global one
    return value


def config_option(func: Callable[..., None]) -> Callable[..., None]:
    """`--config FILE` after the subcommand as well as before it: admins type it at the end
    (`mailsift quarantine list --config F`), and it was refused after some commands only. Each
    command reads the file to use from its context object (`@click.pass_obj`)."""
    return click.option("--config", metavar="FILE", expose_value=False, callback=_use_config,
                        help="Config file (overrides the global one).")(func)


class _NamedUsage:
    """Parsing that leaves every usage error knowing its command. click raises an option given
    no value (`learn --backup` with nothing after it) without the context, so the one line said
    "mailsift: Option '--backup' requires an argument (see 'mailsift --help')", pointing at the
    top-level help instead of the command's (see _usage_error)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class _Command(_NamedUsage, click.Command):
    pass


class _Group(_NamedUsage, click.Group):
    command_class = _Command
    group_class = type  # subgroups (quarantine, rules, ...) are _Group too


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
# The installed distribution's version (importlib.metadata), so it is what pip installed, for bug
# reports and upgrade checks.
@click.version_option(package_name="mailsift", prog_name="mailsift")
@click.option("--config", "config_path", metavar="FILE", envvar="MAILSIFT_CONFIG",
              help="Config file (default: $MAILSIFT_CONFIG, then /etc/mailsift/mailsift.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log what is going on to stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """mailsift: spam filter for Postfix."""
    _logging_as_before_when_done(ctx)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="mailsift: %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_path


def _logging_as_before_when_done(ctx: click.Context) -> None:
    """Put the root and `mailsift` loggers back as they were once the command is over, failed
    or not. A `mailsift` process ends with its command, so nothing changes for it; a command run
    inside a process that goes on (the tests run `cli` through click's CliRunner) left
    `mailsift web`'s INFO level on the package's logger, and later tests that counted log
    records counted INFO lines too. The handler basicConfig adds, where the root logger had none,
    is taken off again as well: it writes to the stderr of the finished command."""
    root, package = logging.getLogger(), logging.getLogger("mailsift")
    root_level, root_handlers, package_level = root.level, list(root.handlers), package.level

    def restore() -> None:
        for handler in [h for h in root.handlers if h not in root_handlers]:
            root.removeHandler(handler)
        root.setLevel(root_level)
        package.setLevel(package_level)

    ctx.call_on_close(restore)


# (option, metavar, help) of the envelope `check` can be told (mailsift.check_envelope).
ENVELOPE_OPTIONS = (
    ("--client-ip", "ADDR", "Judge the message as if this client (IPv4 or IPv6) sent it now, as "
     "the milter does: SPF, HELO, reverse DNS and DNS lists judge it."),
    ("--client-name", "NAME", "The client's verified name, as Postfix logs it (unknown for none); "
     "default: looked up as Postfix does with the network checks on, else unknown."),
    ("--helo", "NAME", "The name the client gave in HELO/EHLO."),
    ("--mail-from", "ADDR", "The envelope sender (<> for a bounce); default: the Return-Path."),
    ("--rcpt", "ADDR", "A recipient (repeatable): its policy and Bayes store apply, as in the "
     "milter."),
    ("--auth-user", "LOGIN", "The client's SASL login: judged as milter.authenticated says."),
    ("--local", None, "Mail a local program handed to Postfix's sendmail command (cron, a web "
     "form's mail()), which the milter sees through non_smtpd_milters: judged as milter.local "
     "says. It has no client: not with --client-ip, --client-name, --helo or --auth-user."),
)


def _envelope_options(func: Callable[..., None]) -> Callable[..., None]:
    """A metavar of None: a flag."""
    for option, metavar, text in reversed(ENVELOPE_OPTIONS):
        func = click.option(option, metavar=metavar, is_flag=metavar is None,
                            multiple=option == "--rcpt", help=text)(func)
    return func


@cli.command()
@click.argument("message", default="-", metavar="[FILE|-]")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@config_option
@click.option("--network/--no-network", default=None,
              help="Run the DNS checks (SPF, DKIM, DMARC, lists...) or not; default: dns.enabled.")
@_envelope_options
@click.pass_obj
def check(config_path: str | None, message: str, as_json: bool, network: bool | None,
          **envelope: Any) -> None:
    """Score one message and explain the score. Exit 0 for ham, 1 for spam, 2 for an error.

    Without the envelope options a message is judged by its headers alone (its Received
    headers and Return-Path stand in for the client and sender the milter is told)."""
    from mailsift.check_envelope import EnvelopeError, Told, judged
    from mailsift.classifier.open_store import existing_filter
    from mailsift.report import added_headers, fold, rule_table
    from mailsift.rules.lint import warn_rule_mistakes
    from mailsift.scanner import Scanner
    from mailsift.training.autolearn import would_learn

    config = _config(config_path)
    raw = _read_message(message)
    network = config.dns.enabled if network is None else network
    try:
        told = judged(Told(**envelope), raw, config, network)
    except EnvelopeError as exc:
        raise CliError(f"check: {exc}") from None
    scanner = Scanner(config, network=network,
                      bayes=existing_filter(config.bayes, config.subaddressing))
    warn_rule_mistakes(scanner.ruleset, logging.getLogger("mailsift.check"))
    result, subject = _scored(scanner, raw, told)
    # What the milter's autolearn would decide, learning nothing (it writes what it did)
    learned = would_learn(result, config, told.outbound if told else False)
    extra = f"autolearn={learned}"
    # The headers the milter would add, Authentication-Results among them (network checks on):
    # an admin debugging DMARC wants them, and the milter's copy is the only other place they
    # show. Without an envelope the message is inbound mail the milter passes on.
    added, none = (told.headers(result, extra) if told
                   else (added_headers(result, config, False, extra), None))
    if as_json:
        verdict = {**result.as_dict(), "authentication_results": result.auth_results or None,
                   "headers": [{"name": name, "value": value} for name, value in added],
                   "no_headers": none, "autolearn": learned,
                   "envelope": told.as_dict(result.score, subject) if told else None}
        click.echo(json.dumps(verdict, ensure_ascii=False))
    else:
        for name, value in added:
            click.echo(fold(name, value))
        if none is not None:
            click.echo(f"No headers: {none}; score={result.score:.1f} "
                       f"required={result.required_score:.1f}")
        click.echo()
        click.echo(rule_table(result))
        for line in ["", *told.lines(result.score, subject)] if told else []:
            click.echo(line)
    sys.exit(EXIT_SPAM if result.is_spam else EXIT_HAM)


def _scored(scanner: Scanner, raw: bytes, told: Judged | None) -> tuple[Result, str | None]:
    """The verdict on `raw` with the envelope `told`, and its first Subject as the analysis reads
    it (None: it has none), the one the milter tags. A client told arrived now, as the milter
    dates a message it is handed; a file's newest Received date still stands in for that, as it
    records when the message came (the Date rules measure from it). The file may be a delivered
    copy, with the hops after the told client's on top, which the milter never saw
    (`analysis.parse._from_connection`)."""
    from datetime import UTC, datetime

    msg = scanner.analyse(raw, told.envelope if told else None, later_hops=True)
    if told is not None and told.envelope.client_ip and msg.received_time is None:
        msg.received_time = datetime.now(UTC)
    return scanner.score(msg), next(iter(msg.header_raw("Subject")), None)


@cli.command()
@config_option
@click.pass_obj
def configtest(config_path: str | None) -> None:
    """Check the config and rules; reach the Bayes, quarantine and pause stores and DNS lists.

    One line per part, "ok" or "FAIL"; exit 0 when all are ok, 1 otherwise (2: the config
    itself is wrong). Also shows the site's welcome and block entries and whose Received
    headers are believed. Writes nothing.
    """
    from mailsift.configtest import run_checks

    config = _config(config_path)
    click.echo(f"{'config':<11}{'ok':<5}{config.source}")
    checks = run_checks(config)
    for result in checks:
        click.echo(result.line())
    sys.exit(0 if all(result.ok for result in checks) else 1)


@cli.group()
def rules() -> None:
    """Inspect rule files."""


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--verbose", is_flag=True, help="List every directive that was read but not used.")
@config_option
@click.pass_obj
def lint(config_path: str | None, paths: tuple[Path, ...], verbose: bool) -> None:
    """Report, per file, what loaded and what was skipped (with file:line and why).

    Without PATHS, lints the rule files the configuration would load. With PATHS, the rules the
    configuration loads beside them count as defined (a local.cf rescores shipped rules).
    Exit 0 when every rule line loaded; 1 when any was skipped (a call to an eval check mailsift
    lacks too, which configtest only counts) or a file gave nothing to read.
    """
    from mailsift.rules.lint import lint_report
    from mailsift.rules.registry import load_checks
    from mailsift.scanner import SHIPPED_RULES, rule_paths

    try:
        configured = rule_paths(_config(config_path))
    except CliError:
        if not paths:
            raise
        configured = [SHIPPED_RULES]  # a broken config must not stop linting a named file
    text, status = lint_report(list(paths) or configured, load_checks(), verbose=verbose,
                               beside=configured)
    click.echo(text)
    sys.exit(status)


@cli.command()
@config_option
@click.pass_obj
def milter(config_path: str | None) -> None:
    """Run the milter in the foreground (Postfix connects to milter.listen)."""
    from mailsift.milter.daemon import ListenError, run
    from mailsift.milter.metrics import MetricsListenError
    from mailsift.milter.sender_hold import PauseStoreError
    from mailsift.milter.workers import PoolStartError

    config = _config(config_path)
    logging.getLogger("mailsift").setLevel(logging.INFO)
    try:
        run(config, config_path)
    except (ListenError, MetricsListenError, PauseStoreError, PoolStartError) as exc:
        raise CliError(str(exc)) from None


MODE_HELP = {
    "spam": "Learn the messages as spam.",
    "ham": "Learn the messages as ham.",
    "forget": "Take back what learning them added.",
    "report": "Learn as spam and share their digests so every host recognises copies.",
    "revoke": "Learn as ham and withdraw a report.",
    "dump": "Show counts and token ages.",
    "stores": "List the per-recipient stores under this one, each with its counts.",
    "clear": "Remove the learned tokens, counts and records (shared spam reports stay).",
    "clear-reports": "Withdraw every shared spam report (what Bayes learned stays).",
    "expire": "Drop tokens not seen for a long time.",
}
NEEDS_PATHS = ("spam", "ham", "forget", "report", "revoke")


def _mode_options(func: Callable[..., None]) -> Callable[..., None]:
    for mode, text in reversed(MODE_HELP.items()):
        func = click.option(f"--{mode}", mode.replace("-", "_"), is_flag=True, help=text)(func)
    return func


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH|-]...")
@_mode_options
@click.option("--backup", metavar="FILE", help="Write everything learned to FILE (portable JSON lines; "
              "- for standard output).")
@click.option("--restore", metavar="FILE", help="Replace everything learned with FILE's contents "
              "(- for standard input).")
@click.option("--mbox", is_flag=True, help="Read every file as an mbox, in directories too "
              "(detected when not given; a Maildir stays a Maildir).")
@click.option("--prefix", metavar="PREFIX", help="Bayes key prefix (per-user or per-domain Bayes).")
@click.option("--for", "recipient", metavar="NAME", help="The store of this domain or address "
              "(bayes.per_recipient): what the milter uses for mail to it.")
@config_option
@click.pass_obj
def learn(config_path: str | None, paths: tuple[str, ...], backup: str | None, restore: str | None,
          mbox: bool, prefix: str | None, recipient: str | None, **modes: bool) -> None:
    """Train Bayes, as sa-learn does: PATH is a message file, a directory, an mbox, a Maildir or -."""
    from mailsift.training.commands import LearnCommandError, run_learn

    mode = _only_one("learn", [m for m in MODE_HELP if modes[m.replace("-", "_")]]
                     + [m for m, v in (("backup", backup), ("restore", restore)) if v],
                     [f"--{m}" for m in MODE_HELP] + ["--backup FILE", "--restore FILE"])
    if mode in NEEDS_PATHS and not paths:
        raise CliError(f"learn --{mode}: no PATH given (use - for standard input)")
    if mode not in NEEDS_PATHS and paths:  # `--clear spam/` would clear everything
        raise CliError(f"learn --{mode} takes no PATH (given: {' '.join(paths)}); it acts "
                       "on the whole store")
    if mbox and mode not in NEEDS_PATHS:
        raise CliError(f"learn --{mode} takes no --mbox")
    config = _config(config_path)
    if recipient is not None:
        from mailsift.classifier.filter import recipient_prefix

        if prefix is not None:
            raise CliError("learn: give --prefix or --for, not both")
        try:
            prefix = recipient_prefix(config.bayes, recipient, config.subaddressing)
        except ValueError as exc:
            raise CliError(f"learn: {exc}") from None
    try:
        output = run_learn(config, mode, list(paths), backup or restore, mbox, prefix,
                           recipient is not None)
    except LearnCommandError as exc:
        raise CliError(str(exc)) from None
    if output.text:
        click.echo(output.text)
    for line in output.errors:
        CliError(line).show()
    if output.errors:
        sys.exit(EXIT_ERROR)


@cli.command()
@config_option
@click.pass_obj
def postfix(config_path: str | None) -> None:
    """Print the Postfix main.cf and master.cf lines for this configuration, with the milters
    main.cf names now after mailsift (read with postconf; MAIL_CONFIG names another directory)."""
    from mailsift.milter.postfix import (
        PostconfError,
        milter_address,
        order_warnings,
        postfix_lines,
        read_milter_lists,
    )

    config = _config(config_path)
    try:
        milters = read_milter_lists()
    except PostconfError as exc:
        milters = None
        CliError(f"warning: cannot read smtpd_milters with postconf ({exc}): the lines below "
                 "name mailsift alone; keep your other milters after it").show()
    for warning in order_warnings(milters, milter_address(config.milter.listen)) if milters else []:
        CliError(f"warning: {warning}; the lines below put mailsift first").show()
    click.echo(postfix_lines(config, milters))


def _eval_folder(option: str, directory: str) -> None:
    """A folder of `eval` must hold a message: figures need both classes learned and scored (an
    empty test folder ended in an internal error from scikit-learn, an empty test ham or spam
    folder in "1-AUC: nan%"), and an evaluation of minutes should not end in that."""
    from mailsift.training.sources import directory_files

    path = Path(directory)
    if not path.is_dir():
        raise CliError(f"eval: {directory}: not a directory")
    try:
        empty = next(directory_files(path), None) is None
    except OSError as exc:  # a folder that cannot be listed
        raise CliError(f"eval: {exc.filename}: {exc.strerror}") from None
    if empty:
        raise CliError(f"eval --{option}: {directory}: no message in it (each of the train and "
                       "test spam and ham folders needs at least one)")


@cli.command(name="eval")
@click.option("--train-spam", required=True, metavar="DIR", help="Spam to learn.")
@click.option("--train-ham", required=True, metavar="DIR", help="Ham to learn.")
@click.option("--test-spam", required=True, metavar="DIR", help="Spam to score.")
@click.option("--test-ham", required=True, metavar="DIR", help="Ham to score.")
@click.option("--store", metavar="URL", help="An empty store to train (default: a temporary "
              "SQLite file); one that holds anything is refused, never cleared.")
@click.option("--network", is_flag=True, help="Run network checks too (off by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--plot", metavar="FILE.png", help="Draw the ROC curve and score histogram.")
@config_option
@click.pass_obj
def evaluate(config_path: str | None, train_spam: str, train_ham: str, test_spam: str,
             test_ham: str, store: str | None, network: bool, as_json: bool, plot: str | None) -> None:
    """Learn from empty, score a test set, print FP%, FN%, 1-AUC% and speeds."""
    from mailsift.classifier.store import StoreError
    from mailsift.training.evaluate import EvalError
    from mailsift.training.evaluate import evaluate as run
    from mailsift.training.parallel import WorkerStartError

    if plot:
        try:
            import matplotlib  # noqa: F401  (checked before an evaluation of minutes, not after)
        except ImportError:
            raise CliError("eval --plot needs matplotlib: pip install 'mailsift[plot]'") from None
    for option, directory in (("train-spam", train_spam), ("train-ham", train_ham),
                              ("test-spam", test_spam), ("test-ham", test_ham)):
        _eval_folder(option, directory)
    try:
        report = run(_config(config_path), train_spam, train_ham, test_spam,
                     test_ham, store, network, plot)
    except StoreError as exc:
        raise CliError(f"eval: Bayes store unavailable: {exc}") from None
    except EvalError as exc:
        raise CliError(f"eval: {exc}") from None
    except WorkerStartError as exc:
        raise CliError(f"eval: the scoring processes cannot start: {exc}") from None
    except OSError as exc:  # a test folder that cannot be listed
        raise CliError(f"eval: {exc.filename}: {exc.strerror}") from None
    click.echo(json.dumps(report.as_dict()) if as_json else report.text())


# --- quarantine ------------------------------------------------------------------------------

def _quarantine(config_path: str | None, looking: bool = False) -> tuple[Config, Any]:
    """The config and its quarantine. A local one whose folder does not exist is refused in one
    line, unless the command is `looking` (list, expire, digest): those say so themselves
    (`_held_nowhere`). Opened, it was made there, empty, so a mistyped quarantine.dir showed a
    quarantine holding nothing."""
    from mailsift.quarantine.store import QuarantineError, open_quarantine, unmade_folder

    config = _config(config_path)
    unmade = unmade_folder(config.quarantine)
    if unmade is not None and not looking:
        raise CliError(f"quarantine: {unmade}")
    try:
        return config, open_quarantine(config.quarantine, subaddressing=config.subaddressing)
    except QuarantineError as exc:
        raise CliError(f"quarantine: {exc}") from None


def _held_nowhere(config: Config, what: str) -> bool:
    """Say what a looking command found where no quarantine was ever made (store.unmade_folder),
    and exit 0: a new install's expire and digest timers may run before the milter's first
    start, and the line names the path for an admin who mistyped it."""
    from mailsift.quarantine.store import unmade_folder

    unmade = unmade_folder(config.quarantine)
    if unmade is not None:
        click.echo(f"{what}: {unmade}")
    return unmade is not None


def _operator() -> str:
    """Who acts from the command line, for the message history and the system log: the Unix
    user the command runs as (its uid, not $USER, which anyone can set), and who ran sudo, as
    admins sharing a host lift pauses and release mail as root."""
    from mailsift.ownership import user_name

    uid = os.getuid()
    user = user_name(uid)  # "uid N" for a uid without a passwd entry (a container's)
    by = os.environ.get("SUDO_USER") if uid == 0 else None
    return f"cli:{user} (sudo by {by})" if by and by != user else f"cli:{user}"


@cli.group()
def quarantine() -> None:
    """Review quarantined mail: list, show, release, delete, learn; expire and digest (timers)."""


@quarantine.command(name="list")
@click.option("--to", "to", metavar="ADDR", multiple=True,
              help="Addressed to ADDR, or to any address of a domain (@example.org) (repeatable).")
@click.option("--from", "sender", metavar="TEXT", default="", help="Sender address or name contains TEXT.")
@click.option("--subject", metavar="TEXT", default="", help="Subject contains TEXT.")
@click.option("--min-score", type=float, help="Score at least this.")
@click.option("--since", metavar="WHEN", help="Arrived since WHEN: 2024-05-01, an ISO time, or 7d / 12h.")
@click.option("--sort", type=click.Choice(SORT_KEYS), default="time", show_default=True,
              help="Order by this, as the web UI's columns do.")
@click.option("--desc/--asc", "descending", default=True,
              help="Newest, highest, Z first (default), or the other way round.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True,
              help="Messages per page.")
@click.option("--page", type=click.IntRange(1, MAX_PAGE), default=1, show_default=True,
              help="Which page of --limit.")
@click.option("--all", "every", is_flag=True, help="Every message that matches, not one page.")
@config_option
@click.pass_obj
def quarantine_list(config_path: str | None, to: tuple[str, ...], sender: str, subject: str,
                    min_score: float | None, since: str | None, sort: str, descending: bool,
                    limit: int, page: int, every: bool) -> None:
    """List quarantined messages (held and released), newest first, one page at a time.

    A page, not everything: a quarantine holds tens of thousands of messages, and the last line
    says how many more there are and how to see them."""
    from mailsift.quarantine.model import Query, page_count, recipient_filter
    from mailsift.quarantine.text import list_text, parse_since

    config, store = _quarantine(config_path, looking=True)
    try:
        query = Query(to=[recipient_filter(a) for a in to] or None, sender=sender, subject=subject,
                      min_score=min_score, since=parse_since(since) if since else None,
                      sort=sort, descending=descending, limit=None)
    except ValueError as exc:
        raise CliError(f"quarantine list: {exc}") from None
    if _held_nowhere(config, "Nothing listed"):
        return
    if every:
        records, total = _quarantine_call(lambda: store.search(query))
        click.echo(list_text(records, total, 1, 1))
    else:
        records, total = _quarantine_call(lambda: store.search(query.on_page(page, limit)))
        click.echo(list_text(records, total, page, page_count(total, limit)))


def _quarantine_call(action: Callable[[], Any]) -> Any:
    from mailsift.quarantine.store import QuarantineError

    try:
        return action()
    except QuarantineError as exc:
        raise CliError(f"quarantine: {exc}") from None


@quarantine.command(name="show")
@click.argument("message_id", metavar="ID")
@click.option("--raw", is_flag=True, help="Write the message itself, byte for byte.")
@config_option
@click.pass_obj
def quarantine_show(config_path: str | None, message_id: str, raw: bool) -> None:
    """Show a message's envelope, rules and history (or, with --raw, the message)."""
    from mailsift.quarantine.text import show_text

    _, store = _quarantine(config_path)
    if raw:
        sys.stdout.buffer.write(_quarantine_call(lambda: store.raw(message_id)))
        return
    click.echo(_quarantine_call(lambda: show_text(store.meta(message_id))))


@quarantine.command(name="release")
@click.argument("message_id", metavar="ID")
@click.option("--to", "to", metavar="ADDR", multiple=True,
              help="Deliver to ADDR instead of the quarantined recipients (repeatable).")
@click.option("--again", is_flag=True,
              help="Deliver another copy to recipients it was already released to.")
@config_option
@click.pass_obj
def quarantine_release(config_path: str | None, message_id: str, to: tuple[str, ...],
                       again: bool) -> None:
    """Deliver the original message through Postfix's no-milter port (quarantine.release_via)."""
    from mailsift.quarantine.review import release

    recipients = _release_addresses(to)
    config, store = _quarantine(config_path)
    done = _quarantine_call(lambda: release(config, store, message_id, _operator(),
                                            recipients or None, again))
    click.echo(f"Released {message_id} to {', '.join(done) or 'nobody (all refused)'}")


def _release_addresses(to: tuple[str, ...]) -> list[str]:
    """Each --to one full address, by the rule of a web user's addresses, also at a local host
    (root@localhost) or an address literal, which Postfix delivers. smtplib sends the
    address its parser finds: --to "not an address" was released to <not> (which Postfix
    delivers to a local user) and --to "jane@example.org,bob@example.org" to Jane alone, while
    the command and the message's history named what was typed."""
    from mailsift.config import mail_address

    try:
        for address in to:
            mail_address(address, local_hosts=True)
    except ValueError as exc:
        raise CliError(f"quarantine release: --to {exc} (one address per --to)") from None
    return [address.strip() for address in to]


@quarantine.command(name="delete")
@click.argument("message_id", metavar="ID")
@config_option
@click.pass_obj
def quarantine_delete(config_path: str | None, message_id: str) -> None:
    """Delete a message (its history stays until it expires)."""
    from mailsift.quarantine.review import delete

    _, store = _quarantine(config_path)
    _quarantine_call(lambda: delete(store, message_id, _operator()))
    click.echo(f"Deleted {message_id}")


# mode (as quarantine.review.learn names it) -> its options, the first the name, and the help.
# --report and --revoke are the names `mailsift learn` gives the same modes: one vocabulary works
# for both commands.
QUARANTINE_LEARN_MODES: dict[str, tuple[tuple[str, ...], str]] = {
    "ham": (("--ham",), "Learn as ham."),
    "spam": (("--spam",), "Learn as spam."),
    "forget": (("--forget",), "Take back what learning it added."),
    "spam-report": (("--spam-report", "--report"), "Learn as spam and share its digests "
                    "(DIGEST_REPORTED); --report, as `mailsift learn` names it."),
    "ham-revoke": (("--ham-revoke", "--revoke"), "Learn as ham and withdraw a report; --revoke, "
                   "as `mailsift learn` names it."),
}


def _only_one(command: str, chosen: list[str], options: list[str]) -> str:
    """The one mode given. None, or several, is refused: with several, click's last-one-wins
    would silently do one the admin may not have meant (`--spam --ham` learned as ham)."""
    if len(chosen) != 1:
        raise CliError(f"{command}: give exactly one of {', '.join(options)}")
    return chosen[0]


def _quarantine_learn_options(func: Callable[..., None]) -> Callable[..., None]:
    """One flag per mode, each its own parameter (not a shared flag_value) so that several can
    be seen, and refused."""
    for mode, (flags, text) in reversed(QUARANTINE_LEARN_MODES.items()):
        func = click.option(*flags, mode.replace("-", "_"), is_flag=True, help=text)(func)
    return func


@quarantine.command(name="learn")
@click.argument("message_id", metavar="ID")
@_quarantine_learn_options
@config_option
@click.pass_obj
def quarantine_learn(config_path: str | None, message_id: str, **modes: bool) -> None:
    """Teach Bayes with a quarantined message."""
    from mailsift.quarantine.review import learn

    chosen = [mode for mode in QUARANTINE_LEARN_MODES if modes[mode.replace("-", "_")]]
    mode = _only_one("quarantine learn", chosen, [
        " or ".join(flags) for flags, _ in QUARANTINE_LEARN_MODES.values()])
    config, store = _quarantine(config_path)
    outcome = _quarantine_call(lambda: learn(config, store, message_id, _operator(), mode))
    click.echo(f"{message_id}: {outcome}")


@quarantine.command(name="expire")
@config_option
@click.pass_obj
def quarantine_expire(config_path: str | None) -> None:
    """Delete messages older than quarantine.keep_days (run daily by a systemd timer).

    Also indexes again each message file older than an hour that a local index lacks (after a
    crash, or an older index copy put back at a rollback: README, Backups and upgrades).
    """
    from mailsift.quarantine.review import expire, expired_text

    config, store = _quarantine(config_path, looking=True)
    if _held_nowhere(config, "Nothing expired"):
        return
    click.echo(expired_text(_quarantine_call(lambda: expire(config, store)), store.directory))


@quarantine.command(name="digest")
@config_option
@click.pass_obj
def quarantine_digest(config_path: str | None) -> None:
    """Mail each user a summary of their newly quarantined mail (run daily by a systemd timer)."""
    from mailsift.quarantine.digest import nobody_to_mail, nothing_new_text, send_digests

    config, store = _quarantine(config_path, looking=True)
    nobody = nobody_to_mail(config)
    if nobody:
        click.echo(f"No digest sent: {nobody}")
        return
    if _held_nowhere(config, "No digest sent"):
        return
    run = _quarantine_call(lambda: send_digests(config, store))
    results = run.sent
    if not results:
        click.echo(nothing_new_text(run))
    for sent in results:
        if sent.error:
            click.echo(f"mailsift: digest for {sent.user} <{sent.to}> not sent: {sent.error}", err=True)
        else:
            click.echo(f"Digest of {sent.messages} message(s) sent to {sent.user} <{sent.to}>")
    failed = sum(1 for sent in results if sent.error)
    if failed:
        raise CliError(f"quarantine digest: {failed} of {len(results)} digest(s) not sent")


# --- outbound --------------------------------------------------------------------------------

@cli.group()
def outbound() -> None:
    """See and lift outbound pauses (outbound.pause_after) kept in outbound.pause_store.

    Without a pause_store each milter process counts in its own memory, which these commands
    cannot reach: restarting the milter lifts every pause there."""


def _pause_store(config_path: str | None, command: str) -> tuple[SenderHold, SharedCounts]:
    """The hold the milter hosts share, or a CliError saying why there is none to ask."""
    from mailsift.milter.sender_hold import PauseStoreError, sender_hold

    config = _config(config_path)
    if config.outbound.pause_after == 0:
        raise CliError(f"{command}: outbound.pause_after = 0: no sender is counted or paused")
    try:
        hold = sender_hold(config.outbound)
    except PauseStoreError as exc:
        raise CliError(f"{command}: {exc}") from None
    if hold.shared is None:
        raise CliError(f"{command}: no outbound.pause_store: each milter process counts senders' "
                       "spam in its own memory, out of this command's reach; restart the milter "
                       "to lift a pause, or set outbound.pause_store to share the counts in Redis")
    return hold, hold.shared


@outbound.command(name="list")
@config_option
@click.pass_obj
def outbound_list(config_path: str | None) -> None:
    """List every sender with spam counted in the window, paused ones first.

    One line each: "paused until TIME" (when the oldest counted message leaves the window and
    mail is accepted again) or "not paused", the count of outbound.pause_after, and the sender
    as the milter's log names it."""
    from mailsift.milter.sender_hold import PauseStoreError

    hold, shared = _pause_store(config_path, "outbound list")
    try:
        standings = shared.standings(hold.window)
    except PauseStoreError as exc:
        raise CliError(f"outbound list: {exc}") from None
    if not standings:
        click.echo(f"No sender has spam counted in the last {hold.settings.minutes:g} minutes")
    for standing in standings:
        click.echo(standing.line())


@outbound.command(name="lift")
@click.argument("sender", nargs=-1, required=True)
@config_option
@click.pass_obj
def outbound_lift(config_path: str | None, sender: tuple[str, ...]) -> None:
    """Lift the pause of SENDER on every milter host at once by clearing its spam count.

    SENDER as `outbound list` and the milter's log name it ("SASL login alice",
    "client 192.0.2.7"; the quotes may be left out), or the bare login or address (of IPv6:
    any address in the counted network, "client 2001:db8:7:1::/64"). The lift
    is recorded, with the Unix user who ran it, in the system log beside the milter's lines
    (`journalctl -t mailsift`). A sender with nothing counted exits with status 2."""
    from mailsift import audit
    from mailsift.milter.sender_hold import PauseStoreError, named_sender

    hold, shared = _pause_store(config_path, "outbound lift")
    name = named_sender(" ".join(sender), hold.settings.ipv6_prefix)
    try:
        was = shared.lift(hold.window, name)
    except PauseStoreError as exc:
        raise CliError(f"outbound lift: {exc}") from None
    if not was.count:
        raise CliError(f"outbound lift: {name}: no spam counted in the last "
                       f"{hold.settings.minutes:g} minutes, so no pause to lift "
                       "(`mailsift outbound list` shows who has)")
    audit.record(f"outbound spam count of {name} cleared by {_operator()}: {was.count} of "
                 f"{was.limit}, {was.state()}")
    if was.paused:
        click.echo(f"Lifted the pause of {name} (paused until {was.until_text()}, {was.count} "
                   f"of {was.limit} messages scored as spam); its mail is accepted again")
    else:
        click.echo(f"{name} was not paused; cleared its count of {was.count} of {was.limit}")


# --- web -------------------------------------------------------------------------------------

@cli.group(invoke_without_command=True)
@config_option
@click.pass_context
def web(ctx: click.Context) -> None:
    """Run the quarantine review UI on web.listen (needs an admin in [[web.users]])."""
    if ctx.invoked_subcommand is not None:
        return
    from mailsift.quarantine.store import QuarantineError
    from mailsift.web.server import WebError, serve

    config = _config(ctx.obj)
    logging.getLogger("mailsift").setLevel(logging.INFO)
    try:
        serve(config)
    except (WebError, QuarantineError) as exc:
        raise CliError(f"web: {exc}") from None


@web.command(name="hash-password")
def web_hash_password() -> None:
    """Read a password from the terminal (or one line of stdin) and print its argon2 hash."""
    import getpass

    from mailsift.web.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("web hash-password: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise CliError("web hash-password: use at least 8 characters")
    click.echo(hash_password(password))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        sys.exit(_usage_error(exc))
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except click.Abort:
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("MAILSIFT_DEBUG"):
            raise
        click.echo(f"mailsift: internal error: {type(exc).__name__}: {exc} "
                   "(set MAILSIFT_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_ERROR)


def _usage_error(exc: click.UsageError) -> int:
    """One line, like every other error here, instead of click's usage block, "Try ... --help"
    and the error below them: the line names the command, what was wrong, and where help is."""
    command = exc.ctx.command_path if exc.ctx is not None else "mailsift"
    click.echo(f"{command}: {exc.format_message().rstrip('.')} (see '{command} --help')", err=True)
    return EXIT_ERROR
