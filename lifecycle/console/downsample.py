"""Min/max-per-bucket downsampling of a time series, so a chart of 10⁶ points gets ~2 points per pixel.

The range ``[start, end)`` is cut into ``buckets`` equal spans. For each span holding at least one
non-missing value, the output keeps its minimum and its maximum, each at its own time and in time
order (one point when they are the same sample). Drawn as a line, the result has the same visual
envelope as the full series at that width: spikes survive, which averaging would hide. Missing
values are skipped; a stretch without samples longer than two buckets and three typical sampling
steps is marked by a ``None`` value (the chart breaks the line there instead of bridging it).

Pure numpy, O(n): no loop over points in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Series:
    """Downsampled points: times in seconds since the epoch, values (None: a gap)."""

    times: list[float]
    values: list[float | None]
    points_in: int  # non-missing points of the range before downsampling

    def to_json(self) -> dict[str, object]:
        return {"times": self.times, "values": self.values, "points_in": self.points_in,
                "points_out": len(self.times)}


def minmax(times: np.ndarray, values: np.ndarray, start: float, end: float, buckets: int) -> Series:
    """Downsample ``values`` at increasing ``times`` (seconds) over ``[start, end)``."""
    if buckets < 1 or buckets > MAX_BUCKETS:
        raise ValueError(f"buckets must be within 1..{MAX_BUCKETS}")
    if not end > start:
        raise ValueError("end must be after start")
    t = np.asarray(times, dtype="float64")
    v = np.asarray(values, dtype="float64")
    if t.shape != v.shape:
        raise ValueError("times and values differ in length")
    keep = (t >= start) & (t < end) & np.isfinite(v)
    t, v = t[keep], v[keep]
    n = int(t.size)
    if n == 0:
        return Series([], [], 0)
    width = (end - start) / buckets
    idx = np.minimum(((t - start) / width).astype("int64"), buckets - 1)
    if n <= 2 * buckets:  # already small enough: every point
        return _with_gaps(t, v, t, start, width)
    # first position of every non-empty bucket (times are increasing, so buckets are runs)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    lo = np.minimum.reduceat(v, starts)
    hi = np.maximum.reduceat(v, starts)
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    # the first sample equal to the bucket's min / max
    pos_lo = _first_per_run(v == lo[run], run, starts.size)
    pos_hi = _first_per_run(v == hi[run], run, starts.size)
    picked = np.unique(np.concatenate([pos_lo, pos_hi]))  # sorted: time order
    return _with_gaps(t[picked], v[picked], t, start, width)


def _first_per_run(mask: np.ndarray, run: np.ndarray, runs: int) -> np.ndarray:
    where = np.flatnonzero(mask)
    first = np.full(runs, -1, dtype="int64")
    # reversed assignment: the last write per run wins, which is the first position in order
    first[run[where][::-1]] = where[::-1]
    return first


def _with_gaps(t: np.ndarray, v: np.ndarray, raw_t: np.ndarray, start: float, width: float) -> Series:
    """Kept points plus a None in the middle of every stretch of the raw series with no sample for
    longer than both two buckets and three typical sampling steps (at most one per bucket)."""
    n = int(raw_t.size)
    if n > 1:
        steps = np.diff(raw_t)
        limit = max(2 * width, 3 * float(np.median(steps)))
        where = np.flatnonzero(steps > limit)
        if where.size:
            mid = (raw_t[where] + raw_t[where + 1]) / 2
            _, first = np.unique(((mid - start) / width).astype("int64"), return_index=True)
            mid = mid[first]
            t = np.concatenate([t, mid])
            v = np.concatenate([v, np.full(mid.size, np.nan)])
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
    return Series(t.tolist(), [None if x != x else x for x in v.tolist()], n)
