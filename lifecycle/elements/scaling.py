"""Per-tag input scaling learnt from the training points only.

``robust`` (the default) centres each tag on its median and divides by its interquartile range, so
a few outliers or a short fault left in the training data do not move the scale; a tag whose IQR
is zero (a mostly constant or two-valued signal) falls back to its standard deviation × 1.349 (the
IQR of a normal distribution with that deviation), and a tag without any variance is refused.
Written by hand rather than with scikit-learn's ``RobustScaler`` because that one silently scales
a zero-IQR tag by 1, and the statistics must also go into the exported ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lifecycle.elements.errors import TrainingRefused

IQR_OF_UNIT_NORMAL = 1.3489795


@dataclass(frozen=True)
class Scaler:
    """``(x - center) / scale`` per column."""

    center: np.ndarray
    scale: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center

    def as_dict(self, tags: Sequence[str]) -> dict[str, dict[str, float]]:
        return {tag: {"center": float(c), "scale": float(s)} for tag, c, s in zip(tags, self.center, self.scale)}


def fit_scaler(values: np.ndarray, tags: Sequence[str], method: str = "robust", field: str = "inputs") -> Scaler:
    """Fit on ``values`` (rows × tags, no NaN); raises TrainingRefused for a constant tag."""
    if method == "robust":
        q25, center, q75 = np.percentile(values, [25.0, 50.0, 75.0], axis=0)
        scale = q75 - q25
        std = values.std(axis=0) * IQR_OF_UNIT_NORMAL
        scale = np.where(scale > 0, scale, std)
    elif method == "standard":
        center = values.mean(axis=0)
        scale = values.std(axis=0)
    else:
        raise ValueError(f"unknown scaling {method!r}")
    for i, tag in enumerate(tags):
        magnitude = max(abs(float(center[i])), 1.0)
        if not scale[i] > 1e-12 * magnitude:
            raise TrainingRefused(
                "constant_tag", f"tag {tag!r} is constant on the training points ({float(center[i]):g}): "
                "it carries no information to learn from — remove it from the element or widen the training markups",
                field=field)
    return Scaler(np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64))


def scaler_from_dict(tags: Sequence[str], stats: dict[str, Any]) -> Scaler:
    return Scaler(np.array([stats[t]["center"] for t in tags], dtype=np.float64),
                  np.array([stats[t]["scale"] for t in tags], dtype=np.float64))
