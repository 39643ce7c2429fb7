"""Compiling and evaluating expressions: the compiled-expression object and its cache.

``compile(text)`` parses and compiles an expression once and keeps the result in a bounded LRU
cache keyed by the text (and the function registry), so the many evaluations a stream performs
with the same expression reuse one compiled object. ``evaluate(text, variables, context)`` is
``compile(text).evaluate(variables, context)``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stellar_like.compiler import Evaluator, compile_tree
from stellar_like.context import Context, get_default_context
from stellar_like.errors import StellarError, StellarEvaluationError, StellarParseError
from stellar_like.functions import DEFAULT_REGISTRY
from stellar_like.functions.registry import FunctionRegistry
from stellar_like.parser import parse

__all__ = ["CompiledExpression", "compile", "evaluate", "cache_info", "clear_cache", "set_cache_size", "CacheInfo"]

DEFAULT_CACHE_SIZE = 4096


class CompiledExpression:
    """An expression compiled to closures; evaluate it as often as needed, from any thread."""

    __slots__ = ("expression", "registry", "_fn")

    def __init__(self, expression: str, fn: Evaluator, registry: FunctionRegistry) -> None:
        self.expression = expression
        self.registry = registry
        self._fn = fn

    def evaluate(self, variables: Mapping[str, Any] | None = None, context: Context | None = None) -> Any:
        """The expression's value with ``variables``; missing variables are null.

        ``context`` supplies services such as the model gateway; without one the process-wide
        default context is used. Raises :class:`StellarEvaluationError` if evaluation fails.
        """
        if variables is None:
            variables = {}
        elif not isinstance(variables, Mapping):
            raise StellarEvaluationError(
                f"variables must be a map, not {type(variables).__name__}", expression=self.expression
            )
        if context is None:
            context = get_default_context()
        try:
            return self._fn(variables, context)
        except StellarError as exc:
            if exc.expression is None:
                exc.expression = self.expression
            raise
        except RecursionError:
            raise StellarEvaluationError("expression recursion too deep", expression=self.expression) from None
        except Exception as exc:  # a bug or an exotic variable value: still only StellarError escapes
            raise StellarEvaluationError(f"{type(exc).__name__}: {exc}", expression=self.expression) from exc

    __call__ = evaluate

    def __repr__(self) -> str:
        return f"CompiledExpression({self.expression!r})"


@dataclass(frozen=True)
class CacheInfo:
    """Statistics of the compile cache."""

    hits: int
    misses: int
    size: int
    maxsize: int


class _LRUCache:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, int], CompiledExpression] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int]) -> CompiledExpression | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, int], value: CompiledExpression) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = 0
            self.misses = 0

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._data) > maxsize:
                self._data.popitem(last=False)

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, len(self._data), self.maxsize)


_cache = _LRUCache(DEFAULT_CACHE_SIZE)


def compile(expression: str, *, registry: FunctionRegistry | None = None) -> CompiledExpression:
    """Compile ``expression`` (cached); raises :class:`StellarParseError` if it is not valid Stellar."""
    if not isinstance(expression, str):
        raise StellarParseError(f"a Stellar expression must be a string, not {type(expression).__name__}")
    registry = registry if registry is not None else DEFAULT_REGISTRY
    key = (expression, id(registry))
    compiled = _cache.get(key)
    if compiled is not None and compiled.registry is registry:
        return compiled
    tree = parse(expression)
    compiled = CompiledExpression(expression, compile_tree(tree, registry, expression), registry)
    if _cache.maxsize > 0:
        _cache.put(key, compiled)
    return compiled


def evaluate(
    expression: str,
    variables: Mapping[str, Any] | None = None,
    context: Context | None = None,
    *,
    registry: FunctionRegistry | None = None,
) -> Any:
    """Compile (cached) and evaluate ``expression`` with ``variables``."""
    return compile(expression, registry=registry).evaluate(variables, context)


def cache_info() -> CacheInfo:
    """Hits, misses, current and maximum size of the compile cache."""
    return _cache.info()


def clear_cache() -> None:
    """Forget every compiled expression (and reset the statistics)."""
    _cache.clear()


def set_cache_size(maxsize: int) -> None:
    """Bound the compile cache to ``maxsize`` expressions (0 disables caching)."""
    if maxsize < 0:
        raise ValueError("cache size must be >= 0")
    _cache.resize(maxsize)
