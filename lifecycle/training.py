"""The ``train`` job: train a model's elements one at a time into payloads in the model store.

A job is queued by :func:`queue_training` (``POST /api/v1/models/{m}/train``); a worker of the job
queue (:mod:`lifecycle.jobs`) runs :func:`run_training` for it. For every element to train:

1. **snapshot** its definition and revision in a short transaction (an element removed since the
   job was queued is skipped; one changed since then is trained as it is now);
2. **read** the training dataset on its grid within the element's training interval ``[from, to)``
   (:meth:`lifecycle.datasets.DatasetService.read_grid`) and evaluate the learning indicator — the
   union of its training markups, every grid point without markups
   (:func:`lifecycle.markup_eval.indicator_mask`);
3. **train** it (:mod:`lifecycle.elements`), reporting each epoch and checking for cancellation;
4. **export** the payload and **upload** it to the store under
   ``/lifecycle/payloads/<model>/<element>/<n>``, ``n`` the element's training number (1, 2, … —
   a path is never reused, so every earlier payload stays until the model is deleted);
5. **record** it with :func:`lifecycle.models.mark_element_trained` in a new transaction, which
   refuses when the element's revision moved during its training (it was edited, or a markup it
   trains on changed): the result is dropped and the element stays ``not_trained``, so the model
   never ends ``TRAINED`` with a stale element. The model becomes ``TRAINED`` when every element is.

One element failing (a refusal of its data, divergence, a time-out) does not stop the others; the
job ends ``failed`` naming each failed element and its reason, else ``done``. A cancelled job stops
at the next epoch; elements already recorded stay trained.

Progress and result JSON (what ``maas_model train --wait`` shows) are documented in
docs/lifecycle.md, "Element kinds and training"; :func:`progress_document` builds them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from maas.clock import SYSTEM_CLOCK, Clock
from maas.errors import MaasError
from maas.store import ModelStore

from lifecycle import audit, jobs, markup_eval, models
from lifecycle.datasets import DatasetService
from lifecycle.elements.envelope import train_envelope
from lifecycle.elements.errors import TrainingCancelled, TrainingFailed, TrainingRefused
from lifecycle.elements.forecaster import train_forecaster
from lifecycle.elements.loop import Callbacks, EpochReport, TrainingSettings
from lifecycle.elements.params import TRAINABLE_KINDS
from lifecycle.elements.payload import write_payload
from lifecycle.elements.rule import train_rule
from lifecycle.elements.trained import TrainedElement
from lifecycle.errors import Conflict, InvalidInput, LifecycleError, NotFound, Unavailable
from lifecycle.markups import Caller, existing as existing_markups

log = logging.getLogger(__name__)

JOB_KIND = "train"
PAYLOAD_ROOT = "/lifecycle/payloads"
PROGRESS_EVERY_S = 1.0  # epochs are reported to the database at most this often (the last one always)


class TrainingJobFailed(LifecycleError):
    """Some elements of the job could not be trained; the message names each one and why."""

    http_status = 422
    exit_code = 7


def payload_root(model: str) -> str:
    """Where every payload of ``model`` lives (deleting the model deletes this)."""
    return f"{PAYLOAD_ROOT}/{model}"


def payload_path(model: str, element: str, number: int) -> str:
    return f"{payload_root(model)}/{element}/{number}"


# -- queueing ------------------------------------------------------------------------------------

def queue_training(session: Session, who: Caller, model_name: str, elements: list[str] | None = None) -> jobs.Job:
    """Check the ``train`` guards (:func:`lifecycle.models.training_plan`), queue a job and audit it."""
    chosen = models.training_plan(session, who, model_name, elements)
    model = models.get(session, model_name)
    job = jobs.enqueue(session, JOB_KIND, model_name,
                       {"elements": [e.name for e in chosen], "revisions": {e.name: e.revision for e in chosen}},
                       who.name)
    audit.record(session, actor=who.name, action="models.train", object_type="model", object_name=model_name,
                 status_before=model.status, status_after=model.status,
                 detail={"job": job.id, "elements": [e.name for e in chosen]})
    return job


# -- pure parts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElementSnapshot:
    """An element's definition as it was when its training started."""

    model: str
    name: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    window: int
    params: dict[str, Any]
    training: dict[str, Any]
    threshold: float | None
    revision: int
    markups: list[dict[str, Any]]  # the training markups' specs
    previous_number: int  # the training number of its last payload (0: never trained)

    @property
    def dataset(self) -> str:
        return str(self.training.get("dataset") or "")


def train_element(snapshot: ElementSnapshot, frame: pd.DataFrame, mask: np.ndarray, callbacks: Callbacks) -> TrainedElement:
    """Train ``snapshot`` on ``frame`` where ``mask`` holds (no I/O)."""
    settings = TrainingSettings.from_dict(snapshot.training)
    if snapshot.kind == "forecaster":
        return train_forecaster(frame, mask, snapshot.inputs, snapshot.outputs, snapshot.window, snapshot.params,
                                settings, callbacks, snapshot.threshold)
    if snapshot.kind == "envelope":
        return train_envelope(frame, mask, snapshot.inputs, snapshot.params, settings, callbacks, snapshot.threshold)
    if snapshot.kind == "rule":
        return train_rule(frame, mask, snapshot.inputs, snapshot.params, callbacks)
    raise InvalidInput(f"unknown element kind {snapshot.kind!r}", field="kind")


def training_interval(frame: pd.DataFrame, training: dict[str, Any]) -> pd.DataFrame:
    """``frame`` within the element's training interval ``[from, to)``."""
    start, end = training.get("from"), training.get("to")
    if start is not None:
        frame = frame.loc[frame.index >= pd.Timestamp(start)]
    if end is not None:
        frame = frame.loc[frame.index < pd.Timestamp(end)]
    return frame


@dataclass
class JobProgress:
    """The job's ``progress`` document, updated as elements and epochs pass."""

    model: str
    elements: list[str]
    current: str | None = None
    phase: str = "queued"
    epoch: dict[str, Any] | None = None
    max_epochs: int | None = None
    losses: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fraction(self) -> float:
        done = len(self.results)
        if self.current is None or self.current in self.results or not self.max_epochs:
            return round(done / max(len(self.elements), 1), 4)
        within = (self.epoch or {}).get("epoch", 0) / self.max_epochs
        return round((done + min(within, 1.0)) / max(len(self.elements), 1), 4)

    def document(self) -> dict[str, Any]:
        return progress_document(self)


def progress_document(p: JobProgress) -> dict[str, Any]:
    """The JSON of ``GET /api/v1/jobs/{id}``'s ``progress`` for a training job (shape documented)."""
    return {
        "model": p.model,
        "elements": p.elements,
        "element": p.current,
        "element_index": p.elements.index(p.current) + 1 if p.current in p.elements else None,
        "phase": p.phase,
        "fraction": p.fraction(),
        "epoch": None if p.epoch is None else p.epoch.get("epoch"),
        "max_epochs": p.max_epochs,
        "train_loss": None if p.epoch is None else p.epoch.get("train_loss"),
        "validation_loss": None if p.epoch is None else p.epoch.get("validation_loss"),
        "losses": p.losses,
        "results": p.results,
    }


def element_record(trained: TrainedElement, path: str, digest: str, number: int, dataset: str, job_id: int) -> dict[str, Any]:
    """What is stored on the element (``artifact``): where its payload is and how it trained."""
    summary = trained.summary()
    return {
        "path": path,
        "sha256": digest,
        "training_number": number,
        "dataset": dataset,
        "job": job_id,
        "threshold": trained.threshold,
        "threshold_derived": trained.threshold_derived,
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "stopped": summary["stopped"],
        "best_train_loss": summary["best_train_loss"],
        "best_validation_loss": summary["best_validation_loss"],
        "grid_points": summary["grid_points"],
        "train_samples": summary["train_samples"],
        "validation_samples": summary["validation_samples"],
        "validation_artifact": summary["validation_artifact"],
        "duration_s": summary["duration_s"],
        "losses": summary["losses"],
        "smoothing_halflife": trained.params.get("smoothing_halflife", 0.0),
        "despike": trained.params.get("despike", 1),
    }


# -- the job handler -----------------------------------------------------------------------------

@dataclass
class TrainingServices:
    """The backends a training job uses; the job queue passes them in ``ctx.services``."""

    store: ModelStore
    datasets: DatasetService
    clock: Clock = SYSTEM_CLOCK
    work_dir: Path | None = None

    @classmethod
    def of(cls, services: dict[str, Any]) -> "TrainingServices":
        datasets = services.get("datasets")
        store = services.get("store") or getattr(datasets, "store", None)
        if store is None:
            raise Unavailable("the training worker has no model store (services['store'])")
        datasets = datasets or DatasetService(store=store)
        return cls(store=store, datasets=datasets, clock=services.get("clock") or SYSTEM_CLOCK,
                   work_dir=services.get("work_dir"))


def _snapshot(session: Session, model_name: str, element_name: str) -> ElementSnapshot | None:
    model = models.get(session, model_name)
    try:
        element = models.element_of(model, element_name)
    except NotFound:
        return None
    specs = [row.spec for row in existing_markups(session, list(element.training.get("markups") or []),
                                                  "training.markups")]
    previous = int((element.artifact or {}).get("training_number") or 0)
    threshold = (element.detection or {}).get("threshold")
    return ElementSnapshot(
        model=model_name, name=element.name, kind=element.kind, inputs=list(element.inputs),
        outputs=list(element.outputs or []), window=int(element.window or 1), params=dict(element.params or {}),
        training=dict(element.training or {}), threshold=None if threshold is None else float(threshold),
        revision=int(element.revision), markups=specs, previous_number=previous)


def _read(services: TrainingServices, session: Session, snapshot: ElementSnapshot) -> tuple[pd.DataFrame, np.ndarray]:
    if not snapshot.dataset:
        raise TrainingRefused("no_dataset", f"element {snapshot.name!r} has no training dataset (training.dataset)",
                              field="training.dataset")
    specs = [markup_eval.parse_spec(spec) for spec in snapshot.markups]
    info = services.datasets.describe(session, snapshot.dataset)
    step = info.grid_step_s or next((s.grid_step_s for s in specs if getattr(s, "grid_step_s", None)), None)
    if step is None:
        raise TrainingRefused("no_grid", f"dataset {snapshot.dataset!r} has no grid step and no training markup gives "
                              "one (grid_step_s)", field="training.dataset")
    frame = services.datasets.read_grid(session, snapshot.dataset, step_s=step, start=snapshot.training.get("from"),
                                        end=snapshot.training.get("to"))
    frame = training_interval(frame, snapshot.training)
    mask = markup_eval.indicator_mask(specs, frame).values if len(frame) else np.zeros(0, dtype=bool)
    return frame, mask


def _next_number(store: ModelStore, snapshot: ElementSnapshot) -> int:
    number = snapshot.previous_number + 1
    try:
        while store.exists(payload_path(snapshot.model, snapshot.name, number)):
            number += 1  # left by an earlier training whose record was dropped or reset: kept, not reused
    except MaasError as exc:
        raise Unavailable(f"model store: {exc}") from exc
    return number


def _upload(services: TrainingServices, snapshot: ElementSnapshot, trained: TrainedElement, job_id: int) -> tuple[str, str, int]:
    number = _next_number(services.store, snapshot)
    path = payload_path(snapshot.model, snapshot.name, number)
    tmp = Path(tempfile.mkdtemp(prefix="maas-train-", dir=services.work_dir))
    try:
        directory = write_payload(trained, tmp / "payload", extra={
            "model": snapshot.model, "element": snapshot.name, "element_revision": snapshot.revision,
            "training_number": number, "dataset": snapshot.dataset, "job": job_id})
        try:
            result = services.store.upload(directory, path)
        except MaasError as exc:
            raise Unavailable(f"model store: uploading {path}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path, result.digest, number


def run_training(ctx: jobs.JobContext) -> dict[str, Any]:
    """The ``train`` job handler (registered with the job queue on import)."""
    services = TrainingServices.of(ctx.services)
    model_name = ctx.model or ""
    names = [str(n) for n in ctx.params.get("elements") or []]
    who = Caller(ctx.created_by)
    progress = JobProgress(model=model_name, elements=names)
    failures: dict[str, str] = {}
    last_write = [-1e18]

    def publish(force: bool = False) -> None:
        now = services.clock.monotonic()
        if force or now - last_write[0] >= PROGRESS_EVERY_S:
            last_write[0] = now
            ctx.report_progress(progress.document())

    def on_epoch(report: EpochReport) -> None:
        progress.epoch = report.as_dict()
        progress.losses.append(report.as_dict())
        publish()

    callbacks = Callbacks(on_epoch=on_epoch, cancelled=lambda: ctx.cancelled, clock=services.clock)
    for name in names:
        ctx.check_cancelled()
        progress.current, progress.phase, progress.epoch, progress.losses = name, "reading", None, []
        with ctx.sessions() as session:
            snapshot = _snapshot(session, model_name, name)
            if snapshot is None:
                progress.results[name] = {"state": "skipped", "reason": "removed", "error": "the element was removed"}
                publish(force=True)
                continue
            if snapshot.kind not in TRAINABLE_KINDS:
                progress.results[name] = {"state": "skipped", "reason": "pretrained",
                                          "error": f"a {snapshot.kind} is pretrained"}
                continue
            progress.max_epochs = TrainingSettings.from_dict(snapshot.training).max_epochs
            publish(force=True)
            try:
                frame, mask = _read(services, session, snapshot)
            except LifecycleError as exc:
                _failed(progress, failures, name, exc)
                publish(force=True)
                continue
            finally:
                session.rollback()
        progress.phase = "training"
        publish(force=True)
        try:
            trained = train_element(snapshot, frame, mask, callbacks)
        except TrainingCancelled:
            progress.phase = "cancelled"
            publish(force=True)
            raise jobs.Cancelled(f"job {ctx.job_id} was cancelled") from None
        except (TrainingRefused, TrainingFailed, InvalidInput) as exc:
            _failed(progress, failures, name, exc)
            publish(force=True)
            continue
        del frame, mask
        progress.phase = "uploading"
        publish(force=True)
        try:
            path, digest, number = _upload(services, snapshot, trained, ctx.job_id)
        except LifecycleError as exc:
            _failed(progress, failures, name, exc)
            publish(force=True)
            continue
        record = element_record(trained, path, digest, number, snapshot.dataset, ctx.job_id)
        try:
            with ctx.sessions() as session:
                model = models.mark_element_trained(session, who, model_name, name, revision=snapshot.revision,
                                                    artifact=record)
                status = model.status
                session.commit()
        except Conflict as exc:  # edited during its training, or the model is no longer editable
            _failed(progress, failures, name, exc, reason="stale")
            publish(force=True)
            continue
        summary = {k: v for k, v in record.items() if k != "losses"}
        progress.results[name] = {"state": "trained", **summary, "model_status": status}
        progress.phase = "trained"
        publish(force=True)
    progress.current, progress.phase = None, "done" if not failures else "failed"
    final = progress.document()
    with ctx.sessions() as session:
        final["model_status"] = models.get(session, model_name).status
        session.rollback()
    ctx.report_progress(final)
    if failures:
        raise TrainingJobFailed("; ".join(f"element {n!r}: {m}" for n, m in failures.items()))
    return {"model": model_name, "model_status": final["model_status"], "elements": progress.results}


def _failed(progress: JobProgress, failures: dict[str, str], name: str, exc: LifecycleError,
            reason: str | None = None) -> None:
    code = reason or getattr(exc, "reason", None) or type(exc).__name__
    failures[name] = exc.message
    progress.results[name] = {"state": "failed", "reason": code, "error": exc.message,
                              **({"field": exc.field} if exc.field else {})}
    log.info("training %s/%s failed: %s", progress.model, name, exc.message)


jobs.register_handler(JOB_KIND, run_training)
