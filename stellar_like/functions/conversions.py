"""Type conversions: TO_INTEGER, TO_LONG, TO_FLOAT, TO_DOUBLE, TO_STRING, TO_BOOLEAN, IS_INTEGER, TO_JSON_*.

The numeric conversions behave as Metron's (which convert through commons-beanutils with errors
turned into null): a value that cannot be converted gives **null**, never an error. Numbers
convert like Java's ``Number`` methods (a double becomes an integer by truncation toward zero,
NaN becomes 0); a number outside the target's range (32-bit for TO_INTEGER, 64-bit for TO_LONG,
float's for TO_FLOAT) gives null; booleans give 1 or 0. Strings are read as Java's ``valueOf``
reads them after trimming: TO_INTEGER and TO_LONG take an optional sign and decimal digits only
(``'5.9'`` is null), TO_DOUBLE and TO_FLOAT take Java's floating-point literals (``'1e3'``,
``'1.5f'``, ``'NaN'``, ``'Infinity'``). Python has one float type, so TO_FLOAT keeps double
precision.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from stellar_like.errors import argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import java_str

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_FLOAT_MAX = 3.4028234663852886e38
_JAVA_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)\Z"
)


def _to_whole(value: Any, bounds: tuple[int, int]) -> int | None:
    """Metron's conversion to Integer/Long: null when the value cannot be converted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value if bounds[0] <= value <= bounds[1] else None
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return None
        whole = int(value)
        return whole if bounds[0] <= whole <= bounds[1] else None
    if isinstance(value, str):
        text = value.strip()
        if not _JAVA_INTEGER.match(text):
            return None
        whole = int(text)
        return whole if bounds[0] <= whole <= bounds[1] else None
    return None


def _to_real(value: Any, single: bool) -> float | None:
    """Metron's conversion to Double/Float: null when the value cannot be converted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        text = value.strip()
        if not _JAVA_DOUBLE.match(text):
            return None
        body = text[:-1] if text[-1:] in "fFdD" and not text.lower().startswith(("0x", "+0x", "-0x")) else text
        if body.lower().lstrip("+-").startswith("0x"):
            body = body[:-1] if body[-1:] in "fFdD" else body
            try:
                number = float.fromhex(body)
            except (ValueError, OverflowError):
                return None
        else:
            try:
                number = float(body)
            except ValueError:
                return None
    else:
        return None
    if single and math.isfinite(number) and abs(number) > _FLOAT_MAX:
        return None
    return number


@stellar_function(
    "TO_INTEGER",
    description="Transforms the first argument to a (32-bit) integer; doubles are truncated toward zero.",
    params=["input - A number, a numeric string or a boolean"],
    returns="The integer, or null if the input is null or cannot be converted (out of range, not a number)",
)
def to_integer(value: Any) -> int | None:
    return _to_whole(value, _INT32)


@stellar_function(
    "TO_LONG",
    description="Transforms the first argument to a (64-bit) long integer; doubles are truncated toward zero.",
    params=["input - A number, a numeric string or a boolean"],
    returns="The long integer, or null if the input is null or cannot be converted",
)
def to_long(value: Any) -> int | None:
    return _to_whole(value, _INT64)


@stellar_function(
    "TO_FLOAT",
    description="Transforms the first argument to a floating-point number.",
    params=["input - A number, a numeric string or a boolean"],
    returns="The number as a float, or null if the input is null or cannot be converted",
)
def to_float(value: Any) -> float | None:
    return _to_real(value, single=True)


@stellar_function(
    "TO_DOUBLE",
    description="Transforms the first argument to a double-precision number.",
    params=["input - A number, a numeric string or a boolean"],
    returns="The number as a double, or null if the input is null or cannot be converted",
)
def to_double(value: Any) -> float | None:
    return _to_real(value, single=False)


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


_LONG_TEXT = re.compile(r"-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)\Z")


@stellar_function(
    "IS_INTEGER",
    description="Determines whether a value, read as text, is a (64-bit) integer, as Metron's validator reads "
    "it: digits with an optional minus sign and optional thousands separators ('1,000').",
    params=["x - The value to test"],
    returns="True for integers and integer strings; false otherwise (a double such as 1.0 is not an integer)",
)
def is_integer(value: Any) -> bool:
    if value is None or isinstance(value, (bool, float)):
        return False  # a double's text (1.0) is not an integer
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    if not isinstance(value, str) or not _LONG_TEXT.match(value):
        return False
    return _INT64[0] <= int(value.replace(",", "")) <= _INT64[1]


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
    returns="The parsed value; null for null input, an empty string for an empty string",
)
def to_json_object(value: Any) -> Any:
    if value is None or value == "":
        return value  # Metron gives an empty string back as it is
    return _json(value)


@stellar_function(
    "TO_JSON_MAP",
    description="Parses a JSON string holding an object into a map.",
    params=["string - The JSON text"],
    returns="The parsed map; null for null input, an empty string for an empty string",
)
def to_json_map(value: Any) -> dict[str, Any] | str | None:
    if value is None or value == "":
        return value
    parsed = _json(value)
    if not isinstance(parsed, Mapping):
        raise argument_error(1, value, "is not a JSON object")
    return dict(parsed)


@stellar_function(
    "TO_JSON_LIST",
    description="Parses a JSON string holding an array into a list.",
    params=["string - The JSON text"],
    returns="The parsed list; null for null input, an empty string for an empty string",
)
def to_json_list(value: Any) -> list[Any] | str | None:
    if value is None or value == "":
        return value
    parsed = _json(value)
    if not isinstance(parsed, list):
        raise argument_error(1, value, "is not a JSON array")
    return parsed
