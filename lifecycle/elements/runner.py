"""Scoring a grid frame with a payload directory, in process, through onnxruntime.

This is what a caller of a deployed element does, without the HTTP hop: read ``element.json``
for the tags, window and horizon, build each grid point's arguments the way the signature
describes them (a forecaster's windows never straddle a gap or a missing value), run
``model.onnx`` in batches, then despike and smooth the point artifact over consecutive grid points
(:mod:`.artifact`) and compare it with the threshold. Historical evaluation and the benchmark use
it, so what they measure is the exported model, not the training code's copy of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from lifecycle.elements import indicator
from lifecycle.elements.artifact import smooth_runs
from lifecycle.elements.trained import Scores

BATCH_ROWS = 8192


@dataclass(frozen=True)
class Detection:
    """Per scored grid point: the point artifact, its smoothed value and whether it is anomalous."""

    index: pd.DatetimeIndex
    artifact: np.ndarray
    smoothed: np.ndarray
    anomalous: np.ndarray
    threshold: float

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"artifact": self.artifact, "smoothed": self.smoothed, "anomalous": self.anomalous},
                            index=self.index)


class PayloadScorer:
    """A trained element's payload (model.onnx + element.json) scoring grid frames."""

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.directory = Path(directory)
        self.metadata: dict[str, Any] = json.loads((self.directory / "element.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.directory / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.kind: str = self.metadata["kind"]
        self.inputs: list[str] = self.metadata["inputs"]
        self.outputs: list[str] = self.metadata["outputs"]
        self.window: int = int(self.metadata["window"])
        self.horizon: int = int(self.metadata.get("horizon") or 0)
        self.threshold: float = float(self.metadata["threshold"])
        self.halflife: float = float(self.metadata.get("smoothing_halflife") or 0.0)
        self.despike: int = int(self.metadata.get("despike") or 1)

    def score(self, frame: pd.DataFrame) -> Scores:
        x = frame.loc[:, self.inputs].to_numpy(dtype=np.float64)
        breaks = indicator.contiguous(frame)
        if self.kind == "forecaster":
            y = frame.loc[:, self.outputs].to_numpy(dtype=np.float64)
            complete = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
            positions = indicator.window_ends(complete, self.window + self.horizon, breaks)
        else:
            positions = np.flatnonzero(np.isfinite(x).all(axis=1))
        artifacts, predictions, contributions = [], [], []
        for lo in range(0, len(positions), BATCH_ROWS):
            ends = positions[lo:lo + BATCH_ROWS]
            feed: dict[str, np.ndarray] = {}
            if self.kind == "forecaster":
                windows = indicator.windows(x, ends, self.window, self.horizon).astype(np.float32)
                for i in range(len(self.inputs)):
                    feed[f"x{i}"] = np.ascontiguousarray(windows[:, :, i])
                for j in range(len(self.outputs)):
                    feed[f"actual{j}"] = y[ends, j].astype(np.float32)
                out = dict(zip([o.name for o in self.session.get_outputs()], self.session.run(None, feed)))
                predictions.append(out["predictions"].astype(np.float64))
            else:
                for i in range(len(self.inputs)):
                    feed[f"x{i}"] = x[ends, i].astype(np.float32)
                out = dict(zip([o.name for o in self.session.get_outputs()], self.session.run(None, feed)))
            artifacts.append(out["artifact"].astype(np.float64))
            contributions.append(out["contributions"].astype(np.float64))
        width = len(self.outputs) if self.kind == "forecaster" else len(self.inputs)
        return Scores(
            positions,
            np.concatenate(artifacts) if artifacts else np.empty(0),
            (np.concatenate(predictions) if predictions else np.empty((0, width))) if self.kind == "forecaster" else None,
            np.concatenate(contributions) if contributions else np.empty((0, width)))

    def detect(self, frame: pd.DataFrame, threshold: float | None = None) -> Detection:
        """Smoothed artifacts and anomalies over ``frame`` (the stored threshold unless one is given)."""
        scores = self.score(frame)
        smoothed = smooth_runs(scores.artifact, scores.positions, self.halflife, self.despike)
        limit = self.threshold if threshold is None else threshold
        return Detection(frame.index[scores.positions], scores.artifact, smoothed, smoothed > limit, limit)
