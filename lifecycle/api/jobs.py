"""Routes of jobs (docs/lifecycle.md) and the job workers of a ``maas_lifecycle serve`` process.

* ``GET /api/v1/jobs[?state=&model=&kind=&limit=&before=]`` → ``{"jobs": [...], "next": id|null}``
  (newest first; ``before=next`` gives the next page)
* ``GET /api/v1/jobs/{id}`` → ``{id, kind, model, state, params, created_by, created_at,
  started_at, ended_at, attempts, max_attempts, worker, cancel_requested, progress, result, error}``
* ``POST /api/v1/jobs/{id}/cancel`` → the job (a queued job is ``cancelled`` at once, a running
  one gets ``cancel_requested`` and stops at its handler's next check). The right is the one that
  starts such jobs (:data:`CANCEL_RIGHTS`: ``train`` → ``models.train``, ``inference`` →
  ``models.infer``); audited.

The workers: when the app starts with ``--workers N`` > 0, a :class:`~lifecycle.jobs.WorkerPool`
of N threads runs the registered handlers (the modules of :data:`HANDLER_MODULES` register
theirs when imported); it stops with the app.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from lifecycle import audit, jobs
from lifecycle.api import app as app_module
from lifecycle.api.deps import PrincipalDep, ServiceState, SessionDep, audit_context
from lifecycle.errors import Forbidden

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

#: The right needed to cancel a job of each kind (other kinds: ``admin``).
CANCEL_RIGHTS = {"train": "models.train", "inference": "models.infer"}
#: Modules that register job handlers when imported (those that exist).
HANDLER_MODULES = ("lifecycle.training", "lifecycle.inference")


@router.get("", name="jobs.list")
def list_jobs(session: SessionDep, _: PrincipalDep,
              state: Annotated[str | None, Query(max_length=20)] = None,
              model: Annotated[str | None, Query(max_length=100)] = None,
              kind: Annotated[str | None, Query(max_length=50)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              before: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    found = jobs.list_jobs(session, state=state, model=model, kind=kind, limit=limit, before_id=before)
    return {"jobs": [j.to_json() for j in found], "next": found[-1].id if len(found) == limit else None}


@router.get("/{job_id}", name="jobs.show")
def show_job(job_id: int, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return jobs.get(session, job_id).to_json()


@router.post("/{job_id}/cancel", name="jobs.cancel")
def cancel_job(job_id: int, request: Request, session: SessionDep, who: PrincipalDep) -> dict[str, Any]:
    job = jobs.get(session, job_id)
    audit_context(request, object_type="job", object_name=str(job_id), status_before=job.state)
    right = CANCEL_RIGHTS.get(job.kind, "admin")
    if not who.has(right):
        raise Forbidden(right, f"{who.name!r} lacks the right {right!r} needed to cancel a {job.kind} job")
    before = job.state
    job = jobs.cancel(session, job_id)
    audit.record(session, actor=who.name, action="jobs.cancel", object_type="job", object_name=str(job_id),
                 status_before=before, status_after=job.state, detail={"kind": job.kind, "model": job.model})
    return job.to_json()


# -- the workers of the process -------------------------------------------------------------------
def start_workers(state: ServiceState) -> None:
    n = state.settings.workers
    if n <= 0:
        return
    for name in HANDLER_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    from lifecycle.api.datasets import dataset_service

    services: dict[str, Any] = {"settings": state.settings, "state": state}
    try:
        services["datasets"] = dataset_service(state)
        services["store"] = state.extras.get("store")
    except Exception:  # handlers that need the store fail their jobs with the reason; the rest run
        log.exception("the model store cannot be opened; job handlers will not have it")
    pool = jobs.WorkerPool(state.engine, n=n, services=services)
    pool.start()
    state.extras["workers"] = pool
    log.info("%d job workers running %s", n, ", ".join(sorted(pool.handlers)) or "no handlers yet")


def stop_workers(state: ServiceState) -> None:
    pool = state.extras.pop("workers", None)
    if pool is not None:
        pool.stop()


# Registered at import: create_app imports this router before the app starts.
if start_workers not in app_module.STARTUP_HOOKS:
    app_module.STARTUP_HOOKS.append(start_workers)
    app_module.SHUTDOWN_HOOKS.append(stop_workers)
