"""`mailsift configtest`: prove a setup before Postfix sends mail to it.

As `postfix check` or `rspamadm configtest` do, it loads what the milter would load and reaches
what the milter would reach: the config file, the rule files, the Bayes store, the quarantine
index and the outbound pause store, Redis (Sentinel, Cluster, TLS) included, and each DNS list
through the resolver. A wrong Sentinel name, CA file or list zone otherwise shows only as warnings
in the mail log, message by message, once mail flows, or not at all. Nothing is written: a store
not yet created is reported as such.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from redis.connection import parse_url

from mailsift.analysis.relays import NOT_PUBLIC, trusted_networks
from mailsift.classifier.open_store import open_store, unmade_sqlite
from mailsift.classifier.store import StoreError
from mailsift.config import (
    KEYED_ZONE_SUFFIXES,
    REDIS_SCHEMES,
    Config,
    DnsConfig,
    DnsList,
    split_host_port,
)
from mailsift.host import is_loopback_name
from mailsift.milter.postfix import (
    PostconfError,
    milter_address,
    order_warnings,
    read_milter_lists,
    same_milter,
)
from mailsift.milter.sender_hold import PauseStoreError, sender_hold
from mailsift.network.dnslists import IPV6_TEST_POINTS, all_lists, listings, refusal, test_points
from mailsift.network.resolver import Answer, Lookups, Outcome, shared_resolver
from mailsift.quarantine.digest import base_url, nobody_to_mail
from mailsift.quarantine.model import QuarantineError
from mailsift.quarantine.store import QuarantineStore, open_quarantine, unmade_folder
from mailsift.rules.cf_parser import load_rule_files
from mailsift.rules.checks.sitelists import site_lists
from mailsift.rules.lint import file_of, item_text, lint_errors, loaded_share, unapplied_settings
from mailsift.rules.model import LintItem, RuleSet
from mailsift.rules.registry import load_checks
from mailsift.scanner import SHIPPED_RULES, rule_paths
from mailsift.secrets import (
    UNITS_ENVIRONMENT_FILE,
    exposure,
    services,
    systemd_reader,
    writable_by_others,
)
from mailsift.web.server import EVERY_ADDRESS, WebError, check_users, configured_secret


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.what:<11}{'ok' if self.ok else 'FAIL':<5}{self.detail}"


def run_checks(config: Config) -> list[Check]:
    rules = _loaded_rules(config)
    return [rules_check(config, rules), lists_check(config, rules), bayes_check(config),
            quarantine_check(config), pause_check(config), trust_check(config), web_check(config),
            *secrets_checks(config, rules=rules), *milters_checks(config), *dns_checks(config)]


def milters_checks(config: Config) -> list[Check]:
    """Where main.cf lists mailsift among its milters (read with postconf, as `mailsift postfix`
    reads them). Listed after OpenDKIM or OpenDMARC, mailsift removes their Authentication-Results
    in our name as forged, and nothing in the mail log says so; a site that listed it last
    before the milter removed them from all mail learns it here after the upgrade. A warning,
    not a failure, as for secrets: mail flows as before."""
    ours = milter_address(config.milter.listen)
    try:
        lists = read_milter_lists()
    except PostconfError as exc:
        return [Check("milters", True, f"cannot read smtpd_milters with postconf ({exc})")]
    if lists is None:
        return [Check("milters", True, "no postconf here: smtpd_milters not checked (list "
                      "mailsift first there, before other milters)")]
    warnings = order_warnings(lists, ours)
    if warnings:
        return [Check("milters", True, f"{warning}; `mailsift postfix` prints the lines with "
                      "mailsift first") for warning in warnings]
    if not any(same_milter(entry, ours) for entry in lists.smtpd):
        return [Check("milters", True, f"smtpd_milters does not name mailsift ({ours}) yet: "
                      "`mailsift postfix` prints the lines")]
    others = lists.smtpd[1:]
    return [Check("milters", True, "mailsift first in smtpd_milters"
                  + (f", then {', '.join(others)}" if others else "")
                  + _tag_after(config, others))]


def _tag_after(config: Config, others: list[str]) -> str:
    """What a milter after mailsift meets in tagged mail: the Subject mailsift rewrote, so a
    DKIM verifier among them (OpenDKIM, OpenDMARC) fails every signature over the Subject, and
    OpenDMARC with RejectFailures rejects such mail from a p=reject domain. mailsift cannot
    tell a verifier from a signer, so it says so whenever one follows and tagging is on."""
    threshold = config.actions.rewrite_subject
    if not others or threshold is None or math.isinf(threshold):  # false: never tags
        return ""
    return (f"; tagged mail (actions.rewrite_subject = {threshold:g}) reaches them with its "
            "Subject changed, so a DKIM verifier among them fails its signatures: set "
            "actions.rewrite_subject = false if one verifies DKIM")


# The sections that reach a Redis, with the key of its URL; each takes a password_file and TLS files.
REDIS_SECTIONS = {"bayes": "store", "quarantine": "index", "outbound": "pause_store"}


# How a secrets line names the units' EnvironmentFile, which no config key names.
UNITS_ENVIRONMENT_KEY = "EnvironmentFile= of the systemd units (not a config key)"


def secrets_checks(config: Config, environment_file: str = UNITS_ENVIRONMENT_FILE,
                   rules: RuleSet | str | None = None) -> list[Check]:
    """A line for each file holding a secret that users other than the services' may read or
    change (`secrets.exposure`), naming its keys, its mode and the command that closes it; else
    one line saying so. A warning, not a failure: such a file worked before this check, and an
    upgrade restarted once configtest passes (README) must not stop the milter over it.

    `environment_file` is the units' EnvironmentFile, checked when it exists: README has the
    Redis password written there, and no config key names it, so a 0644 one went unsaid.
    `rules`: the loaded rule files, whose `include` lines' files count as the rules keys' do."""
    files = _secret_files(config, environment_file)
    reader = services()
    warnings = [Check("secrets", True, f"{', '.join(keys)}: {problem}")
                for file, keys in files.items()
                if (problem := exposure(file, systemd_reader() if keys == [UNITS_ENVIRONMENT_KEY]
                                        else reader))]
    warnings += [Check("secrets", True, f"{', '.join(keys)}: {problem}")
                 for file, keys in _setting_files(config, rules).items()
                 if file not in files and (problem := writable_by_others(file))]
    if warnings:
        return warnings
    if not files:
        return [Check("secrets", True, "no secret files named (password_file, tls_key_file, "
                                       "web.secret_file, access_key_file)")]
    return [Check("secrets", True, f"{len(files)} file(s) holding secrets, none readable or "
                                   "writable by other users, nor writable by their group")]


def _secret_files(config: Config, environment_file: str) -> dict[str, list[str]]:
    """Each file the config names that holds a secret, with the keys naming it (one file often
    serves bayes, quarantine and outbound alike), the config file itself when it holds a
    secret (`_held_in_config`), and the units' `environment_file` when there is one. A config
    without a secret is left alone: it may be read by all, as packages install configs, and
    warning about it would teach every site to skip this line."""
    named = [(f"{name}.{key}", getattr(getattr(config, name), key))
             for name in REDIS_SECTIONS for key in ("password_file", "tls_key_file")]
    named.append(("web.secret_file", config.web.secret_file))
    named += [(f"{where}.access_key_file", entry.access_key_file) for where, entry in _dns_lists(config)]
    held = _held_in_config(config)
    if held:
        named.append((f"the config file, holding {' and '.join(held)}", config.source))
    if Path(environment_file).exists():
        named.append((UNITS_ENVIRONMENT_KEY, environment_file))
    files: dict[str, list[str]] = {}
    for key, file in named:
        if file:
            files.setdefault(file, []).append(key)
    return files


def _setting_files(config: Config, rules: RuleSet | str | None) -> dict[str, list[str]]:
    """The config file, and the rule files and folders the rules keys name (a folder's *.cf
    files with it), by the key naming them, and the files the loaded rules read through an
    `include` line: whoever may change one changes scores or adds a welcome entry. An included
    file (a site's shared list of welcome entries, say) was not looked at."""
    named = {config.source: ["the config file"]}
    for key, paths in (("rules.shipped", [SHIPPED_RULES] if config.rules.shipped else []),
                       ("rules.paths", config.rules.paths), ("rules.local_cf", [config.rules.local_cf])):
        for path in map(Path, paths):
            for file in [path, *(sorted(path.glob("*.cf")) if path.is_dir() else [])]:
                keys = named.setdefault(str(file), [])
                keys += [key] if key not in keys else []
    for file in rules.files if isinstance(rules, RuleSet) else []:
        named.setdefault(file, ["an include line"])
    return named


def _held_in_config(config: Config) -> list[str]:
    """The secrets written in the config file itself. [[web.users]] password hashes count: one
    who reads them guesses the passwords offline at their own pace, past the UI's login
    throttling, and users reuse passwords; so do a Redis password in a URL and an access key
    written in a list's zone, which configtest's other lines already advise moving to a file."""
    held = ["[[web.users]] password hashes"] if config.web.users else []
    held += [f"the password in {name}.{key}" for name, key in REDIS_SECTIONS.items()
             if _url_password(getattr(getattr(config, name), key))]
    held += [f"the access key in {where}.zone" for where, entry in _dns_lists(config)
             if entry.key_in_zone]
    return held


def _url_password(url: str) -> bool:
    """Whether a Redis URL carries a password, as redis-py reads one (user part or ?password=)."""
    if not url.startswith(REDIS_SCHEMES):
        return False
    try:
        return bool(parse_url(url).get("password"))
    except ValueError:  # the Redis check names what is wrong with it
        return False


def _dns_lists(config: Config) -> list[tuple[str, DnsList]]:
    """Each DNS list with its key in the config, as config errors name it (dns.blocklists.0)."""
    return [(f"dns.{kind}.{index}", entry) for kind in ("blocklists", "allowlists")
            for index, entry in enumerate(getattr(config.dns, kind))]


def web_check(config: Config) -> Check:
    """Whether `mailsift web` would start for its logins and session secret. configtest said ok
    to [[web.users]] without an admin, or a secret file it cannot read or too short, which the UI
    refuses, so an upgrade done as README says (restart once configtest passes) left the review
    UI stopped. A site without logins does not use the UI."""
    users = config.web.users
    if not users:
        return Check("web", True, "no [[web.users]]: `mailsift web` does not start (needed only "
                                  "for the review UI)")
    try:
        check_users(config)
        configured_secret(config)
    except WebError as exc:
        return Check("web", False, str(exc))
    admins = sum(user.role == "admin" for user in users)
    # README: welcome lists need the network checks, "configtest warns otherwise"; it did only
    # for the site's [lists], not for the welcome lists users keep in the UI.
    unproven = ("; users' welcome entries count for nothing while dns.enabled is false: nothing "
                "can prove a sender" if not config.dns.enabled else "")
    return Check("web", True, f"{len(users)} login(s), {admins} admin(s); review UI on "
                              f"{config.web.listen}{unproven}{_digest_links(config)}")


def _digest_links(config: Config) -> str:
    """Where the digests' links lead, when the admin must know ('' otherwise). With web.base_url
    empty they lead to web.listen, by default 127.0.0.1:8025, which no user's browser reaches,
    and the digests went out that way without a word; only a loopback address or localhost is
    sure to be one (a host name may resolve to 127.0.1.1 here, as on Debian, and to the host in
    its users' DNS). A listen on every address lends the links this host's name, shown so the
    admin sees whether users know it by that name."""
    if nobody_to_mail(config):
        return ""
    url = base_url(config)
    if is_loopback_name(urlsplit(url).hostname or ""):
        return (f"; the digests' links lead to {url}/, which only a browser on this host opens: "
                "set web.base_url to the UI's address as its users reach it")
    if not config.web.base_url and split_host_port(config.web.listen)[0] in EVERY_ADDRESS:
        return f"; the digests' links lead to {url}/ (this host's name; web.base_url sets another)"
    return ""


def trust_check(config: Config) -> Check:
    """Whose Received headers are believed, so whose address the network checks judge. With no
    network listed, private ranges are trusted by inference: said here, because the administrator
    of a host behind a public relay, or of one reached directly by untrusted private hosts, must
    list networks instead."""
    network = config.network
    trusted = trusted_networks(network.trusted_networks, network.internal_networks)
    if trusted is NOT_PUBLIC:
        return Check("trust", True, "loopback + private ranges (inferred; set network.trusted_networks "
                                    "to decide)")
    key = "trusted_networks" if network.trusted_networks else "internal_networks"
    return Check("trust", True, f"loopback + {', '.join(map(str, trusted))} (network.{key})"
                                f"{_treated(config) if network.trusted_networks else ''}")


def _treated(config: Config) -> str:
    """How the milter treats mail from listed trusted_networks: the default changed from outbound
    to scan, and an upgraded hosting provider must see that its web servers' mail is no longer
    judged as outbound (nor a company that its relays' mail is)."""
    mode = config.milter.trusted
    said = {"scan": "scanned as inbound", "skip": "not scanned", "outbound": "judged as outbound"}
    return f"; their mail is {said[mode]} (milter.trusted = {mode})"


RULE_ERRORS_SHOWN = 2  # the first lint errors named on the one line; `rules lint` lists them all
SETTINGS_SHOWN = 5  # the first unapplied SpamAssassin settings named; a local.cf rarely has more


def _loaded_rules(config: Config) -> RuleSet | str:
    """The rule files as the milter loads them, or why they do not load."""
    try:
        return load_rule_files(rule_paths(config), load_checks())
    except (OSError, ValueError) as exc:
        return str(exc)


def rules_check(config: Config, rules: RuleSet | str) -> Check:
    """Rule files load, something is left to score with, and no rule line has a mistake (see
    `lint_errors`): a typo in local.cf fails here as `spamassassin --lint` fails, instead of the
    rule silently never hitting; rules calling eval checks mailsift lacks are only counted."""
    if isinstance(rules, str):
        return Check("rules", False, rules)
    loaded, total = loaded_share(rules)
    detail = f"{loaded} of {total} rules from {len(rules.files)} file(s)"
    errors = lint_errors(rules)
    if errors:
        detail += f"; {len(errors)} skipped: " + _first(errors, RULE_ERRORS_SHOWN)
    unsupported = len(rules.skipped) - len(errors)
    if unsupported:
        detail += f"; {unsupported} call eval checks mailsift lacks (`mailsift rules lint` names them)"
    detail += _settings_text(unapplied_settings(rules, _configured(config)))
    return Check("rules", loaded > 0 and not errors, detail)


def _configured(config: Config) -> dict[str, float]:
    """SpamAssassin settings mailsift takes from mailsift.toml, by their SpamAssassin names, with
    the values configured: a local.cf line giving the same value is no news."""
    return {"required_score": config.scoring.required_score,
            "body_part_scan_size": config.scan.body_part_scan_size,
            "rawbody_part_scan_size": config.scan.rawbody_part_scan_size}


def lists_check(config: Config, rules: RuleSet | str) -> Check:
    """How many entries the site's welcome and block lists hold, and which file gave them: a
    migrated local.cf's whitelist_from lines are taken, and the administrator sees that they
    were, and how many, before mail is judged by them. Globs the lists cannot hold are named by
    the rules check, among the settings not applied."""
    found = rules if isinstance(rules, RuleSet) else RuleSet()  # files that do not load give none
    lists = site_lists(config.lists, found)
    if not lists.welcome and not lists.block:
        return Check("lists", True, "no site welcome or block entries ([lists] in the config, or "
                                    "whitelist_from/blacklist_from lines in local.cf)")
    taken = "; ".join(_list_origins(config, found))
    unproven = ("; no welcome counts while dns.enabled is false: nothing can prove a sender"
                if lists.welcome and not config.dns.enabled else "")
    return Check("lists", True, f"{len(lists.welcome)} welcome, {len(lists.block)} block entries "
                                f"({taken}){unproven}")


def _list_origins(config: Config, found: RuleSet) -> list[str]:
    """Where the site lists' entries came from, with how many each place gave: an entry
    mailsift.toml's [lists] holds counts there only (once, however often it is written), so the
    counts add up to the total (a local.cf repeating them counted them again, and the counts
    added up to more); a file's repeats are named beside its count instead."""
    toml = {"welcome": set(config.lists.welcome), "block": set(config.lists.block)}
    counts = Counter((file_of(source), "repeat" if entry in toml[kind] else kind)
                     for kind, entries in found.site_lists.items() for entry, source in entries.items())
    origins = {f"{config.source} [lists]": (len(toml["welcome"]), len(toml["block"]), 0)}
    origins |= {path: (counts[path, "welcome"], counts[path, "block"], counts[path, "repeat"])
                for path, _ in counts}
    return [f"{where}: {welcome} welcome, {block} block"
            + (f" ({repeats} more already in [lists])" if repeats else "")
            for where, (welcome, block, repeats) in origins.items() if welcome or block or repeats]


def _settings_text(settings: list[LintItem]) -> str:
    """SpamAssassin settings mailsift does not apply, named but not failed: a site loading
    SpamAssassin's own files must pass, and these are decisions to make, not mistakes."""
    if not settings:
        return ""
    return f"; {len(settings)} SpamAssassin setting(s) not applied: " + _first(settings, SETTINGS_SHOWN)


def _first(items: list[LintItem], shown: int) -> str:
    """The first `shown` items, and how many more there are: configtest's line stays one line."""
    text = "; ".join(map(item_text, items[:shown]))
    if len(items) > shown:
        text += f"; {len(items) - shown} more (`mailsift rules lint` lists all)"
    return text


def bayes_check(config: Config) -> Check:
    bayes = config.bayes
    if not bayes.enabled:
        return Check("bayes", True, "off (bayes.enabled = false)")
    path = unmade_sqlite(bayes)
    if path is not None:
        return Check("bayes", True, f"{path}: nothing learned yet (made by the first learn)")
    try:
        with closing(open_store(bayes)) as store:
            totals = store.totals()
            where = store.where
    except StoreError as exc:
        return Check("bayes", False, str(exc))
    if bayes.speaks(totals.spam, totals.ham):
        state = "Bayes has its say"
    else:
        state = f"Bayes is silent until {bayes.min_spam} spam and {bayes.min_ham} ham are learned"
    return Check("bayes", True, f"{where}: {totals.spam} spam, {totals.ham} ham learned; {state}")


def quarantine_check(config: Config, store: QuarantineStore | None = None) -> Check:
    """The quarantine index answers; `store`: the one the milter already opened, if any."""
    quarantine = config.quarantine
    unmade = unmade_folder(quarantine)
    if unmade is not None:  # a warning: configtest comes before the milter's first start
        return Check("quarantine", True, unmade)
    try:
        store = store or open_quarantine(quarantine)  # connects to nothing and creates nothing yet
        where = store.backend.where
        if not quarantine.index.startswith(REDIS_SCHEMES) and not Path(where).exists():
            return Check("quarantine", True, f"{where}: nothing quarantined yet (made on first use)")
        store.backend.mark("configtest")  # a read: it reaches the index
    except QuarantineError as exc:
        return Check("quarantine", False, str(exc))
    return Check("quarantine", True, f"index {where}: reachable")


def pause_check(config: Config) -> Check:
    """The Redis of outbound.pause_store answers: while it does not, each milter host pauses a
    sender on its own count, and only a warning in the mail log says so."""
    try:
        shared = sender_hold(config.outbound).shared
    except PauseStoreError as exc:
        return Check("pause", False, str(exc))
    if shared is None:
        return Check("pause", True, "counted in each milter host's own memory (no outbound.pause_store)")
    problem = shared.check()
    if problem is not None:
        return Check("pause", False, f"{problem}; each milter host would count on its own")
    return Check("pause", True, f"counts shared in redis at {shared.target.where}")


ROOT_QUESTION = (".", "NS")  # asked of the resolver first: any answer shows one is there


def dns_checks(config: Config) -> list[Check]:
    """Each DNS list asked for its RFC 5782 test points through the configured resolver: the one it
    must list (127.0.0.2, or the name TEST) and the one it must never list (127.0.0.1, or INVALID),
    and for a list asked about IPv6 hosts (`ipv6`) their IPv6 forms too (`_ipv6_text`).
    Public lists refuse queries from big public resolvers (127.255.255.x, or 127.0.0.1 for URI
    lists), a mistyped zone answers nothing, and a dead list may list everything: the first two
    silently never hit, the last hits every message."""
    if not config.dns.enabled:
        return [Check("dns", True, "off (dns.enabled = false)")]
    lists = all_lists(config.dns)  # in the order of _dns_lists
    resolver, *points = asyncio.run(_ask_test_points(config.dns, lists))
    if resolver.outcome is Outcome.TIMEOUT:
        return [Check("dns", False, _silent_resolver(config.dns))]
    if not lists:
        return [Check("dns", True, "on; no DNS lists configured")]
    answers = iter(points)
    checks = []
    for where, entry in _dns_lists(config):
        check = _list_check(entry, next(answers), next(answers), config.dns.timeout)
        if _asks_ipv6(entry):
            check = _ipv6_check(entry, check, next(answers), next(answers))
        checks.append(_keyless(where, entry) or _key_advice(entry, check))
    return checks


def _keyless(where: str, entry: DnsList) -> Check | None:
    """A failure for a list under Spamhaus DQS or Abusix (`KEYED_ZONE_SUFFIXES`) given no access
    key: those operators answer only queries made under a customer's key, and without one with
    an error code or nothing, so the list never hits and no log line says why. Whatever its test
    point gave, the missing key is what to fix; it fails as a list that refuses us or a
    mistyped zone fails (mail flows, the list is of no use). None for any other list."""
    zone = entry.zone.lower().rstrip(".")
    suffix = next((suffix for suffix in KEYED_ZONE_SUFFIXES
                   if zone == suffix or zone.endswith(f".{suffix}")), None)
    if suffix is None or entry.query_zone != entry.zone:
        return None
    return Check("dnslist", False, f"{entry.zone}: no access key ({where}.access_key_file is empty "
                 f"and zone holds none): lists under {suffix} answer only queries made under your "
                 f"key, so this one never hits; write the key alone into a file named by "
                 f"{where}.access_key_file (README: Network checks)")


def _key_advice(entry: DnsList, check: Check) -> Check:
    """`check`, with advice for a list whose access key is written in its zone: mailsift keeps
    it out of what it shows (`config.written_key`), but the config file still holds it, and
    configs get pasted into tickets. A warning, not a failure: the list works as before."""
    if not entry.key_in_zone:
        return check
    return Check(check.what, check.ok, f"{check.detail}; its access key is written in zone: move "
                 "it to a file named by access_key_file, as the config file gets copied and pasted")


def _asks_ipv6(entry: DnsList) -> bool:
    return entry.kind != "uri" and entry.ipv6


def _silent_resolver(config: DnsConfig) -> str:
    """A resolver that answers nothing within dns.timeout. "on; no DNS lists configured" said ok
    of a mistyped or stopped one, though every message would then wait dns.timeout for SPF,
    DKIM, DMARC and reverse DNS and have none of them."""
    where = ", ".join(config.nameservers) or "the resolvers of /etc/resolv.conf (dns.nameservers empty)"
    return (f"no answer from {where} within {config.timeout:g} s (dns.timeout), asked for the root "
            "zone's servers, which any resolver knows: is one running there (dns.nameservers)? "
            "Each message would wait that long and get no network checks")


async def _ask_test_points(config: DnsConfig, lists: list[DnsList]) -> list[Answer]:
    """Whether the resolver answers at all (ROOT_QUESTION; whatever it answers, even a refusal),
    then the test points of every list, in list order: listed, then never-listed; then the IPv6
    pair likewise for a list asked about IPv6 hosts. All within one dns.timeout."""
    lookups = Lookups(shared_resolver(tuple(config.nameservers), 0), config.timeout)
    versions = [(entry, version) for entry in lists for version in (4, 6)
                if version == 4 or _asks_ipv6(entry)]
    return await lookups.query_all([ROOT_QUESTION, *((name, "A") for entry, version in versions
                                                     for name in test_points(entry, version))])


def _list_check(entry: DnsList, answer: Answer, never: Answer, timeout: float) -> Check:
    name, never_name = test_points(entry, shown=True)
    if answer.unknown:
        return Check("dnslist", False, f"{entry.zone}: no answer for {name} ({answer.outcome}, "
                     f"{timeout:g} s): the resolver does not reach the list")
    refusals = [code for code in answer.records if refusal(code)]
    if refusals:
        return Check("dnslist", False, f"{entry.zone}: refuses our queries (answer "
                     f"{', '.join(refusals)}): query it through your own resolver, and check its terms")
    if not answer.records:
        return Check("dnslist", False, f"{entry.zone}: does not list its test point {name}: "
                     "wrong zone, or the resolver does not reach the list")
    if not listings(entry, answer.records):
        return Check("dnslist", False, f"{entry.zone}: answers {', '.join(answer.records)} for its "
                     f"test point, none of them in its codes {entry.codes}")
    everything = listings(entry, never.records)
    if everything:
        return Check("dnslist", False, f"{entry.zone}: lists everything ({', '.join(everything)} "
                     f"also for {never_name}, which no list may list): the list is dead or broken; "
                     "remove it")
    return Check("dnslist", True, f"{entry.zone}: test point listed ({', '.join(answer.records)}); "
                 f"rule {entry.rule}")


def _ipv6_check(entry: DnsList, check: Check, answer: Answer, never: Answer) -> Check:
    """`check` (the IPv4 verdict) with what the IPv6 test points say, for a list set to be asked
    about IPv6 hosts, as it is by default. One that lists the never-listed point would hit every
    message from an IPv6 host; one that lists neither point most likely lists IPv4 alone, and
    asking it costs a query for every such message and tells it who writes to us."""
    if not check.ok:
        return check
    name, never_name = test_points(entry, 6, shown=True)
    everything = listings(entry, never.records)
    if everything:
        return Check("dnslist", False, f"{entry.zone}: lists every IPv6 address ({', '.join(everything)} "
                     f"also for {never_name}, which no list may list): set ipv6 = false for it")
    if listings(entry, answer.records):
        return Check("dnslist", True, f"{check.detail}; IPv6 test point listed too")
    return Check("dnslist", True, f"{check.detail}; does not list its IPv6 test point "
                 f"{IPV6_TEST_POINTS[0]} ({name}): it probably lists IPv4 only; set ipv6 = false "
                 "for it to save a query per message from an IPv6 host")
