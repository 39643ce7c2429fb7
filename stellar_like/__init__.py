"""A Stellar-style expression language (after Apache Metron's Stellar) for the MaaS orchestrator.

Quick use::

    import stellar_like
    stellar_like.evaluate("TO_UPPER(name)", {"name": "casey"})          # 'CASEY'
    rule = stellar_like.compile("IN_SUBNET(ip, '10.0.0.0/8') and port == 22")
    rule.evaluate({"ip": "10.1.2.3", "port": 22})                      # True

Public API:

- :func:`evaluate` and :func:`compile` (compiled forms are cached by text in a bounded LRU);
  :class:`CompiledExpression` has ``.evaluate(variables, context=None)``.
- :class:`StellarError`, the one base class of every error raised, with
  :class:`StellarParseError` (carries ``position``: line, column, offset) and
  :class:`StellarEvaluationError` (names the function and argument).
- :class:`Context` (services such as the model gateway), :func:`set_default_context`,
  :func:`get_default_context`, and the :class:`ModelGateway` protocol.
- The function registry: :func:`list_functions`, :func:`get_function`, :func:`describe_function`,
  :func:`similar_functions`,
  the :func:`stellar_function` decorator and :data:`DEFAULT_REGISTRY`.
- Services the data functions find in the context: :mod:`stellar_like.enrichment_store`
  (ENRICHMENT_GET), :mod:`stellar_like.stores` (HDFS_*, OBJECT_GET); sketches (STATS_INIT,
  BLOOM_INIT...) serialise with :mod:`stellar_like.serialization`. docs/stellar.md has the details.
"""

from __future__ import annotations

from stellar_like.context import Context, get_default_context, set_default_context
from stellar_like.errors import Position, StellarError, StellarEvaluationError, StellarParseError
from stellar_like.evaluator import (
    CacheInfo,
    CompiledExpression,
    cache_info,
    clear_cache,
    compile,
    evaluate,
    set_cache_size,
)
from stellar_like.functions import DEFAULT_REGISTRY, FunctionRegistry, FunctionSpec, Param, stellar_function
from stellar_like.gateway import ModelGateway

__all__ = [
    "evaluate",
    "compile",
    "CompiledExpression",
    "StellarError",
    "StellarParseError",
    "StellarEvaluationError",
    "Position",
    "Context",
    "set_default_context",
    "get_default_context",
    "ModelGateway",
    "list_functions",
    "get_function",
    "describe_function",
    "similar_functions",
    "stellar_function",
    "DEFAULT_REGISTRY",
    "FunctionRegistry",
    "FunctionSpec",
    "Param",
    "cache_info",
    "clear_cache",
    "set_cache_size",
    "CacheInfo",
]


def list_functions(registry: FunctionRegistry | None = None) -> list[FunctionSpec]:
    """Every registered function with its documentation, sorted by name."""
    return (registry or DEFAULT_REGISTRY).specs()


def get_function(name: str, registry: FunctionRegistry | None = None) -> FunctionSpec | None:
    """The registered function ``name`` (exact Stellar name), or None."""
    return (registry or DEFAULT_REGISTRY).get(name)


def describe_function(name: str, registry: FunctionRegistry | None = None) -> str:
    """Multi-line documentation of ``name``; raises :class:`StellarError` for an unknown function,
    naming the closest known names when some are close."""
    spec = get_function(name, registry)
    if spec is None:
        close = similar_functions(name, registry)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise StellarError(f"unknown function {name}{hint}")
    return spec.describe()


def similar_functions(name: str, registry: FunctionRegistry | None = None, limit: int = 3) -> list[str]:
    """The registered names closest to ``name`` (case-insensitive; difflib's ratio), best first,
    then names that contain it."""
    import difflib

    wanted = name.upper()
    names = [spec.name for spec in list_functions(registry)]
    close = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.6)
    close += [n for n in names if wanted and wanted in n and n not in close]
    return close[:limit]
