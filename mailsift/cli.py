"""The `mailsift` command. Every error reaches the user as one line and a non-zero exit status.

Administrators run these commands from cron, shell loops and Postfix pipes, where a traceback is
noise; `MAILSIFT_DEBUG=1` brings the traceback back for bug reports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from mailsift.config import Config, ConfigError, load_config

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
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"{source}: cannot read message: {exc.strerror}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", envvar="MAILSIFT_CONFIG",
              help="Config file (default: $MAILSIFT_CONFIG, then /etc/mailsift/mailsift.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log what is going on to stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """mailsift: spam filter for Postfix."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="mailsift: %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_path


@cli.command()
@click.argument("message", default="-", metavar="[FILE|-]")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option("--config", "config_path", metavar="FILE", help="Config file (overrides the global one).")
@click.pass_obj
def check(global_config: str | None, message: str, as_json: bool, config_path: str | None) -> None:
    """Score one message and explain the score. Exit 0 for ham, 1 for spam, 2 for an error."""
    from mailsift.report import fold, rule_table, spam_headers
    from mailsift.scanner import Scanner

    config = _config(config_path or global_config)
    raw = _read_message(message)
    result = Scanner(config).scan(raw)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        for name, value in spam_headers(result):
            click.echo(fold(name, value))
        click.echo()
        click.echo(rule_table(result))
    sys.exit(EXIT_SPAM if result.is_spam else EXIT_HAM)


@cli.group()
def rules() -> None:
    """Inspect rule files."""


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--verbose", is_flag=True, help="List every directive that was read but not used.")
@click.pass_obj
def lint(global_config: str | None, paths: tuple[Path, ...], verbose: bool) -> None:
    """Report, per file, what loaded and what was skipped (with file:line and why).

    Without PATHS, lints the rule files the configuration would load.
    """
    from mailsift.rules.lint import lint_report
    from mailsift.rules.registry import load_checks
    from mailsift.scanner import rule_paths

    targets = list(paths) or rule_paths(_config(global_config))
    text, status = lint_report(targets, load_checks(), verbose=verbose)
    click.echo(text)
    sys.exit(status)


@cli.command()
@click.option("--config", "config_path", metavar="FILE", help="Config file (overrides the global one).")
@click.pass_obj
def milter(global_config: str | None, config_path: str | None) -> None:
    """Run the milter in the foreground (Postfix connects to milter.listen)."""
    from mailsift.milter.daemon import run

    config = _config(config_path or global_config)
    logging.getLogger("mailsift").setLevel(logging.INFO)
    run(config)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
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
