"""Point-wise detection quality and detection delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifecycle.elements.quality import point_quality


def test_precision_recall_f1_and_delays() -> None:
    index = pd.date_range("2026-01-01", periods=10, freq="60s", tz="UTC")
    truth = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    predicted = np.array([1, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    events = [("wear", index[2], index[6]), ("drift", index[8], index[9] + pd.Timedelta(seconds=60))]
    q = point_quality(index, predicted, truth, events)
    assert (q.true_positives, q.false_positives, q.false_negatives) == (3, 1, 3)
    assert q.precision == pytest.approx(0.75) and q.recall == pytest.approx(0.5)
    assert q.f1 == pytest.approx(0.6)
    assert q.events[0]["delay_s"] == 60.0 and q.events[1] == {**q.events[1], "detected": False, "delay_s": None}
    assert q.detected_events == 1 and q.mean_delay_s == 60.0


def test_only_evaluated_points_count() -> None:
    index = pd.date_range("2026-01-01", periods=4, freq="60s", tz="UTC")
    q = point_quality(index, np.array([1, 1, 0, 0], dtype=bool), np.array([0, 1, 1, 0], dtype=bool), [],
                      evaluated=np.array([0, 1, 1, 1], dtype=bool))
    assert (q.true_positives, q.false_positives, q.false_negatives) == (1, 0, 1)
