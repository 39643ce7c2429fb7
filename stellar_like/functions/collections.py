"""List and map functions: GET, GET_FIRST, GET_LAST, LIST_ADD, MAP_GET, MAP_PUT, MAP_MERGE, MAX, ZIP...

Functions never modify their arguments: LIST_ADD, MAP_PUT and MAP_MERGE return new collections,
so a list or map held in the variables (or a constant in an expression) is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

from stellar_like.errors import StellarEvaluationError
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import greater, less


@stellar_function(
    "GET",
    description="Returns the i'th element of a list (0-based).",
    params=["input - The list", "i - The index, starting at 0"],
    returns="The element, or null if the list is null or the index is out of range",
)
def get(items: Any, index: Any) -> Any:
    if items is None:
        return None
    values = A.sequence(1, items)
    i = A.integer(2, index)
    if 0 <= i < len(values):
        return values[i]
    return None


@stellar_function(
    "GET_FIRST",
    description="Returns the first element of a list.",
    params=["input - The list"],
    returns="The first element, or null if the list is null or empty",
)
def get_first(items: Any) -> Any:
    if items is None:
        return None
    values = A.sequence(1, items)
    return values[0] if values else None


@stellar_function(
    "GET_LAST",
    description="Returns the last element of a list.",
    params=["input - The list"],
    returns="The last element, or null if the list is null or empty",
)
def get_last(items: Any) -> Any:
    if items is None:
        return None
    values = A.sequence(1, items)
    return values[-1] if values else None


@stellar_function(
    "LIST_ADD",
    description="Adds an element to the end of a list (a null list counts as empty).",
    params=["list - The list", "element - The element to add"],
    returns="A new list with the element added at the end",
)
def list_add(items: Any, element: Any) -> list[Any]:
    values = [] if items is None else list(A.sequence(1, items))
    values.append(element)
    return values


@stellar_function(
    "MAP_GET",
    description="Gets the value associated with a key in a map.",
    params=["key - The key", "map - The map", "default? - The value to return when the key has no (non-null) value"],
    returns="The value for the key; otherwise the default if given, else null",
)
def map_get(key: Any, mapping: Any, default: Any = None) -> Any:
    if mapping is None:
        return default
    values = A.mapping(2, mapping)
    try:
        value = values.get(key)
    except TypeError:  # unhashable key
        return default
    return default if value is None else value


@stellar_function(
    "MAP_EXISTS",
    description="Checks whether a key is present in a map.",
    params=["key - The key to look for", "map - The map"],
    returns="True if the key is in the map, false otherwise (and for a null map)",
)
def map_exists(key: Any, mapping: Any) -> bool:
    if mapping is None:
        return False
    values = A.mapping(2, mapping)
    try:
        return key in values
    except TypeError:
        return False


@stellar_function(
    "MAP_PUT",
    description="Associates a value with a key in a map (a null map counts as empty).",
    params=["key - The key", "value - The value", "map - The map"],
    returns="A new map with the key set to the value",
)
def map_put(key: Any, value: Any, mapping: Any) -> dict[Any, Any]:
    result = {} if mapping is None else dict(A.mapping(3, mapping))
    try:
        result[key] = value
    except TypeError:
        raise StellarEvaluationError(f"argument 1 {key!r} cannot be a map key", argument=1) from None
    return result


@stellar_function(
    "MAP_MERGE",
    description="Merges a list of maps into one; for keys present in several maps the last one wins.",
    params=["maps - A list of maps (null entries are skipped)"],
    returns="A new map with the entries of all the maps",
)
def map_merge(maps: Any) -> dict[Any, Any] | None:
    if maps is None:
        return None
    result: dict[Any, Any] = {}
    for index, item in enumerate(A.sequence(1, maps)):
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise StellarEvaluationError(f"argument 1: element {index} {item!r} is not a map", argument=1)
        result.update(item)
    return result


def _extreme(items: Any, better: Any) -> Any:
    if items is None:
        return None
    summary = getattr(items, "max" if better is greater else "min", None)
    if callable(summary) and not isinstance(items, (list, tuple, set, frozenset)):
        return summary()  # a statistics object (STATS_INIT) knows its own extremes
    values = [v for v in A.sequence(1, items) if v is not None]
    if not values:
        return None
    best = values[0]
    try:
        for value in values[1:]:
            if better(value, best):
                best = value
    except StellarEvaluationError:
        return None  # mixed, mutually incomparable values
    return best


@stellar_function(
    "MAX",
    description="Returns the largest value of a list of mutually comparable values (numbers of any kind, or strings), "
    "or the maximum of a statistics object.",
    params=["list - The values, or a statistics object"],
    returns="The maximum, or null if the list is empty or its values cannot be compared",
)
def max_(items: Any) -> Any:
    return _extreme(items, greater)


@stellar_function(
    "MIN",
    description="Returns the smallest value of a list of mutually comparable values (numbers of any kind, or strings), "
    "or the minimum of a statistics object.",
    params=["list - The values, or a statistics object"],
    returns="The minimum, or null if the list is empty or its values cannot be compared",
)
def min_(items: Any) -> Any:
    return _extreme(items, less)


@stellar_function(
    "ZIP",
    description="Zips lists into a list of lists whose i'th element holds the i'th items of the inputs.",
    params=["list* - The lists to zip (arguments that are not lists are skipped)"],
    returns="The zipped list, as long as the shortest input",
)
def zip_(*lists: Any) -> list[list[Any]]:
    values = [items for items in lists if isinstance(items, (list, tuple))]  # Metron skips what is not a list
    return [list(group) for group in zip(*values)] if values else []


@stellar_function(
    "ZIP_LONGEST",
    description="Zips lists like ZIP, padding the shorter lists with null.",
    params=["list* - The lists to zip (arguments that are not lists are skipped)"],
    returns="The zipped list, as long as the longest input",
)
def zip_longest_(*lists: Any) -> list[list[Any]]:
    values = [items for items in lists if isinstance(items, (list, tuple))]
    return [list(group) for group in zip_longest(*values)] if values else []
