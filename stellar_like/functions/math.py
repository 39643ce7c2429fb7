"""Math functions: ABS, ROUND, CEILING, FLOOR, SQRT, EXP, LN, LOG2, LOG10, SIN, COS, TAN, IS_NAN.

They follow Java's ``Math`` as Metron applies it: every argument is taken as a double, results
are doubles (ROUND gives an integer with half-up rounding, NaN for NaN), the logarithm of 0 is
-Infinity and of a negative number NaN, and the square root of a negative number NaN. A null
argument gives NaN, as in Metron. Numeric strings are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from stellar_like.errors import argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _float_of(value: Any) -> float:
    number = A.number(1, value)
    try:
        return float(number)
    except OverflowError:
        raise argument_error(1, value, "is too large for a double") from None


def _log(base_log: Callable[[float], float], value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    return base_log(x)


@stellar_function(
    "ABS",
    description="Returns the absolute value of a number.",
    params=["number - The number"],
    returns="The absolute value as a double; NaN for null",
)
def abs_(value: Any) -> float:
    if value is None:
        return math.nan
    return abs(_float_of(value))


@stellar_function(
    "ROUND",
    description="Rounds a number to the nearest integer, halves rounding up (toward positive infinity).",
    params=["number - The number to round"],
    returns="The nearest integer (a 64-bit long); NaN for NaN or null",
)
def round_(value: Any) -> int | float:
    if value is None:
        return math.nan
    number = A.number(1, value)
    if isinstance(number, int):
        return max(_LONG_MIN, min(_LONG_MAX, number))
    if math.isnan(number):
        return math.nan
    if math.isinf(number):
        return _LONG_MAX if number > 0 else _LONG_MIN  # Java's Math.round saturates
    return max(_LONG_MIN, min(_LONG_MAX, math.floor(number + 0.5)))


@stellar_function(
    "CEILING",
    description="Returns the ceiling of a number: the smallest whole number not less than it.",
    params=["number - The number"],
    returns="The ceiling, as a double",
)
def ceiling(value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    return x if math.isnan(x) or math.isinf(x) else float(math.ceil(x))


@stellar_function(
    "FLOOR",
    description="Returns the floor of a number: the largest whole number not greater than it.",
    params=["number - The number"],
    returns="The floor, as a double",
)
def floor(value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    return x if math.isnan(x) or math.isinf(x) else float(math.floor(x))


@stellar_function(
    "SQRT",
    description="Returns the square root of a number (NaN for a negative number).",
    params=["number - The number"],
    returns="The square root, as a double",
)
def sqrt(value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    if math.isnan(x) or x < 0:
        return math.nan
    return math.sqrt(x)


@stellar_function(
    "EXP",
    description="Returns Euler's number e raised to the power of the argument.",
    params=["number - The power"],
    returns="e to the given power, as a double",
)
def exp(value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


@stellar_function(
    "LN",
    description="Returns the natural logarithm of a number.",
    params=["number - The number"],
    returns="The natural logarithm, as a double",
)
def ln(value: Any) -> float:
    return _log(math.log, value)


@stellar_function(
    "LOG2",
    description="Returns the base-2 logarithm of a number.",
    params=["number - The number"],
    returns="The base-2 logarithm, as a double",
)
def log2(value: Any) -> float:
    return _log(math.log2, value)


@stellar_function(
    "LOG10",
    description="Returns the base-10 logarithm of a number.",
    params=["number - The number"],
    returns="The base-10 logarithm, as a double",
)
def log10(value: Any) -> float:
    return _log(math.log10, value)


def _trig(fn: Callable[[float], float], value: Any) -> float:
    if value is None:
        return math.nan
    x = _float_of(value)
    if math.isnan(x) or math.isinf(x):
        return math.nan
    return fn(x)


@stellar_function(
    "SIN",
    description="Returns the sine of an angle in radians.",
    params=["number - The angle in radians"],
    returns="The sine, as a double",
)
def sin(value: Any) -> float:
    return _trig(math.sin, value)


@stellar_function(
    "COS",
    description="Returns the cosine of an angle in radians.",
    params=["number - The angle in radians"],
    returns="The cosine, as a double",
)
def cos(value: Any) -> float:
    return _trig(math.cos, value)


@stellar_function(
    "TAN",
    description="Returns the tangent of an angle in radians.",
    params=["number - The angle in radians"],
    returns="The tangent, as a double",
)
def tan(value: Any) -> float:
    return _trig(math.tan, value)


@stellar_function(
    "IS_NAN",
    description="Determines whether a number, taken as a double, is NaN.",
    params=["number - The number to test"],
    returns="True if the number is NaN, false otherwise",
)
def is_nan(value: Any) -> bool:
    if value is None:
        raise argument_error(1, value, "is not a number")
    return math.isnan(_float_of(value))
