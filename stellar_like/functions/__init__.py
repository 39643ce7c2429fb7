"""The core Stellar function library.

Importing this package registers every core function in
:data:`~stellar_like.functions.registry.DEFAULT_REGISTRY`. The modules group functions by
concept: strings, collections (lists and maps), conversions, math, network (domains, URLs, IPs),
dates, functional (MAP, FILTER, REDUCE), encoding (hashes, base64...), maas (model endpoints),
stats (summary statistics, binning, outliers), sets (sets and multisets), sketches (Bloom filters,
HyperLogLog++, samples), security (typosquatting, fuzzy matching, TLSH, threat triage), geo
(MaxMind look-ups, geohashes) and data_access (enrichment store, objects, REST, files, system).
"""

from __future__ import annotations

from stellar_like.functions import (  # noqa: E402,F401  (imported for their registrations)
    collections,
    conversions,
    data_access,
    dates,
    encoding,
    functional,
    geo,
    maas,
    math,
    network,
    security,
    sets,
    sketches,
    stats,
    strings,
)
from stellar_like.functions.registry import DEFAULT_REGISTRY, FunctionRegistry, FunctionSpec, Param, stellar_function

__all__ = ["DEFAULT_REGISTRY", "FunctionRegistry", "FunctionSpec", "Param", "stellar_function"]
