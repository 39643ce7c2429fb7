"""Detection quality against ground truth: point-wise precision, recall and F1 of anomalous grid
points, and the detection delay of each true event (from its start to the first anomalous point
inside it). Used by the benchmark on the pump example; written for any labelled data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int
    events: list[dict[str, Any]]  # per true event: kind, start, detected, delay_s

    @property
    def detected_events(self) -> int:
        return sum(1 for e in self.events if e["detected"])

    @property
    def mean_delay_s(self) -> float | None:
        delays = [e["delay_s"] for e in self.events if e["detected"]]
        return float(np.mean(delays)) if delays else None

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp": self.true_positives,
                "fp": self.false_positives, "fn": self.false_negatives, "events": self.events,
                "detected_events": self.detected_events, "mean_delay_s": self.mean_delay_s}


def point_quality(index: pd.DatetimeIndex, predicted: np.ndarray, truth: np.ndarray,
                  events: Sequence[tuple[str, pd.Timestamp, pd.Timestamp]], evaluated: np.ndarray | None = None) -> Quality:
    """``predicted`` and ``truth`` are booleans over ``index``; only ``evaluated`` points count."""
    keep = np.ones(len(index), dtype=bool) if evaluated is None else np.asarray(evaluated, dtype=bool)
    p, t = np.asarray(predicted, dtype=bool) & keep, np.asarray(truth, dtype=bool) & keep
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = []
    for kind, start, end in events:
        inside = np.asarray((index >= start) & (index < end)) & p
        first = np.flatnonzero(inside)
        delay = float((index[first[0]] - start).total_seconds()) if len(first) else None
        out.append({"kind": kind, "from": start.isoformat(), "detected": delay is not None, "delay_s": delay})
    return Quality(precision, recall, f1, tp, fp, fn, out)
