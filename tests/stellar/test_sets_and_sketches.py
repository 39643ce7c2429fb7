"""SET_*, MULTISET_*, BLOOM_*, HLLP_* and SAMPLE_*: results, nulls, merging and serialisation."""

from __future__ import annotations

from typing import Any

import pytest

from stellar_like import StellarEvaluationError, evaluate
from stellar_like.functions.sketches import BloomFilter, HyperLogLogPlus, UniformSampler
from stellar_like.serialization import SketchError, deserialize, serialize


def run(expression: str, **variables: Any) -> Any:
    return evaluate(expression, variables)


SET_CASES = [
    ("SET_INIT()", set()),
    ("SET_INIT([1, 2, 3, 2])", {1, 2, 3}),
    ("SET_INIT(null)", set()),
    ("SET_ADD(SET_INIT(), 1)", {1}),
    ("SET_ADD(SET_INIT([1]), 2, 3, null)", {1, 2, 3}),
    ("SET_ADD(null, 'a')", {"a"}),
    ("SET_REMOVE(SET_INIT([1, 2]), 1)", {2}),
    ("SET_REMOVE(SET_INIT([1, 2]), 3)", {1, 2}),
    ("SET_REMOVE(null, 1)", set()),
    ("SET_MERGE([SET_INIT([1, 2]), SET_INIT([2, 3]), null])", {1, 2, 3}),
    ("SET_MERGE([])", set()),
    ("LENGTH(SET_INIT(['a', 'b', 'a']))", 2),
    ("'a' in SET_INIT(['a', 'b'])", True),
    ("MULTISET_INIT()", {}),
    ("MULTISET_INIT(['a', 'b', 'a'])", {"a": 2, "b": 1}),
    ("MULTISET_ADD(MULTISET_INIT(['a']), 'a', 'b', null)", {"a": 2, "b": 1}),
    ("MULTISET_ADD(null, 'a')", {"a": 1}),
    ("MULTISET_REMOVE(MULTISET_INIT(['a', 'a', 'b']), 'a')", {"a": 1, "b": 1}),
    ("MULTISET_REMOVE(MULTISET_INIT(['a', 'b']), 'b', 'c')", {"a": 1}),
    ("MULTISET_MERGE([{'a': 1}, {'a': 2, 'b': 1}, null])", {"a": 3, "b": 1}),
    ("MULTISET_TO_SET(MULTISET_INIT(['a', 'b', 'a']))", {"a", "b"}),
    ("MULTISET_TO_SET(null)", set()),
]


@pytest.mark.parametrize(("expression", "expected"), SET_CASES, ids=[c[0] for c in SET_CASES])
def test_sets_and_multisets(expression: str, expected: Any) -> None:
    assert run(expression) == expected


def test_set_functions_never_change_their_argument() -> None:
    original = {1, 2}
    assert run("SET_ADD(s, 3)", s=original) == {1, 2, 3}
    assert run("SET_REMOVE(s, 1)", s=original) == {2}
    counts = {"a": 1}
    assert run("MULTISET_ADD(m, 'a')", m=counts) == {"a": 2}
    assert original == {1, 2} and counts == {"a": 1}


def test_set_errors_name_the_argument() -> None:
    with pytest.raises(StellarEvaluationError, match=r"SET_ADD: argument 2 \[1\] cannot be a set item"):
        run("SET_ADD(SET_INIT(), [1])")
    with pytest.raises(StellarEvaluationError, match="SET_INIT: argument 1 5 is not a list or set"):
        run("SET_INIT(5)")
    with pytest.raises(StellarEvaluationError, match="MULTISET_ADD: argument 1 .* is not a multiset"):
        run("MULTISET_ADD([1], 2)")


# ---- Bloom filters ------------------------------------------------------------------------------------


def test_bloom_filter_membership() -> None:
    bloom = run("BLOOM_ADD(BLOOM_INIT(1000, 0.001), 'casey', 'metron', null, 7)")
    assert isinstance(bloom, BloomFilter)
    assert run("BLOOM_EXISTS(b, 'casey')", b=bloom) is True
    assert run("BLOOM_EXISTS(b, 7)", b=bloom) is True
    assert run("BLOOM_EXISTS(b, 'nope')", b=bloom) is False
    assert run("BLOOM_EXISTS(b, null)", b=bloom) is False
    assert run("BLOOM_EXISTS(null, 'casey')") is False


def test_bloom_false_positive_rate_is_near_the_asked_rate() -> None:
    bloom = run(
        "REDUCE(items, (b, x) -> BLOOM_ADD(b, x), BLOOM_INIT(1000, 0.01))", items=[f"in-{i}" for i in range(1000)]
    )
    assert all(run("BLOOM_EXISTS(b, x)", b=bloom, x=f"in-{i}") for i in range(1000))
    false_positives = sum(bool(run("BLOOM_EXISTS(b, x)", b=bloom, x=f"out-{i}")) for i in range(5000))
    assert false_positives / 5000 < 0.03


def test_bloom_merge_and_serialisation() -> None:
    a = run("BLOOM_ADD(BLOOM_INIT(100, 0.01), 'a')")
    b = run("BLOOM_ADD(BLOOM_INIT(100, 0.01), 'b')")
    merged = run("BLOOM_MERGE([a, null, b])", a=a, b=b)
    assert run("BLOOM_EXISTS(m, 'a') and BLOOM_EXISTS(m, 'b')", m=merged) is True
    assert run("BLOOM_EXISTS(a, 'b')", a=a) is False  # the inputs are left as they were
    assert run("BLOOM_MERGE([])") is None
    copy = deserialize(serialize(merged))
    assert copy == merged and run("BLOOM_EXISTS(c, 'b')", c=copy) is True
    with pytest.raises(StellarEvaluationError, match="BLOOM_MERGE: argument 1 .*cannot merge"):
        run("BLOOM_MERGE([BLOOM_INIT(100, 0.01), BLOOM_INIT(200, 0.01)])")
    with pytest.raises(StellarEvaluationError, match="BLOOM_INIT: argument 2 2 must be a false positive rate"):
        run("BLOOM_INIT(10, 2)")
    with pytest.raises(StellarEvaluationError, match="BLOOM_ADD: argument 1 'x' is not a Bloom filter"):
        run("BLOOM_ADD('x', 1)")


# ---- HyperLogLog++ -----------------------------------------------------------------------------------------


def test_hllp_counts_distinct_values() -> None:
    assert run("HLLP_CARDINALITY(HLLP_ADD(HLLP_INIT(), ['runway', 'runway', 'taxiway']))") == 2
    assert run("HLLP_CARDINALITY(HLLP_ADD(HLLP_ADD(HLLP_INIT(5, 6), 'runway'), 'taxiway'))") == 2
    assert run("HLLP_CARDINALITY(HLLP_ADD(null, 1))") == 1
    assert run("HLLP_CARDINALITY(null)") == 0
    many = run("HLLP_ADD(HLLP_INIT(14), items)", items=[f"user-{i}" for i in range(20000)])
    assert abs(run("HLLP_CARDINALITY(h)", h=many) - 20000) < 20000 * 0.03


def test_hllp_merge_and_serialisation() -> None:
    a = run("HLLP_ADD(HLLP_INIT(12), ['a', 'b', 'c'])")
    b = run("HLLP_ADD(HLLP_INIT(12), ['c', 'd'])")
    merged = run("HLLP_MERGE([a, b])", a=a, b=b)
    assert isinstance(merged, HyperLogLogPlus)
    assert run("HLLP_CARDINALITY(m)", m=merged) == 4
    assert run("HLLP_CARDINALITY(a)", a=a) == 3
    assert run("HLLP_CARDINALITY(HLLP_MERGE(a))", a=a) == 3
    assert run("HLLP_MERGE([])") is None
    copy = deserialize(serialize(merged))
    assert copy == merged and copy.p == 12
    with pytest.raises(StellarEvaluationError, match="HLLP_MERGE: argument 1 .*precision"):
        run("HLLP_MERGE([HLLP_INIT(10), HLLP_INIT(12)])")
    with pytest.raises(StellarEvaluationError, match="HLLP_INIT: argument 1 3 must be a precision"):
        run("HLLP_INIT(3)")
    with pytest.raises(StellarEvaluationError, match="HLLP_INIT: argument 2 5 must be 0 or a sparse precision"):
        run("HLLP_INIT(10, 5)")


# ---- sampling -------------------------------------------------------------------------------------------------


def test_sampler_keeps_everything_until_full() -> None:
    assert run("SAMPLE_GET(SAMPLE_ADD(SAMPLE_INIT(10), [1, 2, 3]))") == [1, 2, 3]
    assert run("SAMPLE_GET(SAMPLE_ADD(null, 'x'))") == ["x"]
    assert run("SAMPLE_GET(SAMPLE_ADD(SAMPLE_INIT(5), null))") == []
    assert run("SAMPLE_GET(null)") is None


def test_sampler_is_uniform_and_bounded() -> None:
    counts = [0] * 10
    for seed in range(300):
        sampler = UniformSampler(5)
        sampler._rng.seed(seed)
        for value in range(10):
            sampler.add(value)
        for value in sampler.reservoir:
            counts[value] += 1
    assert len(sampler.reservoir) == 5
    assert all(100 < c < 200 for c in counts)  # each value is kept half of the time


def test_sampler_merge_and_serialisation() -> None:
    a = run("SAMPLE_ADD(SAMPLE_INIT(4), [1, 2])")
    b = run("SAMPLE_ADD(SAMPLE_INIT(4), [3, 4, 5, 6])")
    merged = run("SAMPLE_MERGE([a, b])", a=a, b=b)
    sample = run("SAMPLE_GET(m)", m=merged)
    assert len(sample) == 4 and set(sample) <= {1, 2, 3, 4, 5, 6}
    into = run("SAMPLE_MERGE([a], SAMPLE_INIT(100))", a=a)
    assert run("SAMPLE_GET(s)", s=into) == [1, 2]
    assert run("SAMPLE_MERGE([])") is None
    copy = deserialize(serialize(merged))
    assert copy == merged
    copy.add(7)
    merged.add(7)
    assert copy.reservoir == merged.reservoir  # the random generator travels with the sample
    with pytest.raises(StellarEvaluationError, match="SAMPLE_INIT: argument 1 0 must be a positive size"):
        run("SAMPLE_INIT(0)")


def test_serialised_sketches_reject_damage() -> None:
    data = serialize(run("HLLP_INIT()"))
    with pytest.raises(SketchError):
        deserialize(data[:20])
    with pytest.raises(SketchError, match="unknown sketch type"):
        deserialize(data.replace(b"hllp", b"nope"))
    assert deserialize(serialize({"a": [1, 2]})) == {"a": [1, 2]}
