"""Training: how long elements take to train, and how well the trained pump model finds faults.

Trains the pump example (``examples/pump``: three weeks of one-minute telemetry, the first two
weeks' normal operation as the learning indicator) through the real path — a SQLite database, a
file store, the ``train`` job on a job worker — with every element's default settings (max
epochs 500, patience 15, batch size 16). Reports:

- per element: training time per 10k grid points of the learning indicator and per epoch, and
  the epochs run (early stopping);
- detection on the evaluation week (never trained on; the pump running): precision, recall and
  F1 of anomalous grid points against the injected faults' intervals, and the mean detection
  delay per fault kind, per element and for the model (a point is anomalous when any element
  flags it), scored by the exported ONNX payloads through onnxruntime;
- side by side, what the defaults buy: the threshold margin (1.0 / 1.5 default / 2.0, the same
  trained models); for the forecaster robust vs standard scaling and smoothing on vs off, for
  the envelope elliptic vs PCA and smoothing on vs off, and again with 0.5 % sensor spikes added
  to the training period, with and without despiking (retrained in process on the same points).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench.common import Result

REPO = Path(__file__).resolve().parents[1]
PUMP = REPO / "examples" / "pump"
SCENARIO = "training"


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _result(metric: str, value: float, unit: str, note: str = "", **extra: Any) -> Result:
    return Result(SCENARIO, metric, float(value), unit, note, extra)


def _quality_rows(label: str, q: dict[str, Any]) -> Iterator[Result]:
    yield _result(f"{label}: precision", 100 * q["precision"], "%", f"tp {q['tp']}, fp {q['fp']}")
    yield _result(f"{label}: recall", 100 * q["recall"], "%", f"fn {q['fn']}")
    yield _result(f"{label}: F1", 100 * q["f1"], "%", f"{q['detected_events']}/{len(q['events'])} faults detected")
    kinds = sorted({e["kind"] for e in q["events"]})
    for kind in kinds:
        delays = [e["delay_s"] for e in q["events"] if e["kind"] == kind and e["detected"]]
        total = sum(1 for e in q["events"] if e["kind"] == kind)
        if delays:
            yield _result(f"{label}: detection delay, {kind}", float(np.mean(delays)) / 60, "min",
                          f"{len(delays)}/{total} detected")
        else:
            yield _result(f"{label}: detection delay, {kind}", float("nan"), "min", f"0/{total} detected")


def with_spikes(frame: Any, share: float = 0.005, seed: int = 1) -> Any:
    """``frame`` with sensor glitches: on ``share`` of the points, one of the pressure, current or
    vibration readings jumps by ±10 standard deviations (what real training periods contain)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    rows = rng.choice(len(out), size=int(share * len(out)), replace=False)
    tags = ["discharge_pressure", "motor_current", "vibration"]
    for row in rows:
        tag = tags[int(rng.integers(len(tags)))]
        column = out.columns.get_loc(tag)
        out.iat[row, column] += float(rng.choice([-1.0, 1.0])) * 10 * float(frame[tag].std())
    return out


def run() -> Iterator[Result]:
    train = _module("pump_train", PUMP / "train.py")
    telemetry = sys.modules["telemetry"]
    from lifecycle.elements.envelope import train_envelope
    from lifecycle.elements.artifact import smooth_runs
    from lifecycle.elements.loop import TrainingSettings
    from lifecycle.elements.quality import point_quality
    from lifecycle.elements.runner import PayloadScorer
    from lifecycle import markup_eval

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        summary = train.run(work, quiet=True)
        job = summary["job"]
        if job["state"] != "done":
            raise RuntimeError(f"training the pump example failed: {job['error']}")
        results = job["result"]["elements"]
        for name, r in results.items():
            if r.get("state") != "trained":
                continue
            per_epoch = r["duration_s"] / max(r["epochs"], 1)
            yield _result(f"train {name}: time per 10k grid points", r["duration_s"] / r["grid_points"] * 1e4, "s",
                          f"{r['grid_points']} points, {r['duration_s']:.1f} s in all")
            yield _result(f"train {name}: time per epoch", per_epoch * 1000, "ms",
                          f"{r['train_samples']} training windows")
            yield _result(f"train {name}: epochs", r["epochs"], "",
                          f"best {r['best_epoch']}, stopped by {r['stopped']}")
        quality = summary["quality"]
        yield from _quality_rows("model (any element)", quality["model"])
        for name, q in quality["elements"].items():
            yield _result(f"{name}: F1", 100 * q["f1"], "%", f"precision {q['precision']:.3f}, recall {q['recall']:.3f}")

        # -- the threshold margin, on the same trained payloads --------------------------------
        from sqlalchemy.orm import Session
        from lifecycle import markups, models
        from lifecycle.datasets import DatasetService
        from lifecycle.db import make_engine
        from maas.store import open_store

        engine = make_engine(f"sqlite:///{work / 'lifecycle.db'}")
        store = open_store(f"file://{work / 'store'}")
        datasets = DatasetService(store=store, work_dir=work)
        with Session(engine) as session:
            frame = datasets.read_grid(session, train.DATASET)
            elements = {e.name: (e.kind, e.artifact, e.params, list(e.inputs), dict(e.training))
                        for e in models.get(session, "pump7").elements}
            normal = markup_eval.parse_spec(markups.get(session, "pump7-normal").spec)
        engine.dispose()
        faults = telemetry.FAULTS
        evaluation = frame.loc[frame.index >= telemetry.TRAIN_END]
        running = evaluation["speed"].to_numpy() > 300
        truth = telemetry.truth_mask(evaluation.index, faults)
        events = [(f.kind, f.start, f.end) for f in faults if f.start >= telemetry.TRAIN_END]
        rule_flags = np.zeros(len(evaluation), dtype=bool)
        scorers = {}
        for name, (kind, artifact, params, inputs, _training) in elements.items():
            if kind == "rule":
                from lifecycle.elements.rule import RuleModel
                scores = RuleModel(inputs, params["expression"]).score(evaluation)
                rule_flags[scores.positions] = scores.artifact > 0.5
            elif artifact:
                scorer = PayloadScorer(work / "store" / artifact["path"].lstrip("/"))
                scorers[name] = (scorer, scorer.score(evaluation), artifact["validation_artifact"]["q99"])
        default_f1 = None
        for margin in (1.5, 1.0, 2.0):
            flags = rule_flags.copy()
            for scorer, scores, q99 in scorers.values():
                smoothed = smooth_runs(scores.artifact, scores.positions, scorer.halflife, scorer.despike)
                flags[scores.positions] |= smoothed > margin * q99
            q = point_quality(evaluation.index, flags, truth, events, running)
            if default_f1 is None:
                default_f1 = q.f1
            yield _result(f"threshold margin {margin:g}: model F1 / default F1", q.f1 / default_f1 if default_f1 else 0.0,
                          "x", f"F1 {q.f1:.3f}, precision {q.precision:.3f}, recall {q.recall:.3f}")

        # -- what the defaults buy, retrained in process on the same learning indicator ------------
        from lifecycle.elements.forecaster import train_forecaster
        from lifecycle.training import training_interval

        def quality_of(trained: Any) -> Any:
            scores = trained.model.score(evaluation)
            smoothed = smooth_runs(scores.artifact, scores.positions, trained.params["smoothing_halflife"],
                                   trained.params["despike"])
            flags = np.zeros(len(evaluation), dtype=bool)
            flags[scores.positions] = smoothed > trained.threshold
            return point_quality(evaluation.index, flags, truth, events, running)

        spiky = "with 0.5 % sensor spikes in training"
        variants = [
            ("hydraulics", "robust scaling, smoothing half-life 5 (default)", {}, False),
            ("hydraulics", "standard scaling", {"scaling": "standard"}, False),
            ("hydraulics", "no smoothing", {"smoothing_halflife": 0.0}, False),
            ("hydraulics", f"robust scaling {spiky}", {}, True),
            ("hydraulics", f"standard scaling {spiky}", {"scaling": "standard"}, True),
            ("operating-point", "elliptic (default)", {}, False),
            ("operating-point", "pca", {"method": "pca"}, False),
            ("operating-point", "no smoothing", {"smoothing_halflife": 0.0}, False),
            ("operating-point", f"elliptic {spiky}", {}, True),
            ("operating-point", f"elliptic without despiking {spiky}", {"despike": 1}, True),
            ("operating-point", f"pca {spiky}", {"method": "pca"}, True),
        ]
        baselines: dict[str, float] = {}
        for name, label, change, spikes in variants:
            kind, _artifact, params, inputs, training_settings = elements[name]
            part = training_interval(frame, training_settings)
            if spikes:
                part = with_spikes(part)
            mask = markup_eval.evaluate_mask(normal, part).values
            settings = TrainingSettings.from_dict(training_settings)
            if kind == "forecaster":
                spec = next(e for e in train.load_definition()["elements"] if e["name"] == name)
                trained = train_forecaster(part, mask, inputs, spec["outputs"], spec["window"], {**params, **change},
                                           settings)
            else:
                trained = train_envelope(part, mask, inputs, {**params, **change}, settings)
            q = quality_of(trained)
            baselines.setdefault(name, q.f1)
            yield _result(f"{name}, {label}: F1 / default F1", q.f1 / baselines[name] if baselines[name] else 0.0, "x",
                          f"F1 {q.f1:.3f}, precision {q.precision:.3f}, recall {q.recall:.3f}")
