"""Errors and their positions, compile-time checks, the compile cache, constant folding."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import stellar_like
from stellar_like import (
    Position,
    StellarError,
    StellarEvaluationError,
    StellarParseError,
    compile,
    evaluate,
)


def parse_error(expression: str) -> StellarParseError:
    with pytest.raises(StellarParseError) as info:
        compile(expression)
    return info.value


@pytest.mark.parametrize(
    ("expression", "line", "column", "offset", "fragment"),
    [
        ("1 +", 1, 4, 3, "end of expression"),
        ("TO_UPPER(", 1, 10, 9, "end of expression"),
        ("'abc", 1, 1, 0, "unterminated string"),
        ("x == 'abc", 1, 6, 5, "unterminated string"),
        ("1 2", 1, 3, 2, "unexpected '2'"),
        ("{'a' 1}", 1, 6, 5, "unexpected '1'"),
        ("a +\n  # b", 2, 3, 6, "unexpected character '#'"),
        ("foo(1)", 1, 1, 0, "unknown function foo"),
        ("1 + NO_SUCH_FUNCTION_XYZ(1)", 1, 5, 4, "unknown function NO_SUCH_FUNCTION_XYZ"),
        ("TO_UPPER('a', 'b')", 1, 1, 0, "TO_UPPER expects 1 argument, got 2"),
        ("\n\n  MAP_GET()", 3, 3, 4, "MAP_GET expects 2 to 3 arguments, got 0"),
        ("IN_SUBNET('1.2.3.4')", 1, 1, 0, "IN_SUBNET expects at least 2 arguments, got 1"),
        ("match{ x > 1 => 'a' }", 1, 1, 0, "default"),
        ("", 1, 1, 0, "end of expression"),
        ("(1) -> 2", 1, 2, 1, "plain names"),
    ],
)
def test_parse_error_positions(expression: str, line: int, column: int, offset: int, fragment: str) -> None:
    error = parse_error(expression)
    assert error.position == Position(line, column, offset)
    assert fragment in error.message
    assert str(error).endswith(f"(at line {line}, column {column})")
    assert error.expression == expression


def test_parse_error_lists_expected_tokens_when_useful() -> None:
    assert "expected" in parse_error("exists(1)").message


def test_errors_share_one_base_class() -> None:
    assert issubclass(StellarParseError, StellarError)
    assert issubclass(StellarEvaluationError, StellarError)
    assert issubclass(StellarError, Exception)


def test_evaluation_errors_name_the_function_and_argument() -> None:
    with pytest.raises(StellarEvaluationError) as info:
        evaluate("SQRT('abc')")
    error = info.value
    assert error.message == "SQRT: argument 1 'abc' is not a number"
    assert error.function == "SQRT" and error.argument == 1
    assert error.position == Position(1, 1, 0)
    assert error.expression == "SQRT('abc')"


def test_evaluation_error_points_at_the_inner_call() -> None:
    with pytest.raises(StellarEvaluationError) as info:
        evaluate("TO_UPPER(\n  SQRT(x))", {"x": "nope"})
    assert info.value.function == "SQRT"
    assert info.value.position == Position(2, 3, 12)


def test_error_inside_a_lambda_keeps_its_function() -> None:
    with pytest.raises(StellarEvaluationError) as info:
        evaluate("MAP(['1', 'x'], (s) -> SQRT(s))")
    assert info.value.function == "SQRT"
    assert "argument 1 'x'" in info.value.message


def test_operator_error_position() -> None:
    with pytest.raises(StellarEvaluationError) as info:
        evaluate("1 +\n 'a' * 2")
    assert info.value.position == Position(2, 6, 9)


def test_unknown_function_is_a_compile_error_even_when_unreachable() -> None:
    with pytest.raises(StellarParseError):
        compile("false and NOPE(1)")


def test_non_string_expression() -> None:
    with pytest.raises(StellarParseError):
        compile(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expression",
    ["(" * 5000 + "1" + ")" * 5000, "-" * 5000 + "1", "[" * 5000 + "]" * 5000, "not " * 5000 + "true"],
)
def test_deep_nesting_gives_a_value_or_a_stellar_error(expression: str) -> None:
    try:
        evaluate(expression)
    except StellarError:
        pass


def test_redundant_parentheses_cost_nothing() -> None:
    assert evaluate("(" * 5000 + "1" + ")" * 5000) == 1


def test_python_exceptions_from_functions_become_stellar_errors() -> None:
    registry = stellar_like.DEFAULT_REGISTRY.copy()

    @registry.function("BOOM", description="Always fails.", params=["x - anything"], returns="nothing")
    def boom(x: Any) -> Any:
        raise KeyError(x)

    with pytest.raises(StellarEvaluationError, match="BOOM: KeyError"):
        evaluate("BOOM(1)", registry=registry)


# ---- compile cache -----------------------------------------------------------------------------


def test_compile_is_cached_by_text() -> None:
    stellar_like.clear_cache()
    first = compile("1 + x")
    assert compile("1 + x") is first
    info = stellar_like.cache_info()
    assert info.hits == 1 and info.misses == 1 and info.size == 1
    assert compile("1 +  x") is not first


def test_cache_is_bounded_lru() -> None:
    stellar_like.clear_cache()
    stellar_like.set_cache_size(3)
    try:
        a = compile("1")
        compile("2")
        compile("3")
        assert compile("1") is a  # refresh "1"
        compile("4")  # evicts "2", the least recently used
        assert stellar_like.cache_info().size == 3
        assert compile("1") is a
        before = stellar_like.cache_info().misses
        compile("2")
        assert stellar_like.cache_info().misses == before + 1
    finally:
        stellar_like.set_cache_size(4096)
        stellar_like.clear_cache()


def test_cache_can_be_disabled() -> None:
    stellar_like.set_cache_size(0)
    try:
        assert compile("1 + 1") is not compile("1 + 1")
    finally:
        stellar_like.set_cache_size(4096)


def test_failed_compiles_are_not_cached() -> None:
    stellar_like.clear_cache()
    for _ in range(2):
        with pytest.raises(StellarParseError):
            compile("1 +")
    assert stellar_like.cache_info().size == 0


def test_cache_is_per_registry() -> None:
    registry = stellar_like.DEFAULT_REGISTRY.copy()

    @registry.function("SEVEN", description="Seven.", returns="7")
    def seven() -> int:
        return 7

    assert compile("SEVEN()", registry=registry).evaluate() == 7
    with pytest.raises(StellarParseError):
        compile("SEVEN()")


def test_compiled_expression_is_reusable_and_thread_safe() -> None:
    compiled = compile("IF x > 10 THEN TO_UPPER(name) ELSE MAP(xs, (v) -> v * x)")
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                results.append(compiled.evaluate({"x": n, "name": "abc", "xs": [i]}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (5, 20, 7, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 800
    assert compiled(x=None) if False else compiled.evaluate({"x": 11, "name": "q"}) == "Q"


# ---- constant folding must not change meaning --------------------------------------------------


def test_constant_errors_stay_runtime_errors() -> None:
    compiled = compile("if flag then 1 / 0 else 'ok'")
    assert compiled.evaluate({"flag": False}) == "ok"
    with pytest.raises(StellarEvaluationError):
        compiled.evaluate({"flag": True})


def test_constant_function_calls_with_bad_arguments_fail_at_evaluation() -> None:
    compiled = compile("flag ? SQRT('abc') : 0")
    assert compiled.evaluate({"flag": False}) == 0
    with pytest.raises(StellarEvaluationError, match="SQRT"):
        compiled.evaluate({"flag": True})


def test_impure_functions_are_not_folded() -> None:
    compiled = compile("NOW()")
    assert isinstance(compiled.evaluate(), int)
