"""Statistics functions: STATS_*, BIN, OUTLIER_MAD_* and IT_ENTROPY.

``STATS_INIT()`` (or ``STATS_ADD(null, ...)``) makes an online statistics object: it keeps the
count, sum, sum of squares, sum of logs, min, max and the first four central moments (updated
one value at a time, so mean, variance, skewness and kurtosis need no stored values) and a
t-digest (the ``fastdigest`` library) for percentiles. ``STATS_INIT(n)`` with n > 0 keeps the last
n values instead and computes every statistic exactly over that window, as Metron's windowed
provider does. Online objects merge (``STATS_MERGE``); windowed ones cannot, as in Metron.

Percentiles take p in (0, 100] (``STATS_PERCENTILE(s, 90)``), as Metron's do. Every ``STATS_*``
reader gives NaN for a null statistics object. The objects are changed in place by STATS_ADD (as
Metron's are) and serialise with :func:`stellar_like.serialization.serialize`.

``OUTLIER_MAD_*`` keep the state for the median absolute deviation's modified z-score, built on
the same online statistics; ``IT_ENTROPY`` is the base-2 entropy of a multiset (a map of counts).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fastdigest import TDigest

from stellar_like.errors import argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import is_number
from stellar_like.serialization import Sketch, SketchError, register

MAX_CENTROIDS = 1000
"""The t-digest's size bound: more centroids, finer percentiles (Metron uses compression 150)."""

_BUFFER = 512  # values collected before they are folded into the t-digest in one batch


def _value(index: int, value: Any) -> float:
    """A number to add: numbers and numeric strings, as Metron's conversion to Double."""
    number = A.to_float(index, value)
    if number is None:  # pragma: no cover - callers skip nulls
        raise argument_error(index, value, "is not a number")
    return number


@register
class OnlineStatistics(Sketch):
    """Running statistics without stored values; mergeable."""

    TAG = "stats.online"

    __slots__ = (
        "n",
        "total",
        "sum_squares",
        "sum_logs",
        "minimum",
        "maximum",
        "m1",
        "m2",
        "m3",
        "m4",
        "_digest",
        "_pending",
    )

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.sum_squares = 0.0
        self.sum_logs = 0.0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.m1 = self.m2 = self.m3 = self.m4 = 0.0
        self._digest = TDigest(max_centroids=MAX_CENTROIDS)
        self._pending: list[float] = []

    def add(self, value: float) -> None:
        n1 = self.n
        self.n += 1
        n = self.n
        self.minimum = value if self.minimum is None else min(self.minimum, value)
        self.maximum = value if self.maximum is None else max(self.maximum, value)
        self.total += value
        self.sum_squares += value * value
        self.sum_logs += math.log(value) if value > 0 else (-math.inf if value == 0 else math.nan)
        # one-pass update of the central moments (Terriberry's extension of Welford's method)
        delta = value - self.m1
        delta_n = delta / n
        delta_n2 = delta_n * delta_n
        term1 = delta * delta_n * n1
        self.m1 += delta_n
        self.m4 += term1 * delta_n2 * (n * n - 3 * n + 3) + 6 * delta_n2 * self.m2 - 4 * delta_n * self.m3
        self.m3 += term1 * delta_n * (n - 2) - 3 * delta_n * self.m2
        self.m2 += term1
        if math.isinf(self.sum_squares) or math.isinf(self.m4):
            raise ValueError(f"adding {value!r} overflows the statistics")
        self._pending.append(value)
        if len(self._pending) >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._digest.batch_update(self._pending)
            self._pending = []

    @property
    def digest(self) -> TDigest:
        self._flush()
        return self._digest

    # --- readers -------------------------------------------------------------------------------
    def count(self) -> int:
        return self.n

    def sum(self) -> float:
        return self.total

    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def min(self) -> float:
        return math.nan if self.minimum is None else self.minimum

    def max(self) -> float:
        return math.nan if self.maximum is None else self.maximum

    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    def population_variance(self) -> float:
        return self.m2 / self.n if self.n else math.nan

    def sd(self) -> float:
        return math.sqrt(self.variance())

    def geometric_mean(self) -> float:
        return math.exp(self.sum_logs / self.n) if self.n else math.nan

    def quadratic_mean(self) -> float:
        return math.sqrt(self.sum_squares / self.n) if self.n else math.nan

    def skewness(self) -> float:
        n = self.n
        if n < 3:
            return math.nan
        std = self.sd()
        if std == 0:
            return math.nan
        return (n / ((n - 1) * (n - 2))) * self.m3 / std**3

    def kurtosis(self) -> float:
        n = self.n
        if n < 4:
            return math.nan
        std = self.sd()
        if std == 0:
            return math.nan
        t1 = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3))
        t3 = 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))
        return t1 * (self.m4 / std**4) - t3

    def percentile(self, p: float) -> float:
        if self.n == 0:
            return math.nan
        return float(self.digest.quantile(min(max(p / 100.0, 0.0), 1.0)))

    # --- merging and serialising ------------------------------------------------------------
    def merge(self, other: OnlineStatistics) -> OnlineStatistics:
        """A new object summarising both (Chan et al.'s pairwise combination of the moments)."""
        a, b = self, other
        combined = OnlineStatistics()
        combined.n = n = a.n + b.n
        combined.total = a.total + b.total
        combined.sum_squares = a.sum_squares + b.sum_squares
        combined.sum_logs = a.sum_logs + b.sum_logs
        mins = [m for m in (a.minimum, b.minimum) if m is not None]
        maxs = [m for m in (a.maximum, b.maximum) if m is not None]
        combined.minimum = min(mins) if mins else None
        combined.maximum = max(maxs) if maxs else None
        if n:
            delta = b.m1 - a.m1
            d2 = delta * delta
            combined.m1 = (a.n * a.m1 + b.n * b.m1) / n
            combined.m2 = a.m2 + b.m2 + d2 * a.n * b.n / n
            combined.m3 = (
                a.m3
                + b.m3
                + delta * d2 * a.n * b.n * (a.n - b.n) / (n * n)
                + 3.0 * delta * (a.n * b.m2 - b.n * a.m2) / n
            )
            combined.m4 = (
                a.m4
                + b.m4
                + d2 * d2 * a.n * b.n * (a.n * a.n - a.n * b.n + b.n * b.n) / (n**3)
                + 6.0 * d2 * (a.n * a.n * b.m2 + b.n * b.n * a.m2) / (n * n)
                + 4.0 * delta * (a.n * b.m3 - b.n * a.m3) / n
            )
        combined._digest = a.digest.merge(b.digest)
        return combined

    def payload(self) -> bytes:
        head = {
            "n": self.n,
            "sum": self.total,
            "sum_squares": self.sum_squares,
            "sum_logs": _finite(self.sum_logs),
            "min": self.minimum,
            "max": self.maximum,
            "moments": [self.m1, self.m2, self.m3, self.m4],
        }
        encoded = orjson.dumps(head)
        return len(encoded).to_bytes(4, "big") + encoded + self.digest.to_bytes()

    @classmethod
    def from_payload(cls, data: bytes) -> OnlineStatistics:
        size = int.from_bytes(data[:4], "big")
        head = orjson.loads(data[4 : 4 + size])
        stats = cls()
        stats.n = int(head["n"])
        stats.total = float(head["sum"])
        stats.sum_squares = float(head["sum_squares"])
        stats.sum_logs = _unfinite(head["sum_logs"])
        stats.minimum = head["min"]
        stats.maximum = head["max"]
        stats.m1, stats.m2, stats.m3, stats.m4 = (float(m) for m in head["moments"])
        stats._digest = TDigest.from_bytes(data[4 + size :])
        return stats

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OnlineStatistics) and self.payload() == other.payload()

    def __repr__(self) -> str:
        return f"OnlineStatistics(count={self.n}, mean={self.mean()!r})"


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def _unfinite(x: float | str) -> float:
    return float(x)


@register
class WindowedStatistics(Sketch):
    """Statistics over the last ``size`` values, computed exactly from them; not mergeable."""

    TAG = "stats.windowed"

    __slots__ = ("size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self.values.append(value)

    def count(self) -> int:
        return len(self.values)

    def sum(self) -> float:
        return math.fsum(self.values) if self.values else 0.0

    def mean(self) -> float:
        return self.sum() / len(self.values) if self.values else math.nan

    def min(self) -> float:
        return min(self.values) if self.values else math.nan

    def max(self) -> float:
        return max(self.values) if self.values else math.nan

    def _m2(self) -> float:
        mean = self.mean()
        return math.fsum((v - mean) ** 2 for v in self.values)

    def variance(self) -> float:
        n = len(self.values)
        if n == 0:
            return math.nan
        return 0.0 if n == 1 else self._m2() / (n - 1)

    def population_variance(self) -> float:
        n = len(self.values)
        return self._m2() / n if n else math.nan

    def sd(self) -> float:
        return math.sqrt(self.variance())

    def geometric_mean(self) -> float:
        n = len(self.values)
        if n == 0:
            return math.nan
        if any(v < 0 for v in self.values):
            return math.nan
        if any(v == 0 for v in self.values):
            return 0.0
        return math.exp(math.fsum(math.log(v) for v in self.values) / n)

    def quadratic_mean(self) -> float:
        n = len(self.values)
        return math.sqrt(math.fsum(v * v for v in self.values) / n) if n else math.nan

    def skewness(self) -> float:
        n = len(self.values)
        if n < 3:
            return math.nan
        variance = self.variance()
        if variance < 1e-19:  # a constant window has no skew (as in commons-math)
            return 0.0
        mean = self.mean()
        std = math.sqrt(variance)
        return n / ((n - 1) * (n - 2)) * math.fsum(((v - mean) / std) ** 3 for v in self.values)

    def kurtosis(self) -> float:
        n = len(self.values)
        if n < 4:
            return math.nan
        variance = self.variance()
        if variance < 1e-19:
            return 0.0
        mean = self.mean()
        accum = math.fsum((v - mean) ** 4 for v in self.values) / variance**2
        coefficient = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3))
        term = 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
        return coefficient * accum - term

    def percentile(self, p: float) -> float:
        # commons-math's default ("legacy") estimate, which Metron's windowed statistics use
        if not 0 < p <= 100:
            raise ValueError(f"the percentile {p!r} is not in (0, 100]")
        ordered = sorted(self.values)
        n = len(ordered)
        if n == 0:
            return math.nan
        if n == 1:
            return ordered[0]
        position = p * (n + 1) / 100
        if position < 1:
            return ordered[0]
        if position >= n:
            return ordered[-1]
        whole = int(math.floor(position))
        fraction = position - whole
        lower, upper = ordered[whole - 1], ordered[whole]
        return lower + fraction * (upper - lower)

    @property
    def sum_logs(self) -> float:
        return math.fsum(math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan) for v in self.values)

    @property
    def sum_squares(self) -> float:
        return math.fsum(v * v for v in self.values)

    def merge(self, other: Any) -> Any:
        raise SketchError("windowed statistics cannot be merged")

    def payload(self) -> bytes:
        return orjson.dumps({"size": self.size, "values": list(self.values)})

    @classmethod
    def from_payload(cls, data: bytes) -> WindowedStatistics:
        head = orjson.loads(data)
        stats = cls(int(head["size"]))
        stats.values.extend(float(v) for v in head["values"])
        return stats

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowedStatistics) and self.size == other.size and self.values == other.values

    def __repr__(self) -> str:
        return f"WindowedStatistics(size={self.size}, count={len(self.values)})"


Statistics = OnlineStatistics | WindowedStatistics


def _new_stats(window: Any = None) -> Statistics:
    if window is not None and is_number(window):
        size = A.to_integer(1, window) or 0
        if size > 0:
            return WindowedStatistics(size)
    return OnlineStatistics()


def _stats(value: Any) -> Statistics | None:
    if value is None:
        return None
    if isinstance(value, (OnlineStatistics, WindowedStatistics)):
        return value
    raise argument_error(1, value, "is not a statistics object (see STATS_INIT)")


@stellar_function(
    "STATS_INIT",
    description="Initializes a statistics object. With a window size n > 0 the last n values are kept and "
    "every statistic is exact over them; without (or with 0) no values are kept and percentiles are "
    "approximate (a t-digest).",
    params=["window_size? - The number of values to keep in a rolling window; 0 or absent for none"],
    returns="A statistics object",
    pure=False,
)
def stats_init(window: Any = None) -> Statistics:
    return _new_stats(window)


@stellar_function(
    "STATS_ADD",
    description="Adds one or more values to a statistics object. Each argument may be a number or a list "
    "of numbers; null values are skipped.",
    params=[
        "stats - The statistics object; if null, a new one is initialized",
        "value+ - Numbers, or lists of numbers, to add",
    ],
    returns="The statistics object",
    pure=False,
)
def stats_add(stats: Any, *values: Any) -> Statistics:
    target = _stats(stats) or OnlineStatistics()
    for index, value in enumerate(values, start=2):
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                if item is not None:
                    target.add(_value(index, item))
        else:
            target.add(_value(index, value))
    return target


@stellar_function(
    "STATS_MERGE",
    description="Merges a list of statistics objects into one (online statistics only).",
    params=["statistics - A list of statistics objects; nulls are skipped"],
    returns="A new statistics object summarising all of them, or null if the list holds none",
)
def stats_merge(items: Any) -> Statistics | None:
    if items is None:
        return None
    result: Statistics | None = None
    for position, item in enumerate(A.sequence(1, items)):
        if item is None:
            continue
        if not isinstance(item, (OnlineStatistics, WindowedStatistics)):
            raise argument_error(1, items, f"holds {item!r} at {position}, which is not a statistics object")
        if isinstance(item, WindowedStatistics):
            raise argument_error(1, items, "holds windowed statistics, which cannot be merged")
        result = item if result is None else result.merge(item)
    return result


def _reader(name: str, what: str, method: str) -> None:
    def read(stats: Any) -> float:
        target = _stats(stats)
        if target is None:
            return math.nan
        result = getattr(target, method)
        value = result() if callable(result) else result
        return float(value)

    read.__name__ = name.lower()
    stellar_function(
        name,
        description=f"Calculates the {what} of the accumulated values (or of the window if a window is used).",
        params=["stats - The statistics object"],
        returns=f"The {what} as a double, or NaN if the statistics object is null",
    )(read)


for _name, _what, _method in (
    ("STATS_COUNT", "count", "count"),
    ("STATS_SUM", "sum", "sum"),
    ("STATS_MEAN", "mean", "mean"),
    ("STATS_GEOMETRIC_MEAN", "geometric mean", "geometric_mean"),
    ("STATS_QUADRATIC_MEAN", "quadratic mean (root mean square)", "quadratic_mean"),
    ("STATS_MIN", "minimum", "min"),
    ("STATS_MAX", "maximum", "max"),
    ("STATS_VARIANCE", "(sample) variance", "variance"),
    ("STATS_POPULATION_VARIANCE", "population variance", "population_variance"),
    ("STATS_SD", "(sample) standard deviation", "sd"),
    ("STATS_SKEWNESS", "(unbiased) skewness", "skewness"),
    ("STATS_KURTOSIS", "(unbiased excess) kurtosis", "kurtosis"),
    ("STATS_SUM_LOGS", "sum of the natural logarithms", "sum_logs"),
    ("STATS_SUM_SQUARES", "sum of the squares", "sum_squares"),
):
    _reader(_name, _what, _method)


def _percentile_arg(index: int, value: Any) -> float:
    p = A.to_float(index, value)
    if p is None or math.isnan(p) or not 0 <= p <= 100:
        raise argument_error(index, value, "is not a percentile between 0 and 100")
    return p


@stellar_function(
    "STATS_PERCENTILE",
    description="Computes the p'th percentile of the accumulated values (or of the window if a window is used); "
    "approximate (t-digest) without a window.",
    params=["stats - The statistics object", "p - The percentile, a number between 0 and 100 (90 for the 90th)"],
    returns="The p'th percentile, or NaN if the statistics object or p is null",
)
def stats_percentile(stats: Any, p: Any) -> float:
    target = _stats(stats)
    if target is None or p is None:
        return math.nan
    percent = _percentile_arg(2, p)
    if isinstance(target, WindowedStatistics) and percent == 0:
        raise argument_error(2, p, "must be above 0 for windowed statistics")
    return target.percentile(percent)


_SPLITS = {
    "QUARTILE": [25.0, 50.0, 75.0],
    "QUINTILE": [20.0, 40.0, 60.0, 80.0],
    "DECILE": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
}


def _bin(value: float, bounds: Iterable[float], index: int, raw: Any) -> int:
    last = -math.inf
    count = 0
    for bound in bounds:
        if bound < last:
            raise argument_error(index, raw, "must hold non-decreasing bounds")
        if value <= bound:
            return count
        last = bound
        count += 1
    return count


@stellar_function(
    "BIN",
    description="Computes the bin a value falls in given sorted bounds: bin N holds values v with "
    "bound(N-1) < v <= bound(N); values above the last bound fall in bin M (the number of bounds).",
    params=["value - The value to bin", "bounds - A list of value bounds (excluding min and max) in sorted order"],
    returns="The bin number, or -1 if the value or bounds are null or the bounds empty",
)
def bin_(value: Any, bounds: Any) -> int:
    number = A.to_float(1, value)
    if number is None or bounds is None:
        return -1
    limits = [A.to_float(2, b) for b in A.sequence(2, bounds)]
    if not limits or any(b is None for b in limits):
        return -1 if not limits else _fail_null_bound(bounds)
    return _bin(number, [b for b in limits if b is not None], 2, bounds)


def _fail_null_bound(bounds: Any) -> int:
    raise argument_error(2, bounds, "holds a null bound")


@stellar_function(
    "STATS_BIN",
    description="Computes the bin a value falls in based on the statistical distribution: the bounds are "
    "percentiles of the statistics object.",
    params=[
        "stats - The statistics object",
        "value - The value to bin",
        "bounds? - A list of percentile bounds (excluding min and max), or QUARTILE (the default), QUINTILE or DECILE",
    ],
    returns="The bin N such that percentile(bound(N-1)) < value <= percentile(bound(N)); -1 for a null "
    "statistics object or value, or empty bounds",
)
def stats_bin(stats: Any, value: Any, bounds: Any = None) -> int:
    if bounds is None:
        percents = _SPLITS["QUARTILE"]
    elif isinstance(bounds, str):
        if bounds.upper() not in _SPLITS:
            raise argument_error(3, bounds, f"is not a known split ({', '.join(_SPLITS)}) nor a list of percentiles")
        percents = _SPLITS[bounds.upper()]
    else:
        percents = [_percentile_arg(3, b) for b in A.sequence(3, bounds)]
    target = _stats(stats)
    number = A.to_float(2, value)
    if target is None or number is None or not percents:
        return -1
    return _bin(number, (target.percentile(p) for p in percents), 3, bounds)


# ---- median absolute deviation ---------------------------------------------------------------


@register
class MadState(Sketch):
    """The state for the median absolute deviation: medians and deviations of this tick and of the window."""

    TAG = "outlier.mad"

    __slots__ = ("tick_median", "tick_mad", "window_median", "window_mad")

    def __init__(
        self,
        tick_median: OnlineStatistics | None = None,
        tick_mad: OnlineStatistics | None = None,
        window_median: OnlineStatistics | None = None,
        window_mad: OnlineStatistics | None = None,
    ) -> None:
        self.tick_median = tick_median or OnlineStatistics()
        self.tick_mad = tick_mad or OnlineStatistics()
        self.window_median = window_median or OnlineStatistics()
        self.window_mad = window_mad or OnlineStatistics()

    def add(self, value: float) -> None:
        if math.isnan(value):
            return
        self.tick_median.add(value)
        deviation = abs(value - self.window_median.percentile(50))
        self.window_median.add(value)
        if not math.isnan(deviation):
            self.window_mad.add(deviation)
            self.tick_mad.add(deviation)

    def payload(self) -> bytes:
        parts = [s.payload() for s in (self.tick_median, self.tick_mad, self.window_median, self.window_mad)]
        return b"".join(len(p).to_bytes(4, "big") + p for p in parts)

    @classmethod
    def from_payload(cls, data: bytes) -> MadState:
        parts = []
        offset = 0
        for _ in range(4):
            size = int.from_bytes(data[offset : offset + 4], "big")
            parts.append(OnlineStatistics.from_payload(data[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        return cls(*parts)

    def __repr__(self) -> str:
        return f"MadState(window={self.window_median.n})"


@stellar_function(
    "OUTLIER_MAD_STATE_MERGE",
    description="Merges median absolute deviation states (generally states across time) into the state "
    "for a new tick: the window covers all of them, the tick starts empty.",
    params=["states - A list of MAD states to merge", "currentState? - The current state"],
    returns="The merged MAD state",
    pure=False,
)
def outlier_mad_state_merge(states: Any, current: Any = None) -> MadState:
    previous = [] if states is None else list(A.sequence(1, states))
    if current is not None and not isinstance(current, MadState):
        raise argument_error(2, current, "is not a MAD state")
    window_median = current.tick_median if current is not None else OnlineStatistics()
    window_mad = current.tick_mad if current is not None else OnlineStatistics()
    for position, state in enumerate(previous):
        if state is None:
            continue
        if not isinstance(state, MadState):
            raise argument_error(1, states, f"holds {state!r} at {position}, which is not a MAD state")
        window_median = window_median.merge(state.tick_median)
        window_mad = window_mad.merge(state.tick_mad)
    return MadState(window_median=window_median, window_mad=window_mad)


@stellar_function(
    "OUTLIER_MAD_ADD",
    description="Adds a value (or a list of values) to a median absolute deviation state.",
    params=["state - The MAD state", "value - The number, or list of numbers, to add"],
    returns="The MAD state (null for a null state)",
    pure=False,
)
def outlier_mad_add(state: Any, value: Any) -> MadState | None:
    if state is not None and not isinstance(state, MadState):
        raise argument_error(1, state, "is not a MAD state (see OUTLIER_MAD_STATE_MERGE)")
    values: list[float] = []
    if value is not None:
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not is_number(item):
                raise argument_error(2, value, "is not a number or a list of numbers")
            values.append(float(item))
    if state is not None:
        for number in values:
            state.add(number)
    return state


@stellar_function(
    "OUTLIER_MAD_SCORE",
    description="The modified z-score normalised by the median absolute deviation: scale * |x - median(X)| / MAD.",
    params=[
        "state - The MAD state",
        "value - The value to score",
        "scale? - The scale of the modified z-score; default 0.6745",
    ],
    returns="The modified z-score (NaN for a null state or value)",
)
def outlier_mad_score(state: Any, value: Any, scale: Any = None) -> float:
    factor = 0.6745 if scale is None else float(A.number(3, scale))
    if state is None or value is None:
        return math.nan
    if not isinstance(state, MadState):
        raise argument_error(1, state, "is not a MAD state")
    x = float(A.number(2, value))
    deviation = abs(x - state.window_median.percentile(50))
    mad = state.window_mad.percentile(50)
    if mad == 0:
        return math.inf if factor * deviation > 0 else math.nan
    return factor * deviation / mad


@stellar_function(
    "IT_ENTROPY",
    description="Computes the base-2 Shannon entropy of a multiset (a map of objects to counts).",
    params=["input - A multiset: a map of objects to their counts"],
    returns="The entropy in bits (0.0 for an empty multiset), or null for null input",
)
def it_entropy(counts: Any) -> float | None:
    if counts is None:
        return None
    if not isinstance(counts, Mapping):
        raise argument_error(1, counts, "is not a map of counts")
    values = []
    for key, count in counts.items():
        if not is_number(count) or count < 0:
            raise argument_error(1, counts, f"has the count {count!r} for {key!r}, which is not a non-negative number")
        values.append(count)
    total = sum(values)
    if total == 0:
        return 0.0
    entropy = 0.0
    for count in values:
        if count:
            p = count / total
            entropy -= p * math.log2(p)
    return entropy
