"""Property tests: whatever text compile() is given, the only exception it raises is StellarError;
and evaluating whatever compiles raises nothing else either."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stellar_like
from stellar_like import StellarError

TOKENS = [
    "1", "2.5", "3L", "4f", "1e3", "'s'", '"d"', "'\\n'", "true", "false", "null", "NaN", "x", "y", "_",
    "+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or", "&&", "||", "not", "in", "not in",
    "if", "then", "else", "?", ":", "match", "{", "}", "=>", "default", "(", ")", "[", "]", ",", "->",
    "exists", "TO_UPPER", "MAP", "FILTER", "REDUCE", "MAP_GET", "LENGTH", "NOPE", "IN_SUBNET", "FORMAT",
    " ", "\n", "//c\n", "'", '"', "\\", "#", "@",
]  # fmt: skip

VARIABLES = {"x": 3, "y": [1, "a", None], "s": "text"}


def _check(text: str) -> None:
    try:
        compiled = stellar_like.compile(text)
    except StellarError:
        return
    try:
        compiled.evaluate(VARIABLES)
    except StellarError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_random_text_only_raises_stellar_errors(text: str) -> None:
    _check(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_token_soup_only_raises_stellar_errors(tokens: list[str]) -> None:
    _check(" ".join(tokens))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="()[]{}'\"\\-+!<>=&|?:,.0123456789eEfFdDlL_xX \n", max_size=40))
def test_punctuation_heavy_text_only_raises_stellar_errors(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(), st.integers())
def test_integer_division_matches_java(a: int, b: int) -> None:
    if b == 0:
        try:
            stellar_like.evaluate("a / b", {"a": a, "b": b})
        except StellarError:
            return
        raise AssertionError("integer division by zero must fail")
    quotient = stellar_like.evaluate("a / b", {"a": a, "b": b})
    assert type(quotient) is int
    assert quotient * b + (a - quotient * b) == a
    assert abs(a - quotient * b) < abs(b)
    assert quotient == 0 or (quotient > 0) == ((a > 0) == (b > 0))  # truncates toward zero
