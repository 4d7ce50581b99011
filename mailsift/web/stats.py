"""The stats page: quarantined messages per day by what became of them, and the rules behind them.

The chart is drawn on the server as SVG bars (no script, no chart library, nothing fetched from
elsewhere), so the page works under the strict Content-Security-Policy and loads instantly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mailsift.quarantine.model import RELEASING
from mailsift.quarantine.text import MAY_HAVE_BEEN_RELEASED

# What became of a message, as the chart stacks them; RELEASING: a release not recorded as done
# or failed (review.release), which was counted as held, though the mail may have gone out.
OUTCOMES = ("held", RELEASING, "released", "learned", "deleted")
WORDS = {RELEASING: MAY_HAVE_BEEN_RELEASED}  # an outcome the page names otherwise than its state
DAYS = 14
TOP_RULES = 10
CHART_W, CHART_H, BAR_GAP, AXIS = 700, 200, 6, 24


def words(name: str) -> str:
    """How the page names an outcome: its state, or the list's words for it (WORDS)."""
    return WORDS.get(name, name)


def outcome(record: dict[str, Any]) -> str:
    """What became of a message: its state, or "learned" for a held message someone learned."""
    state = record.get("state", "held")
    if state == "held" and any(e["action"] == "learned" for e in record.get("events", [])):
        return "learned"
    return state if state in OUTCOMES else "held"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    days: list[tuple[float, str]]  # (x of the label, "05-14")
    top: int
    width: int = CHART_W
    height: int = CHART_H + AXIS


def per_day(records: list[dict[str, Any]], today: date, days: int = DAYS) -> dict[date, Counter[str]]:
    counts = {today - timedelta(days=n): Counter[str]() for n in range(days - 1, -1, -1)}
    for record in records:
        day = datetime.fromisoformat(record["time"]).astimezone(UTC).date()
        if day in counts:
            counts[day][outcome(record)] += 1
    return counts


def chart(counts: dict[date, Counter[str]]) -> Chart:
    """Stacked bars, one per day, scaled to the busiest day."""
    top = max([sum(c.values()) for c in counts.values()] + [1])
    slot = CHART_W / max(len(counts), 1)
    bars, labels = [], []
    for index, (day, count) in enumerate(counts.items()):
        x, base = index * slot + BAR_GAP / 2, float(CHART_H)
        for name in OUTCOMES:
            height = CHART_H * count[name] / top
            if height:
                base -= height
                bars.append(Bar(x, base, slot - BAR_GAP, height, name,
                                f"{day.isoformat()}: {count[name]} {words(name)}"))
        labels.append((x + (slot - BAR_GAP) / 2, day.strftime("%m-%d")))
    return Chart(bars, labels, top)


def legend(counts: dict[date, Counter[str]]) -> list[tuple[str, str, int]]:
    """(outcome, its words, messages) for the chart's legend. A release not recorded is listed
    only when there is one: it is rare and wants a look (the list names each), and a standing
    "may have been released: 0" would be one more line to read past."""
    totals = {name: sum(c[name] for c in counts.values()) for name in OUTCOMES}
    return [(name, words(name), total) for name, total in totals.items()
            if total or name != RELEASING]


def top_rules(records: list[dict[str, Any]], limit: int = TOP_RULES) -> list[tuple[str, int, float]]:
    """(rule, messages hit, mean score) of the rules that hit most often."""
    hits: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    for record in records:
        for rule in record.get("rules", []):
            hits[rule["name"]] += 1
            scores[rule["name"]] += rule["score"]
    return [(name, n, scores[name] / n) for name, n in hits.most_common(limit)]
