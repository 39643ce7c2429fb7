"""From a model's point artifact to the value compared with the threshold: despiking, then
exponential smoothing.

The exported model computes the **point artifact** of one grid point (a forecaster's prediction
error, an envelope's distance). Two steps turn it into the value compared with the threshold:

1. **despiking** — the median of the last ``despike`` point artifacts (5 by default; 1 turns it
   off). A sensor glitch of one or two grid points — common in plant data — has a huge squared
   error or distance; the median removes it, while a fault lasting longer passes after
   ``despike // 2 + 1`` points. It is causal, so streaming can apply it as points arrive;
2. **exponential smoothing** — ``s[t] = a·m[t] + (1 - a)·s[t-1]`` with ``a = 1 - 2 ** (-1 / halflife)``
   (the weight of a point halves every ``halflife`` grid points), starting from the first value.

A gap in the data restarts both. They need the previous points, so they happen where points
arrive in order (training, historical and streaming inference) and not in the served model,
which scores rows independently (its batches may mix callers); :func:`smooth` takes and returns
a :class:`SmoothingState` so a stream can carry it from call to call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SmoothingState:
    """What smoothing remembers between calls: the last ``despike - 1`` point artifacts and the
    smoothed value."""

    recent: tuple[float, ...] = ()
    value: float | None = None


def alpha(halflife: float) -> float:
    """The smoothing weight of the newest point; 1 (no smoothing) for a half-life of 0."""
    return 1.0 if halflife <= 0 else 1.0 - 2.0 ** (-1.0 / halflife)


def _segment(values: np.ndarray, a: float, despike: int, state: SmoothingState) -> tuple[np.ndarray, SmoothingState]:
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    x = np.concatenate([np.asarray(state.recent, dtype=np.float64), values[finite]])
    if len(x) == 0:
        return out, state
    if despike > 1:
        medians = pd.Series(x).rolling(despike, min_periods=1).median().to_numpy()[len(state.recent):]
    else:
        medians = x[len(state.recent):]
    smoothed = np.empty(len(medians))
    current = state.value
    for i, m in enumerate(medians):  # a recurrence: no vectorised form
        current = m if current is None else a * m + (1.0 - a) * current
        smoothed[i] = current
    out[finite] = smoothed
    recent = tuple(float(v) for v in x[len(x) - (despike - 1):]) if despike > 1 else ()
    return out, SmoothingState(recent, current)


def smooth(values: np.ndarray, halflife: float, despike: int = 1, state: SmoothingState | None = None,
           restarts: np.ndarray | None = None) -> tuple[np.ndarray, SmoothingState]:
    """Despiked and smoothed ``values`` and the state to pass on; ``restarts[i]`` True starts afresh
    at point i. A NaN point leaves the state as it is (and is NaN in the output)."""
    values = np.asarray(values, dtype=np.float64)
    a = alpha(halflife)
    despike = max(int(despike), 1)
    current = state or SmoothingState()
    starts = [0] + ([] if restarts is None else [int(i) for i in np.flatnonzero(restarts) if i > 0]) + [len(values)]
    if restarts is not None and len(values) and restarts[0]:
        current = SmoothingState()
    out = np.empty(len(values))
    for k, (lo, hi) in enumerate(zip(starts[:-1], starts[1:])):
        if k > 0:
            current = SmoothingState()
        out[lo:hi], current = _segment(values[lo:hi], a, despike, current)
    return out, current


def smooth_runs(values: np.ndarray, ends: np.ndarray, halflife: float, despike: int = 1) -> np.ndarray:
    """Smooth the artifacts of samples at grid positions ``ends``, restarting where the positions
    are not consecutive."""
    restarts = np.ones(len(ends), dtype=bool)
    if len(ends) > 1:
        restarts[1:] = np.diff(ends) != 1
    return smooth(values, halflife, despike, restarts=restarts)[0]
