"""What training an element produces: the fitted model with its scaling, the loss history, the
grid points used and the threshold — independent of the element kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lifecycle.elements.loop import EpochReport


class ElementModel(Protocol):
    """A fitted element: scores a grid frame point by point."""

    inputs: list[str]

    def score(self, frame: pd.DataFrame) -> "Scores": ...


@dataclass(frozen=True)
class Scores:
    """Point artifacts of the grid points ``positions`` of a frame (and predictions, for forecasters)."""

    positions: np.ndarray  # int positions in the frame
    artifact: np.ndarray  # the point artifact (before smoothing)
    predictions: np.ndarray | None = None  # samples × output tags, in the outputs' units
    contributions: np.ndarray | None = None  # samples × tags: how much of the artifact each tag explains


@dataclass
class TrainedElement:
    """A trained element and how it trained."""

    kind: str
    inputs: list[str]
    outputs: list[str]
    window: int
    params: dict[str, Any]
    model: Any
    threshold: float
    threshold_derived: bool
    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 1
    stopped: str = "converged"
    grid_points: int = 0  # points of the learning indicator
    train_samples: int = 0
    validation_samples: int = 0
    validation_artifact: dict[str, float] = field(default_factory=dict)  # quantiles of the smoothed artifact
    duration_s: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.history)

    def summary(self) -> dict[str, Any]:
        """The JSON-able record of the training (stored with the element and in the job's result)."""
        best = self.history[self.best_epoch - 1] if self.history else None
        return {
            "kind": self.kind,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch if best else None,
            "stopped": self.stopped,
            "best_train_loss": best.train_loss if best else None,
            "best_validation_loss": best.validation_loss if best else None,
            "grid_points": self.grid_points,
            "train_samples": self.train_samples,
            "validation_samples": self.validation_samples,
            "threshold": self.threshold,
            "threshold_derived": self.threshold_derived,
            "validation_artifact": self.validation_artifact,
            "duration_s": round(self.duration_s, 3),
            "losses": [report.as_dict() for report in self.history],
        }


def artifact_summary(smoothed: np.ndarray) -> dict[str, float]:
    finite = smoothed[np.isfinite(smoothed)]
    if len(finite) == 0:
        return {}
    return {"median": float(np.median(finite)), "q90": float(np.quantile(finite, 0.9)),
            "q99": float(np.quantile(finite, 0.99)), "max": float(finite.max())}
