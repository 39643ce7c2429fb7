"""Functional functions taking lambdas: MAP, FILTER, REDUCE.

A lambda such as ``(x) -> TO_UPPER(x)`` evaluates to a callable that sees its parameters and,
behind them, the variables of the enclosing expression. As in Metron, a string is taken as the
list of its characters, FILTER keeps the items for which the predicate is exactly true, and
REDUCE with a null initial value gives null.
"""

from __future__ import annotations

from typing import Any

from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function


def _items(value: Any) -> Any:
    if isinstance(value, str):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return A.sequence(1, value)


@stellar_function(
    "MAP",
    description="Applies a lambda to every item of a list, "
    "e.g. MAP(['foo', 'bar'], (x) -> TO_UPPER(x)) gives ['FOO', 'BAR'].",
    params=["list - The list", "transform_expression - A one-argument lambda"],
    returns="A new list of the lambda's results, or null for a null list",
)
def map_(items: Any, transform: Any) -> list[Any] | None:
    fn = A.function(2, transform)
    if items is None:
        return None
    return [fn(item) for item in _items(items)]


@stellar_function(
    "FILTER",
    description="Keeps the items of a list for which a predicate lambda is true, "
    "e.g. FILTER(['foo', 'bar'], (x) -> x == 'foo') gives ['foo'].",
    params=["list - The list", "predicate - A one-argument lambda returning a boolean"],
    returns="A new list of the items the predicate accepts, or null for a null list",
)
def filter_(items: Any, predicate: Any) -> list[Any] | None:
    fn = A.function(2, predicate)
    if items is None:
        return None
    return [item for item in _items(items) if fn(item) is True]


@stellar_function(
    "REDUCE",
    description="Reduces a list with a two-argument lambda (running value, item), "
    "e.g. REDUCE([1, 2, 3], (sum, x) -> sum + x, 0) gives 6.",
    params=[
        "list - The list",
        "binary_operation - A two-argument lambda: the running value and an item",
        "initial_value - The starting value",
    ],
    returns="The final running value (the initial value for an empty list), or null for a null list or initial value",
)
def reduce_(items: Any, operation: Any, initial: Any) -> Any:
    fn = A.function(2, operation)
    if items is None or initial is None:
        return None
    result = initial
    for item in _items(items):
        result = fn(result, item)
    return result
