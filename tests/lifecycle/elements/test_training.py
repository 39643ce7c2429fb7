"""Training elements on generated data whose structure is known: what they learn, what they flag,
when they stop, what they refuse."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from maas.clock import FakeClock

from lifecycle.elements import indicator
from lifecycle.elements.artifact import alpha, smooth, smooth_runs
from lifecycle.elements.envelope import train_envelope
from lifecycle.elements.errors import TrainingCancelled, TrainingFailed, TrainingRefused
from lifecycle.elements.forecaster import train_forecaster
from lifecycle.elements.loop import Callbacks, EpochReport, TrainingSettings, run
from lifecycle.elements.rule import train_rule
from lifecycle.elements.threshold import derive_threshold

FAST = TrainingSettings(batch_size=32, max_epochs=300, patience=10)


def grid(n: int, **columns: np.ndarray) -> pd.DataFrame:
    index = pd.date_range("2026-03-01", periods=n, freq="10s", tz="UTC")
    return pd.DataFrame(columns, index=index)


def correlated(n: int, seed: int = 0) -> pd.DataFrame:
    """Three tags on one latent load: flow, pressure ≈ 2·flow, current ≈ flow + pressure/4."""
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    flow = 50 + 5 * load + rng.normal(scale=0.5, size=n)
    pressure = 3 + 0.2 * load + rng.normal(scale=0.02, size=n)
    current = 10 + 1.5 * load + rng.normal(scale=0.15, size=n)
    return grid(n, flow=flow, pressure=pressure, current=current)


# -- what forecasters learn ------------------------------------------------------------------

def test_linear_forecaster_learns_a_linear_relation() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    frame = grid(2000, a=a, b=b, y=2 * a - 3 * b + 7 + rng.normal(scale=0.01, size=2000))
    trained = train_forecaster(frame, None, ["a", "b"], ["y"], 1, {"algorithm": "linear"}, FAST)
    scores = trained.model.score(frame.iloc[1600:])
    relative = np.mean((scores.predictions[:, 0] - frame["y"].to_numpy()[1600:]) ** 2) / frame["y"].var()
    assert relative < 1e-4  # the noise is 1e-4/13 of the variance
    assert trained.epochs == 1 and trained.stopped == "converged"
    np.testing.assert_allclose(trained.model.estimator.coef_.ravel() * trained.model.y_scaler.scale
                               / trained.model.x_scaler.scale, [2, -3], rtol=1e-2)


def test_mlp_forecaster_learns_a_non_linear_relation_over_a_window() -> None:
    rng = np.random.default_rng(2)
    n = 1000
    a, b = rng.normal(size=n), rng.normal(size=n)
    lagged = np.concatenate([[0.0], a[:-1]])  # y depends on a's previous point: needs window 2
    frame = grid(n, a=a, b=b, y=np.sin(2 * lagged) + 0.5 * b ** 2 + rng.normal(scale=0.05, size=n))
    trained = train_forecaster(frame, None, ["a", "b"], ["y"], 2, {"hidden_layers": [32, 16], "learning_rate": 0.003},
                               FAST)
    val = trained.model.score(frame.iloc[int(n * 0.8):])
    relative = np.mean((val.predictions[:, 0] - frame["y"].to_numpy()[int(n * 0.8):][val.positions]) ** 2) / frame["y"].var()
    assert relative < 0.05, relative  # bound: validation MSE under 5 % of the output's variance
    assert trained.history[trained.best_epoch - 1].validation_loss < trained.history[0].validation_loss / 3
    assert trained.threshold_derived and trained.threshold > 0


def test_training_is_deterministic() -> None:
    frame = correlated(400)
    settings = TrainingSettings(max_epochs=5)
    first = train_forecaster(frame, None, ["flow", "pressure"], ["current"], 1, {}, settings)
    second = train_forecaster(frame, None, ["flow", "pressure"], ["current"], 1, {}, settings)
    assert [r.validation_loss for r in first.history] == [r.validation_loss for r in second.history]


def test_early_stopping_stops_before_max_epochs_on_a_plateau() -> None:
    rng = np.random.default_rng(3)
    n = 600
    frame = grid(n, a=rng.normal(size=n), y=rng.normal(size=n))  # nothing to learn: the loss plateaus
    settings = TrainingSettings(max_epochs=500, patience=5, batch_size=32)
    trained = train_forecaster(frame, None, ["a"], ["y"], 1, {"hidden_layers": [8]}, settings)
    assert trained.stopped == "early_stopping"
    assert trained.epochs < 500
    assert trained.epochs == trained.best_epoch + 5


def test_epochs_are_reported_with_losses() -> None:
    reports: list[EpochReport] = []
    frame = correlated(300)
    trained = train_forecaster(frame, None, ["flow"], ["current"], 1, {}, TrainingSettings(max_epochs=4),
                               Callbacks(on_epoch=reports.append))
    assert [r.epoch for r in reports] == [1, 2, 3, 4]
    assert all(r.train_loss > 0 and r.validation_loss is not None for r in reports)
    summary = trained.summary()
    assert summary["epochs"] == 4 and len(summary["losses"]) == 4
    assert summary["grid_points"] == 300 and summary["train_samples"] == 240 and summary["validation_samples"] == 60


# -- what envelopes flag -----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["elliptic", "pca"])
def test_envelope_flags_injected_outliers_and_not_normal_points(method: str) -> None:
    train = correlated(2000, seed=4)
    trained = train_envelope(train, None, ["flow", "pressure", "current"], {"method": method}, FAST)
    halflife, despike = trained.params["smoothing_halflife"], trained.params["despike"]
    normal = correlated(1000, seed=5)
    normal_artifact = smooth(trained.model.score(normal).artifact, halflife, despike)[0]
    outliers = correlated(20, seed=6)
    outliers["pressure"] = outliers["pressure"] - 0.25  # pressure drops while flow and current do not
    outlier_artifact = smooth(trained.model.score(outliers).artifact, halflife, despike)[0]
    assert np.mean(normal_artifact > trained.threshold) < 0.01
    assert np.all(outlier_artifact > trained.threshold)
    assert np.all(trained.model.score(outliers).artifact > trained.threshold)  # each point, not only smoothed


def test_envelope_contributions_name_the_deviating_tag() -> None:
    trained = train_envelope(correlated(2000, seed=7), None, ["flow", "pressure", "current"], {}, FAST)
    odd = correlated(5, seed=8)
    odd["pressure"] += 0.3
    scores = trained.model.score(odd)
    assert np.all(scores.contributions >= 0)
    assert np.all(scores.contributions <= scores.artifact[:, None] * (1 + 1e-9))
    assert np.all(np.argmax(scores.contributions, axis=1) == 1)


def test_robust_envelope_is_not_moved_by_a_few_training_outliers() -> None:
    frame = correlated(2000, seed=9)
    clean = train_envelope(frame, None, ["flow", "pressure", "current"], {}, FAST)
    dirty = frame.copy()
    dirty.iloc[100:110, 1] += 2.0  # 0.5 % of the training points far off
    robust = train_envelope(dirty, None, ["flow", "pressure", "current"], {}, FAST)
    assert robust.threshold == pytest.approx(clean.threshold, rel=0.1)


# -- the learning indicator --------------------------------------------------------------------

def faulty(n: int = 2000, start: int = 1700, end: int = 1800) -> pd.DataFrame:
    frame = correlated(n, seed=10)
    frame.iloc[start:end, frame.columns.get_loc("pressure")] += 0.3  # a fault inside the validation part
    return frame


def test_a_mask_that_hides_a_fault_gives_a_lower_threshold_envelope() -> None:
    frame = faulty()
    mask = np.ones(len(frame), dtype=bool)
    mask[1700:1800] = False
    everything = train_envelope(frame, None, ["flow", "pressure", "current"], {}, FAST)
    hidden = train_envelope(frame, mask, ["flow", "pressure", "current"], {}, FAST)
    assert hidden.threshold < everything.threshold / 2
    assert hidden.grid_points == 1900 and everything.grid_points == 2000


def test_a_mask_that_hides_a_fault_gives_a_lower_threshold_forecaster() -> None:
    frame = faulty()
    mask = pd.Series(True, index=frame.index)
    mask.iloc[1700:1800] = False
    everything = train_forecaster(frame, None, ["flow", "current"], ["pressure"], 1, {"algorithm": "linear"}, FAST)
    hidden = train_forecaster(frame, mask, ["flow", "current"], ["pressure"], 1, {"algorithm": "linear"}, FAST)
    assert hidden.threshold < everything.threshold / 2


def test_windows_never_straddle_a_gap() -> None:
    mask = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1], dtype=bool)
    assert indicator.window_ends(mask, 2).tolist() == [1, 4, 5, 6]
    assert indicator.window_ends(mask, 3).tolist() == [5, 6]
    breaks = np.zeros(9, dtype=bool)
    breaks[5] = True  # a hole in the grid's time index before point 5
    assert indicator.window_ends(mask, 2, breaks).tolist() == [1, 4, 6]


def test_a_hole_in_the_time_index_breaks_windows() -> None:
    frame = grid(10, a=np.arange(10.0)).drop(index=grid(10, a=np.arange(10.0)).index[5])
    assert indicator.contiguous(frame).tolist() == [True, False, False, False, False, True, False, False, False]


def test_validation_is_the_last_share_of_the_indicator_points() -> None:
    mask = np.array([0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0], dtype=bool)  # nine points
    parts = indicator.split(mask, 0.2)
    assert np.flatnonzero(parts.validation).tolist() == [9, 10]
    assert np.flatnonzero(parts.train).tolist() == [1, 2, 3, 4, 6, 7, 8]
    assert not (parts.train & parts.validation).any()


def test_windows_are_read_oldest_first_before_the_horizon() -> None:
    values = np.arange(10.0)[:, None]
    assert indicator.windows(values, np.array([5]), 3, horizon=1)[0, :, 0].tolist() == [2.0, 3.0, 4.0]


# -- refusals ----------------------------------------------------------------------------------

def refusal(call: Any) -> TrainingRefused:
    with pytest.raises(TrainingRefused) as caught:
        call()
    return caught.value


def test_refuses_no_points_in_the_indicator() -> None:
    frame = correlated(100)
    error = refusal(lambda: train_envelope(frame, np.zeros(100, dtype=bool), ["flow"], {}))
    assert error.reason == "no_points" and error.field == "training.markups"
    error = refusal(lambda: train_rule(frame, np.zeros(100, dtype=bool), ["flow"], {"expression": "flow > 1"}))
    assert error.reason == "no_points"


def test_refuses_a_missing_tag_naming_it() -> None:
    frame = correlated(100)
    error = refusal(lambda: train_forecaster(frame, None, ["flow", "speed"], ["current"], 1, {}))
    assert error.reason == "missing_tag" and error.field == "inputs[1]" and "'speed'" in error.message
    error = refusal(lambda: train_forecaster(frame, None, ["flow"], ["torque"], 1, {}))
    assert error.field == "outputs[0]"
    error = refusal(lambda: train_rule(frame, None, ["flow", "speed"], {"expression": "speed > 1"}))
    assert error.reason == "missing_tag"


def test_refuses_a_constant_tag() -> None:
    frame = correlated(200)
    frame["speed"] = 1480.0
    error = refusal(lambda: train_envelope(frame, None, ["flow", "speed"], {}))
    assert error.reason == "constant_tag" and "'speed'" in error.message
    error = refusal(lambda: train_forecaster(frame, None, ["flow"], ["speed"], 1, {}))
    assert error.reason == "constant_tag" and error.field == "outputs"


def test_a_mostly_constant_tag_falls_back_to_its_deviation() -> None:
    frame = correlated(400)
    frame["valve"] = 0.0
    frame.iloc[::7, frame.columns.get_loc("valve")] = 1.0  # a two-valued signal with IQR 0
    trained = train_envelope(frame, None, ["flow", "valve"], {}, FAST)
    assert trained.model.scaler.scale[1] > 0


def test_refuses_a_window_longer_than_the_data() -> None:
    frame = correlated(50)
    error = refusal(lambda: train_forecaster(frame, None, ["flow"], ["current"], 60, {}))
    assert error.reason == "window_too_long" and error.field == "window"
    mask = np.tile([True] * 8 + [False] * 2, 5)  # stretches of 8 points
    error = refusal(lambda: train_forecaster(frame, mask, ["flow"], ["current"], 10, {}))
    assert error.reason == "window_too_long" and "longest has 8" in error.message


def test_refuses_nan_on_indicator_points_but_not_elsewhere() -> None:
    frame = correlated(300)
    frame.iloc[250, 0] = np.nan
    error = refusal(lambda: train_envelope(frame, None, ["flow", "current"], {}))
    assert error.reason == "nan" and "'flow'" in error.message and str(frame.index[250]) in error.message
    mask = np.ones(300, dtype=bool)
    mask[250] = False
    assert train_envelope(frame, mask, ["flow", "current"], {}, FAST).grid_points == 299


def test_refuses_too_few_windows() -> None:
    frame = correlated(300)
    mask = np.zeros(300, dtype=bool)
    mask[:6] = True
    assert refusal(lambda: train_envelope(frame, mask, ["flow"], {})).reason == "too_few_points"


# -- the epoch loop ----------------------------------------------------------------------------

class Scripted:
    """A trainee whose validation losses are given; each epoch takes ``seconds`` on a fake clock."""

    def __init__(self, losses: list[float], clock: FakeClock | None = None, seconds: float = 1.0) -> None:
        self.losses, self.epoch, self.clock, self.seconds = losses, 0, clock, seconds

    def step(self) -> tuple[float, float | None]:
        self.epoch += 1
        if self.clock is not None:
            self.clock.advance(self.seconds)
        loss = self.losses[min(self.epoch, len(self.losses)) - 1]
        return loss, loss

    def snapshot(self) -> Any:
        return self.epoch


def test_the_loop_keeps_the_best_epoch_and_stops_after_patience() -> None:
    result = run(Scripted([5, 4, 3, 3.5, 3.2, 3.1, 3.0, 2.9999999, 4]), TrainingSettings(patience=3), Callbacks())
    assert result.best_epoch == 3 and result.best == 3 and result.stopped == "early_stopping"
    assert len(result.history) == 6


def test_the_loop_stops_at_max_epochs() -> None:
    result = run(Scripted([1.0 / (i + 1) for i in range(50)]), TrainingSettings(max_epochs=20), Callbacks())
    assert len(result.history) == 20 and result.stopped == "max_epochs" and result.best_epoch == 20


def test_the_loop_fails_on_divergence() -> None:
    with pytest.raises(TrainingFailed) as caught:
        run(Scripted([1.0, 2.0, math.nan]), TrainingSettings(), Callbacks())
    assert caught.value.reason == "diverged" and "epoch 3" in caught.value.message
    with pytest.raises(TrainingFailed):
        run(Scripted([1.0, 1e7]), TrainingSettings(), Callbacks())


def test_the_loop_times_out_on_the_clock() -> None:
    clock = FakeClock()
    with pytest.raises(TrainingFailed) as caught:
        run(Scripted([1.0 / (i + 1) for i in range(100)], clock, seconds=10), TrainingSettings(max_duration_s=35),
            Callbacks(clock=clock))
    assert caught.value.reason == "timed_out" and "after 4 epoch(s)" in caught.value.message


def test_the_loop_checks_cancellation_every_epoch() -> None:
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(TrainingCancelled):
        run(Scripted([1.0 / (i + 1) for i in range(100)]), TrainingSettings(), Callbacks(cancelled=cancelled))
    assert calls["n"] == 4


def test_settings_from_a_partial_dict_keep_the_defaults() -> None:
    settings = TrainingSettings.from_dict({"patience": 3, "max_duration_s": None, "batch_size": None})
    assert settings == TrainingSettings(patience=3)


# -- smoothing and the threshold rule ------------------------------------------------------------

def test_smoothing_halves_a_point_weight_every_halflife() -> None:
    assert alpha(0) == 1.0
    impulse = np.zeros(9)
    impulse[0] = 1.0
    out, _ = smooth(np.concatenate([[0.0], impulse]), halflife=4.0)
    assert out[5] == pytest.approx(out[1] / 2)


@pytest.mark.parametrize("despike", [1, 5])
def test_smoothing_state_carries_across_calls_and_restarts_at_gaps(despike: int) -> None:
    values = np.random.default_rng(11).random(20)
    values[7] = np.nan
    whole, _ = smooth(values, 3.0, despike)
    first, state = smooth(values[:12], 3.0, despike)
    second, _ = smooth(values[12:], 3.0, despike, state=state)
    np.testing.assert_allclose(np.concatenate([first, second]), whole)
    assert np.isnan(whole[7])
    restarted = smooth_runs(values[[0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]],
                            np.array([0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23, 24]), 3.0, despike)
    assert restarted[7] == values[8]


def test_despiking_removes_short_glitches_and_passes_faults() -> None:
    base = np.ones(40)
    glitch = base.copy()
    glitch[10:12] = 1000.0  # two grid points of a sensor glitch
    fault = base.copy()
    fault[20:] = 10.0  # a lasting deviation
    assert smooth(glitch, 5.0, despike=5)[0].max() == pytest.approx(1.0)
    assert smooth(glitch, 5.0, despike=1)[0].max() > 100
    smoothed = smooth(fault, 5.0, despike=5)[0]
    assert smoothed[22] > 1.0 and smoothed[-1] > 9.0  # passes after despike // 2 + 1 points


def test_threshold_is_a_high_quantile_with_a_margin_robust_to_a_few_outliers() -> None:
    artifact = np.random.default_rng(12).chisquare(3, size=5000)
    threshold = derive_threshold(artifact, 0.99, 1.5)
    assert threshold == pytest.approx(1.5 * np.quantile(artifact, 0.99))
    spiked = artifact.copy()
    spiked[:20] = 1e6  # 0.4 % wild points
    assert derive_threshold(spiked, 0.99, 1.5) < threshold * 1.1
    assert derive_threshold(np.zeros(10)) > 0


# -- rules -------------------------------------------------------------------------------------

def test_rule_flags_where_its_expression_holds_and_handles_missing_values() -> None:
    frame = grid(4, current=np.array([0.2, 0.9, np.nan, 0.7]), pressure=np.array([1.0, 0.05, 1.0, 1.0]))
    trained = train_rule(frame, None, ["current", "pressure"], {"expression": "current > 0.5 && pressure < 0.1"})
    assert trained.model.score(frame).artifact.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert trained.threshold == 0.5 and trained.validation_artifact["flagged_share"] == 0.25
    lenient = train_rule(frame, None, ["current", "pressure"],
                         {"expression": "current > 0.5", "inconclusive_positive": True})
    assert lenient.model.score(frame).artifact.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_rule_reads_a_tag_with_a_space_by_its_alias() -> None:
    frame = grid(3, **{"motor current": np.array([5.0, 12.0, np.nan])})
    trained = train_rule(frame, None, ["motor current"], {"expression": "motor_current > 10"})
    assert trained.model.score(frame).artifact.tolist() == [0.0, 1.0, 0.0]


def test_without_validation_the_threshold_comes_from_the_training_points() -> None:
    frame = correlated(600)
    trained = train_envelope(frame, None, ["flow", "current"], {}, TrainingSettings(validation_split=0.0))
    assert trained.validation_samples == 0 and trained.train_samples == 600
    assert trained.history[0].validation_loss is None and trained.threshold > 0


def test_refuses_more_windows_than_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.elements import forecaster

    monkeypatch.setattr(forecaster, "MAX_WINDOW_VALUES", 1000)
    error = refusal(lambda: train_forecaster(correlated(300), None, ["flow", "pressure"], ["current"], 5, {}))
    assert error.reason == "too_large" and "narrow the training interval" in error.message
