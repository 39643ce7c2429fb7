"""The ``forecaster`` element: predicts its output tags from a window of its input tags.

``algorithm = "mlp"`` is scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` (Adam),
trained one epoch at a time with ``partial_fit`` so that the epoch loop (:mod:`.loop`) can report
losses, stop early on the validation loss and keep the best epoch's weights; ``"linear"`` is a
ridge regression, solved exactly in one epoch. Inputs and outputs are scaled per tag with
statistics of the training points only (:mod:`.scaling`); the losses are the mean squared error of
the scaled outputs (for the MLP, the training loss is the epoch's mean batch loss, L2 penalty
included). The point artifact of a grid point is ``mean over output tags of
|scaled error| ** power`` (``power`` 2: the MSE of that point).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor

from lifecycle.elements import indicator
from lifecycle.elements.artifact import smooth_runs
from lifecycle.elements.errors import TrainingRefused
from lifecycle.elements.loop import Callbacks, TrainingSettings, run
from lifecycle.elements.params import ForecasterParams, parse_params
from lifecycle.elements.scaling import Scaler, fit_scaler
from lifecycle.elements.threshold import derive_threshold
from lifecycle.elements.trained import Scores, TrainedElement, artifact_summary

MIN_TRAIN_SAMPLES = 10
MAX_WINDOW_VALUES = 250_000_000  # windows × features held in memory at once (2 GB of float64)


@dataclass
class ForecasterModel:
    """A fitted forecaster: scaling, estimator, and how its artifact is computed."""

    inputs: list[str]
    outputs: list[str]
    window: int
    horizon: int
    x_scaler: Scaler
    y_scaler: Scaler
    estimator: Any  # MLPRegressor or Ridge, on scaled, flattened windows
    power: float

    def features(self, windows: np.ndarray) -> np.ndarray:
        """Raw windows (samples × window × inputs) → the estimator's scaled, flattened features."""
        return self.x_scaler.transform(windows).reshape(len(windows), -1)

    def predict_scaled(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.features(windows)), dtype=np.float64).reshape(
            len(windows), len(self.outputs))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Predicted outputs (samples × outputs, in their units) from raw windows."""
        return self.y_scaler.inverse(self.predict_scaled(windows))

    def evaluate(self, windows: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predictions, contributions, point artifact) for raw windows and the actual outputs."""
        predictions = self.predict(windows)
        errors = np.abs((actual - predictions) / self.y_scaler.scale)
        contributions = errors ** self.power / len(self.outputs)
        return predictions, contributions, contributions.sum(axis=1)

    def score(self, frame: pd.DataFrame) -> Scores:
        """Every grid point of ``frame`` whose window and actual outputs are complete and gap-free."""
        x = frame.loc[:, self.inputs].to_numpy(dtype=np.float64)
        y = frame.loc[:, self.outputs].to_numpy(dtype=np.float64)
        complete = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        ends = indicator.window_ends(complete, self.window + self.horizon, indicator.contiguous(frame))
        if len(ends) == 0:
            return Scores(ends, np.empty(0), np.empty((0, len(self.outputs))), np.empty((0, len(self.outputs))))
        predictions, contributions, artifact = self.evaluate(indicator.windows(x, ends, self.window, self.horizon), y[ends])
        return Scores(ends, artifact, predictions, contributions)


class _MLPTrainee:
    def __init__(self, params: ForecasterParams, settings: TrainingSettings, x_train: np.ndarray, y_train: np.ndarray,
                 x_val: np.ndarray, y_val: np.ndarray) -> None:
        self.estimator = MLPRegressor(
            hidden_layer_sizes=tuple(params.hidden_layers), activation=params.activation, solver="adam",
            alpha=params.l2, batch_size=min(settings.batch_size, len(x_train)), learning_rate_init=params.learning_rate,
            random_state=params.seed, shuffle=True)
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, _target(y_train), x_val, _target(y_val)

    def step(self) -> tuple[float, float | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimator.partial_fit(self.x_train, self.y_train)
        # the training loss is the epoch's mean batch loss, as Keras reports it (scikit-learn's loss_ is half
        # the squared error plus the L2 penalty), which saves a pass over the training windows per epoch
        return 2.0 * float(self.estimator.loss_), _mse(self.estimator, self.x_val, self.y_val)

    def snapshot(self) -> Any:
        return copy.deepcopy(self.estimator)


class _RidgeTrainee:
    def __init__(self, params: ForecasterParams, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                 y_val: np.ndarray) -> None:
        self.estimator = Ridge(alpha=params.l2)
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val

    def step(self) -> tuple[float, float | None]:
        self.estimator.fit(self.x_train, self.y_train)
        return _mse(self.estimator, self.x_train, self.y_train), _mse(self.estimator, self.x_val, self.y_val)

    def snapshot(self) -> Any:
        return self.estimator


def _target(y: np.ndarray) -> np.ndarray:
    return y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y


def _mse(estimator: Any, x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) == 0:
        return None
    predicted = np.asarray(estimator.predict(x), dtype=np.float64).reshape(len(x), -1)
    return float(np.mean((predicted - y.reshape(len(x), -1)) ** 2))


def train_forecaster(frame: pd.DataFrame, mask: pd.Series | np.ndarray | None, inputs: list[str], outputs: list[str],
                     window: int, params: dict[str, Any] | ForecasterParams, settings: TrainingSettings | None = None,
                     callbacks: Callbacks | None = None, threshold: float | None = None) -> TrainedElement:
    """Train a forecaster on the grid points of ``frame`` that ``mask`` (the learning indicator) selects."""
    settings = settings or TrainingSettings()
    callbacks = callbacks or Callbacks()
    p = params if isinstance(params, ForecasterParams) else parse_params("forecaster", params)
    started = callbacks.clock.monotonic()
    indicator.check_tags(frame, inputs, "inputs")
    indicator.check_tags(frame, outputs, "outputs")
    selected = indicator.as_mask(frame, mask)
    parts = indicator.split(selected, settings.validation_split)
    x_raw = indicator.check_values(frame, inputs, selected)
    y_raw = indicator.check_values(frame, outputs, selected)
    train_ends, val_ends = indicator.samples(frame, parts, window + p.horizon, minimum=MIN_TRAIN_SAMPLES)

    values = (len(train_ends) + len(val_ends)) * window * len(inputs)
    if values > MAX_WINDOW_VALUES:
        raise TrainingRefused(
            "too_large", f"{len(train_ends) + len(val_ends)} windows of {window} × {len(inputs)} values are "
            f"{values:,} numbers, more than the {MAX_WINDOW_VALUES:,} training holds in memory: narrow the training "
            "interval or markups, or use a coarser grid", field="training")
    used = np.zeros(len(frame), dtype=bool)  # the training windows' points: what scaling may learn from
    for offset in range(window + p.horizon):
        used[train_ends - offset] = True
    x_scaler = fit_scaler(x_raw[used], inputs, p.scaling)
    y_scaler = fit_scaler(y_raw[train_ends], outputs, p.scaling, field="outputs")
    x_scaled, y_scaled = x_scaler.transform(x_raw), y_scaler.transform(y_raw)

    def features(ends: np.ndarray) -> np.ndarray:
        return indicator.windows(x_scaled, ends, window, p.horizon).reshape(len(ends), -1)

    x_train, y_train, x_val, y_val = features(train_ends), y_scaled[train_ends], features(val_ends), y_scaled[val_ends]
    if p.algorithm == "mlp":
        result = run(_MLPTrainee(p, settings, x_train, y_train, x_val, y_val), settings, callbacks)
    else:
        result = run(_RidgeTrainee(p, x_train, y_train, x_val, y_val), settings, callbacks, max_epochs=1)
    model = ForecasterModel(inputs=list(inputs), outputs=list(outputs), window=window, horizon=p.horizon,
                            x_scaler=x_scaler, y_scaler=y_scaler, estimator=result.best, power=p.power)

    reference = val_ends if len(val_ends) else train_ends
    _, _, artifact = model.evaluate(indicator.windows(x_raw, reference, window, p.horizon), y_raw[reference])
    smoothed = smooth_runs(artifact, reference, p.smoothing_halflife, p.despike)
    derived = threshold is None
    value = derive_threshold(smoothed, p.threshold_quantile, p.threshold_margin) if derived else float(threshold)
    return TrainedElement(
        kind="forecaster", inputs=list(inputs), outputs=list(outputs), window=window, params=p.model_dump(mode="json"),
        model=model, threshold=value, threshold_derived=derived, history=result.history, best_epoch=result.best_epoch,
        stopped=result.stopped, grid_points=parts.points, train_samples=len(train_ends), validation_samples=len(val_ends),
        validation_artifact=artifact_summary(smoothed), duration_s=callbacks.clock.monotonic() - started)
