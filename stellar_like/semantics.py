"""Stellar's value semantics: truthiness, equality, ordering, arithmetic, ``in``, string rendering.

Values are plain Python objects: ``None`` (null), ``bool``, ``int`` (Stellar's int and long),
``float`` (float and double), ``str``, ``list`` and ``dict``. The rules follow the Stellar README:

- Conditions: null and empty collections are false; booleans are themselves; anything else
  (a number, a string) cannot be used as a condition.
- ``==``: null equals only null; two numbers compare by value (``1 == 1.0``); booleans are not
  numbers; everything else uses value equality.
- ``< <= > >=``: false when either side is null; numbers compare numerically; two values of the
  same comparable type (strings, booleans) compare naturally; anything else is an error.
- ``+ - * /``: numbers only (Stellar has no string concatenation operator: use JOIN or FORMAT);
  two integers give an integer, and ``/`` then truncates toward zero like Java, with division by
  zero an error; a float on either side gives a float, and float division by zero gives
  ±Infinity or NaN as in Java.
- ``in``: substring for strings, membership for lists, key presence for maps; false for null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stellar_like.errors import StellarEvaluationError, describe, type_name

__all__ = [
    "truthy",
    "equals",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "add",
    "subtract",
    "multiply",
    "divide",
    "negate",
    "contains",
    "java_str",
    "is_number",
]

_COLLECTIONS = (list, tuple, dict, set, frozenset)


def is_number(value: Any) -> bool:
    """True for ints and floats, but not for booleans (Java's Boolean is no Number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """Stellar's truth value of a condition."""
    if value is True:
        return True
    if value is False or value is None:
        return False
    if isinstance(value, _COLLECTIONS) or isinstance(value, Mapping):
        return len(value) > 0
    raise StellarEvaluationError(f"cannot use {type_name(value)} {describe(value)} as a condition")


def equals(a: Any, b: Any) -> bool:
    """Stellar's ``==``."""
    if a is None or b is None:
        return a is b
    ta = type(a)
    if ta is type(b):
        return bool(a == b)
    if ta is bool or type(b) is bool:
        return False
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) or isinstance(b, str):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic objects
        return False


def _check_ordered(a: Any, b: Any, op: str) -> None:
    raise StellarEvaluationError(f"cannot compare {type_name(a)} {describe(a)} {op} {type_name(b)} {describe(b)}")


def _orderable(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb:
        return ta in (int, float, str, bool)
    return is_number(a) and is_number(b)


def less(a: Any, b: Any) -> bool:
    """Stellar's ``<``."""
    if a is None or b is None:
        return False
    if not _orderable(a, b):
        _check_ordered(a, b, "<")
    return bool(a < b)


def less_equal(a: Any, b: Any) -> bool:
    """Stellar's ``<=``."""
    if a is None or b is None:
        return False
    if not _orderable(a, b):
        _check_ordered(a, b, "<=")
    return bool(a <= b)


def greater(a: Any, b: Any) -> bool:
    """Stellar's ``>``."""
    if a is None or b is None:
        return False
    if not _orderable(a, b):
        _check_ordered(a, b, ">")
    return bool(a > b)


def greater_equal(a: Any, b: Any) -> bool:
    """Stellar's ``>=``."""
    if a is None or b is None:
        return False
    if not _orderable(a, b):
        _check_ordered(a, b, ">=")
    return bool(a >= b)


def _arith_error(a: Any, b: Any, op: str) -> StellarEvaluationError:
    if isinstance(a, str) and isinstance(b, str) and op == "+":
        return StellarEvaluationError(
            f"cannot add string {describe(a)} and string {describe(b)}: "
            "Stellar has no string concatenation operator (use JOIN or FORMAT)"
        )
    return StellarEvaluationError(
        f"cannot apply '{op}' to {type_name(a)} {describe(a)} and {type_name(b)} {describe(b)}"
    )


def add(a: Any, b: Any) -> Any:
    """Stellar's ``+`` on numbers."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a + b
    if is_number(a) and is_number(b):
        return a + b
    raise _arith_error(a, b, "+")


def subtract(a: Any, b: Any) -> Any:
    """Stellar's ``-`` on numbers."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a - b
    if is_number(a) and is_number(b):
        return a - b
    raise _arith_error(a, b, "-")


def multiply(a: Any, b: Any) -> Any:
    """Stellar's ``*`` on numbers."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a * b
    if is_number(a) and is_number(b):
        return a * b
    raise _arith_error(a, b, "*")


def divide(a: Any, b: Any) -> Any:
    """Stellar's ``/``: Java integer division (truncating) for two integers, IEEE otherwise."""
    if not (is_number(a) and is_number(b)):
        raise _arith_error(a, b, "/")
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise StellarEvaluationError("integer division by zero")
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    if b == 0:
        a = float(a)
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, float(b))
    return a / b


def negate(a: Any) -> Any:
    """Unary minus on a number."""
    if is_number(a):
        return -a
    raise StellarEvaluationError(f"cannot negate {type_name(a)} {describe(a)}")


def contains(item: Any, container: Any) -> bool:
    """Stellar's ``item in container``."""
    if container is None:
        return False
    if isinstance(container, str):
        if item is None:
            return False
        return (item if isinstance(item, str) else java_str(item)) in container
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            return False
    if isinstance(container, (list, tuple, set, frozenset)):
        for element in container:
            if equals(item, element):
                return True
        return False
    return False


def java_str(value: Any) -> str:
    """Render a value the way Java's ``toString`` would (``true``, ``null``, ``1.0``, ``[a, b]``, ``{k=v}``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    return str(value)


def _java_double(value: float) -> str:
    """Java's ``Double.toString``: plain notation in [1e-3, 1e7), otherwise ``d.dddE±n``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    power = len(digits) - 1 + exponent
    rest = "".join(str(d) for d in digits[1:]) or "0"
    return f"{'-' if sign else ''}{digits[0]}.{rest}E{power}"
