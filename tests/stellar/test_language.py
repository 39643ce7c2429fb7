"""Language features: literals, operators and their Java numeric semantics, conditionals, match,
lambdas, variables, truthiness, keywords and comments."""

from __future__ import annotations

import math
from typing import Any

import pytest

from stellar_like import StellarEvaluationError, StellarParseError, evaluate


def ev(expression: str, **variables: Any) -> Any:
    return evaluate(expression, variables)


# ---- literals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'tab\\there'", "tab\there"),
        ("'cr\\rlf\\n'", "cr\rlf\n"),
        ("'\\u0041BC'", "ABC"),
        ("'\"mixed\"'", '"mixed"'),
        ("'\\d+'", "\\d+"),  # unknown escapes keep their backslash (handy for regexes)
        ("''", ""),
        ("'multi\nline'", "multi\nline"),
    ],
)
def test_string_literals(expression: str, expected: str) -> None:
    assert ev(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected", "kind"),
    [
        ("42", 42, int),
        ("0", 0, int),
        ("2147483648L", 2147483648, int),
        ("7l", 7, int),
        ("1.5", 1.5, float),
        ("1.", 1.0, float),
        (".5", 0.5, float),
        ("1.5f", 1.5, float),
        ("2F", 2.0, float),
        ("3d", 3.0, float),
        ("2.5D", 2.5, float),
        ("1e3", 1000.0, float),
        ("1.5E-2", 0.015, float),
        ("2e+2f", 200.0, float),
        ("-7", -7, int),
        ("- 7.5", -7.5, float),
    ],
)
def test_number_literals(expression: str, expected: Any, kind: type) -> None:
    value = ev(expression)
    assert value == expected and type(value) is kind


def test_keyword_literals() -> None:
    assert ev("true") is True and ev("TRUE") is True
    assert ev("false") is False and ev("FALSE") is False
    assert ev("null") is None and ev("NULL") is None
    assert math.isnan(ev("NaN"))


def test_mixed_case_keywords_are_identifiers() -> None:
    # Stellar spells keywords all-lowercase or all-uppercase; `True` is an ordinary variable.
    assert ev("True") is None
    assert evaluate("True", {"True": "yes"}) == "yes"


def test_collections() -> None:
    assert ev("[]") == []
    assert ev("{}") == {}
    assert ev("[1, [2, 3], {'k': 'v'}]") == [1, [2, 3], {"k": "v"}]
    assert ev("{'a': 1 + 1, 'b': [x]}", x=5) == {"a": 2, "b": [5]}
    assert ev("{k: 'v'}", k="dynamic") == {"dynamic": "v"}
    assert ev("{1: 'one'}") == {1: "one"}


def test_collection_literals_are_fresh_each_time() -> None:
    first = ev("[1, 2]")
    first.append(3)
    assert ev("[1, 2]") == [1, 2]
    mapping = ev("{'a': 1}")
    mapping["b"] = 2
    assert ev("{'a': 1}") == {"a": 1}


def test_unhashable_map_key_is_an_error() -> None:
    with pytest.raises(StellarEvaluationError, match="cannot be a map key"):
        ev("{k: 1}", k=[1])


# ---- variables -----------------------------------------------------------------------------------


def test_variables() -> None:
    assert ev("foo", foo="bar") == "bar"
    assert ev("missing") is None
    assert evaluate("ip.src_addr", {"ip.src_addr": "10.0.0.1"}) == "10.0.0.1"
    assert evaluate("$dollar", {"$dollar": 1}) == 1
    assert ev("_", a=1, b=2) == {"a": 1, "b": 2}
    assert ev("MAP_GET('a', _)", a=1) == 1


def test_keyword_prefixed_identifiers() -> None:
    assert ev("iffy + android + order + notice + inbound", iffy=1, android=2, order=3, notice=4, inbound=5) == 15
    assert ev("nullable", nullable="x") == "x"
    assert ev("true_count", true_count=3) == 3


def test_exists() -> None:
    assert ev("exists(foo)", foo=0) is True
    assert ev("exists(foo)") is False
    assert ev("exists(foo)", foo=None) is False
    assert ev("EXISTS(foo)", foo="") is True
    assert ev("exists(ip.dst)", **{"ip.dst": "x"}) is True


def test_variables_must_be_a_map() -> None:
    from stellar_like import compile

    with pytest.raises(StellarEvaluationError):
        compile("1").evaluate([1, 2])  # type: ignore[arg-type]


# ---- arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("10 - 4 - 3", 3),
        ("2 * 3 + 4", 10),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 / 4", 2),
        ("-10 / 4", -2),
        ("10 / -4", -2),
        ("-10 / -4", 2),
        ("7 / 7", 1),
        ("100 / 10 / 5", 2),
        ("10 / 4.0", 2.5),
        ("10.0 / 4", 2.5),
        ("1.5 + 2", 3.5),
        ("2 * 1.5f", 3.0),
        ("-(2 + 3)", -5),
        ("--4", 4),
        ("1 - -1", 2),
        ("9223372036854775807L + 1", 9223372036854775808),
    ],
)
def test_arithmetic(expression: str, expected: Any) -> None:
    value = ev(expression)
    assert value == expected and type(value) is type(expected)


def test_integer_division_by_zero_is_an_error() -> None:
    with pytest.raises(StellarEvaluationError, match="division by zero") as info:
        ev("x / 0", x=1)
    assert info.value.position is not None and info.value.position.column == 3


def test_float_division_by_zero_follows_java() -> None:
    assert ev("1 / 0.0") == math.inf
    assert ev("-1.0 / 0") == -math.inf
    assert math.isnan(ev("0.0 / 0"))


def test_no_string_concatenation() -> None:
    with pytest.raises(StellarEvaluationError, match="no string concatenation"):
        ev("'a' + 'b'")


@pytest.mark.parametrize(
    "expression", ["'a' + 1", "1 - 'a'", "true * 2", "null + 1", "missing + 1", "[1] + [2]", "-'a'", "-null"]
)
def test_arithmetic_on_non_numbers_is_an_error(expression: str) -> None:
    with pytest.raises(StellarEvaluationError):
        ev(expression)


def test_arithmetic_with_variables() -> None:
    assert ev("a * b + c", a=2, b=3, c=4) == 10
    assert ev("price * qty", price=1.25, qty=4) == 5.0


# ---- comparisons and equality --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 == 1.0", True),
        ("1 == 1L", True),
        ("1 != 1.0", False),
        ("'a' == 'a'", True),
        ("'a' == 'b'", False),
        ("'1' == 1", False),
        ("true == 1", False),
        ("null == null", True),
        ("null == 0", False),
        ("missing == null", True),
        ("missing != null", False),
        ("[1, 2] == [1, 2]", True),
        ("{'a': 1} == {'a': 1}", True),
        ("NaN == NaN", False),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2 >= 3", False),
        ("'abc' < 'abd'", True),
        ("'b' > 'a'", True),
        ("false < true", True),
        ("null < 1", False),
        ("1 > null", False),
        ("null >= null", False),
        ("1 < 2 == true", True),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert ev(expression) is expected


@pytest.mark.parametrize("expression", ["'a' < 1", "[1] < [2]", "true > 0", "{} >= {}"])
def test_incomparable_values_are_an_error(expression: str) -> None:
    with pytest.raises(StellarEvaluationError, match="cannot compare"):
        ev(expression)


# ---- in / not in -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'casey' in ['casey', 'bar']", True),
        ("'x' in ['casey', 'bar']", False),
        ("1 in [1.0, 2]", True),
        ("'ca' in 'casey'", True),
        ("'foo' in {'foo': 5}", True),
        ("'bar' in {'foo': 5}", False),
        ("'grok' not in 'foobar'", True),
        ("'foo' NOT IN ['foo']", False),
        ("'foo' IN ['foo']", True),
        ("'a' in missing", False),
        ("null in 'abc'", False),
        ("null in [null]", True),
        ("1 in 'a1b'", True),
        ("[1] in {'a': 1}", False),
        ("1 in 5", False),
    ],
)
def test_in(expression: str, expected: bool) -> None:
    assert ev(expression) is expected


def test_in_with_variables() -> None:
    assert ev("ip in ['10.0.0.1', '10.0.0.2']", ip="10.0.0.2") is True
    assert ev("x in xs", x=3, xs=[1, 2, 3]) is True


# ---- logic ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true and true", True),
        ("true AND false", False),
        ("false or true", True),
        ("false OR false", False),
        ("true && true", True),
        ("false || true", True),
        ("not(true)", False),
        ("NOT(false)", True),
        ("not true", False),
        ("not 1 == 2", True),
        ("not(null)", True),
        ("not([])", True),
        ("not([1])", False),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not true or true", True),
        ("missing and true", False),
        ("[1] and {'a': 1}", True),
    ],
)
def test_logic(expression: str, expected: bool) -> None:
    assert ev(expression) is expected


def test_short_circuit() -> None:
    assert ev("false and (1 / 0 == 1)") is False
    assert ev("true or (1 / 0 == 1)") is True
    assert ev("x and 1 / 0 == 1", x=False) is False
    assert ev("x or NO_SUCH_VAR / 0", x=True) is True
    with pytest.raises(StellarEvaluationError):
        ev("x or 1 / 0 == 1", x=False)


@pytest.mark.parametrize("expression", ["'a' and true", "1 or false", "not('x')", "if 5 then 1 else 2"])
def test_non_boolean_conditions_are_an_error(expression: str) -> None:
    with pytest.raises(StellarEvaluationError, match="as a condition"):
        ev(expression)


# ---- conditionals --------------------------------------------------------------------------------


def test_if_then_else() -> None:
    assert ev("if 1 < 2 then 'a' else 'b'") == "a"
    assert ev("IF false THEN 'a' ELSE 'b'") == "b"
    assert ev("if x then 'y' else 'n'", x=[1]) == "y"
    assert ev("if x then 'y' else 'n'", x={}) == "n"
    assert ev("if missing then 'y' else 'n'") == "n"
    assert ev("IF true THEN IF false THEN 'a' ELSE 'b' ELSE 'c'") == "b"
    assert ev("if true then 1 else 1 / 0") == 1
    assert ev("if x > 10 then 'big' else if x > 5 then 'medium' else 'small'", x=7) == "medium"


def test_ternary() -> None:
    assert ev("x > 0 ? 'pos' : 'nonpos'", x=1) == "pos"
    assert ev("x > 0 ? 'pos' : 'nonpos'", x=-1) == "nonpos"
    assert ev("x > 0 ? 'pos' : x < 0 ? 'neg' : 'zero'", x=0) == "zero"
    assert ev("(x ? 1 : 2) + 10", x=True) == 11
    assert ev("{'k': x ? 'a' : 'b'}", x=False) == {"k": "b"}


def test_match() -> None:
    rule = "match{ var1 < 10 => 'warn', var1 >= 10 => 'critical', default => 'info'}"
    assert ev(rule, var1=5) == "warn"
    assert ev(rule, var1=50) == "critical"
    assert ev(rule) == "info"
    assert ev("MATCH{ x == 1 => 'one', DEFAULT => 'other' }", x=1) == "one"
    assert ev("match{ default => 'only' }") == "only"


def test_match_takes_first_true_clause_and_is_lazy() -> None:
    assert ev("match{ true => 'first', true => 'second', default => 1 / 0 }") == "first"
    assert ev("match{ false => 1 / 0, x => 'x', default => 'd' }", x=True) == "x"


def test_match_actions_may_be_no_argument_lambdas() -> None:
    assert ev("match{ x > 1 => () -> TO_UPPER(s), default => () -> s }", x=2, s="abc") == "ABC"


def test_match_without_default_is_a_parse_error() -> None:
    with pytest.raises(StellarParseError, match="default"):
        ev("match{ x > 1 => 'a' }")


def test_match_default_must_be_last() -> None:
    with pytest.raises(StellarParseError, match="last"):
        ev("match{ default => 'a', x => 'b' }")


# ---- lambdas -------------------------------------------------------------------------------------


def test_lambda_forms() -> None:
    assert ev("MAP([1, 2], (x) -> x * 10)") == [10, 20]
    assert ev("MAP([1, 2], x -> x + 1)") == [2, 3]
    assert ev("REDUCE([1, 2, 3], (a, b) -> a + b, 0)") == 6


def test_lambda_arity_mismatch_is_an_error() -> None:
    with pytest.raises(StellarEvaluationError, match="takes 0 arguments"):
        ev("MAP([1, 2], () -> 'k')")


def test_lambda_sees_outer_variables_and_shadows_them() -> None:
    assert ev("MAP([1, 2], (x) -> x + offset)", offset=100) == [101, 102]
    assert ev("MAP([1, 2], (x) -> x)", x="outer") == [1, 2]
    assert ev("FILTER(words, (w) -> w in allowed)", words=["a", "b", "c"], allowed=["a", "c"]) == ["a", "c"]


def test_nested_lambdas() -> None:
    assert ev("MAP([[1, 2], [3]], (xs) -> REDUCE(xs, (a, b) -> a + b, 0))") == [3, 3]


def test_top_level_lambda_is_a_callable_value() -> None:
    value = ev("(x) -> x * 2")
    assert callable(value) and value(21) == 42


@pytest.mark.parametrize("expression", ["(1) -> 2", "(x, 'y') -> 1", "(x, x) -> 1", "(_) -> 1", "(a + b) -> 1"])
def test_invalid_lambda_parameters(expression: str) -> None:
    with pytest.raises(StellarParseError):
        ev(expression)


# ---- layout ----------------------------------------------------------------------------------------


def test_whitespace_and_comments() -> None:
    assert ev("  1 +\n\t2  ") == 3
    assert ev("1 + // the first number\n 2 // trailing") == 3


def test_keywords_with_surrounding_punctuation() -> None:
    assert ev("(true)and(false)") is False
    assert ev("[true,false,null]") == [True, False, None]
