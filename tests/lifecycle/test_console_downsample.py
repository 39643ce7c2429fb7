"""Min/max-per-bucket downsampling (lifecycle.console.downsample)."""

from __future__ import annotations

import numpy as np
import pytest

from lifecycle.console.downsample import minmax


def test_every_bucket_keeps_its_min_and_max_in_time_order() -> None:
    t = np.arange(1_000_000, dtype="float64")
    v = np.sin(t / 5000.0)
    v[123_456] = 50.0   # a one-point spike must survive
    v[654_321] = -50.0
    s = minmax(t, v, 0.0, 1_000_000.0, 1000)
    assert s.points_in == 1_000_000 and len(s.times) <= 2000
    assert 50.0 in s.values and -50.0 in s.values
    assert s.times == sorted(s.times)
    assert s.times[s.values.index(50.0)] == 123_456.0
    vals = np.array([x for x in s.values if x is not None])
    assert vals.min() == v.min() and vals.max() == v.max()
    # each bucket's kept values are its true min and max
    width = 1000.0
    for b in (0, 500, 999):
        chunk = v[int(b * width):int((b + 1) * width)]
        kept = [x for tt, x in zip(s.times, s.values) if x is not None and b * width <= tt < (b + 1) * width]
        assert min(kept) == chunk.min() and max(kept) == chunk.max()


def test_missing_values_are_skipped_and_empty_stretches_break_the_line() -> None:
    t = np.arange(100, dtype="float64")
    v = t.copy()
    v[40:60] = np.nan
    s = minmax(t, v, 0.0, 100.0, 10)
    assert s.points_in == 80
    gap = s.values.index(None)
    assert s.times[gap - 1] < s.times[gap] < s.times[gap + 1]
    assert s.values[gap - 1] == 39.0 and s.values[gap + 1] == 60.0
    assert s.values.count(None) == 1


def test_few_points_are_returned_as_they_are_and_the_range_is_half_open() -> None:
    s = minmax(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]), 1.0, 3.0, 100)
    assert s.times == [1.0, 2.0] and s.values == [2.0, 3.0]  # sparse but regular: no gap
    assert minmax(np.array([5.0]), np.array([1.0]), 0.0, 1.0, 10).to_json()["points_out"] == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="buckets"):
        minmax(np.zeros(1), np.zeros(1), 0, 1, 0)
    with pytest.raises(ValueError, match="after"):
        minmax(np.zeros(1), np.zeros(1), 1, 1, 10)
    with pytest.raises(ValueError, match="length"):
        minmax(np.zeros(2), np.zeros(1), 0, 1, 10)
