"""Train the pump example model end to end and measure how well it finds the injected faults.

    python examples/pump/train.py [--work DIR] [--seed 7] [--max-epochs N]

1. generates three weeks of pump telemetry with known faults (:mod:`telemetry`) and writes
   ``telemetry.csv`` and ``faults.json`` into the work directory (default ``examples/pump/work``);
2. builds a lifecycle service's state there — a SQLite database migrated to the current schema
   and a file model store — and, through the same service calls the REST API makes, uploads the
   dataset, creates the markups, the model ``pump7`` and its three elements (``model.json``);
3. queues the ``train`` job and runs it on a job worker, printing its progress as
   ``maas_model train pump7 --wait`` does, then a summary per element;
4. scores the third week (the evaluation period, never trained on) with the exported payloads
   through onnxruntime, and prints the precision, recall and F1 of anomalous grid points and the
   detection delay of each injected fault, per element and for the model (any element anomalous).

Everything is deterministic for a seed. ``--max-epochs`` caps training for quick runs.
``--export`` only writes the data and the markup and element files, and prints the ``maas_model``
commands that build and train the same model on a running ``maas_lifecycle serve``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import telemetry  # noqa: E402

from lifecycle import jobs, markups, models, training  # noqa: E402
from lifecycle.api.models import DetectionIn, TrainingIn  # noqa: E402
from lifecycle.datasets import DatasetService  # noqa: E402
from lifecycle.db import make_engine  # noqa: E402
from lifecycle.elements.quality import Quality, point_quality  # noqa: E402
from lifecycle.elements.rule import RuleModel  # noqa: E402
from lifecycle.elements.runner import PayloadScorer  # noqa: E402
from lifecycle.markups import Caller  # noqa: E402
from lifecycle.migrations import upgrade_engine  # noqa: E402
from maas.store import open_store  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

DATASET = "pump7-telemetry"
TRAINER = Caller("pump-example")


def load_definition(max_epochs: int | None = None) -> dict[str, Any]:
    definition = json.loads((HERE / "model.json").read_text())
    if max_epochs is not None:
        for element in definition["elements"]:
            element["training"]["max_epochs"] = max_epochs
    return definition


def write_data(work: Path, seed: int) -> tuple[pd.DataFrame, list[telemetry.Fault]]:
    frame, faults = telemetry.generate(seed=seed)
    out = frame.reset_index()
    out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(work / "telemetry.csv", index=False)
    (work / "faults.json").write_text(json.dumps([f.as_dict() for f in faults], indent=1))
    return frame, faults


def build(work: Path, faults: list[telemetry.Fault], definition: dict[str, Any]) -> tuple[Any, Any, DatasetService]:
    """A fresh database and store in ``work``, holding the dataset, the markups and the model."""
    for stale in ("lifecycle.db", "store"):
        path = work / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (work / "store").mkdir()
    engine = make_engine(f"sqlite:///{work / 'lifecycle.db'}")
    upgrade_engine(engine)
    store = open_store(f"file://{work / 'store'}")
    datasets = DatasetService(store=store, work_dir=work)
    with Session(engine) as session:
        datasets.upload(session, name=DATASET, source=work / "telemetry.csv", actor=TRAINER.name,
                        filename="telemetry.csv", grid_step_s=60)
        for markup in definition["markups"]:
            spec: dict[str, Any] = {"condition": markup.get("condition")}
            if markup.get("intervals") == "normal-operation":
                spec["intervals"] = telemetry.normal_operation_intervals(faults)
            markups.create(session, TRAINER, markup["name"], markup.get("description", ""), spec)
        m = definition["model"]
        models.create(session, TRAINER, name=m["name"], asset=m["asset"], description=m["description"],
                      inference_markups=m["inference_markups"])
        for e in definition["elements"]:
            models.add_element(
                session, TRAINER, m["name"], name=e["name"], kind=e["kind"], inputs=e["inputs"],
                outputs=e.get("outputs", []), window=e.get("window"), params=e.get("params", {}),
                training=TrainingIn.model_validate(e.get("training", {})).model_dump(mode="json", by_alias=True),
                detection=DetectionIn.model_validate(e.get("detection", {})).model_dump(mode="json"))
        session.commit()
    return engine, store, datasets


def bar(fraction: float, width: int = 30) -> str:
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def train(engine: Any, store: Any, datasets: DatasetService, model: str, quiet: bool = False) -> dict[str, Any]:
    """Queue the training job, run it on a worker, follow its progress; the finished job's JSON."""
    with Session(engine) as session:
        job_id = training.queue_training(session, TRAINER, model).id
        session.commit()
    pool = jobs.WorkerPool(engine, handlers={"train": training.run_training}, n=1, poll_s=0.05,
                           services={"store": store, "datasets": datasets})
    pool.start()
    try:
        while True:
            with Session(engine) as session:
                job = jobs.get(session, job_id).to_json()
            progress = job.get("progress") or {}
            if not quiet and progress:
                epoch = f"epoch {progress['epoch']}" if progress.get("epoch") else progress.get("phase", "")
                loss = progress.get("validation_loss")
                print(f"\r{bar(progress.get('fraction') or 0.0)} {progress.get('element') or '':16} {epoch:12} "
                      f"{'' if loss is None else f'val loss {loss:.4g}':20}", end="", flush=True)
            if job["state"] in jobs.FINAL:
                break
            time.sleep(0.5)
    finally:
        pool.stop()
    if not quiet:
        print()
    return job


def evaluate(engine: Any, store: Any, datasets: DatasetService, definition: dict[str, Any],
             faults: list[telemetry.Fault]) -> dict[str, Any]:
    """Quality of every element and of the model on the evaluation period (after the training period)."""
    with Session(engine) as session:
        frame = datasets.read_grid(session, DATASET)
        model = models.get(session, definition["model"]["name"])
        elements = {e.name: (e.kind, e.artifact, e.params, list(e.inputs)) for e in model.elements}
    evaluation = frame.loc[frame.index >= telemetry.TRAIN_END]
    running = evaluation["speed"].to_numpy() > 300  # the inference indicator (pump7-running)
    truth = telemetry.truth_mask(evaluation.index, faults)
    events = [(f.kind, f.start, f.end) for f in faults if f.start >= telemetry.TRAIN_END]
    per_element: dict[str, Quality] = {}
    flags = np.zeros(len(evaluation), dtype=bool)
    root = Path(store.uri.removeprefix("file://"))
    for name, (kind, artifact, params, inputs) in elements.items():
        anomalous = np.zeros(len(evaluation), dtype=bool)
        if kind == "rule":
            scores = RuleModel(inputs, params["expression"], params.get("inconclusive_positive", False)).score(evaluation)
            anomalous[scores.positions] = scores.artifact > 0.5
        elif artifact:
            detection = PayloadScorer(root / artifact["path"].lstrip("/")).detect(evaluation)
            anomalous[evaluation.index.get_indexer(detection.index)] = detection.anomalous
        per_element[name] = point_quality(evaluation.index, anomalous, truth, events, running)
        flags |= anomalous
    overall = point_quality(evaluation.index, flags, truth, events, running)
    return {"elements": {k: v.as_dict() for k, v in per_element.items()}, "model": overall.as_dict(),
            "evaluated_points": int(running.sum()), "anomalous_points": int((truth & running).sum())}


def _minutes(seconds: float | None) -> str:
    return "missed" if seconds is None else f"{seconds / 60:.0f} min"


def print_summary(job: dict[str, Any], quality: dict[str, Any]) -> None:
    print(f"job {job['id']}: {job['state']}" + (f" — {job['error']}" if job.get("error") else ""))
    results = (job.get("result") or job.get("progress") or {}).get("elements") or \
        (job.get("progress") or {}).get("results") or {}
    for name, r in results.items():
        if r.get("state") == "trained":
            val = r.get("best_validation_loss")
            print(f"  {name:16} trained: {r['epochs']} epoch(s), best {r['best_epoch']} ({r['stopped']}), "
                  f"validation loss {'-' if val is None else f'{val:.4g}'}, threshold {r['threshold']:.4g}, "
                  f"{r['grid_points']} grid points, {r['duration_s']:.1f} s")
        else:
            print(f"  {name:16} {r.get('state')}: {r.get('error')}")
    print(f"evaluation period: {quality['evaluated_points']} grid points with the pump running, "
          f"{quality['anomalous_points']} inside injected faults")
    rows = [*quality["elements"].items(), ("model (any)", quality["model"])]
    for name, q in rows:
        delays = ", ".join(f"{e['kind']} {_minutes(e['delay_s'])}" for e in q["events"])
        print(f"  {name:16} precision {q['precision']:.3f}  recall {q['recall']:.3f}  F1 {q['f1']:.3f}  "
              f"detected {q['detected_events']}/{len(q['events'])}  delays: {delays}")


def run(work: Path, seed: int = 7, max_epochs: int | None = None, quiet: bool = False) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    definition = load_definition(max_epochs)
    _frame, faults = write_data(work, seed)
    engine, store, datasets = build(work, faults, definition)
    started = time.monotonic()
    job = train(engine, store, datasets, definition["model"]["name"], quiet=quiet)
    wall = time.monotonic() - started
    quality = evaluate(engine, store, datasets, definition, faults)
    with Session(engine) as session:
        status = models.get(session, definition["model"]["name"]).status
    engine.dispose()
    summary = {"job": job, "quality": quality, "model_status": status, "training_wall_s": wall}
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def export(work: Path, seed: int = 7, max_epochs: int | None = None) -> list[list[str]]:
    """Write the data and the JSON files ``maas_model`` takes into ``work``; the commands that build
    and train the model on a running service, as argument lists."""
    work.mkdir(parents=True, exist_ok=True)
    definition = load_definition(max_epochs)
    _frame, faults = write_data(work, seed)
    (work / "markups").mkdir(exist_ok=True)
    (work / "elements").mkdir(exist_ok=True)
    m = definition["model"]
    commands = [["dataset", "upload", DATASET, str(work / "telemetry.csv"), "--grid-step", "60"]]
    for markup in definition["markups"]:
        spec: dict[str, Any] = {"name": markup["name"], "description": markup.get("description", ""),
                                "condition": markup.get("condition")}
        if markup.get("intervals") == "normal-operation":
            spec["intervals"] = telemetry.normal_operation_intervals(faults)
        path = work / "markups" / f"{markup['name']}.json"
        path.write_text(json.dumps(spec, indent=1))
        commands.append(["markup", "create", markup["name"], "--file", str(path)])
    commands.append(["create", m["name"], "--asset", m["asset"], "--description", m["description"],
                     *[arg for name in m["inference_markups"] for arg in ("--inference-markup", name)]])
    for element in definition["elements"]:
        path = work / "elements" / f"{element['name']}.json"
        path.write_text(json.dumps(element, indent=1))
        commands.append(["element", "add", m["name"], element["name"], "--file", str(path)])
    commands.append(["train", m["name"], "--wait"])
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=HERE / "work", help="work directory (default examples/pump/work)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every element's max_epochs")
    parser.add_argument("--export", action="store_true",
                        help="only write the data and the markup/element files, and print the maas_model commands "
                             "that build and train the model on a running service")
    args = parser.parse_args(argv)
    if args.export:
        for command in export(args.work, args.seed, args.max_epochs):
            print("maas_model " + " ".join(shlex.quote(part) for part in command))
        return 0
    summary = run(args.work, args.seed, args.max_epochs)
    print_summary(summary["job"], summary["quality"])
    print(f"model pump7: {summary['model_status']}; payloads in {args.work / 'store' / 'lifecycle' / 'payloads'}")
    return 0 if summary["job"]["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
