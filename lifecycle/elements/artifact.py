"""From a model's point artifact to the value compared with the threshold: exponential smoothing.

The exported model computes the **point artifact** of one grid point (a forecaster's prediction
error, an envelope's distance). Noise makes single points jump over any useful threshold, so the
value compared with the threshold is the point artifact smoothed exponentially over consecutive
grid points: ``s[t] = a·x[t] + (1 - a)·s[t-1]`` with ``a = 1 - 2 ** (-1 / halflife)`` (the weight of a
point halves every ``halflife`` grid points), starting from the first point's value. A gap in the
data restarts the smoothing. Smoothing needs the previous point, so it happens where points arrive
in order (training, historical and streaming inference) and not in the served model, which scores
rows independently (its batches may mix callers); :func:`smooth` takes and returns the state so a
stream can carry it from call to call.
"""

from __future__ import annotations

import math

import numpy as np


def alpha(halflife: float) -> float:
    """The smoothing weight of the newest point; 1 (no smoothing) for a half-life of 0."""
    return 1.0 if halflife <= 0 else 1.0 - 2.0 ** (-1.0 / halflife)


def smooth(values: np.ndarray, halflife: float, state: float | None = None,
           restarts: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """Smoothed ``values`` and the state to pass on; ``restarts[i]`` True starts afresh at point i.
    A NaN point leaves the state as it is (and is NaN in the output)."""
    a = alpha(halflife)
    out = np.empty(len(values), dtype=np.float64)
    current = state
    for i, value in enumerate(np.asarray(values, dtype=np.float64)):  # a recurrence: no vectorised form
        if restarts is not None and restarts[i]:
            current = None
        if not math.isfinite(value):
            out[i] = math.nan
            continue
        current = value if current is None else a * value + (1.0 - a) * current
        out[i] = current
    return out, current


def smooth_runs(values: np.ndarray, ends: np.ndarray, halflife: float) -> np.ndarray:
    """Smooth the artifacts of samples ending at grid positions ``ends``, restarting where the
    positions are not consecutive."""
    restarts = np.ones(len(ends), dtype=bool)
    if len(ends) > 1:
        restarts[1:] = np.diff(ends) != 1
    return smooth(values, halflife, restarts=restarts)[0]
