"""Read SpamAssassin-syntax rule files (`*.cf`) into a `RuleSet`.

SpamAssassin spreads one rule over several directives (`body`, `score`, `describe`, `tflags`...)
and often over several files (a site's `local.cf` re-scores stock rules), so lines are collected
per rule name while reading and merged only at the end; the last definition of anything wins.
Pattern translation is also deferred to the end, because `replace_tag` substitution applies to the
final set of tags whatever the order of the lines (as in SpamAssassin's ReplaceTags plugin).

`whitelist_from`, `blacklist_from` and their kin become entries of the site's welcome and block
lists (`RuleSet.site_lists`; sa_lists.py says how). Nothing is dropped silently: a rule line that
cannot be used lands in `RuleSet.skipped`, and any other directive mailsift does not act on lands
in `RuleSet.notes`, each with its `file:line`.

Conditionals: `ifplugin` is taken as true (mailsift provides the behaviour of the stock plugins, or
skips the rules whose checks it lacks), `if` expressions are evaluated with `version` = 4.000001
and `plugin(...)` true; `can(...)` is true for the configuration features mailsift honours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsift.rules.meta import MetaError, parse_meta
from mailsift.rules.model import LintItem, RuleDef, RuleSet
from mailsift.rules.perl_regex import TranslationError, split_delimited, translate_parts
from mailsift.rules.sa_lists import (
    ADDING,
    REMOVING,
    Untranslatable,
    addresses,
    entry_of,
    family_lines,
    foreign_signer,
    held_as,
)

log = logging.getLogger(__name__)

SA_VERSION = "4.000001"
PERL_VERSION = "5.036000"

# `can(Mail::SpamAssassin::Conf::X)` answers: features whose rules mailsift can run as written.
_CONF_FEATURES = frozenset(
    {
        "feature_bug6558_free",
        "feature_welcomelist_blocklist",
        "compat_welcomelist_blocklist",
        "feature_registryboundaries",
        "feature_yesno_takes_args",
        "feature_originating_ip_headers",
        "feature_dns_local_ports_permit_avoid",
        "feature_bayes_stopwords",
        "feature_dns_block_rule",
    }
)

_RULE_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_EVAL = re.compile(r"eval:\s*(?P<name>\w+)\s*(?:\((?P<args>.*)\))?\s*\Z", re.DOTALL)
_EVAL_ARG = re.compile(
    r"""\s*(?:'(?P<sq>(?:[^'\\]|\\.)*)'|"(?P<dq>(?:[^"\\]|\\.)*)"|(?P<num>[-+]?\d+(?:\.\d+)?)|(?P<word>[\w.:-]+))\s*"""
)
_HEADER_TEST = re.compile(r"(?P<header>[^\s=!]+)\s*(?P<op>[=!]~)\s*(?P<rest>.*)\Z", re.DOTALL)
_IF_UNSET = re.compile(r"\[if-unset:\s*(?P<value>.*?)\s*\]\Z")
_CAPTURE_TAG = re.compile(r"%\{\w+\}")
_COMMENT = re.compile(r"(?<!\\)#.*")
_REPLACE_MODIFIER = r"(pre|inter|post) (.+?)"

# Directives that are valid SpamAssassin but do not define rules; value = what the note says.
_NOT_USED = "not used by mailsift"
_NOTE_MEANINGS: dict[str, str] = {
    "loadplugin": "Perl plugin: not used by mailsift (checks are Python, see `eval:`)",
    "tryplugin": "Perl plugin: not used by mailsift (checks are Python, see `eval:`)",
    "priority": "evaluation order: mailsift orders rules by their dependencies",
    "require_version": "version guard: not used by mailsift",
    "reuse": "mass-check score reuse: not used by mailsift",
    "test": "rule self-test example: not used by mailsift",
    "lang": "non-English text: ignored, mailsift reports in English",
    "shortcircuit": "shortcircuit: not used by mailsift, every rule runs within the time budget",
}
_NOTE_PREFIXES: dict[str, str] = {
    "bayes_": "Bayes setting: mailsift's classifier has its own configuration",
    "report": "report template: mailsift formats its own reports",
    "clear_": "reset of a SpamAssassin setting: not used by mailsift",
    "def_": "SpamAssassin's default allow list: not used by mailsift",
    "util_rb_": "registry-boundary TLD list: mailsift uses the public suffix list",
    "uridnsbl": "URI DNS blocklist definition: " + _NOT_USED,
    "urirhs": "URI DNS blocklist definition: " + _NOT_USED,
    "uridnssub": "URI DNS blocklist definition: " + _NOT_USED,
    "askdns": "DNS query rule: " + _NOT_USED,
    "dns_": "DNS resolver setting: " + _NOT_USED,
    "add_header": "header added by SpamAssassin: mailsift adds its own headers",
    "remove_header": "header removal: " + _NOT_USED,
}
_NOT_READ = "not read from rule files: set "
_ALLOW_BLOCK = ("not supported: the site's lists (lists.welcome and lists.block, or whitelist_from "
                "and blacklist_from lines) judge the sender's address alone; write a header rule "
                "with a large score (-20, or 20), or users keep their own lists in the review UI")
# Settings of a site's local.cf that decide which mail is spam, how it is marked or what text rules
# see, which mailsift takes from mailsift.toml or lacks: notes marked `verdict`, which `configtest`
# names.
_VERDICT_SETTINGS: dict[str, str] = {
    "required_score": _NOT_READ + "scoring.required_score in mailsift.toml",
    "trusted_networks": _NOT_READ + "network.trusted_networks in mailsift.toml",
    "internal_networks": _NOT_READ + "network.internal_networks in mailsift.toml",
    "msa_networks": _NOT_READ + "milter.authenticated in mailsift.toml (SASL senders)",
    "rewrite_header": "set actions.subject_tag and actions.rewrite_subject in mailsift.toml",
    "body_part_scan_size": _NOT_READ + "scan.body_part_scan_size in mailsift.toml",
    "rawbody_part_scan_size": _NOT_READ + "scan.rawbody_part_scan_size in mailsift.toml",
    "all_spam_to": _ALLOW_BLOCK,
    "more_spam_to": _ALLOW_BLOCK,
}
_VERDICT_PREFIXES = ("whitelist_", "welcomelist_", "blacklist_", "blocklist_", "unwhitelist_",
                     "unwelcomelist_", "unblacklist_", "unblocklist_")
# Any other directive name made of these characters is a SpamAssassin setting we do not use.
_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

_MULTI_SCORE_COUNT = 4
_TFLAGS_MAXHITS = re.compile(r"maxhits=(\d+)\Z")


@dataclass
class _Test:
    """A rule's test as read; the Perl pattern is translated when all files have been read."""

    rule: RuleDef
    perl: tuple[str, str] | None = None  # (pattern body, modifiers)


@dataclass
class _Attribute:
    """A per-rule setting line (`score`, `describe`, `tflags`), kept with where it was read."""

    value: Any
    source: str


@dataclass
class _Conditional:
    """One open `if`/`ifplugin` block."""

    active: bool
    outer_active: bool
    source: str
    condition: str
    ignored_lines: int = 0


@dataclass
class _Loader:
    """State of one `load_rule_files` call: definitions by rule name, tags, open conditionals."""

    checks: dict[str, object]
    known: frozenset[str] = frozenset()  # rules defined by files loaded beside these (see load_rule_files)
    result: RuleSet = field(default_factory=RuleSet)
    tests: dict[str, _Test] = field(default_factory=dict)
    scores: dict[str, _Attribute] = field(default_factory=dict)
    describes: dict[str, _Attribute] = field(default_factory=dict)
    tflags: dict[str, _Attribute] = field(default_factory=dict)
    groups: dict[str, _Attribute] = field(default_factory=dict)
    skipped_names: set[str] = field(default_factory=set)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    replace_rules: dict[str, str] = field(default_factory=dict)
    conditionals: list[_Conditional] = field(default_factory=list)
    reading: list[Path] = field(default_factory=list)
    # (list kind, entry) -> what holds it (sa_lists.held_as) -> the "file:line" of that line
    list_holders: dict[tuple[str, str], dict[tuple[str, str], str]] = field(default_factory=dict)
    # `un` lines read while another line held their entry: (file:line, directive, glob, kind, entry)
    held_back: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    directives: int = 0  # lines that were a directive we know, to find files with none

    # --- files -------------------------------------------------------------------------------

    def load_path(self, path: Path, source: str = "") -> None:
        """A file, or every `*.cf` of a directory in name order (SpamAssassin's order).

        `source` is the `include` line that names `path`, if one does."""
        if path.is_dir():
            children = sorted(path.glob("*.cf"))
            if not children:
                self.result.unread[str(path)] = "a directory without a *.cf file"
            for child in children:
                self.load_file(child, source)
        else:
            self.load_file(path, source)

    def load_file(self, path: Path, source: str = "") -> None:
        resolved = path.resolve()
        if resolved in self.reading:
            self.note(str(path), "include", "include loop: file already being read, not read again")
            return
        try:
            text = _read_text(path)
        except BinaryFileError:  # named by an include line, or given itself
            where, what, named = (source, "include", f"{path}: ") if source else (str(path), "file", "")
            message = named + "a binary file, not a rule file"
            self.skip(where, what, message, "")
            log.warning("rules: %s: %s; not read", where, message)
            return
        except OSError as exc:
            # As SpamAssassin does: a missing include (or a directory called x.cf) costs its
            # rules, with a lint line, not the whole ruleset and the milter's start.
            where, message = source or str(path), f"cannot read {path}: {exc.strerror}"
            self.skip(where, "include", message, "")
            log.warning("rules: %s: %s; its rules are not loaded", where, message)
            return
        self.reading.append(resolved)
        self.result.files.append(str(path))
        outer_conditionals, self.conditionals = self.conditionals, []
        directives_before = self.directives
        for number, line in enumerate(text.splitlines(), 1):
            self.handle_line(line, f"{path}:{number}", path)
        if self.directives == directives_before and _has_content(text):  # empty: nothing to say
            self.result.unread[str(path)] = "no line of it is a rule or a directive mailsift knows"
        for block in self.conditionals:
            self.skip(block.source, "if", f"'{block.condition}' has no matching endif", "")
        self.conditionals = outer_conditionals
        self.reading.pop()

    # --- lines -------------------------------------------------------------------------------

    def handle_line(self, line: str, source: str, path: Path) -> None:
        """Dispatch one line: comments stripped, conditionals first, then directives when active."""
        text = _COMMENT.sub("", line).replace("\\#", "#").strip()
        if not text:
            return
        directive, args = _split_word(text)
        directive = directive.lower()
        self.directives += _known_directive(directive)
        if directive in ("if", "ifplugin", "else", "endif"):
            self.conditional(directive, args, source)
        elif not all(block.active for block in self.conditionals):
            self.conditionals[-1].ignored_lines += 1
        elif not args and (directive == "include" or directive in _HANDLERS):
            # a bare `tflags` stopped the whole load; a bare `include` read the folder again
            self.skip(source, directive, f"{directive} with nothing after it", "")
        elif directive == "include":
            self.load_path(path.parent / args, source)
        else:
            handler = _HANDLERS.get(directive)
            if handler is not None:
                handler(self, args, source, directive)
            else:
                self.other_directive(directive, args, source)

    def conditional(self, directive: str, args: str, source: str) -> None:
        active = all(block.active for block in self.conditionals)
        if directive in ("if", "ifplugin"):
            truth = True if directive == "ifplugin" else self.condition_value(args, source)
            self.conditionals.append(_Conditional(active and truth, active, source, f"{directive} {args}"))
        elif not self.conditionals:
            self.skip(source, directive, f"{directive} without a matching if", "")
        elif directive == "else":
            block = self.conditionals[-1]
            block.active = block.outer_active and not block.active
        else:
            self.close_conditional(self.conditionals.pop())

    def close_conditional(self, block: _Conditional) -> None:
        """Note how many lines a false condition hid, once, at the outermost false block."""
        if not block.outer_active:
            self.conditionals[-1].ignored_lines += block.ignored_lines
        elif block.ignored_lines:
            message = f"'{block.condition}' is false: {block.ignored_lines} line(s) ignored"
            self.note(block.source, "if", message)

    def condition_value(self, expr: str, source: str) -> bool:
        """Evaluate an `if` expression; a malformed one is reported and counts as false."""
        try:
            return bool(parse_meta(_substitute_condition(expr)).evaluate({}))
        except (MetaError, ValueError) as exc:
            self.skip(source, "if", f"cannot evaluate '{expr}': {exc}; block ignored", "")
            return False

    def other_directive(self, directive: str, args: str, source: str) -> None:
        """A directive that is not about rules: a note, or a skip if it is not SpamAssassin's at all."""
        verdict = _verdict_meaning(directive)
        if verdict:
            self.result.notes.append(LintItem(source, directive, verdict, verdict=True, value=args))
            return
        meaning = _NOTE_MEANINGS.get(directive)
        if meaning is None:
            prefixed = (text for prefix, text in _NOTE_PREFIXES.items() if directive.startswith(prefix))
            meaning = next(prefixed, "")
        meant = "" if meaning else _mistyped(directive)
        if meant:
            self.skip(source, directive, f"not a directive (did you mean '{meant}'?)", "")
        elif meaning or _SETTING_NAME.match(directive):
            self.note(source, directive, meaning or _NOT_USED)
        else:
            self.skip(source, directive, "not a directive", "")

    # --- rule definitions --------------------------------------------------------------------

    def rule_line(self, args: str, source: str, kind: str) -> None:
        """`body|rawbody|uri|full|header|mimeheader NAME test`: record the test for the end."""
        name, test = _split_word(args)
        test = test.strip()
        rule_kind = "header" if kind == "mimeheader" else kind
        if not self.valid_name(name, source, rule_kind) or not test:
            if name and not test:
                self.skip(source, name, "no test after the rule name", rule_kind)
            return
        rule = RuleDef(name=name, kind=rule_kind, source=source)
        try:
            perl = self.parse_test(rule, test, kind)
        except (TranslationError, ValueError) as exc:
            self.skip(source, name, str(exc), rule_kind)
            return
        if rule.eval_name is not None and rule.eval_name not in self.checks:
            self.skip(source, name, f"{UNKNOWN_EVAL}{rule.eval_name}", rule_kind)
            return
        self.define(_Test(rule, perl))

    def parse_test(self, rule: RuleDef, test: str, kind: str) -> tuple[str, str] | None:
        """Fill the rule's test fields; return the Perl (body, modifiers) still to translate."""
        if test.startswith("eval:"):
            rule.eval_name, rule.eval_args = _parse_eval(test)
            return None
        if kind not in ("header", "mimeheader"):
            body, modifiers, rest = split_delimited(test)
            if rest:
                raise ValueError(f"unexpected text after the pattern: {rest!r}")
            return body, modifiers
        if kind == "mimeheader":
            rule.header_mod = "mime"
        if test.startswith("exists:"):
            rule.header, rule.exists = test[len("exists:") :].strip(), True
            return None
        return _parse_header_test(rule, test)

    def meta_line(self, args: str, source: str, _directive: str) -> None:
        name, expr = _split_word(args)
        if not self.valid_name(name, source, "meta"):
            return
        try:
            parsed = parse_meta(expr)
        except MetaError as exc:
            self.skip(source, name, f"bad meta expression: {exc}", "meta")
            return
        self.define(_Test(RuleDef(name=name, kind="meta", source=source, meta_expr=parsed.source)))

    def valid_name(self, name: str, source: str, kind: str) -> bool:
        if _RULE_NAME.match(name):
            return True
        self.skip(source, name or kind, f"invalid rule name {name!r}", kind)
        return False

    def define(self, test: _Test) -> None:
        """Record a rule's test; a later definition of the same name replaces an earlier one."""
        self.tests[test.rule.name] = test
        self.skipped_names.discard(test.rule.name)

    # --- per-rule settings -------------------------------------------------------------------

    def score_line(self, args: str, source: str, _directive: str) -> None:
        name, *values = args.split()
        try:
            numbers = [float(value) for value in values]
        except ValueError:
            self.skip(source, name, f"score is not a number: {' '.join(values)}", "")
            return
        if len(numbers) == 1:
            numbers *= _MULTI_SCORE_COUNT
        if len(numbers) != _MULTI_SCORE_COUNT:
            self.skip(source, name, "score needs one value or four (one per score set)", "")
            return
        self.scores[name] = _Attribute(tuple(numbers), source)

    def describe_line(self, args: str, source: str, _directive: str) -> None:
        name, text = _split_word(args)
        self.describes[name] = _Attribute(text.strip(), source)

    def tflags_line(self, args: str, source: str, _directive: str) -> None:
        name, *flags = args.split()
        self.tflags[name] = _Attribute(set(flags), source)

    def lang_line(self, args: str, source: str, directive: str) -> None:
        language, rest = _split_word(args)
        if language.lower().startswith("en") and rest.split(" ", 1)[0].lower() == "describe":
            self.describe_line(rest.split(" ", 1)[1] if " " in rest else "", source, "describe")
        else:
            self.note(source, directive, f"'{language}' {rest.split(' ', 1)[0]}: non-English text ignored")

    def list_line(self, args: str, source: str, directive: str) -> None:
        """`whitelist_from`, `blacklist_from` and the like (sa_lists.py): entries of the site's
        lists, added or (`un...`) taken back in reading order, the last line winning as in
        SpamAssassin, where a `un` line takes back only what lines of its own family added
        with the same glob (`held_as`): an entry stays while any line still holds it. A glob
        the lists cannot hold is a note `configtest` names."""
        kind = ADDING.get(directive) or REMOVING[directive]
        for glob in addresses(directive, args):
            try:
                entry = entry_of(glob)
            except Untranslatable as exc:
                self.result.notes.append(LintItem(source, directive, str(exc), verdict=True, value=glob))
                continue
            holders, held = self.list_holders.setdefault((kind, entry), {}), held_as(directive, args, glob)
            holders.pop(held, None)  # written again, the line is the latest to hold it
            if directive in ADDING:
                holders[held] = source
            self.hold(kind, entry, holders)
            if directive in REMOVING:
                if holders:
                    self.held_back.append((source, directive, glob, kind, entry))
                continue
            signer = foreign_signer(directive, args, entry)
            if signer:
                self.result.notes.append(LintItem(
                    source, directive, f"welcomed when SPF or a DKIM signature of its own domain "
                    f"confirms it; a signature of {signer} alone does not", verdict=True, value=args))

    def hold(self, kind: str, entry: str, holders: dict[tuple[str, str], str]) -> None:
        """The site list keeps `entry` while a line holds it, as given by the latest such line
        (configtest counts it for that line's file)."""
        entries = self.result.site_lists[kind]
        if holders:
            entries[entry] = next(reversed(holders.values()))
        else:
            entries.pop(entry, None)

    def note_held_back(self) -> None:
        """Name each `un` line whose entry another line keeps on the list to the end: mailsift
        before took the entry back whichever line had added it, so a local.cf that relied on that
        (`unwhitelist_from x` after a `whitelist_auth x`) changed verdicts on upgrade, and
        configtest is where the administrator looks."""
        for source, directive, glob, kind, entry in self.held_back:
            holders = self.list_holders[kind, entry]
            if holders:
                self.result.notes.append(LintItem(source, directive, (
                    f"takes back only what {family_lines(directive)} lines with this glob added, "
                    f"as in SpamAssassin (older mailsift took back any line's): {entry} stays on the "
                    f"{kind} list, held by {next(reversed(holders.values()))}; remove that line or "
                    "add its own un- line"), verdict=True, value=glob))

    def group_line(self, args: str, source: str, _directive: str) -> None:
        group, *names = args.split()
        if not names:
            self.skip(source, group or "group", "group needs a name and at least one rule", "")
        for name in names:
            self.groups[name] = _Attribute(group, source)

    def group_cap_line(self, args: str, source: str, _directive: str) -> None:
        try:
            group, cap = args.split()
            self.result.group_caps[group] = float(cap)
        except ValueError:
            self.skip(source, "group_cap", "expected: group_cap GROUPNAME MAX", "")

    def replace_line(self, args: str, source: str, directive: str) -> None:
        """`replace_tag|pre|inter|post NAME value`, `replace_start|end TEXT`, `replace_rules R...`."""
        kind = directive.removeprefix("replace_")
        if kind == "rules":
            for name in args.split():
                self.replace_rules[name] = source
            return
        if kind in ("start", "end"):
            self.tags.setdefault(kind, {})[""] = args
            return
        name, value = _split_word(args)
        if not value.strip():
            self.skip(source, directive, f"{directive} needs a name and a value", "")
            return
        self.tags.setdefault(kind, {})[name] = value.strip()

    # --- reporting ---------------------------------------------------------------------------

    def skip(self, source: str, rule: str, message: str, kind: str) -> None:
        self.result.skipped.append(LintItem(source, rule, message, kind))
        if kind:
            self.skipped_names.add(rule)

    def note(self, source: str, rule: str, message: str) -> None:
        self.result.notes.append(LintItem(source, rule, message))

    # --- end of loading ----------------------------------------------------------------------

    def finish(self) -> RuleSet:
        """Translate patterns, merge settings into rules, and note settings for unknown rules."""
        for name, test in self.tests.items():
            if test.perl is not None and not self.translate_test(name, test):
                continue
            self.result.rules[name] = test.rule
        self.add_check_defaults()
        for name, rule in self.result.rules.items():
            self.apply_settings(name, rule)
        self.note_orphans()
        self.note_held_back()
        return self.result

    def translate_test(self, name: str, test: _Test) -> bool:
        """Apply replace tags, translate the pattern; report and return False when it fails."""
        assert test.perl is not None
        body, modifiers = test.perl
        parts = self.replace_tags(body) if name in self.replace_rules else [body]
        try:
            if any(_CAPTURE_TAG.search(part) for part in parts):
                raise TranslationError("capture template %{...} (SpamAssassin 4 capture rules) not supported")
            test.rule.pattern, test.rule.flags = translate_parts(parts, modifiers)
        except TranslationError as exc:
            self.skip(test.rule.source, name, str(exc), test.rule.kind)
            return False
        return True

    def replace_tags(self, body: str) -> list[str]:
        """SpamAssassin's tag substitution: `<TAG>` becomes its `replace_tag` value.

        `<pre NAME>`, `<post NAME>` and `<inter NAME>` in the pattern say which `replace_pre`
        value goes before each tag, which `replace_post` value after it, and which `replace_inter`
        value between two adjacent tags. Tag values may contain tags: up to 5 extra passes.
        The pattern comes back in pieces (text between tags, tag values) for `translate_parts`.
        """
        start = re.escape(self.tags.get("start", {}).get("", "<"))
        end = re.escape(self.tags.get("end", {}).get("", ">"))
        for _ in range(6):
            modifiers = {}
            for kind in ("pre", "post", "inter"):
                match = re.search(f"{start}{kind} (.+?){end}", body)
                if match:
                    modifiers[kind] = self.tags.get(kind, {}).get(match.group(1), "")
                    body = body[: match.start()] + body[match.end() :]
            parts, again = self.replace_pass(body, start, end, modifiers)
            if not again:
                break
            body = "".join(parts)
        return [part for part in parts if part]

    def replace_pass(
        self, body: str, start: str, end: str, modifiers: dict[str, str]
    ) -> tuple[list[str], bool]:
        """One substitution pass; also says whether a substituted value brought new tags."""
        values = self.tags.get("tag", {})
        pieces = re.split(f"({start}[^{start}{end}]+{end})", body)
        parts: list[str] = []
        again = False
        for index, piece in enumerate(pieces):
            tag = re.fullmatch(f"{start}(.+?){end}", piece)
            if tag and tag.group(1) in values:
                value = values[tag.group(1)]
                again = again or bool(re.search(f"{start}[^{end}]+{end}", value))
                parts += [modifiers.get("pre", ""), value, modifiers.get("post", "")]
            elif piece == "" and 0 < index < len(pieces) - 1 and index % 2 == 0:
                parts.append(modifiers.get("inter", ""))
            else:
                parts.append(piece)
        return parts, again

    def add_check_defaults(self) -> None:
        """The rules Python checks declare, unless a file defined a rule of that name itself.

        They join before the files' settings are applied, so `score`, `describe`, `tflags` and
        `group` lines (a site's local.cf above all) override a check's defaults like any rule's.
        """
        for check in self.checks.values():
            for default in getattr(check, "rules", ()):
                if default.name in self.result.rules:
                    continue
                self.result.rules[default.name] = RuleDef(
                    name=default.name, kind=default.kind, source=f"{CHECK_SOURCE}{check.name}",
                    eval_name=check.name, eval_args=default.args, describe=default.describe,
                    tflags=set(default.tflags), scores=(default.score,) * 4, group=default.group)

    def apply_settings(self, name: str, rule: RuleDef) -> None:
        if name in self.scores:
            rule.scores = self.scores[name].value
        if name in self.describes:
            rule.describe = str(self.describes[name].value)
        if name in self.groups:
            rule.group = str(self.groups[name].value)
        if name in self.tflags:
            rule.tflags = set(self.tflags[name].value)
            rule.maxhits = _maxhits(rule.tflags)

    def note_orphans(self) -> None:
        """Settings for rules never defined are allowed, but usually mean a typo or a skipped rule."""
        defined = self.result.rules.keys() | self.known
        for what, settings in (
            ("score", self.scores),
            ("describe", self.describes),
            ("tflags", self.tflags),
            ("group", self.groups),
            ("replace_rules", {n: _Attribute(None, s) for n, s in self.replace_rules.items()}),
        ):
            for name, setting in settings.items():
                if name not in defined:
                    skipped = name in self.skipped_names
                    why = "was skipped" if skipped else "is not defined"
                    # a rescore of a rule that does not exist (a typo, or a SpamAssassin rule
                    # mailsift lacks) changes nothing; one of a skipped rule is counted already
                    self.result.notes.append(LintItem(setting.source, what, f"{name}: rule {why}",
                                                      verdict=what == "score" and not skipped))
        for name, rule in self.result.rules.items():
            if rule.meta_expr is not None:
                missing = sorted(parse_meta(rule.meta_expr).names - defined)
                if missing:
                    self.note(rule.source, "meta", f"{name}: undefined rule(s) count 0: {', '.join(missing)}")


CHECK_SOURCE = "check:"  # source of a rule declared by a Python check rather than read from a file
UNKNOWN_EVAL = "unknown eval check "  # the reason given for a rule calling an eval check we lack


def _split_word(text: str) -> tuple[str, str]:
    """The first word and the rest, split at any run of spaces or tabs."""
    parts = text.strip().split(maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0] if parts else "", "")


class BinaryFileError(ValueError):
    """A file with a NUL byte: no rule file (text) has one, and read as Latin-1 its bytes made
    lines that `rules lint` reported as unused settings, with exit 0."""


def _read_text(path: Path) -> str:
    """Rule files are UTF-8 in practice; older ones may be Latin-1, which always decodes."""
    data = path.read_bytes()
    if b"\0" in data:
        raise BinaryFileError(str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _has_content(text: str) -> bool:
    """A line that is neither blank nor a comment: an empty local.cf, or Debian's commented one,
    is a normal state and no mistake."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def _mistyped(directive: str) -> str:
    """The directive mailsift reads that `directive` is one slip from (a letter added, left out,
    changed, or two swapped), or "". `bdoy` or `scroe` was noted as a setting mailsift does not
    use, like SpamAssassin's own, so its rule or score went missing while `rules lint` exited 0
    and configtest said ok; SpamAssassin's --lint fails such a line. No directive of
    SpamAssassin's or its plugins is one slip from these (checked against 3.4 and 4.0)."""
    read = ("include", "ifplugin", "endif", "else", *_HANDLERS)
    return next((name for name in read if len(name) > 2 and _one_slip(directive, name)), "")


def _one_slip(typed: str, meant: str) -> bool:
    if typed == meant or abs(len(typed) - len(meant)) > 1:
        return False
    if len(typed) != len(meant):
        short, long = sorted((typed, meant), key=len)
        return any(long[:at] + long[at + 1:] == short for at in range(len(long)))
    differ = [at for at, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
    return len(differ) == 1 or (len(differ) == 2 and differ[1] == differ[0] + 1
                                and typed[differ[0]] == meant[differ[1]]
                                and typed[differ[1]] == meant[differ[0]])


def _known_directive(directive: str) -> bool:
    """A directive mailsift reads or knows by meaning. Any other lower-case word is noted as a
    setting it does not use, which is every line of some non-rule files: they count as none."""
    return (directive in ("if", "ifplugin", "else", "endif", "include") or directive in _HANDLERS
            or directive in _NOTE_MEANINGS or directive.startswith(tuple(_NOTE_PREFIXES))
            or bool(_verdict_meaning(directive)))


def _verdict_meaning(directive: str) -> str:
    """What to do instead, for a setting that changes verdicts (see _VERDICT_SETTINGS); else ''."""
    if directive.startswith(_VERDICT_PREFIXES):
        return _ALLOW_BLOCK
    return _VERDICT_SETTINGS.get(directive, "")


def _substitute_condition(expr: str) -> str:
    """Replace `version`, `perl_version`, `plugin(...)` and `can(...)` by numbers for `parse_meta`."""
    expr = re.sub(r"\bplugin\(\s*[\w:]+\s*\)", "1", expr)
    expr = re.sub(r"\bcan\(\s*([\w:]+)\s*\)", lambda m: "1" if _can(m.group(1)) else "0", expr)
    expr = re.sub(r"\bperl_version\b", PERL_VERSION, expr)
    expr = re.sub(r"\bversion\b", SA_VERSION, expr)
    if parse_meta(expr).names:
        raise ValueError("only version, perl_version, plugin(...) and can(...) are understood")
    return expr


def _can(feature: str) -> bool:
    """Whether mailsift honours a `can(...)` feature, so the guarded rules should be read."""
    *module, method = feature.split("::")
    if module[-1:] == ["Conf"]:
        perl_min = re.fullmatch(r"perl_min_version_(\d+)", method)
        if perl_min:
            return int(perl_min.group(1)) <= int(PERL_VERSION.replace(".", ""))
        return method in _CONF_FEATURES
    return method.startswith("has_")  # a plugin's capability flag; the plugin counts as present


def _parse_eval(test: str) -> tuple[str, tuple[object, ...]]:
    """`eval:name(args)`: quoted strings, numbers and bare words are allowed as arguments."""
    match = _EVAL.match(test)
    if match is None:
        raise ValueError(f"malformed eval test {test!r}")
    return match.group("name"), _parse_eval_args(match.group("args") or "")


def _parse_eval_args(text: str) -> tuple[object, ...]:
    args: list[object] = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _EVAL_ARG.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read eval arguments at {text[pos:][:30]!r}")
        args.append(_eval_arg_value(match))
        pos = match.end()
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text.rstrip()):
            raise ValueError(f"expected ',' between eval arguments at {text[pos:][:30]!r}")
    return tuple(args)


def _eval_arg_value(match: re.Match[str]) -> object:
    if match.group("sq") is not None:
        return re.sub(r"\\(['\\])", r"\1", match.group("sq"))
    if match.group("dq") is not None:
        return re.sub(r'\\(["\\])', r"\1", match.group("dq"))
    if match.group("num") is not None:
        number = match.group("num")
        return float(number) if "." in number else int(number)
    return match.group("word")


def _parse_header_test(rule: RuleDef, test: str) -> tuple[str, str]:
    """`Header[:mod] =~ /re/mods [if-unset: X]`; returns the Perl pattern to translate."""
    match = _HEADER_TEST.match(test)
    if match is None:
        raise ValueError("expected 'Header =~ /pattern/', 'exists:Header' or 'eval:check(...)'")
    header, _, modifier = match.group("header").partition(":")
    rule.header = header
    if modifier:
        rule.header_mod = f"{rule.header_mod}:{modifier}" if rule.header_mod else modifier
    rule.negate = match.group("op") == "!~"
    body, modifiers, rest = split_delimited(match.group("rest"))
    if rest:
        unset = _IF_UNSET.match(rest)
        if unset is None:
            raise ValueError(f"unexpected text after the pattern: {rest!r}")
        rule.if_unset = unset.group("value")
    return body, modifiers


def _maxhits(tflags: set[str]) -> int:
    """`maxhits=N` caps the count; `multiple` alone means no cap (0); otherwise a rule hits once."""
    for flag in tflags:
        match = _TFLAGS_MAXHITS.match(flag)
        if match:
            return int(match.group(1))
    return 0 if "multiple" in tflags else 1


_Handler = Callable[[_Loader, str, str, str], None]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(("body", "rawbody", "uri", "full", "header", "mimeheader"), _Loader.rule_line),
    "meta": _Loader.meta_line,
    "score": _Loader.score_line,
    "describe": _Loader.describe_line,
    "tflags": _Loader.tflags_line,
    "lang": _Loader.lang_line,
    "group": _Loader.group_line,
    "group_cap": _Loader.group_cap_line,
    **dict.fromkeys([*ADDING, *REMOVING], _Loader.list_line),
    **dict.fromkeys(
        ("replace_" + kind for kind in ("tag", "pre", "inter", "post", "start", "end", "rules")),
        _Loader.replace_line,
    ),
}


def load_rule_files(paths: list[Path], checks: dict[str, object],
                    known: Collection[str] = ()) -> RuleSet:
    """Read rule files and directories (every `*.cf`, in name order) into one `RuleSet`.

    `checks` is the eval registry (`registry.load_checks()`): `eval:` rules naming a check that is
    not registered are skipped with the reason "unknown eval check NAME". `known` names rules
    defined by other files loaded beside these (`rules lint local.cf`: the shipped rules), which
    settings and metas may refer to without a note.
    """
    loader = _Loader(checks, frozenset(known))
    for path in paths:
        loader.load_path(Path(path))
    return loader.finish()
