"""The threshold rule: what an element's threshold is when its detection settings do not set one.

**Rule:** ``threshold = margin × quantile_q(smoothed artifact on the validation points)``, with
``q = params.threshold_quantile`` (0.99) and ``margin = params.threshold_margin`` (1.5). Without a
validation part (``validation_split`` 0) the training points are used.

Why this rule: the artifact of normal operation is non-negative and right-skewed (squared errors,
squared distances), so a mean + k·σ rule is pulled up or down by its tail, while a high quantile
adapts to any shape. The 0.99 quantile ignores up to 1 % of odd validation points (a few unmarked
outliers do not raise it), and the margin covers what the validation stretch cannot show: normal
operation later on is a little different (seasons, wear, set-points), and an estimate of a
quantile from a finite stretch is itself uncertain. The validation part is the latest stretch of
the learning indicator, which the model did not fit on, so its artifacts resemble what inference
will see; training-set artifacts would give a threshold that is too low for an overfitted model.
"""

from __future__ import annotations

import numpy as np

MIN_THRESHOLD = 1e-9  # a perfect fit (artifact 0 everywhere) must not flag every point above 0


def derive_threshold(smoothed: np.ndarray, quantile: float = 0.99, margin: float = 1.5) -> float:
    """The threshold from the smoothed validation artifacts (finite values only)."""
    finite = np.asarray(smoothed, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        raise ValueError("no finite artifact to derive a threshold from")
    return max(float(margin * np.quantile(finite, quantile)), MIN_THRESHOLD)
