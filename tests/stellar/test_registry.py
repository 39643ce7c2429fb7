"""The function registry: the decorator, recorded documentation, arity, custom registries."""

from __future__ import annotations

from typing import Any

import pytest

import stellar_like
from stellar_like import FunctionRegistry, Param, StellarError, StellarParseError, compile, evaluate


def test_core_library_is_registered_with_documentation() -> None:
    specs = stellar_like.list_functions()
    names = [s.name for s in specs]
    assert names == sorted(names)
    for required in (
        "TO_UPPER",
        "MAP_GET",
        "DOMAIN_TO_TLD",
        "MAAS_MODEL_APPLY",
        "REDUCE",
        "TO_EPOCH_TIMESTAMP",
        "ROUND",
    ):
        assert required in names
    for spec in specs:
        assert spec.description and spec.returns, spec.name
        assert all(p.name and p.description for p in spec.params), spec.name
        assert spec.category in {
            "strings",
            "collections",
            "conversions",
            "math",
            "network",
            "dates",
            "functional",
            "encoding",
            "maas",
            "stats",
            "sets",
            "sketches",
            "security",
            "geo",
            "data_access",
        }


def test_spec_details() -> None:
    spec = stellar_like.get_function("MAP_GET")
    assert spec is not None
    assert spec.signature == "MAP_GET(key, map, default?)"
    assert (spec.min_args, spec.max_args) == (2, 3)
    assert spec.summary == "Gets the value associated with a key in a map."
    text = stellar_like.describe_function("MAP_GET")
    assert "default (optional)" in text and "ret:" in text
    assert spec.as_dict()["params"][2] == {
        "name": "default",
        "description": spec.params[2].description,
        "optional": True,
        "repeated": False,
    }
    in_subnet = stellar_like.get_function("IN_SUBNET")
    assert in_subnet is not None and in_subnet.signature == "IN_SUBNET(ip, cidr+)" and in_subnet.max_args is None
    assert stellar_like.get_function("NO_SUCH") is None
    with pytest.raises(StellarError):
        stellar_like.describe_function("NO_SUCH")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("x - The x", Param("x", "The x")),
        ("x? - Maybe", Param("x", "Maybe", optional=True, repeated=False, at_least=0)),
        ("xs* - Any number", Param("xs", "Any number", optional=True, repeated=True, at_least=0)),
        ("xs+ - At least one", Param("xs", "At least one", optional=False, repeated=True, at_least=1)),
        ("bare", Param("bare", "")),
    ],
)
def test_param_parsing(spec: str, expected: Param) -> None:
    assert Param.parse(spec) == expected


def test_custom_registry_and_decorator() -> None:
    registry = FunctionRegistry()

    @registry.function(
        "DOUBLE_IT",
        description="Doubles a number. Second sentence.",
        params=["n - The number", "times? - How many times"],
        returns="The number doubled",
    )
    def double_it(n: Any, times: Any = 1) -> Any:
        return n * 2 * times

    assert "DOUBLE_IT" in registry and len(registry) == 1 and list(registry) == ["DOUBLE_IT"]
    assert evaluate("DOUBLE_IT(4)", registry=registry) == 8
    assert evaluate("DOUBLE_IT(4, 3)", registry=registry) == 24
    with pytest.raises(StellarParseError, match="DOUBLE_IT expects 1 to 2 arguments, got 3"):
        compile("DOUBLE_IT(1, 2, 3)", registry=registry)
    with pytest.raises(StellarParseError, match="unknown function TO_UPPER"):
        compile("TO_UPPER('a')", registry=registry)
    assert registry.get("DOUBLE_IT").summary == "Doubles a number."  # type: ignore[union-attr]


def test_context_functions_receive_the_context() -> None:
    registry = FunctionRegistry()

    @registry.function(
        "SERVICE", description="Reads a service.", params=["name - The service"], returns="It", context=True
    )
    def service(context: stellar_like.Context, name: Any) -> Any:
        return context.service(name)

    assert evaluate("SERVICE('geo')", {}, stellar_like.Context(geo="here"), registry=registry) == "here"


def test_duplicate_names_are_rejected_unless_replacing() -> None:
    registry = FunctionRegistry()

    @registry.function("F", description="One.", returns="1")
    def one() -> int:
        return 1

    with pytest.raises(ValueError, match="already registered"):

        @registry.function("F", description="Two.", returns="2")
        def two() -> int:
            return 2

    @registry.function("F", description="Three.", returns="3", replace=True)
    def three() -> int:
        return 3

    assert evaluate("F()", registry=registry) == 3


def test_signature_must_fit_the_documented_parameters() -> None:
    registry = FunctionRegistry()
    with pytest.raises(TypeError, match="does not fit"):

        @registry.function("BAD", description="Bad.", params=["a - A", "b? - B"], returns="x")
        def bad(a: Any) -> Any:  # cannot take the optional b
            return a

    with pytest.raises(TypeError, match="does not fit"):

        @registry.function("BAD2", description="Bad.", params=["a* - As"], returns="x")
        def bad2(a: Any) -> Any:  # cannot take any number of arguments
            return a


def test_invalid_names_are_rejected() -> None:
    with pytest.raises(ValueError):
        FunctionRegistry().function("not valid", description="x", returns="y")


def test_copy_is_independent() -> None:
    copy = stellar_like.DEFAULT_REGISTRY.copy()

    @copy.function("ONLY_IN_COPY", description="x", returns="y")
    def only() -> None:
        return None

    assert "ONLY_IN_COPY" in copy and "ONLY_IN_COPY" not in stellar_like.DEFAULT_REGISTRY
