"""Probabilistic sketches: BLOOM_* (Bloom filters), HLLP_* (HyperLogLog++) and SAMPLE_* (reservoir samples).

The data structures come from libraries: Bloom filters from ``rbloom``, HyperLogLog++ from
``datasketch``. Every sketch is mergeable (``*_MERGE``) and serialisable with
:func:`stellar_like.serialization.serialize`. Items are hashed by a stable encoding of their value
(UTF-8 for strings, JSON for other values), so a sketch written by one process answers the same in
another. ADD functions change the sketch in place and return it, as Metron's do.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

import orjson
from rbloom import Bloom

from stellar_like.errors import argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.serialization import Sketch, SketchError, register

_ITERABLE = (list, tuple, set, frozenset)


def item_bytes(value: Any) -> bytes:
    """The stable byte encoding of a sketch item."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    try:
        return b"\x00json:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return b"\x00repr:" + repr(value).encode("utf-8")


def _hyperloglog() -> Any:
    """datasketch's HyperLogLog++ class, imported on first use (the package takes seconds to import)."""
    from datasketch import HyperLogLogPlusPlus

    return HyperLogLogPlusPlus


def _bloom_hash(value: Any) -> int:
    digest = hashlib.blake2b(item_bytes(value), digest_size=16).digest()
    return int.from_bytes(digest, "big", signed=True)


# ---- Bloom filters ---------------------------------------------------------------------------------


@register
class BloomFilter(Sketch):
    """A Bloom filter of a given capacity and false-positive rate (``rbloom``)."""

    TAG = "bloom"

    __slots__ = ("expected", "fpp", "bloom")

    def __init__(self, expected: int, fpp: float, bloom: Bloom | None = None) -> None:
        self.expected = expected
        self.fpp = fpp
        self.bloom = bloom if bloom is not None else Bloom(expected, fpp, _bloom_hash)

    def add(self, item: Any) -> None:
        self.bloom.add(item)

    def __contains__(self, item: Any) -> bool:
        return item in self.bloom

    def merge(self, other: BloomFilter) -> None:
        if (other.expected, other.fpp) != (self.expected, self.fpp):
            raise SketchError(
                f"cannot merge a Bloom filter for {other.expected} items at {other.fpp} into one for "
                f"{self.expected} items at {self.fpp}"
            )
        self.bloom.update(other.bloom)

    def payload(self) -> bytes:
        head = orjson.dumps({"expected": self.expected, "fpp": self.fpp})
        return len(head).to_bytes(4, "big") + head + self.bloom.save_bytes()

    @classmethod
    def from_payload(cls, data: bytes) -> BloomFilter:
        size = int.from_bytes(data[:4], "big")
        head = orjson.loads(data[4 : 4 + size])
        return cls(int(head["expected"]), float(head["fpp"]), Bloom.load_bytes(data[4 + size :], _bloom_hash))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BloomFilter) and self.payload() == other.payload()

    def __repr__(self) -> str:
        return f"BloomFilter(expected={self.expected}, fpp={self.fpp})"


def _bloom(index: int, value: Any) -> BloomFilter:
    if isinstance(value, BloomFilter):
        return value
    raise argument_error(index, value, "is not a Bloom filter (see BLOOM_INIT)")


@stellar_function(
    "BLOOM_INIT",
    description="Returns an empty Bloom filter sized for the expected number of insertions and false-positive rate.",
    params=[
        "expectedInsertions? - The expected number of insertions; default 100000",
        "falsePositiveRate? - The false positive rate you are willing to tolerate; default 0.01",
    ],
    returns="A Bloom filter",
    pure=False,
)
def bloom_init(expected: Any = None, fpp: Any = None) -> BloomFilter:
    insertions = 100000 if expected is None else A.to_integer(1, expected)
    rate = 0.01 if fpp is None else A.to_float(2, fpp)
    if insertions is None or insertions <= 0:
        raise argument_error(1, expected, "must be a positive number of insertions")
    if rate is None or not 0 < rate < 1:
        raise argument_error(2, fpp, "must be a false positive rate between 0 and 1")
    return BloomFilter(insertions, rate)


@stellar_function(
    "BLOOM_ADD",
    description="Adds values to a Bloom filter; nulls are ignored.",
    params=["bloom - The Bloom filter", "value* - The values to add"],
    returns="The Bloom filter",
    pure=False,
)
def bloom_add(bloom: Any, *values: Any) -> BloomFilter:
    target = _bloom(1, bloom)
    for value in values:
        if value is not None:
            target.add(value)
    return target


@stellar_function(
    "BLOOM_EXISTS",
    description="Whether a Bloom filter may contain a value (false positives are possible, false negatives not).",
    params=["bloom - The Bloom filter", "value - The value to check"],
    returns="True if the value may be in the filter, false if it is not (or is null, or the filter is null)",
)
def bloom_exists(bloom: Any, value: Any) -> bool:
    if bloom is None or value is None:
        return False
    return value in _bloom(1, bloom)


@stellar_function(
    "BLOOM_MERGE",
    description="Merges a list of Bloom filters of the same size into one.",
    params=["bloomfilters - A list of Bloom filters"],
    returns="A new Bloom filter holding every filter's items, or null if the list holds none",
)
def bloom_merge(filters: Any) -> BloomFilter | None:
    if filters is None:
        return None
    result: BloomFilter | None = None
    for item in A.sequence(1, filters):
        if item is None:
            continue
        bloom = _bloom(1, item)
        if result is None:
            result = BloomFilter(bloom.expected, bloom.fpp, bloom.bloom.copy())
        else:
            try:
                result.merge(bloom)
            except SketchError as exc:
                raise argument_error(1, filters, str(exc)) from None
    return result


# ---- HyperLogLog++ ------------------------------------------------------------------------------------


@register
class HyperLogLogPlus(Sketch):
    """A HyperLogLog++ cardinality estimator (``datasketch``) of precision ``p``."""

    TAG = "hllp"

    __slots__ = ("p", "sp", "hll")

    def __init__(self, p: int = 14, sp: int = 25, hll: Any = None) -> None:
        self.p = p
        self.sp = sp
        self.hll = hll if hll is not None else _hyperloglog()(p=p)

    def add(self, item: Any) -> None:
        self.hll.update(item_bytes(item))

    def cardinality(self) -> int:
        return int(round(self.hll.count()))

    def merged(self, others: Iterable[HyperLogLogPlus]) -> HyperLogLogPlus:
        combined = HyperLogLogPlus(self.p, self.sp, self.hll.copy())
        for other in others:
            if other.p != self.p:
                raise SketchError(f"cannot merge an estimator of precision {other.p} into one of precision {self.p}")
            combined.hll.merge(other.hll)
        return combined

    def payload(self) -> bytes:
        buffer = bytearray(self.hll.bytesize())
        self.hll.serialize(buffer)
        return bytes([self.p, self.sp]) + bytes(buffer)

    @classmethod
    def from_payload(cls, data: bytes) -> HyperLogLogPlus:
        hll = _hyperloglog().deserialize(bytearray(data[2:]))
        return cls(data[0], data[1], hll)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HyperLogLogPlus) and self.payload() == other.payload()

    def __repr__(self) -> str:
        return f"HyperLogLogPlus(p={self.p}, cardinality={self.cardinality()})"


def _hllp(index: int, value: Any) -> HyperLogLogPlus:
    if isinstance(value, HyperLogLogPlus):
        return value
    raise argument_error(index, value, "is not a HyperLogLog++ estimator (see HLLP_INIT)")


@stellar_function(
    "HLLP_INIT",
    description="Initializes a HyperLogLog++ cardinality estimator. A higher precision p gives a more exact "
    "estimate for more memory (2^p registers; 4 <= p <= 16). The sparse precision sp is checked and "
    "kept for compatibility; the estimator always uses its dense representation.",
    params=[
        "p? - The precision of the normal set; default 14",
        "sp? - The precision of the sparse set (0 for none, otherwise at least p); default 25",
    ],
    returns="A new HyperLogLog++ estimator",
    pure=False,
)
def hllp_init(p: Any = None, sp: Any = None) -> HyperLogLogPlus:
    precision = 14 if p is None else A.to_integer(1, p)
    sparse = (25 if p is None else 0) if sp is None else A.to_integer(2, sp)
    if precision is None or not 4 <= precision <= 16:
        raise argument_error(1, p, "must be a precision between 4 and 16")
    if sparse is None or (sparse != 0 and not precision <= sparse <= 32):
        raise argument_error(2, sp, f"must be 0 or a sparse precision between p ({precision}) and 32")
    return HyperLogLogPlus(precision, sparse)


@stellar_function(
    "HLLP_ADD",
    description="Adds a value, or each value of a list, to a HyperLogLog++ estimator.",
    params=["hyperLogLogPlus - The estimator; if null a new one (p=14) is made", "value - A value or a list of values"],
    returns="The estimator",
    pure=False,
)
def hllp_add(estimator: Any, value: Any) -> HyperLogLogPlus:
    target = HyperLogLogPlus() if estimator is None else _hllp(1, estimator)
    items = value if isinstance(value, _ITERABLE) else [value]
    for item in items:
        if item is not None:
            target.add(item)
    return target


@stellar_function(
    "HLLP_CARDINALITY",
    description="Returns the estimated number of distinct values added to a HyperLogLog++ estimator.",
    params=["hyperLogLogPlus - The estimator"],
    returns="The estimated cardinality; 0 if the argument is not an estimator",
)
def hllp_cardinality(estimator: Any) -> int:
    if not isinstance(estimator, HyperLogLogPlus):
        return 0
    return estimator.cardinality()


@stellar_function(
    "HLLP_MERGE",
    description="Merges HyperLogLog++ estimators of the same precision.",
    params=["hllp - A list of estimators (or a single one)"],
    returns="A new merged estimator with the precision of the first; null for an empty list",
)
def hllp_merge(estimators: Any) -> HyperLogLogPlus | None:
    items = list(estimators) if isinstance(estimators, _ITERABLE) else [estimators]
    items = [e for e in items if e is not None]
    if not items:
        return None
    first, *rest = (_hllp(1, e) for e in items)
    try:
        return first.merged(rest)
    except SketchError as exc:
        raise argument_error(1, estimators, str(exc)) from None


# ---- reservoir sampling ---------------------------------------------------------------------------

DEFAULT_SAMPLE_SIZE = 1024


@register
class UniformSampler(Sketch):
    """A uniform reservoir sample (Vitter's algorithm R) of at most ``size`` items.

    Written here: reservoir sampling is a dozen lines and no maintained library offers a
    serialisable, mergeable reservoir; the random generator is seeded so results repeat.
    """

    TAG = "sample.uniform"

    __slots__ = ("size", "seen", "reservoir", "_rng")

    def __init__(self, size: int = DEFAULT_SAMPLE_SIZE) -> None:
        self.size = size
        self.seen = 0
        self.reservoir: list[Any] = []
        self._rng = random.Random(0)

    def add(self, item: Any) -> None:
        if item is None:
            return
        if len(self.reservoir) < self.size:
            self.reservoir.append(item)
        else:
            slot = self._rng.randrange(self.seen + 1)
            if slot < self.size:
                self.reservoir[slot] = item
        self.seen += 1

    def empty_copy(self) -> UniformSampler:
        return UniformSampler(self.size)

    def payload(self) -> bytes:
        version, state, gauss = self._rng.getstate()
        return orjson.dumps(
            {"size": self.size, "seen": self.seen, "reservoir": self.reservoir, "rng": [version, list(state), gauss]}
        )

    @classmethod
    def from_payload(cls, data: bytes) -> UniformSampler:
        head = orjson.loads(data)
        sampler = cls(int(head["size"]))
        sampler.seen = int(head["seen"])
        sampler.reservoir = list(head["reservoir"])
        version, state, gauss = head["rng"]
        sampler._rng.setstate((version, tuple(state), gauss))
        return sampler

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UniformSampler) and (self.size, self.reservoir) == (other.size, other.reservoir)

    def __repr__(self) -> str:
        return f"UniformSampler(size={self.size}, seen={self.seen})"


def _sampler(index: int, value: Any) -> UniformSampler:
    if isinstance(value, UniformSampler):
        return value
    raise argument_error(index, value, "is not a sampler (see SAMPLE_INIT)")


@stellar_function(
    "SAMPLE_INIT",
    description=f"Creates a uniform reservoir sampler of the given size (default {DEFAULT_SAMPLE_SIZE}); every "
    "item offered has the same probability of being in the sample.",
    params=[f"size? - The size of the reservoir; default {DEFAULT_SAMPLE_SIZE}"],
    returns="The sampler",
    pure=False,
)
def sample_init(size: Any = None) -> UniformSampler:
    if size is None:
        return UniformSampler()
    count = A.to_integer(1, size)
    if count is None or count <= 0:
        raise argument_error(1, size, "must be a positive size")
    return UniformSampler(count)


@stellar_function(
    "SAMPLE_ADD",
    description="Adds a value, or each value of a list, to a sampler.",
    params=["sampler - The sampler; if null, a default one is made", "o - The value or list of values to add"],
    returns="The sampler",
    pure=False,
)
def sample_add(sampler: Any, value: Any) -> UniformSampler:
    target = UniformSampler() if sampler is None else _sampler(1, sampler)
    if value is None:
        return target
    for item in value if isinstance(value, _ITERABLE) else [value]:
        target.add(item)
    return target


@stellar_function(
    "SAMPLE_GET",
    description="Returns the current sample of a sampler.",
    params=["sampler - The sampler"],
    returns="The sampled values as a list, or null for a null sampler",
)
def sample_get(sampler: Any) -> list[Any] | None:
    if sampler is None:
        return None
    return list(_sampler(1, sampler).reservoir)


@stellar_function(
    "SAMPLE_MERGE",
    description="Merges samplers by resampling their samples into one.",
    params=[
        "samplers - A list of samplers",
        "baseSampler? - The sampler to merge into; by default an empty one of the first sampler's size",
    ],
    returns="The merged sampler, or null for an empty or null list",
    pure=False,
)
def sample_merge(samplers: Any, base: Any = None) -> UniformSampler | None:
    if samplers is None:
        return None
    items = [_sampler(1, s) for s in A.sequence(1, samplers) if s is not None]
    if not items:
        return None
    target = items[0].empty_copy() if base is None else _sampler(2, base)
    for sampler in items:
        for value in sampler.reservoir:
            target.add(value)
    return target
