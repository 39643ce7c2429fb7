"""Historical inference of an ML model over ``[from, to)`` of a dataset, as a job (docs/lifecycle.md, §12).

``POST /api/v1/models/{m}/inference {mode: "historical", dataset, from, to}`` queues an
``inference`` job (:func:`queue_historical`); a worker runs :func:`run_inference`:

1. **snapshot** the model (``TRAINED`` or ``PUBLISHED``; ``production`` when ``PUBLISHED``) and its
   elements with their payloads, thresholds and detection settings;
2. **read** the dataset on its grid over ``[from, to)`` and evaluate the model's **inference
   indicator** (the union of its inference markups; every point when it has none);
3. **score** every element through an :class:`InferenceBackend`: trained elements by their
   payload — :class:`MaasBackend` deploys each payload through the MaaS queue (controller, runner,
   ``model_server``, registration), waits for its endpoints and calls them through discovery and the
   gateway in micro-batches; :class:`InProcessBackend` runs the same ``model.onnx`` through
   onnxruntime in this process (used when the service has no ``-zq`` cluster) — and rule elements
   in-process through ``stellar_like``;
4. **despike and smooth** the point artifact (:mod:`lifecycle.elements.artifact`), compare it with
   the threshold and run the element's :class:`~lifecycle.detector.Detector`; points outside the
   indicator are gaps;
5. **replace** the model's results and historical incidents of ``[from, to)`` by the new ones in
   one transaction (a rerun over the same interval replaces them), and notify the incident events.

Results: one row per grid point and element (``inference_results``): artifact (smoothed),
threshold, anomalous, predictions, and whether the point was inside the indicator; read with
:func:`results_page` (``GET /api/v1/models/{m}/results``, paged by cursor).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Boolean, Float, Integer, String, UniqueConstraint, delete, insert, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column

from lifecycle import audit, incidents, jobs, markup_eval, models, notify
from lifecycle.datasets import DatasetService
from lifecycle.db import Base, UTCDateTime
from lifecycle.detector import DetectionSettings, Detector, Event, Point
from lifecycle.elements.artifact import smooth_runs
from lifecycle.elements.rule import RULE_THRESHOLD, RuleModel
from lifecycle.elements.trained import Scores
from lifecycle.errors import Conflict, InvalidInput, LifecycleError, Unavailable
from lifecycle.markups import Caller, existing as existing_markups
from lifecycle.status import Status

log = logging.getLogger(__name__)

JOB_KIND = "inference"
INFERABLE = (Status.TRAINED.value, Status.PUBLISHED.value)
RESULT_BATCH = 5000


class InferenceResult(Base):
    __tablename__ = "inference_results"
    __table_args__ = (UniqueConstraint("model", "element", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    element: Mapped[str] = mapped_column(String(100))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    artifact: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    anomalous: Mapped[bool] = mapped_column(Boolean)
    counted: Mapped[bool] = mapped_column(Boolean)
    predictions: Mapped[dict[str, float] | None] = mapped_column(JSON)
    run: Mapped[int | None] = mapped_column(Integer)


# -- the backends -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElementRun:
    """What scoring one element needs."""

    name: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    window: int
    params: dict[str, Any]
    detection: dict[str, Any]
    artifact: dict[str, Any]  # the training record: path, sha256, threshold, smoothing …

    @property
    def payload_path(self) -> str:
        return str(self.artifact.get("path") or "")

    @property
    def tags(self) -> list[str]:
        """The tags its contributions are about."""
        return self.outputs if self.kind == "forecaster" else self.inputs


class ElementScorer(Protocol):
    def score(self, frame: pd.DataFrame) -> Scores: ...


class InferenceBackend(Protocol):
    """Where trained elements run: ``start`` them for a model, ``stop`` them (idempotent)."""

    def start(self, model: str, elements: Sequence[ElementRun]) -> dict[str, ElementScorer]: ...

    def stop(self, model: str) -> None: ...


class InProcessBackend:
    """Trained elements' payloads downloaded from the store and run through onnxruntime here."""

    def __init__(self, store: Any, work_dir: Path | None = None) -> None:
        self.store = store
        self.work_dir = work_dir
        self._dirs: dict[str, list[Path]] = {}

    def start(self, model: str, elements: Sequence[ElementRun]) -> dict[str, ElementScorer]:
        from lifecycle.elements.runner import PayloadScorer

        out: dict[str, ElementScorer] = {}
        for e in elements:
            tmp = Path(tempfile.mkdtemp(prefix="maas-infer-", dir=self.work_dir))
            self._dirs.setdefault(model, []).append(tmp)
            try:
                self.store.download(e.payload_path, tmp / "payload")
            except Exception as exc:
                raise Unavailable(f"model store: downloading {e.payload_path}: {exc}") from exc
            out[e.name] = PayloadScorer(tmp / "payload")
        return out

    def stop(self, model: str) -> None:
        for d in self._dirs.pop(model, []):
            shutil.rmtree(d, ignore_errors=True)


def instance_name(model: str, element: str) -> str:
    """The MaaS model name of an element's instances (MaaS names: letters, digits, ``._-``)."""
    clean = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{model}.{element}")
    return ("lifecycle." + clean)[:128]


class GatewayScorer:
    """An element served by MaaS, called through the gateway in micro-batches of grid points."""

    def __init__(self, gateway: Any, name: str, version: str, metadata: Mapping[str, Any],
                 retry_s: float = 120.0) -> None:
        self.gateway, self.name, self.version = gateway, name, version
        self.kind = str(metadata["kind"])
        self.inputs, self.outputs = list(metadata["inputs"]), list(metadata.get("outputs") or [])
        self.window, self.horizon = int(metadata["window"]), int(metadata.get("horizon") or 0)
        self.arguments: dict[str, str] = dict(metadata["arguments"])  # argument → tag
        #: Seconds unanswered rows are sent again (an instance restarting) before they become gaps.
        self.retry_s = retry_s
        self.retried = 0

    def score(self, frame: pd.DataFrame) -> Scores:
        from lifecycle.elements import indicator

        x = frame.loc[:, self.inputs].to_numpy(dtype=np.float64)
        breaks = indicator.contiguous(frame)
        tag_of_in = {tag: arg for arg, tag in self.arguments.items() if not arg.startswith("actual.")}
        tag_of_out = {tag: arg for arg, tag in self.arguments.items() if arg.startswith("actual.")}
        if self.kind == "forecaster":
            y = frame.loc[:, self.outputs].to_numpy(dtype=np.float64)
            complete = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
            positions = indicator.window_ends(complete, self.window + self.horizon, breaks)
            windows = indicator.windows(x, positions, self.window, self.horizon)
            rows = [{**{tag_of_in[t]: (w[:, i].tolist() if self.window > 1 else float(w[0, i]))
                        for i, t in enumerate(self.inputs)},
                     **{tag_of_out[t]: float(y[p, j]) for j, t in enumerate(self.outputs)}}
                    for w, p in zip(windows, positions)]
        else:
            positions = np.flatnonzero(np.isfinite(x).all(axis=1))
            rows = [{tag_of_in[t]: float(x[p, i]) for i, t in enumerate(self.inputs)} for p in positions]
        answers = self._answers(rows)
        width = len(self.outputs) if self.kind == "forecaster" else len(self.inputs)
        artifact = np.full(len(positions), np.nan)
        contributions = np.full((len(positions), width), np.nan)
        predictions = np.full((len(positions), len(self.outputs)), np.nan)
        for k, answer in enumerate(answers):
            if not answer:  # the gateway logged why; the point is a gap
                continue
            artifact[k] = float(answer.get("artifact", math.nan))
            c = answer.get("contributions")
            if isinstance(c, list) and len(c) == width:
                contributions[k] = c
            for j, tag in enumerate(self.outputs):
                v = answer.get(tag)
                predictions[k, j] = float(v) if isinstance(v, (int, float)) else math.nan
        return Scores(positions, artifact, predictions if self.kind == "forecaster" else None, contributions)


    def _answers(self, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The instances' answers; rows left unanswered (an instance died, none registered for a
        while) are sent again with backoff until ``retry_s`` has passed, so a restart of an
        instance costs time, not points."""
        import time

        from maas.retry import Backoff

        answers: list[dict[str, Any] | None] = [None] * len(rows)
        todo = list(range(len(rows)))
        backoff = Backoff(initial=0.2, multiplier=2.0, max_delay=5.0)
        started = time.monotonic()
        for attempt in range(10_000):
            endpoint = self.gateway.get_endpoint(self.name, self.version)
            if endpoint is not None and todo:
                got = self.gateway.apply_batch(endpoint, "apply", [rows[i] for i in todo])
                for i, answer in zip(todo, got):
                    answers[i] = answer
                todo = [i for i, answer in zip(todo, got) if not answer]
            if not todo:
                break
            if time.monotonic() - started > self.retry_s:
                log.warning("%s %s: %d of %d points unanswered after %.0f s", self.name, self.version, len(todo),
                            len(rows), self.retry_s)
                break
            self.retried += len(todo)
            time.sleep(backoff.delay(attempt))
        if rows and len(todo) == len(rows):
            raise Unavailable(f"no instance of {self.name} {self.version} answered within {self.retry_s:.0f} s")
        return answers


class MaasBackend:
    """Trained elements deployed through the MaaS queue and called through discovery and the gateway."""

    def __init__(self, zk_quorum: str, config_path: str, store: Any, *, timeout_s: float = 120.0,
                 work_dir: Path | None = None, instances: int = 1) -> None:
        self.zk_quorum, self.config_path, self.store = zk_quorum, config_path, store
        self.instances = instances
        self.timeout_s = timeout_s
        self.work_dir = work_dir
        self._lock = threading.Lock()
        self._deployed: dict[str, list[tuple[str, str, int]]] = {}
        self._client: Any = None
        self._discovery: Any = None
        self._gateway: Any = None

    def _connect(self) -> None:
        from deploy_client.api import DeployClient
        from enrichment.gateway import MaasGateway
        from maas.discovery import DiscoveryClient
        from maas.errors import MaasError

        if self._client is not None:
            return
        try:
            self._client = DeployClient(self.zk_quorum, self.config_path)
            self._discovery = DiscoveryClient(self._client.client, self._client.layout.service_root)
            self._discovery.wait_ready()
        except MaasError as exc:
            raise Unavailable(f"MaaS cluster at {self.zk_quorum}: {exc}") from exc
        self._gateway = MaasGateway(self._discovery)

    def start(self, model: str, elements: Sequence[ElementRun]) -> dict[str, ElementScorer]:
        import json

        from maas.errors import MaasError
        from maas.retry import wait_until

        with self._lock:
            self._connect()
        out: dict[str, ElementScorer] = {}
        requests: list[tuple[ElementRun, str, str, str]] = []
        for e in elements:
            name = instance_name(model, e.name)
            version = str(e.artifact.get("training_number") or 1)
            try:
                request = self._client.submit("ADD", name, version, num_instances=self.instances, path=e.payload_path)
            except MaasError as exc:
                raise Unavailable(f"deploying {name} {version}: {exc}") from exc
            with self._lock:
                self._deployed.setdefault(model, []).append((name, version, self.instances))
            requests.append((e, name, version, request))
        for e, name, version, request in requests:
            try:
                self._client.wait(request, timeout=self.timeout_s)
                wait_until(lambda: len(self._discovery.endpoints(name, version)) >= self.instances,
                           timeout=self.timeout_s, what=f"{self.instances} endpoint(s) of {name} {version}")
            except MaasError as exc:
                raise Unavailable(f"deploying {name} {version}: {exc}") from exc
            tmp = Path(tempfile.mkdtemp(prefix="maas-infer-", dir=self.work_dir))
            try:
                self.store.download(e.payload_path, tmp / "payload")
                metadata = json.loads((tmp / "payload" / "element.json").read_text())
            except Exception as exc:
                raise Unavailable(f"model store: reading {e.payload_path}/element.json: {exc}") from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            out[e.name] = GatewayScorer(self._gateway, name, version, metadata)
        return out

    def close(self) -> None:
        """Close the gateway, discovery and ZooKeeper connection (instances are not touched)."""
        with self._lock:
            for closing in (self._gateway, self._discovery, self._client):
                if closing is not None:
                    try:
                        closing.close()
                    except Exception:
                        log.exception("closing the MaaS backend")
            self._client = self._discovery = self._gateway = None

    def gateway_stats(self) -> dict[str, int]:
        """The gateway's counters (rows asked for, batches sent, cache hits, failures …)."""
        return dict(self._gateway.stats) if self._gateway is not None else {}

    def stop(self, model: str) -> None:
        from maas.errors import MaasError

        with self._lock:
            deployed = self._deployed.pop(model, [])
            if deployed:
                self._connect()
        for name, version, instances in deployed:
            try:  # REMOVE takes away this many instances: all those deployed
                self._client.wait(self._client.submit("REMOVE", name, version, num_instances=instances),
                                  timeout=self.timeout_s)
            except MaasError as exc:  # recorded; the next stop tries again
                log.warning("removing %s %s: %s", name, version, exc)
                with self._lock:
                    self._deployed.setdefault(model, []).append((name, version, instances))


# -- pure: from scores to points -----------------------------------------------------------------

def element_points(run: ElementRun, frame: pd.DataFrame, scores: Scores, indicator: np.ndarray,
                   threshold: float) -> tuple[list[Point], list[dict[str, Any]]]:
    """The detector's points and the result rows of one element's scores over ``frame``."""
    halflife = float(run.artifact.get("smoothing_halflife", run.params.get("smoothing_halflife", 0.0)) or 0.0)
    despike = int(run.artifact.get("despike", run.params.get("despike", 1)) or 1)
    positions = np.asarray(scores.positions, dtype=np.int64)
    smoothed = (smooth_runs(scores.artifact, positions, halflife, despike) if run.kind != "rule"
                else np.asarray(scores.artifact, dtype=np.float64))
    tags = run.tags
    values = frame.loc[:, list(dict.fromkeys(run.inputs + run.outputs))]
    points, rows = [], []
    times = frame.index
    for k, pos in enumerate(positions.tolist()):
        t = times[pos].to_pydatetime()
        art = float(smoothed[k])
        counted = bool(indicator[pos])
        if scores.contributions is not None and len(scores.contributions):
            contrib = {tag: float(c) for tag, c in zip(tags, scores.contributions[k]) if math.isfinite(c)}
        else:
            contrib = {tag: 1.0 for tag in run.inputs}  # a rule: its tags share it equally
        row_values = {tag: float(v) for tag, v in values.iloc[pos].items() if math.isfinite(v)}
        point = Point(t, art, threshold, contrib, row_values, counted=counted)
        points.append(point)
        predictions = None
        if scores.predictions is not None:
            predictions = {tag: float(v) for tag, v in zip(run.outputs, scores.predictions[k]) if math.isfinite(v)}
        rows.append({"element": run.name, "time": t, "artifact": art if math.isfinite(art) else None,
                     "threshold": threshold, "anomalous": point.anomalous, "counted": counted,
                     "predictions": predictions})
    return points, rows


# -- queueing ------------------------------------------------------------------------------------

def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def queue_historical(session: Session, who: Caller, model_name: str, dataset: str, start: dt.datetime,
                     end: dt.datetime, datasets: DatasetService) -> jobs.Job:
    """Check the guards (status, dataset, interval), queue an ``inference`` job and audit it."""
    model = models.get(session, model_name)
    if model.status not in INFERABLE:
        raise Conflict(f"model {model_name!r} is {model.status}: inference runs on TRAINED or PUBLISHED models only",
                       field="status")
    start, end = _utc(start), _utc(end)
    if start >= end:
        raise InvalidInput("from must be before to", field="from")
    datasets.describe(session, dataset)  # 404 naming it
    job = jobs.enqueue(session, JOB_KIND, model_name,
                       {"mode": "historical", "dataset": dataset, "from": start.isoformat(), "to": end.isoformat()},
                       who.name)
    audit.record(session, actor=who.name, action="models.infer", object_type="model", object_name=model_name,
                 status_before=model.status, status_after=model.status,
                 detail={"job": job.id, "mode": "historical", "dataset": dataset})
    return job


# -- the job -------------------------------------------------------------------------------------

_BACKENDS: dict[str, InferenceBackend] = {}
_BACKENDS_LOCK = threading.Lock()


def backend_of(services: Mapping[str, Any]) -> InferenceBackend:
    """The process's backend: ``services["inference_backend"]``, else MaaS when a cluster is
    configured (``-zq``), else in-process; built once per process."""
    given = services.get("inference_backend")
    if given is not None:
        return given  # type: ignore[no-any-return]
    settings = services.get("settings")
    store = services.get("store") or getattr(services.get("datasets"), "store", None)
    if store is None:
        raise Unavailable("the inference worker has no model store")
    key = f"{getattr(settings, 'zk_quorum', None)}|{getattr(settings, 'zk_root', '')}"
    with _BACKENDS_LOCK:
        if key not in _BACKENDS:
            if settings is not None and settings.zk_quorum:
                _BACKENDS[key] = MaasBackend(settings.zk_quorum, settings.zk_root, store)
            else:
                _BACKENDS[key] = InProcessBackend(store)
        return _BACKENDS[key]


def notifier_of(services: dict[str, Any]) -> notify.Notifier:
    n = services.get("notifier")
    if n is None:
        n = services.setdefault("notifier", notify.from_settings(notify.settings_from_env(dict(os.environ))))
    return n  # type: ignore[no-any-return]


@dataclass
class _Snapshot:
    model: str
    production: bool
    inference_markups: list[dict[str, Any]]
    elements: list[ElementRun] = field(default_factory=list)


def _snapshot(session: Session, name: str) -> _Snapshot:
    model = models.get(session, name)
    if model.status not in INFERABLE:
        raise Conflict(f"model {name!r} is {model.status}: inference runs on TRAINED or PUBLISHED models only",
                       field="status")
    specs = [row.spec for row in existing_markups(session, list(model.inference_markups or []), "inference_markups")]
    snap = _Snapshot(name, model.status == Status.PUBLISHED.value, specs)
    for e in model.elements:
        if not e.active:
            continue
        snap.elements.append(ElementRun(e.name, e.kind, list(e.inputs), list(e.outputs or []), int(e.window or 1),
                                        dict(e.params or {}), dict(e.detection or {}), dict(e.artifact or {})))
    return snap


def run_inference(ctx: jobs.JobContext) -> dict[str, Any]:
    """The ``inference`` job handler (registered with the job queue on import)."""
    params = ctx.params
    if params.get("mode") != "historical":
        raise InvalidInput(f"unknown inference mode {params.get('mode')!r}", field="mode")
    datasets: DatasetService | None = ctx.services.get("datasets")
    if datasets is None:
        raise Unavailable("the inference worker has no dataset service")
    start = dt.datetime.fromisoformat(params["from"])
    end = dt.datetime.fromisoformat(params["to"])
    with ctx.sessions() as session:
        snap = _snapshot(session, ctx.model or "")
        info = datasets.describe(session, params["dataset"])
        frame = datasets.read_grid(session, params["dataset"], start=start, end=end)
    frame = frame[(frame.index >= pd.Timestamp(start)) & (frame.index < pd.Timestamp(end))]
    step = float(info.grid_step_s or 0)
    specs = [markup_eval.parse_spec(s) for s in snap.inference_markups]
    indicator = (markup_eval.indicator_mask(specs, frame).values if len(frame) else np.zeros(0, dtype=bool))
    progress: dict[str, Any] = {"grid_points": len(frame), "indicator_points": int(indicator.sum()),
                                "elements": {e.name: "queued" for e in snap.elements}}
    ctx.report_progress(progress)

    trained = [e for e in snap.elements if e.kind != "rule"]
    missing = [e.name for e in trained if not e.payload_path]
    if missing:
        raise Conflict(f"element(s) {', '.join(missing)} have no trained payload", field="elements")
    backend = backend_of(ctx.services)
    scorers = backend.start(snap.model, trained) if trained else {}
    events: list[Event] = []
    rows: list[dict[str, Any]] = []
    try:
        for e in snap.elements:
            ctx.check_cancelled()
            progress["elements"][e.name] = "running"
            ctx.report_progress(progress)
            settings = DetectionSettings.of_element(
                e.detection, RULE_THRESHOLD if e.kind == "rule" else e.artifact.get("threshold"))
            if e.kind == "rule":
                scores = RuleModel(e.inputs, str(e.params["expression"]),
                                   bool(e.params.get("inconclusive_positive"))).score(frame)
            else:
                scores = scorers[e.name].score(frame)
            points, element_rows = element_points(e, frame, scores, indicator, settings.threshold)
            detector = Detector(settings, model=snap.model, element=e.name, kind=e.kind, step_s=step,
                                production=snap.production)
            events.extend(detector.run(points))
            rows.extend(element_rows)
            progress["elements"][e.name] = {"state": "done", "points": len(points),
                                            "anomalous": sum(1 for r in element_rows if r["anomalous"])}
            ctx.report_progress(progress)
    finally:
        if not params.get("keep_instances"):
            backend.stop(snap.model)
    ctx.check_cancelled()
    with ctx.sessions.begin() as session:
        removed = replace_interval(session, snap.model, start, end, rows, events, run=ctx.job_id)
    n = notifier_of(ctx.services)
    for event in events:
        n.notify(event)
    opened = sum(1 for ev in events if ev.kind == "opened")
    return {"grid_points": len(frame), "indicator_points": int(indicator.sum()), "results": len(rows),
            "incidents": opened, "replaced": removed}


def replace_interval(session: Session, model: str, start: dt.datetime, end: dt.datetime,
                     rows: Sequence[dict[str, Any]], events: Sequence[Event], *, run: int | None) -> dict[str, int]:
    """Replace ``model``'s results and historical incidents of ``[start, end)`` (one transaction)."""
    gone = session.execute(delete(InferenceResult).where(InferenceResult.model == model,
                                                         InferenceResult.time >= start, InferenceResult.time < end))
    gone_incidents = incidents.delete_between(session, model, start, end)
    for lo in range(0, len(rows), RESULT_BATCH):
        session.execute(insert(InferenceResult), [{**r, "model": model, "run": run} for r in rows[lo:lo + RESULT_BATCH]])
    for event in events:
        incidents.apply_event(session, event, source="historical", run=run)
    return {"results": int(gone.rowcount or 0), "incidents": gone_incidents}


# -- reading results -----------------------------------------------------------------------------

def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def results_page(session: Session, model: str, *, element: str | None = None, start: dt.datetime | None = None,
                 end: dt.datetime | None = None, limit: int = 1000, cursor: str | None = None) -> dict[str, Any]:
    """``{"points": [...], "next": cursor|null}`` in time order (then element)."""
    models.get(session, model)  # 404 naming it
    stmt = select(InferenceResult).where(InferenceResult.model == model)
    if element is not None:
        stmt = stmt.where(InferenceResult.element == element)
    if start is not None:
        stmt = stmt.where(InferenceResult.time >= start)
    if end is not None:
        stmt = stmt.where(InferenceResult.time < end)
    if cursor:
        try:
            at_s, _, id_s = cursor.partition("~")
            after = (dt.datetime.fromisoformat(at_s.replace("Z", "+00:00")), int(id_s))
        except ValueError:
            raise InvalidInput("cursor: not a cursor of this listing (use the answer's next)", field="cursor") from None
        stmt = stmt.where(tuple_(InferenceResult.time, InferenceResult.id) > after)
    found = list(session.scalars(stmt.order_by(InferenceResult.time, InferenceResult.id).limit(limit + 1)))
    page = found[:limit]
    return {"points": [{"time": _iso(r.time), "element": r.element, "artifact": r.artifact, "threshold": r.threshold,
                        "anomalous": r.anomalous, "counted": r.counted, "predictions": r.predictions or {}}
                       for r in page],
            "next": f"{_iso(page[-1].time)}~{page[-1].id}" if len(found) > limit else None}


def stop(session: Session, who: Caller, model_name: str, services: dict[str, Any]) -> dict[str, Any]:
    """Cancel the model's queued or running inference jobs, end its stream, remove its instances."""
    model = models.get(session, model_name)
    cancelled = []
    for j in jobs.list_jobs(session, model=model_name, kind=JOB_KIND, limit=1000):
        if j.state in ("queued", "running"):
            jobs.cancel(session, j.id)
            cancelled.append(j.id)
    ended = _sessions(services).close(model_name)
    try:
        if ended is not None:
            with ended.lock:
                _record_stream_events(session, ended, ended.stream.flush(), services)
        backend_of(services).stop(model_name)
        backend_of(services).stop(stream_key(model_name))
    except LifecycleError:
        raise
    except Exception as exc:
        raise Unavailable(f"removing the instances of {model_name!r}: {exc}") from exc
    audit.record(session, actor=who.name, action="models.infer_stop", object_type="model", object_name=model_name,
                 status_before=model.status, status_after=model.status,
                 detail={"cancelled": cancelled, "stream": ended is not None})
    return {"model": model_name, "cancelled": cancelled, "stream_ended": ended is not None}


# -- streams ---------------------------------------------------------------------------------------

def stream_key(model: str) -> str:
    """The backend key of a model's stream (its own instances, apart from historical runs')."""
    return f"{model}.stream"


def _sessions(services: dict[str, Any]) -> Any:
    from lifecycle.streaming import StreamSessions

    return services.setdefault("streams", StreamSessions())


def _open_stream(session: Session, model_name: str, services: dict[str, Any]) -> tuple[Any, bool]:
    from lifecycle.streaming import ModelStream

    def make(run: int) -> ModelStream:
        snap = _snapshot(session, model_name)
        step = _stream_step(session, snap)
        trained = [e for e in snap.elements if e.kind != "rule"]
        missing = [e.name for e in trained if not e.payload_path]
        if missing:
            raise Conflict(f"element(s) {', '.join(missing)} have no trained payload", field="elements")
        scorers = backend_of(services).start(stream_key(model_name), trained) if trained else {}
        return ModelStream(model_name, snap.elements, scorers, step_s=step,
                           inference_markups=snap.inference_markups, production=snap.production,
                           clock=lambda: dt.datetime.now(dt.timezone.utc))

    return _sessions(services).open(model_name, make)


def _stream_step(session: Session, snap: "_Snapshot") -> float:
    """The grid step of a stream: that of the elements' training dataset."""
    from lifecycle.datasets import DatasetRecord

    for e in snap.elements:
        name = e.artifact.get("dataset")
        if name:
            rec = session.scalar(select(DatasetRecord).where(DatasetRecord.name == name))
            if rec is not None and rec.grid_step_s:
                return float(rec.grid_step_s)
    raise Conflict("the grid step of the stream is unknown: no element was trained on a dataset with one",
                   field="grid_step_s")


def start_stream(session: Session, who: Caller, model_name: str, services: dict[str, Any]) -> dict[str, Any]:
    """Start the model's stream (TRAINED or PUBLISHED); audited."""
    model = models.get(session, model_name)
    if model.status not in INFERABLE:
        raise Conflict(f"model {model_name!r} is {model.status}: inference runs on TRAINED or PUBLISHED models only",
                       field="status")
    stream, made = _open_stream(session, model_name, services)
    if not made:
        raise Conflict(f"model {model_name!r} streams already (DELETE …/inference ends it)", field="mode")
    audit.record(session, actor=who.name, action="models.infer", object_type="model", object_name=model_name,
                 status_before=model.status, status_after=model.status, detail={"mode": "streaming", "run": stream.run})
    return {"model": model_name, "mode": "streaming", "run": stream.run, "step_s": stream.stream.step}


def _record_stream_events(session: Session, stream: Any, events: Sequence[Event], services: dict[str, Any]) -> None:
    for event in events:
        incidents.apply_event(session, event, source="streaming", run=stream.run)
    n = notifier_of(services)
    for event in events:
        n.notify(event)


def feed_stream(session: Session, who: Caller, model_name: str, lines: Sequence[str],
                services: dict[str, Any]) -> dict[str, Any]:
    """Feed ``lines`` to the model's stream (started when it is not running); what they caused."""
    model = models.get(session, model_name)
    if model.status not in INFERABLE:
        raise Conflict(f"model {model_name!r} is {model.status}: inference runs on TRAINED or PUBLISHED models only",
                       field="status")
    stream, made = _open_stream(session, model_name, services)
    if made:
        audit.record(session, actor=who.name, action="models.infer", object_type="model", object_name=model_name,
                     status_before=model.status, status_after=model.status,
                     detail={"mode": "streaming", "run": stream.run})
    with stream.lock:
        s = stream.stream
        before_points = s.report.points
        s.report.take_errors()
        first = s.report.lines + 1
        events: list[Event] = []
        for k, text in enumerate(lines):
            events.extend(s.feed(first + k, text))
        events.extend(s.flush())
        _record_stream_events(session, stream, events, services)
        errors = s.report.take_errors()
        return {"model": model_name, "run": stream.run, "lines": len(lines), "points": s.report.points - before_points,
                "bad_lines": len(errors), "errors": [e.to_json() for e in errors],
                "events": [e.to_json() for e in events], "total": s.report.to_json()}


jobs.register_handler(JOB_KIND, run_inference)
