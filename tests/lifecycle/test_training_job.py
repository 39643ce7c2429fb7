"""The ``train`` job on SQLite and PostgreSQL: elements trained one at a time into payloads in a
real file store, recorded on the elements, the model TRAINED; retraining keeps the old payload;
edits while queued or during training never leave the model TRAINED with stale elements;
refusals and cancellation end the job with the reason; a worker killed mid-training (SIGKILL)
leaves its job retried or failed with the reason, never stuck running."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lifecycle import jobs, markups, models, training
from lifecycle.datasets import DatasetService
from lifecycle.db import make_engine
from lifecycle.jobs import WorkerPool
from lifecycle.markups import Caller
from lifecycle.schema import metadata
from maas.store import ModelStore, open_store

ALICE = Caller("alice")
STEP_S = 10
N = 800


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    (tmp_path / "store").mkdir()
    return open_store(f"file://{tmp_path / 'store'}")


def telemetry() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    load = np.zeros(N)
    for t in range(1, N):
        load[t] = 0.95 * load[t - 1] + rng.normal(scale=0.3)
    index = pd.date_range("2026-03-01", periods=N, freq=f"{STEP_S}s", tz="UTC")
    frame = pd.DataFrame({"flow": 40 + 4 * load + rng.normal(scale=0.2, size=N),
                          "motor current": 12 + 1.5 * load + rng.normal(scale=0.1, size=N)}, index=index)
    frame["pressure"] = 1.0 + 0.05 * frame["flow"] + rng.normal(scale=0.01, size=N)
    return frame


@pytest.fixture
def world(engine: Engine, store: ModelStore, tmp_path: Path) -> dict[str, Any]:
    """A dataset, a normal-operation markup and a model with a forecaster, an envelope and a rule."""
    datasets = DatasetService(store=store, work_dir=tmp_path)
    frame = telemetry()
    csv = frame.rename_axis("time").reset_index()
    csv["time"] = csv["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    with Session(engine) as session:
        datasets.upload(session, name="pump-march", source=io.BytesIO(csv.to_csv(index=False).encode()),
                        actor="alice", grid_step_s=STEP_S)
        markups.create(session, ALICE, "normal", "", {"intervals": [
            {"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T01:00:00Z"},
            {"from": "2026-03-01T01:10:00Z", "to": "2026-03-02T00:00:00Z"}]})
        markups.create(session, ALICE, "nothing", "", {"intervals": [
            {"from": "2027-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"}]})
        models.create(session, ALICE, name="pump7")
        training_settings = {"dataset": "pump-march", "markups": ["normal"], "validation_split": 0.2, "max_epochs": 40,
                             "patience": 5, "batch_size": 32, "max_duration_s": None}
        detection = {"threshold": None}
        models.add_element(session, ALICE, "pump7", name="pressure", kind="forecaster", inputs=["flow", "motor current"],
                           outputs=["pressure"], window=2, params={"hidden_layers": [8]}, training=training_settings,
                           detection=detection)
        models.add_element(session, ALICE, "pump7", name="envelope", kind="envelope",
                           inputs=["flow", "motor current", "pressure"], outputs=[], window=1, params={},
                           training=training_settings, detection=detection)
        models.add_element(session, ALICE, "pump7", name="dry run", kind="rule", inputs=["flow"], outputs=[], window=1,
                           params={"expression": "flow < 5"}, training={}, detection={"threshold": None})
        session.commit()
    pool = WorkerPool(engine, handlers={"train": training.run_training}, n=0,
                      services={"store": store, "datasets": datasets})
    return {"pool": pool, "store": store, "datasets": datasets}


def queue(engine: Engine, elements: list[str] | None = None) -> int:
    with Session(engine) as session:
        job = training.queue_training(session, ALICE, "pump7", elements)
        session.commit()
        return job.id


def job_of(engine: Engine, job_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        return jobs.get(session, job_id).to_json()


def model_of(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        return models.model_json(models.get(session, "pump7"))


def element(model: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in model["elements"] if e["name"] == name)


def change_params(engine: Engine, name: str, **params: Any) -> None:
    with Session(engine) as session:
        e = models.element_of(models.get(session, "pump7"), name)
        models.change_element(session, ALICE, "pump7", name, kind=e.kind, inputs=e.inputs, outputs=e.outputs,
                              window=e.window, params={**e.params, **params}, training=e.training,
                              detection=e.detection)
        session.commit()


def test_training_makes_payloads_records_them_and_the_model_trained(engine: Engine, world: dict[str, Any]) -> None:
    job_id = queue(engine)
    assert world["pool"].run_once() == job_id
    job = job_of(engine, job_id)
    assert job["state"] == "done", job["error"]
    model = model_of(engine)
    assert model["status"] == "TRAINED"
    for name in ("pressure", "envelope"):
        artifact = element(model, name)["artifact"]
        assert element(model, name)["training_status"] == "trained"
        assert artifact["path"] == f"/lifecycle/payloads/pump7/{name}/1" and len(artifact["sha256"]) == 64
        assert artifact["threshold"] > 0 and artifact["threshold_derived"] is True
        assert artifact["grid_points"] == N - 60  # the markup leaves out 01:00-01:10 (60 points of 10 s)
        assert artifact["epochs"] == len(artifact["losses"]) >= 1
        assert world["store"].list(artifact["path"]) == ["element.json", "model.onnx", "serve.sh", "signature.json"]
    result = job["result"]
    assert result["model_status"] == "TRAINED"
    assert result["elements"]["pressure"]["state"] == "trained" and result["elements"]["pressure"]["epochs"] >= 1
    progress = job["progress"]
    assert progress["phase"] == "done" and progress["fraction"] == 1.0 and progress["model_status"] == "TRAINED"
    assert progress["elements"] == ["pressure", "envelope"]


def test_retraining_makes_a_new_payload_and_keeps_the_old_one(engine: Engine, world: dict[str, Any]) -> None:
    queue(engine)
    world["pool"].run_once()
    first = element(model_of(engine), "pressure")["artifact"]
    job_id = queue(engine, ["pressure"])
    world["pool"].run_once()
    assert job_of(engine, job_id)["state"] == "done"
    second = element(model_of(engine), "pressure")["artifact"]
    assert second["path"] == "/lifecycle/payloads/pump7/pressure/2" and second["training_number"] == 2
    assert world["store"].exists(first["path"]) and world["store"].exists(second["path"])


def test_an_element_edited_while_queued_is_trained_as_it_is_now(engine: Engine, world: dict[str, Any]) -> None:
    job_id = queue(engine)
    change_params(engine, "pressure", hidden_layers=[4])
    world["pool"].run_once()
    assert job_of(engine, job_id)["state"] == "done"
    model = model_of(engine)
    assert model["status"] == "TRAINED"
    pressure = element(model, "pressure")
    payload = Path(world["store"].uri.removeprefix("file://")) / pressure["artifact"]["path"].lstrip("/")
    assert json.loads((payload / "element.json").read_text())["element_revision"] == pressure["revision"]
    assert json.loads((payload / "element.json").read_text())["params"]["hidden_layers"] == [4]


def test_an_element_added_while_queued_keeps_the_model_draft(engine: Engine, world: dict[str, Any]) -> None:
    job_id = queue(engine)
    with Session(engine) as session:
        models.add_element(session, ALICE, "pump7", name="late", kind="envelope", inputs=["flow"], outputs=[], window=1,
                           params={}, training={"dataset": "pump-march", "markups": []}, detection={})
        session.commit()
    world["pool"].run_once()
    assert job_of(engine, job_id)["state"] == "done"
    model = model_of(engine)
    assert model["status"] == "DRAFT" and element(model, "late")["training_status"] == "not_trained"


def test_an_element_edited_during_its_training_is_not_recorded(engine: Engine, world: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = training.train_element

    def edited_meanwhile(snapshot: training.ElementSnapshot, *args: Any) -> Any:
        if snapshot.name == "pressure":
            change_params(engine, "pressure", l2=0.01)
        return real(snapshot, *args)

    monkeypatch.setattr(training, "train_element", edited_meanwhile)
    job_id = queue(engine)
    world["pool"].run_once()
    job = job_of(engine, job_id)
    assert job["state"] == "failed" and "'pressure'" in job["error"] and "changed during its training" in job["error"]
    assert job["progress"]["results"]["pressure"]["reason"] == "stale"
    assert job["progress"]["results"]["envelope"]["state"] == "trained"
    model = model_of(engine)
    assert model["status"] == "DRAFT"
    assert element(model, "pressure")["training_status"] == "not_trained"
    assert element(model, "envelope")["training_status"] == "trained"


def test_a_refusal_fails_the_job_with_the_reason_and_trains_the_others(engine: Engine, world: dict[str, Any]) -> None:
    with Session(engine) as session:
        e = models.element_of(models.get(session, "pump7"), "envelope")
        models.change_element(session, ALICE, "pump7", "envelope", kind=e.kind, inputs=e.inputs, outputs=e.outputs,
                              window=1, params=e.params, training={**e.training, "markups": ["nothing"]},
                              detection=e.detection)
        session.commit()
    job_id = queue(engine)
    world["pool"].run_once()
    job = job_of(engine, job_id)
    assert job["state"] == "failed"
    assert "element 'envelope'" in job["error"] and "no grid point" in job["error"]
    assert job["progress"]["results"]["envelope"] == {
        "state": "failed", "reason": "no_points", "error": job["progress"]["results"]["envelope"]["error"],
        "field": "training.markups"}
    assert job["progress"]["results"]["pressure"]["state"] == "trained"
    assert model_of(engine)["status"] == "DRAFT"


def test_a_missing_tag_is_refused_naming_it(engine: Engine, world: dict[str, Any]) -> None:
    with Session(engine) as session:
        e = models.element_of(models.get(session, "pump7"), "envelope")
        models.change_element(session, ALICE, "pump7", "envelope", kind=e.kind, inputs=["flow", "vibration"],
                              outputs=[], window=1, params=e.params, training=e.training, detection=e.detection)
        session.commit()
    job_id = queue(engine, ["envelope"])
    world["pool"].run_once()
    job = job_of(engine, job_id)
    assert job["state"] == "failed" and "'vibration'" in job["error"]
    assert job["progress"]["results"]["envelope"]["reason"] == "missing_tag"


def test_cancelling_a_running_training_ends_it_cancelled(engine: Engine, world: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real = training.train_element
    pool: WorkerPool = world["pool"]

    def cancelled_meanwhile(snapshot: training.ElementSnapshot, *args: Any) -> Any:
        with Session(engine) as session:
            jobs.cancel(session, job_id)
            session.commit()
        pool.heartbeat()  # the worker learns of the cancellation
        return real(snapshot, *args)

    monkeypatch.setattr(training, "train_element", cancelled_meanwhile)
    job_id = queue(engine)
    pool.run_once()
    job = job_of(engine, job_id)
    assert job["state"] == "cancelled"
    assert job["progress"]["phase"] == "cancelled"
    assert model_of(engine)["status"] == "DRAFT"


def test_a_set_threshold_is_kept(engine: Engine, world: dict[str, Any]) -> None:
    with Session(engine) as session:
        e = models.element_of(models.get(session, "pump7"), "envelope")
        models.change_element(session, ALICE, "pump7", "envelope", kind=e.kind, inputs=e.inputs, outputs=e.outputs,
                              window=1, params=e.params, training=e.training, detection={**e.detection, "threshold": 42.0})
        session.commit()
    queue(engine, ["envelope"])
    world["pool"].run_once()
    artifact = element(model_of(engine), "envelope")["artifact"]
    assert artifact["threshold"] == 42.0 and artifact["threshold_derived"] is False


def test_the_payload_path_is_per_model_element_and_number() -> None:
    assert training.payload_path("pump7", "envelope", 3) == "/lifecycle/payloads/pump7/envelope/3"
    assert training.payload_root("pump7") == "/lifecycle/payloads/pump7"


@pytest.mark.parametrize("max_attempts", [3, 1])
def test_a_worker_killed_mid_training_leaves_the_job_retried_or_failed(
        engine: Engine, world: dict[str, Any], db_url: str, max_attempts: int) -> None:
    import os
    import signal
    import subprocess
    import sys

    from maas.retry import wait_until

    with Session(engine) as session:  # long enough to be killed in the middle: no early stopping
        e = models.element_of(models.get(session, "pump7"), "pressure")
        models.change_element(session, ALICE, "pump7", "pressure", kind=e.kind, inputs=e.inputs, outputs=e.outputs,
                              window=e.window, params=e.params,
                              training={**e.training, "max_epochs": 150, "patience": 150}, detection=e.detection)
        chosen = models.training_plan(session, ALICE, "pump7", ["pressure"])
        job_id = jobs.enqueue(session, training.JOB_KIND, "pump7", {"elements": [c.name for c in chosen]}, "alice",
                              max_attempts=max_attempts).id
        session.commit()
    procs: list[subprocess.Popen[str]] = []

    def worker(*flags: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "tests.lifecycle.training_worker", db_url, world["store"].uri,
                                 "--lease", "1", *flags], cwd=Path(__file__).resolve().parents[2],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return proc

    try:
        victim = worker("--stall-at-epoch", "2")  # killed mid-training, however fast epochs run
        wait_until(lambda: ((job_of(engine, job_id).get("progress") or {}).get("epoch") or 0) >= 2, timeout=120,
                   what="training to reach its second epoch")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert job_of(engine, job_id)["state"] == "running"  # until its lease runs out
        worker()
        wait_until(lambda: job_of(engine, job_id)["state"] in jobs.FINAL, timeout=300, what="the job to end")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    job = job_of(engine, job_id)
    assert job["error"] is not None and "worker died" in job["error"] and str(victim.pid) in job["error"]
    pressure = element(model_of(engine), "pressure")
    if max_attempts == 3:
        assert job["state"] == "done" and job["attempts"] == 2
        assert pressure["training_status"] == "trained" and pressure["artifact"]["epochs"] == 150
    else:
        assert job["state"] == "failed"
        assert pressure["training_status"] == "not_trained"
