"""The ``envelope`` element: a multivariate envelope of normal operation over its input tags.

Both methods reduce to one quadratic form on the scaled, centred point ``z = (x - center)/scale - μ``:
``artifact = zᵀ A z``. Each tag's **contribution** is how much the artifact would drop if that tag
alone took its most likely value given the others: ``(A z)_j² / A_jj``. Unlike the split
``z_j (A z)_j`` it does not blame the tags that agree with each other when one tag breaks their
correlation, so it is what incidents report as the top deviating tags (as shares of their sum).

* ``elliptic``: ``μ`` and the covariance ``Σ`` are the minimum covariance determinant estimate
  (scikit-learn's :class:`~sklearn.covariance.MinCovDet`, the estimator behind ``EllipticEnvelope``),
  robust to outliers left in the training data; ``A = Σ⁻¹``, so the artifact is the squared
  Mahalanobis distance (χ² with one degree of freedom per tag for Gaussian data).
* ``pca``: :class:`~sklearn.decomposition.PCA` keeps ``k`` components ``W`` with variances ``λ``;
  Hotelling's ``T² = zᵀ W diag(1/λ) Wᵀ z`` measures the distance inside the retained subspace and
  ``Q = |z - W Wᵀ z|²`` the residual outside it; the artifact ``T²/k + Q/mean(Q over training)`` puts
  both on the scale of 1 for a typical training point (the combined index), so
  ``A = W diag(1/λ) Wᵀ / k + (I - W Wᵀ) / mean(Q)``.

One epoch: the estimators are solved exactly; the "losses" are the mean artifact on the training
and the validation points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import pinvh
from sklearn.covariance import MinCovDet
from sklearn.decomposition import PCA

from lifecycle.elements import indicator
from lifecycle.elements.artifact import smooth_runs
from lifecycle.elements.errors import TrainingFailed
from lifecycle.elements.loop import Callbacks, TrainingSettings, run
from lifecycle.elements.params import EnvelopeParams, parse_params
from lifecycle.elements.scaling import Scaler, fit_scaler
from lifecycle.elements.threshold import derive_threshold
from lifecycle.elements.trained import Scores, TrainedElement, artifact_summary

MIN_TRAIN_POINTS = 10
RIDGE = 1e-6  # added to the covariance's diagonal (scaled units) so collinear tags do not make it singular


@dataclass
class EnvelopeModel:
    """A fitted envelope: ``artifact = zᵀ A z`` with ``z = (x - center)/scale - location``."""

    inputs: list[str]
    method: str
    scaler: Scaler
    location: np.ndarray
    matrix: np.ndarray
    components: int | None = None  # pca: retained components

    def evaluate(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contributions samples × tags, point artifact) for raw values samples × tags."""
        z = self.scaler.transform(values) - self.location
        az = z @ self.matrix
        return az ** 2 / np.diag(self.matrix), np.einsum("ij,ij->i", z, az)

    def score(self, frame: pd.DataFrame) -> Scores:
        x = frame.loc[:, self.inputs].to_numpy(dtype=np.float64)
        positions = np.flatnonzero(np.isfinite(x).all(axis=1))
        contributions, artifact = self.evaluate(x[positions])
        return Scores(positions, artifact, None, contributions)


def _fit_elliptic(z: np.ndarray, p: EnvelopeParams) -> tuple[np.ndarray, np.ndarray, int | None]:
    try:
        mcd = MinCovDet(support_fraction=p.support_fraction, random_state=p.seed).fit(z)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise TrainingFailed("diverged", f"the robust covariance could not be estimated: {exc}") from exc
    covariance = mcd.covariance_ + RIDGE * np.eye(z.shape[1])
    return mcd.location_, pinvh(covariance), None


def _fit_pca(z: np.ndarray, p: EnvelopeParams) -> tuple[np.ndarray, np.ndarray, int | None]:
    n = p.components if p.components < 1 else int(p.components)
    pca = PCA(n_components=n, svd_solver="full", random_state=p.seed).fit(z)
    keep = pca.explained_variance_ > 1e-12
    w = pca.components_[keep].T  # tags × k
    variances = pca.explained_variance_[keep]
    k = w.shape[1]
    t2 = w @ np.diag(1.0 / variances) @ w.T / k
    residual = np.eye(z.shape[1]) - w @ w.T
    centred = z - pca.mean_
    q_mean = float(np.mean(np.einsum("ij,jk,ik->i", centred, residual, centred)))
    matrix = t2 + (residual / q_mean if q_mean > 1e-12 else 0.0)
    return pca.mean_, (matrix + matrix.T) / 2.0, k


class _EnvelopeTrainee:
    def __init__(self, method: str, p: EnvelopeParams, z_train: np.ndarray, z_val: np.ndarray) -> None:
        self.fit = _fit_elliptic if method == "elliptic" else _fit_pca
        self.p, self.z_train, self.z_val = p, z_train, z_val
        self.fitted: tuple[np.ndarray, np.ndarray, int | None] | None = None

    def step(self) -> tuple[float, float | None]:
        location, matrix, k = self.fitted = self.fit(self.z_train, self.p)

        def mean_artifact(z: np.ndarray) -> float | None:
            if len(z) == 0:
                return None
            centred = z - location
            return float(np.mean(np.einsum("ij,jk,ik->i", centred, matrix, centred)))

        train = mean_artifact(self.z_train)
        assert train is not None
        return train, mean_artifact(self.z_val)

    def snapshot(self) -> Any:
        return self.fitted


def train_envelope(frame: pd.DataFrame, mask: pd.Series | np.ndarray | None, inputs: list[str],
                   params: dict[str, Any] | EnvelopeParams, settings: TrainingSettings | None = None,
                   callbacks: Callbacks | None = None, threshold: float | None = None) -> TrainedElement:
    """Fit an envelope on the grid points of ``frame`` that ``mask`` (the learning indicator) selects."""
    settings = settings or TrainingSettings()
    callbacks = callbacks or Callbacks()
    p = params if isinstance(params, EnvelopeParams) else parse_params("envelope", params)
    started = callbacks.clock.monotonic()
    indicator.check_tags(frame, inputs, "inputs")
    selected = indicator.as_mask(frame, mask)
    parts = indicator.split(selected, settings.validation_split)
    x_raw = indicator.check_values(frame, inputs, selected)
    train_at, val_at = indicator.samples(frame, parts, 1, minimum=max(MIN_TRAIN_POINTS, 2 * len(inputs) + 1))
    scaler = fit_scaler(x_raw[train_at], inputs, p.scaling)
    z = scaler.transform(x_raw)
    result = run(_EnvelopeTrainee(p.method, p, z[train_at], z[val_at]), settings, callbacks, max_epochs=1)
    location, matrix, k = result.best
    model = EnvelopeModel(inputs=list(inputs), method=p.method, scaler=scaler, location=location, matrix=matrix,
                          components=k)
    reference = val_at if len(val_at) else train_at
    _, artifact = model.evaluate(x_raw[reference])
    smoothed = smooth_runs(artifact, reference, p.smoothing_halflife, p.despike)
    derived = threshold is None
    value = derive_threshold(smoothed, p.threshold_quantile, p.threshold_margin) if derived else float(threshold)
    return TrainedElement(
        kind="envelope", inputs=list(inputs), outputs=[], window=1, params=p.model_dump(mode="json"), model=model,
        threshold=value, threshold_derived=derived, history=result.history, best_epoch=result.best_epoch,
        stopped=result.stopped, grid_points=parts.points, train_samples=len(train_at), validation_samples=len(val_at),
        validation_artifact=artifact_summary(smoothed), duration_s=callbacks.clock.monotonic() - started)
