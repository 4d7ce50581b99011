"""milter.recipient_delimiter, Postfix's recipient_delimiter: what the config takes (and the one
line for what it does not), and the milter's per-recipient decisions that follow it: mail to
jane+shop@example.com, which Postfix delivers to Jane, gets the [[policy]] naming her address
and is scored with and teaches her per-recipient Bayes store. The quarantine's part is in
tests/quarantine/test_subaddresses.py and tests/web/test_subaddress_owners.py."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from mailsift.classifier.filter import BayesFilter, recipient_key, recipient_prefix
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Totals
from mailsift.config import BayesConfig, Config, ConfigError, MilterConfig, parse_config
from mailsift.milter.actions import limits_for
from mailsift.scanner import Scanner
from mailsift.training.autolearn import autolearn
from mailsift.training.commands import run_learn
from tests.quarantine.test_digest import HASH
from tests.training.test_autolearn import SPAM_MAIL, as_spam, scored

ALLOWED = ("allowed: empty, or the characters of main.cf's recipient_delimiter, each a sign an "
           "address holds without quotes other than a letter or digit (!#$%&'*+-/=?^_`{|}~.), "
           'e.g. "+" or "+-"')


@pytest.mark.parametrize(("value", "why"), [
    ("x", "'x' is a letter or digit: ordinary names would be cut at it"),
    ("+ -", "' ' separates no extension: no address holds it outside quotes (write the "
            "characters of main.cf's value only, without spaces or quotes) (got '+ -')"),
    ('"+"', "'\"' separates no extension"),
    ("@", "'@' separates no extension"),
    ("＋", "'＋' is not ASCII: Postfix cuts at single bytes"),
])
def test_a_delimiter_postfix_could_not_cut_at_names_file_key_and_what_is_allowed(
        value: str, why: str) -> None:
    """A copy of main.cf's line with its spaces, quotes or a letter would have cut nothing, or
    ordinary names, in silence."""
    with pytest.raises(ConfigError) as err:
        parse_config({"milter": {"recipient_delimiter": value}}, "/etc/mailsift/mailsift.toml")
    message = str(err.value)
    assert message.startswith(f"/etc/mailsift/mailsift.toml: milter.recipient_delimiter: {why}")
    assert message.endswith(f"(got {value!r}); {ALLOWED}")


@pytest.mark.parametrize("value", ["", "+", "+-", "-", "=", "+_."])
def test_what_main_cf_sets_is_taken(value: str) -> None:
    config = parse_config({"milter": {"recipient_delimiter": value}}, "m.toml")
    assert config.milter.recipient_delimiter == value


def site(delimiter: str = "+-", **more: Any) -> Config:
    """Jane's mail is never scanned, that to jane+work@ quarantined from 3 points; Bob's login
    address holds the delimiter."""
    return parse_config({
        "milter": {"recipient_delimiter": delimiter},
        "policy": [{"match": ["jane@example.com"], "bypass": True},
                   {"match": ["jane+work@example.com"], "quarantine": 3.0}],
        "web": {"users": [{"name": "bob", "password_hash": HASH, "addresses": ["jane-bob@example.com"]}]},
        **more}, "m.toml")


@pytest.mark.parametrize("recipient", ["jane+shop@example.com", "<Jane-News@EXAMPLE.com>",
                                       "jane+@example.com", "jane-a+b@example.com"])
def test_a_policy_naming_an_address_applies_to_its_subaddresses(recipient: str) -> None:
    """Mail to jane+shop@ was judged by the site's thresholds: her bypass (or no_reject)
    named jane@example.com, and Postfix delivers both to her."""
    assert limits_for(recipient, site(), False) is None


def test_a_policy_naming_the_subaddress_itself_comes_first() -> None:
    """As Postfix looks up user+foo@ before user@."""
    limits = limits_for("jane+work@example.com", site(), False)
    assert limits is not None and limits.quarantine == 3.0


@pytest.mark.parametrize("recipient", ["janet@example.com", "+jane@example.com", "x+jane@example.com",
                                       "jane-bob@example.com", "jane+shop@example.org"])
def test_an_address_that_is_not_a_subaddress_of_hers_gets_no_policy_of_hers(recipient: str) -> None:
    """+jane@ is not cut (nothing before the delimiter); jane-bob@ is a login's own mailbox."""
    limits = limits_for(recipient, site(), False)
    assert limits is not None and limits.quarantine == Config().actions.quarantine


def test_without_a_delimiter_a_subaddress_is_an_address_of_its_own() -> None:
    """Postfix's default, and mailsift's (a guard)."""
    assert limits_for("jane+shop@example.com", site(""), False) is not None


def per_address(tmp_path: Path, delimiter: str) -> Config:
    return Config(milter=MilterConfig(recipient_delimiter=delimiter),
                  bayes=BayesConfig(store=f"sqlite:///{tmp_path}/bayes.sqlite", min_spam=20,
                                    min_ham=20, per_recipient="address"))


def test_per_recipient_bayes_names_the_owners_store_for_a_subaddress(tmp_path: Path) -> None:
    """Each subaddress had a store of its own, which nothing trained, so her mail to
    jane+shop@ was never judged by what she taught; `learn --for jane+shop@` filled it."""
    config = per_address(tmp_path, "+")
    rcpt = ["jane+shop@example.com", "Jane+News@Example.COM"]
    assert recipient_key(config.bayes, rcpt, config.subaddressing) == "jane@example.com"
    assert recipient_key(config.bayes, ["jane+shop@example.com", "janet@example.com"],
                         config.subaddressing) is None  # two owners: the site's store
    assert (recipient_prefix(config.bayes, "jane+shop@example.com", config.subaddressing)
            == recipient_prefix(config.bayes, "jane@example.com") == "mailsift:jane@example.com:")
    unset = per_address(tmp_path, "")
    assert recipient_key(unset.bayes, rcpt[:1], unset.subaddressing) == "jane+shop@example.com"


def test_autolearn_teaches_the_owners_store_from_mail_to_a_subaddress(tmp_path: Path) -> None:
    """The Bayes filter as the milter's workers make it (milter/workers.py)."""
    config = per_address(tmp_path, "+")
    bayes = BayesFilter(config.bayes, open_store(config.bayes), subaddressing=config.subaddressing)
    msg, result = scored(Scanner(config, bayes=bayes), SPAM_MAIL, "jane+shop@example.com")
    assert autolearn(msg, result, bayes, as_spam(result)) == "spam"
    assert bayes.for_recipient("jane@example.com").store.totals() == Totals(1, 0)
    assert bayes.for_recipient("jane+shop@example.com").store.totals() == Totals(0, 0)
    bayes.close()


def test_a_copy_of_the_config_with_another_delimiter_cuts_by_its_own() -> None:
    """Config.subaddressing is made once per config; a copy (as evaluate and tests make them)
    kept the one the original had made."""
    config = site("+")
    assert config.subaddressing.delimiter == "+"
    copied = config.model_copy(update={"milter": MilterConfig(recipient_delimiter="-")})
    assert copied.subaddressing.forms("jane-x@example.com") == ("jane-x@example.com", "jane@example.com")


# The store jane+shop@example.com had before the delimiter was set, and what `learn --stores`
# says of it once it is: --for takes its name for Jane's store now.
OLD_STORE = "mailsift:jane+shop@example.com:"
UNREACHED = ("; unused: under milter.recipient_delimiter --for jane+shop@example.com names "
             f"jane@example.com's store; this one is --prefix {OLD_STORE}")


def _learned_before_the_delimiter(tmp_path: Path, *names: str) -> tuple[Config, Config]:
    """Per-address Bayes (the site's config without, then with, recipient_delimiter "+") after
    one spam was learned `--for` each of `names` without it, as `learn --for` or autolearn
    made a store for each subaddress then."""
    message = tmp_path / "spam.eml"
    message.write_bytes(SPAM_MAIL)
    before, after = per_address(tmp_path, ""), per_address(tmp_path, "+")
    for name in names:
        run_learn(before, "spam", [str(message)], None, False, recipient_prefix(before.bayes, name), True)
    return before, after


def test_stores_names_the_store_a_subaddress_had_before_the_delimiter_by_its_prefix(
        tmp_path: Path) -> None:
    """`learn --stores` listed it as "jane+shop@example.com 1 spam, ...", named "as --for takes
    it", but --for takes that name for Jane's store since the delimiter: `learn --clear --for
    jane+shop@example.com` cleared what Jane's store had learned and left the unused one."""
    _, after = _learned_before_the_delimiter(tmp_path, "jane@example.com", "jane+shop@example.com")
    old, janes = run_learn(after, "stores", [], None, False, None).text.splitlines()
    assert old.startswith("jane+shop@example.com 1 spam, 0 ham, ") and old.endswith(UNREACHED)
    assert janes.startswith("jane@example.com 1 spam, 0 ham, ") and ";" not in janes
    run_learn(after, "clear", [], None, False, OLD_STORE, True)  # as the line says
    assert run_learn(after, "stores", [], None, False, None).text == janes


def test_the_repair_of_a_damaged_store_a_subaddress_had_names_it_by_its_prefix(
        tmp_path: Path) -> None:
    """Its repair said `mailsift learn --for jane+shop@example.com --restore FILE, or --clear`,
    which now restores over, or clears, Jane's store."""
    before, after = _learned_before_the_delimiter(tmp_path, "jane+shop@example.com")
    with closing(sqlite3.connect(tmp_path / "bayes.sqlite")) as db, db:
        db.execute("UPDATE totals SET spam = 'lots' WHERE ns = (SELECT id FROM namespaces "
                   "WHERE name = ?)", (OLD_STORE,))
    [repair] = run_learn(after, "stores", [], None, False, None).errors
    assert repair.endswith(f"(mailsift learn --prefix '{OLD_STORE}' --restore FILE, or --clear)")
    [repair] = run_learn(before, "stores", [], None, False, None).errors  # a guard
    assert repair.endswith("(mailsift learn --for jane+shop@example.com --restore FILE, or --clear)")
