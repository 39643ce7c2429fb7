"""Type conversions: TO_INTEGER, TO_LONG, TO_FLOAT, TO_DOUBLE, TO_STRING, TO_BOOLEAN, IS_INTEGER, TO_JSON_*.

Numbers convert like Java's ``Number`` methods (a double becomes an integer by truncation toward
zero); numeric strings are parsed, and a string that is not a number is an error naming the
argument. Null converts to null. Python has one integer and one floating-point type, so
TO_INTEGER/TO_LONG and TO_FLOAT/TO_DOUBLE give the same results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import java_str


@stellar_function(
    "TO_INTEGER",
    description="Transforms the first argument to an integer; doubles are truncated toward zero.",
    params=["input - A number or a numeric string"],
    returns="The integer, or null for null input",
)
def to_integer(value: Any) -> int | None:
    return A.to_integer(1, value)


@stellar_function(
    "TO_LONG",
    description="Transforms the first argument to a long integer; doubles are truncated toward zero.",
    params=["input - A number or a numeric string"],
    returns="The long integer, or null for null input",
)
def to_long(value: Any) -> int | None:
    return A.to_integer(1, value)


@stellar_function(
    "TO_FLOAT",
    description="Transforms the first argument to a floating-point number.",
    params=["input - A number or a numeric string"],
    returns="The number as a float, or null for null input",
)
def to_float(value: Any) -> float | None:
    return A.to_float(1, value)


@stellar_function(
    "TO_DOUBLE",
    description="Transforms the first argument to a double-precision number.",
    params=["input - A number or a numeric string"],
    returns="The number as a double, or null for null input",
)
def to_double(value: Any) -> float | None:
    return A.to_float(1, value)


@stellar_function(
    "TO_STRING",
    description="Transforms the first argument to a string, as Java's toString would show it.",
    params=["input - Any value"],
    returns="The string (true, 5, 5.0, [a, b], {k=v}), or null for null input",
)
def to_string(value: Any) -> str | None:
    return None if value is None else java_str(value)


@stellar_function(
    "TO_BOOLEAN",
    description="Transforms the first argument to a boolean: 'true'/'false' in any case, or a number (0 is false).",
    params=["input - A boolean, string or number"],
    returns="The boolean, or null for null input",
)
def to_boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "true":
            return True
        if word == "false":
            return False
        raise argument_error(1, value, "is not a boolean")
    if isinstance(value, (int, float)):
        return value != 0
    raise argument_error(1, value, "is not a boolean")


@stellar_function(
    "IS_INTEGER",
    description="Determines whether a value is, or can be read as, an integer.",
    params=["x - The value to test"],
    returns="True for integers, whole doubles and integer strings; false otherwise",
)
def is_integer(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        try:
            A.integer(1, value)
        except StellarEvaluationError:
            return False
        return True
    return False


def _json(value: Any) -> Any:
    text = A.string(1, value)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argument_error(1, text, f"is not valid JSON ({exc})") from None


@stellar_function(
    "TO_JSON_OBJECT",
    description="Parses a JSON string into a value (map, list, string, number, boolean or null).",
    params=["string - The JSON text"],
    returns="The parsed value, or null for null input",
)
def to_json_object(value: Any) -> Any:
    return None if value is None else _json(value)


@stellar_function(
    "TO_JSON_MAP",
    description="Parses a JSON string holding an object into a map.",
    params=["string - The JSON text"],
    returns="The parsed map, or null for null input",
)
def to_json_map(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed = _json(value)
    if not isinstance(parsed, Mapping):
        raise argument_error(1, value, "is not a JSON object")
    return dict(parsed)


@stellar_function(
    "TO_JSON_LIST",
    description="Parses a JSON string holding an array into a list.",
    params=["string - The JSON text"],
    returns="The parsed list, or null for null input",
)
def to_json_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    parsed = _json(value)
    if not isinstance(parsed, list):
        raise argument_error(1, value, "is not a JSON array")
    return parsed
