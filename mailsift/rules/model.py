"""Rule definitions as read from `.cf` files or declared by Python checks, before compilation.

A rule's whole meaning (test, score, description, flags, group) ends up in one `RuleDef`, even
though SpamAssassin's syntax spreads it over several lines and files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The kinds of test a rule can run; `eval` rules keep the kind of the line that declared them.
KINDS = ("header", "body", "rawbody", "uri", "full", "meta")

# Score sets as in SpamAssassin: index = 2*bayes + net.
SCORE_SET_NAMES = ("no Bayes, no network", "network", "Bayes", "Bayes and network")


@dataclass
class RuleDef:
    name: str
    kind: str  # one of KINDS
    source: str  # "file:line" of the test line, for lint and error messages
    pattern: str | None = None  # Python `regex` syntax, already translated from Perl
    flags: str = ""  # subset of "imsx" from the Perl modifiers
    header: str | None = None  # header rules: name or pseudo-header (ALL, ToCc, MESSAGEID, ...)
    header_mod: str = ""  # "", "raw", "addr", "name" (others kept as written); mimeheader: "mime"[":raw"]
    negate: bool = False  # `!~`
    if_unset: str | None = None  # `[if-unset: ...]`
    exists: bool = False  # `exists:Header`
    eval_name: str | None = None
    eval_args: tuple[object, ...] = ()
    meta_expr: str | None = None
    describe: str = ""
    tflags: set[str] = field(default_factory=set)
    scores: tuple[float, float, float, float] | None = None  # None: the default applies
    group: str = ""
    maxhits: int = 1  # `tflags maxhits=N`; 0 = no cap (`tflags multiple` without maxhits)

    @property
    def is_sub_rule(self) -> bool:
        """`__NAME` rules only feed metas: they never score and never show in reports."""
        return self.name.startswith("__")

    def score_for(self, score_set: int) -> float:
        """The score in the given set; SpamAssassin's defaults when no `score` line was read."""
        if self.scores is not None:
            return self.scores[score_set]
        if self.is_sub_rule:
            return 0.0
        return -1.0 if "nice" in self.tflags else 1.0


@dataclass
class LintItem:
    """One line of `mailsift rules lint`: what happened to a line of a rule file."""

    source: str  # "file:line"
    rule: str  # rule name, or the directive if the line is not about a rule
    message: str
    kind: str = ""  # for a skipped rule line: the rule's kind (one of KINDS), else ""
    # A note on a SpamAssassin setting that changes which mail is spam or how it is marked, and
    # that mailsift does not apply (a site's required_score, whitelist_to, a rescore of a rule
    # it lacks...): `configtest` names these, since a migrated local.cf would lose them silently.
    verdict: bool = False
    value: str = ""  # the setting's value as written, for those notes


@dataclass
class RuleSet:
    """Everything the rule files declared, merged in load order (later files override scores)."""

    rules: dict[str, RuleDef] = field(default_factory=dict)
    group_caps: dict[str, float] = field(default_factory=dict)
    skipped: list[LintItem] = field(default_factory=list)  # rules that could not be used
    notes: list[LintItem] = field(default_factory=list)  # directives read but not used by mailsift
    files: list[str] = field(default_factory=list)
    # The site's welcome and block lists as SpamAssassin's whitelist_*/blacklist_* lines wrote
    # them: kind ("welcome", "block") -> entry (as `list_entry` keeps it) -> the "file:line" that
    # added it, so configtest can say how many each file gave.
    site_lists: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"welcome": {}, "block": {}})
    # path -> why nothing was read from it (a file without one directive, a directory without a
    # *.cf file): not an error for the milter, but `rules lint` of it must not look like success
    unread: dict[str, str] = field(default_factory=dict)
