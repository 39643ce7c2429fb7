"""Set and multiset functions: SET_INIT, SET_ADD, SET_REMOVE, SET_MERGE and MULTISET_*.

A set is a Python ``set`` (shown as a list by the command line); a multiset is a map from each
item to its count, as in Metron. Like the list and map functions, these never change their
arguments: SET_ADD and the others return a new set or multiset. Null items are ignored. Items
must be hashable: strings, numbers, booleans (a list or map cannot be a set item).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stellar_like.errors import argument_error
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import is_number

_ITERABLE = (list, tuple, set, frozenset)


def _items(index: int, value: Any) -> Iterable[Any]:
    if isinstance(value, _ITERABLE):
        return value
    if isinstance(value, Mapping):
        return value.keys()
    raise argument_error(index, value, "is not a list or set")


def _add(target: set[Any], index: int, item: Any) -> None:
    try:
        target.add(item)
    except TypeError:
        raise argument_error(index, item, "cannot be a set item (only strings, numbers and booleans can)") from None


def _set(index: int, value: Any) -> set[Any]:
    if value is None:
        return set()
    if isinstance(value, (set, frozenset)):
        return set(value)
    if isinstance(value, (list, tuple)):
        result: set[Any] = set()
        for item in value:
            if item is not None:
                _add(result, index, item)
        return result
    raise argument_error(index, value, "is not a set")


@stellar_function(
    "SET_INIT",
    description="Creates a new set, optionally from the items of a list.",
    params=["input? - A list (or set) of initial items"],
    returns="A new set",
)
def set_init(initial: Any = None) -> set[Any]:
    result: set[Any] = set()
    if initial is not None:
        for item in _items(1, initial):
            if item is not None:
                _add(result, 1, item)
    return result


@stellar_function(
    "SET_ADD",
    description="Adds items to a set (a null set counts as empty).",
    params=["set - The set", "o* - The items to add; nulls are ignored"],
    returns="A new set with the items added",
)
def set_add(current: Any, *items: Any) -> set[Any]:
    result = _set(1, current)
    for index, item in enumerate(items, start=2):
        if item is not None:
            _add(result, index, item)
    return result


@stellar_function(
    "SET_REMOVE",
    description="Removes items from a set (a null set counts as empty).",
    params=["set - The set", "o* - The items to remove"],
    returns="A new set without the items",
)
def set_remove(current: Any, *items: Any) -> set[Any]:
    result = _set(1, current)
    for item in items:
        try:
            result.discard(item)
        except TypeError:
            continue  # an unhashable item cannot be in the set
    return result


@stellar_function(
    "SET_MERGE",
    description="Merges a list of sets into one (their union); null sets are skipped.",
    params=["sets - A list of sets"],
    returns="A new set holding the items of all the sets",
)
def set_merge(sets: Any) -> set[Any]:
    result: set[Any] = set()
    if sets is None:
        return result
    for position, member in enumerate(_items(1, sets)):
        if member is None:
            continue
        if not isinstance(member, _ITERABLE):
            raise argument_error(1, sets, f"holds {member!r} at {position}, which is not a set")
        for item in member:
            if item is not None:
                _add(result, 1, item)
    return result


def _multiset(index: int, value: Any) -> dict[Any, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise argument_error(index, value, "is not a multiset (a map of items to counts)")
    for key, count in value.items():
        if not is_number(count):
            raise argument_error(index, value, f"has the count {count!r} for {key!r}, which is not a number")
    return dict(value)


def _count(target: dict[Any, int], index: int, item: Any, by: int = 1) -> None:
    try:
        target[item] = target.get(item, 0) + by
    except TypeError:
        raise argument_error(
            index, item, "cannot be a multiset item (only strings, numbers and booleans can)"
        ) from None


@stellar_function(
    "MULTISET_INIT",
    description="Creates a new multiset (a map of items to their counts), optionally counting the items of a list.",
    params=["input? - A list of initial items"],
    returns="A new multiset",
)
def multiset_init(initial: Any = None) -> dict[Any, int]:
    result: dict[Any, int] = {}
    if initial is not None:
        for item in _items(1, initial):
            _count(result, 1, item)
    return result


@stellar_function(
    "MULTISET_ADD",
    description="Adds items to a multiset, incrementing their counts (a null multiset counts as empty).",
    params=["set - The multiset", "o* - The items to add; nulls are ignored"],
    returns="A new multiset with the counts incremented",
)
def multiset_add(current: Any, *items: Any) -> dict[Any, int]:
    result = _multiset(1, current)
    for index, item in enumerate(items, start=2):
        if item is not None:
            _count(result, index, item)
    return result


@stellar_function(
    "MULTISET_REMOVE",
    description="Removes one instance of each item from a multiset; an item whose count reaches 0 is removed.",
    params=["set - The multiset", "o* - The items to remove"],
    returns="A new multiset with the counts decremented",
)
def multiset_remove(current: Any, *items: Any) -> dict[Any, int]:
    result = _multiset(1, current)
    for item in items:
        if item is None:
            continue
        try:
            count = result.get(item)
        except TypeError:
            continue
        if count is None:
            continue
        if count <= 1:
            del result[item]
        else:
            result[item] = count - 1
    return result


@stellar_function(
    "MULTISET_MERGE",
    description="Merges a list of multisets, adding up the counts of each item.",
    params=["sets - A list of multisets; nulls are skipped"],
    returns="A new multiset",
)
def multiset_merge(multisets: Any) -> dict[Any, int]:
    result: dict[Any, int] = {}
    if multisets is None:
        return result
    if not isinstance(multisets, _ITERABLE):
        raise argument_error(1, multisets, "is not a list of multisets")
    for member in multisets:
        if member is None:
            continue
        for item, count in _multiset(1, member).items():
            _count(result, 1, item, count)
    return result


@stellar_function(
    "MULTISET_TO_SET",
    description="Creates a set of the items of a multiset, ignoring their counts.",
    params=["multiset - The multiset"],
    returns="A new set",
)
def multiset_to_set(multiset: Any) -> set[Any]:
    return set(_multiset(1, multiset).keys())
