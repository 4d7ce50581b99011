"""SpamAssassin meta expressions: Perl precedence, arithmetic, and refusal of anything else."""

from __future__ import annotations

import pytest

from mailsift.rules.meta import MetaError, parse_meta


def value(expr: str, **hits: float) -> float:
    return parse_meta(expr).evaluate(hits)


def test_names_are_collected() -> None:
    assert parse_meta("(A && !__B) || C_1 > 2").names == frozenset({"A", "__B", "C_1"})


def test_undefined_rules_count_zero() -> None:
    assert value("A || B") == 0
    assert value("!MISSING") == 1


def test_not_binds_tighter_than_and_and_arithmetic() -> None:
    assert value("!A && B", A=0, B=1)
    assert not value("!A && B", A=1, B=1)
    assert value("!A + B", A=1, B=1) == 1  # (!A) + B, not !(A + B)
    assert value("!A + B", A=0, B=1) == 2


def test_and_binds_tighter_than_or() -> None:
    assert value("A || B && C", A=1, B=0, C=0)
    assert not value("(A || B) && C", A=1, B=0, C=0)


def test_arithmetic_and_comparisons() -> None:
    assert value("A + B + C > 1", A=1, C=1)
    assert not value("A + B + C > 1", A=1)
    assert value("A + B * 2", A=1, B=3) == 7
    assert value("(A + B) * 2", A=1, B=3) == 8
    assert value("A - B - C", A=5, B=2, C=1) == 2
    assert value("A / 2", A=3) == 1.5
    assert value("A >= 2 && B <= 1 && C == 0 && A != B", A=2, B=1)
    assert value("-A + 3", A=1) == 2


def test_comparisons_do_not_chain() -> None:
    # Perl: (1 < 2) < 1 is false; Python's chained 1 < 2 < 1 would also be false, so use == 1
    assert value("3 > 2 == 1")
    assert not value("1 < 2 < 1")


def test_and_or_return_the_deciding_count() -> None:
    assert value("A && B", A=1, B=3) == 3
    assert value("A || B", A=2, B=3) == 2


def test_division_by_zero_is_no_hit() -> None:
    expr = parse_meta("A / B > 1")
    assert expr.evaluate({"A": 1}) == 0
    assert expr.bind({"A": 0, "B": 1})([1, 0]) == 0


def test_nested_metas_evaluate_against_counts_of_other_metas() -> None:
    inner = parse_meta("__A && __B")
    outer = parse_meta("INNER || C")
    hits = {"__A": 1, "__B": 1}
    hits["INNER"] = 1 if inner.evaluate(hits) else 0
    assert outer.evaluate(hits)
    assert outer.names == {"INNER", "C"}


def test_bind_uses_list_indexes() -> None:
    evaluate = parse_meta("A && !B || C > 1").bind({"A": 0, "B": 1, "C": 2})
    assert evaluate([1, 0, 0])
    assert not evaluate([1, 1, 0])
    assert evaluate([0, 0, 2])


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os')",
        "__import__ (os)",
        "A.__class__",
        "A; B",
        "A = 1",
        "lambda: 1",
        "A[0]",
        "A ** 2",
        "'A'",
        "A && ",
        "(A",
        "A)",
        "",
        "A B",
        "exec(A)",
    ],
)
def test_anything_outside_the_whitelist_is_rejected(expr: str) -> None:
    with pytest.raises(MetaError):
        parse_meta(expr)


def test_python_keywords_are_just_rule_names() -> None:
    assert value("not || and", **{"not": 0, "and": 1}) == 1
    assert value("import && A", **{"import": 1, "A": 1})


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(MetaError, match="nested"):
        parse_meta("(" * 500 + "A" + ")" * 500)
    with pytest.raises(MetaError, match="nested"):
        parse_meta("!" * 500 + "A")


def test_long_flat_chains_are_fine() -> None:
    expr = " + ".join(f"R{i}" for i in range(2000)) + " > 3"
    assert parse_meta(expr).evaluate({f"R{i}": 1 for i in range(4)})
