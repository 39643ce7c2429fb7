"""Routes of datasets (docs/lifecycle.md) and of a markup's mask over one; the logic is in
:mod:`lifecycle.datasets` and :mod:`lifecycle.markup_eval`.

* ``POST /api/v1/datasets`` (multipart: ``name``, ``file``, optional ``time_column``,
  ``grid_step_s``; right ``datasets.upload``, audited) → 201 ``{name, tags, rows, start, end, …}``
* ``GET /api/v1/datasets`` → ``{"datasets": [...]}``; ``GET /api/v1/datasets/{name}``
* ``GET /api/v1/markups/{name}/mask?dataset=D[&from=&to=&grid_step_s=]`` → the markup evaluated
  over the dataset's grid: ``{markup, dataset, points, grid_points, inconclusive_points,
  grid_step_s, missing_tags, intervals: [{from, to}]}``
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from sqlalchemy.orm import Session

from lifecycle import audit
from lifecycle.api.deps import PrincipalDep, ServiceState, SessionDep, StateDep, audit_context, require
from lifecycle.auth import Principal
from lifecycle.datasets import DatasetService
from lifecycle.errors import InvalidInput, Unavailable
from lifecycle.markup_eval import evaluate_mask, parse_spec
from maas.errors import MaasError
from maas.store import open_store

router = APIRouter(tags=["datasets"])
Uploader = Annotated[Principal, Depends(require("datasets.upload"))]


def dataset_service(state: ServiceState) -> DatasetService:
    """The process's :class:`DatasetService` on the configured model store (made on first use)."""
    service = state.extras.get("datasets")
    if service is None:
        try:
            store = state.extras.get("store") or open_store(state.settings.store_uri)
        except MaasError as exc:
            raise Unavailable(f"model store {state.settings.store_uri}: {exc}") from exc
        state.extras.setdefault("store", store)
        service = DatasetService(store, max_upload_bytes=state.settings.max_upload_bytes,
                                 cache_dir=state.settings.data_dir / "cache" / "datasets")
        state.extras["datasets"] = service
    return service  # type: ignore[no-any-return]


def markup_mask(session: Session, service: DatasetService, spec: dict[str, Any], dataset: str, *,
                start: dt.datetime | None = None, end: dt.datetime | None = None,
                grid_step_s: float | None = None) -> dict[str, Any]:
    """A markup spec evaluated over ``dataset``: on its grid (the markup's step, else the given one,
    else the dataset's), from ``start`` to ``end`` (the dataset's span by default)."""
    parsed = parse_spec(spec)
    step = parsed.grid_step_s or grid_step_s or service.describe(session, dataset).grid_step_s
    if step is None:
        raise InvalidInput(f"neither the markup nor the dataset {dataset!r} has a grid step: give grid_step_s",
                           field="grid_step_s")
    grid = service.read_grid(session, dataset, step, start, end)
    mask = evaluate_mask(parsed, grid)
    return {"dataset": dataset, **mask.to_json()}


@router.post("/api/v1/datasets", status_code=201, name="datasets.upload")
def upload_dataset(request: Request, session: SessionDep, state: StateDep, who: Uploader,
                   name: Annotated[str, Form(max_length=100)], file: Annotated[UploadFile, File()],
                   time_column: Annotated[str | None, Form(max_length=200)] = None,
                   grid_step_s: Annotated[float | None, Form(gt=0)] = None) -> dict[str, Any]:
    audit_context(request, object_type="dataset", object_name=name)
    service = dataset_service(state)
    info = service.upload(session, name=name, source=file.file, actor=who.name, filename=file.filename,
                          time_column=time_column or None, grid_step_s=grid_step_s)
    audit.record(session, actor=who.name, action="datasets.upload", object_type="dataset", object_name=info.name,
                 detail={"sha256": info.sha256, "rows": info.rows, "tags": len(info.tags), "format": info.source_format})
    return info.to_json()


@router.get("/api/v1/datasets", name="datasets.list")
def list_datasets(session: SessionDep, state: StateDep, _: PrincipalDep) -> dict[str, Any]:
    return {"datasets": [d.to_json() for d in dataset_service(state).list(session)]}


@router.get("/api/v1/datasets/{name}", name="datasets.show")
def show_dataset(name: str, session: SessionDep, state: StateDep, _: PrincipalDep) -> dict[str, Any]:
    return dataset_service(state).describe(session, name).to_json()


@router.get("/api/v1/markups/{name}/mask", name="markups.mask")
def mask_of_markup(name: str, session: SessionDep, state: StateDep, _: PrincipalDep,
                   dataset: Annotated[str, Query(min_length=1, max_length=100)],
                   start: Annotated[dt.datetime | None, Query(alias="from")] = None,
                   end: Annotated[dt.datetime | None, Query(alias="to")] = None,
                   grid_step_s: Annotated[float | None, Query(gt=0)] = None) -> dict[str, Any]:
    from lifecycle import markups

    record = markups.get(session, name)
    spec = {k: v for k, v in dict(record.spec).items() if k not in ("name", "description")}
    return {"markup": name, **markup_mask(session, dataset_service(state), spec, dataset, start=start, end=end,
                                          grid_step_s=grid_step_s)}
