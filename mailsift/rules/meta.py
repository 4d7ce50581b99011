"""SpamAssassin `meta` expressions: parsed safely, compiled once, evaluated per message.

A meta combines other rules' hit counts with Perl operators: `!`, `&&`, `||`, parentheses,
`+ - * /`, comparisons and numbers. Rule files come from third parties, so the text is never
handed to `eval` as is: it is tokenised against a whitelist, parsed with Perl's precedence into a
small tree, and only then rendered as a fully parenthesised Python expression in which every rule
name is a quoted dictionary key (or a list index). The result is compiled once, so evaluation costs
one Python function call.

Perl semantics kept: a rule that is not defined (or did not run) counts 0; `&&` and `||` return
the deciding operand (`A && B` is B's count when A hit); `!` gives 1 or 0; comparisons do not
chain; a division by zero makes the whole meta 0 instead of aborting the scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<name>[A-Za-z_]\w*)|(?P<op>&&|\|\||[<>!=]=|[-+*/<>!()]))"
)
_MAX_DEPTH = 64  # nested parentheses and unary operators; deeper is not a real rule

# Binary operator levels, loosest first; each level is left-associative.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/"),
)
_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">="})
_PYTHON_OP = {"||": "or", "&&": "and"}

# Tree nodes: ("num", text) | ("name", name) | ("not"|"neg", node) | ("chain", [node, op, node, ...])
Node = tuple[Any, ...]
Evaluator = Callable[[Any], float]


class MetaError(ValueError):
    """A meta expression that is not valid; the message points at the offending token."""


@dataclass(frozen=True)
class MetaExpr:
    """A parsed meta expression: the rule names it reads and ready-to-call evaluators."""

    source: str
    names: frozenset[str]
    tree: Node = field(repr=False)
    _by_name: Evaluator = field(repr=False, compare=False)

    def evaluate(self, hits: Mapping[str, float]) -> float:
        """The expression's value given hit counts by rule name (missing names count 0)."""
        try:
            return self._by_name(hits)
        except ZeroDivisionError:
            return 0

    def bind(self, index: Mapping[str, int]) -> Callable[[Sequence[float]], float]:
        """An evaluator over a list of hit counts, for engines that number their rules.

        Every name in `self.names` must be in `index`; give undefined rules a slot that stays 0.
        """
        code = _render(self.tree, lambda name: f"h[{index[name]}]")
        return _guard_zero_division(_compile(code, self.source))


def parse_meta(text: str) -> MetaExpr:
    """Parse a meta expression, raising `MetaError` for anything outside the whitelisted syntax."""
    parser = _Parser(_tokenize(text))
    tree = parser.parse()
    code = _render(tree, lambda name: f"h.get({name!r}, 0)")
    return MetaExpr(text.strip(), frozenset(parser.names), tree, _compile(code, text))


def _tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; any character outside the whitelist is an error."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise MetaError(f"unexpected {text[pos:].lstrip()[:20]!r} at column {pos + 1}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent with Perl's precedence: unary, * /, + -, relational, equality, &&, ||."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.names: set[str] = set()

    def parse(self) -> Node:
        if not self.tokens:
            raise MetaError("empty expression")
        tree = self._binary(0)
        if self.pos < len(self.tokens):
            raise MetaError(f"unexpected {self.tokens[self.pos][1]!r} after a complete expression")
        return tree

    def _peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def _binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self._unary()
        items: list[Any] = [self._binary(level + 1)]
        while self._peek() in _LEVELS[level] and self.tokens[self.pos][0] == "op":
            op = self._peek()
            self.pos += 1
            right = self._binary(level + 1)
            if op in _COMPARISONS:  # Perl does not chain comparisons: keep them binary
                items = [("chain", [*items, op, right])]
            else:
                items += [op, right]
        return items[0] if len(items) == 1 else ("chain", items)

    def _unary(self) -> Node:
        if self.pos >= len(self.tokens):
            raise MetaError("expression ends where an operand was expected")
        kind, text = self.tokens[self.pos]
        self.pos += 1
        if kind == "num":
            return ("num", text)
        if kind == "name":
            if self._peek() == "(":
                raise MetaError(f"function calls are not allowed: {text}(")
            self.names.add(text)
            return ("name", text)
        if text in ("!", "-", "+", "("):
            return self._nested(text)
        raise MetaError(f"unexpected {text!r} where an operand was expected")

    def _nested(self, text: str) -> Node:
        """A parenthesised expression or a unary operator, with a bound on nesting."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise MetaError(f"nested deeper than {_MAX_DEPTH} levels")
        if text == "(":
            node = self._binary(0)
            if self._peek() != ")":
                raise MetaError("missing ')'")
            self.pos += 1
        else:
            operand = self._unary()
            node = {"!": ("not", operand), "-": ("neg", operand)}.get(text, operand)
        self.depth -= 1
        return node


def _render(node: Node, name_ref: Callable[[str], str]) -> str:
    """Python source for a tree; every operator application is parenthesised."""
    kind = node[0]
    if kind == "num":
        return str(node[1])
    if kind == "name":
        return name_ref(str(node[1]))
    if kind == "not":
        return f"(not {_render(node[1], name_ref)})"
    if kind == "neg":
        return f"(-{_render(node[1], name_ref)})"
    items = node[1]
    parts = [
        _PYTHON_OP.get(item, item) if isinstance(item, str) else _render(item, name_ref) for item in items
    ]
    return "(" + " ".join(parts) + ")"


def _compile(code: str, source: str) -> Evaluator:
    """Compile generated (never user-written) source into a one-argument function."""
    try:
        compiled = compile(f"lambda h: {code}", f"<meta {source[:60]}>", "eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise MetaError(f"expression too complex: {exc}") from None
    return eval(compiled, {"__builtins__": {}})  # generated from a validated tree


def _guard_zero_division(func: Evaluator) -> Callable[[Sequence[float]], float]:
    """Wrap an indexed evaluator so a division by zero yields 0, as `MetaExpr.evaluate` does."""

    def evaluate(hits: Sequence[float]) -> float:
        try:
            return func(hits)
        except ZeroDivisionError:
            return 0

    return evaluate
