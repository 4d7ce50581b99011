"""Python checks callable from rule files as `eval:name(args)`.

A check is registered next to its code together with the rules it provides by default (name,
arguments, score, description, group), so one place documents and scores it. Rule files may add
more rules on the same check with other arguments, or override the default score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailsift.analysis.model import Message
    from mailsift.config import Config

# What a check returns: a falsy value for "no hit", True, or an evidence string (also a hit).
CheckResult = str | bool | None


@dataclass
class CheckContext:
    """What a check may look at: the message, the configuration, and a per-message scratch cache."""

    msg: Message
    config: Config
    cache: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute something once per message, for checks that share work (one callback, many rules)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


CheckFunc = Callable[..., CheckResult]


@dataclass(frozen=True)
class DefaultRule:
    name: str
    score: float
    describe: str
    args: tuple[object, ...] = ()
    kind: str = "body"
    group: str = ""
    tflags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Check:
    name: str
    func: CheckFunc
    rules: tuple[DefaultRule, ...]


CHECKS: dict[str, Check] = {}


def check(name: str, *rules: DefaultRule) -> Callable[[CheckFunc], CheckFunc]:
    """Register `func` as `eval:name(...)`, with the rules it provides out of the box."""

    def register(func: CheckFunc) -> CheckFunc:
        if name in CHECKS:
            raise ValueError(f"eval check {name!r} registered twice")
        CHECKS[name] = Check(name, func, tuple(rules))
        return func

    return register


def load_checks() -> dict[str, Check]:
    """Import every module of `mailsift.rules.checks` so their decorators run; return the registry."""
    import importlib
    import pkgutil

    from mailsift.rules import checks

    for info in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"{checks.__name__}.{info.name}")
    return CHECKS
