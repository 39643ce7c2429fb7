"""Argument checks and conversions shared by the function modules.

Each helper takes the argument's 1-based position and value and either returns it in the wanted
form or raises an error worded like ``argument 2 'x' is not a list``; the compiler prefixes the
function name, giving ``JOIN: argument 2 'x' is not a list``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.semantics import is_number

__all__ = [
    "string",
    "number",
    "integer",
    "sequence",
    "mapping",
    "function",
    "to_integer",
    "to_float",
]


def string(index: int, value: Any) -> str:
    """``value`` if it is a string."""
    if isinstance(value, str):
        return value
    raise argument_error(index, value, "is not a string")


def number(index: int, value: Any) -> int | float:
    """``value`` if it is a number; numeric strings are converted."""
    if is_number(value):
        return cast(int | float, value)
    if isinstance(value, str):
        return _parse_number(index, value)
    raise argument_error(index, value, "is not a number")


def integer(index: int, value: Any) -> int:
    """``value`` as an integer: ints as they are, whole floats and integer strings converted."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        parsed = _parse_number(index, value)
        if isinstance(parsed, int):
            return parsed
    raise argument_error(index, value, "is not an integer")


def sequence(index: int, value: Any) -> list[Any] | tuple[Any, ...]:
    """``value`` if it is a list."""
    if isinstance(value, (list, tuple)):
        return value
    raise argument_error(index, value, "is not a list")


def mapping(index: int, value: Any) -> Mapping[Any, Any]:
    """``value`` if it is a map."""
    if isinstance(value, Mapping):
        return value
    raise argument_error(index, value, "is not a map")


def function(index: int, value: Any) -> Callable[..., Any]:
    """``value`` if it is a lambda (or any callable)."""
    if callable(value):
        return cast(Callable[..., Any], value)
    raise argument_error(index, value, "is not a lambda expression")


def _parse_number(index: int, text: str) -> int | float:
    stripped = text.strip()
    if not stripped or "_" in stripped:  # Python would accept 1_000; Java does not
        raise argument_error(index, text, "is not a number")
    body = stripped[:-1] if stripped[-1:] in ("l", "L") and stripped[:-1].lstrip("+-").isdigit() else stripped
    try:
        return int(body)
    except ValueError:
        pass
    if body[-1:] in ("d", "D", "f", "F"):
        body = body[:-1]
    try:
        result = float(body)
    except ValueError:
        raise argument_error(index, text, "is not a number") from None
    if body.lower().lstrip("+-") in ("inf", "infinity", "nan") and body not in (
        "NaN",
        "Infinity",
        "-Infinity",
        "+Infinity",
    ):
        raise argument_error(index, text, "is not a number")
    return result


def to_integer(index: int, value: Any) -> int | None:
    """Java's ``Number.intValue`` style conversion: truncates floats toward zero; null stays null."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise argument_error(index, value, "is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            raise argument_error(index, value, "is too large for an integer")
        return int(value)
    if isinstance(value, str):
        parsed = _parse_number(index, value)
        return to_integer(index, parsed)
    raise argument_error(index, value, "is not a number")


def to_float(index: int, value: Any) -> float | None:
    """A float from a number or a numeric string; null stays null."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise argument_error(index, value, "is not a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise argument_error(index, value, "is too large for a double") from None
    if isinstance(value, str):
        return float(_parse_number(index, value))
    raise argument_error(index, value, "is not a number")


def fail(message: str) -> StellarEvaluationError:
    """A function error that is not about one particular argument."""
    return StellarEvaluationError(message)
