"""The outcome of scoring one message: what `mailsift check`, the milter and the quarantine show."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Hit:
    name: str
    score: float
    description: str
    evidence: str = ""
    group: str = ""
    tflags: frozenset[str] = frozenset()


@dataclass
class Result:
    score: float
    required_score: float
    hits: list[Hit]  # scoring hits, highest score first (sub-rules and zero scores left out)
    score_set: int = 0
    # rule name -> what went wrong (time budget overrun, check raised); the rule counted as no hit
    rule_errors: dict[str, str] = field(default_factory=dict)
    # group -> points taken off because the group's hits added up to more than its cap
    capped: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    # Authentication-Results value (SPF, DKIM, DMARC) when the network checks ran, else ""
    auth_results: str = ""
    # Why Bayes had no say ("" when it had): "off", "untrained", "unavailable" (its store is
    # down) or "failed" (see Scanner._bayes_view). The milter counts these for its metrics.
    bayes_missing: str = ""
    # The outcome ("timeout", "servfail") of each DNS lookup of the network checks that got no answer
    dns_failures: list[str] = field(default_factory=list)

    @property
    def is_spam(self) -> bool:
        return self.score >= self.required_score

    @property
    def rule_names(self) -> list[str]:
        return [h.name for h in self.hits]

    def as_dict(self) -> dict[str, object]:
        return {
            "score": round(self.score, 2),
            "required_score": self.required_score,
            "is_spam": self.is_spam,
            "score_set": self.score_set,
            "rules": [
                {"name": h.name, "score": round(h.score, 3), "description": h.description,
                 "evidence": h.evidence, "group": h.group}
                for h in self.hits
            ],
            "rule_errors": self.rule_errors,
            "capped_groups": self.capped,
            "elapsed_ms": round(self.elapsed * 1000, 1),
        }
