"""Routes of inference and its results (DESIGN.md §12); the logic is in :mod:`lifecycle.inference`.

* ``POST /api/v1/models/{m}/inference`` ``{mode: "historical", dataset, from, to}`` → 202 with the
  ``inference`` job (right ``models.infer``; the model ``TRAINED`` or ``PUBLISHED``; audited).
* ``DELETE /api/v1/models/{m}/inference`` → cancels the model's queued and running inference jobs
  and removes its element instances (right ``models.infer``; audited).
* ``GET /api/v1/models/{m}/results?element=&from=&to=&limit=&cursor=`` → ``{"points": [{time,
  element, artifact, threshold, anomalous, counted, predictions}], "next": cursor|null}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lifecycle import inference
from lifecycle.api.datasets import dataset_service
from lifecycle.api.deps import PrincipalDep, SessionDep, StateDep, audit_context, require
from lifecycle.auth import Principal
from lifecycle.markups import Caller

router = APIRouter(prefix="/api/v1/models", tags=["inference"])
Inferrer = Annotated[Principal, Depends(require("models.infer"))]


class InferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    mode: Literal["historical"]
    dataset: str = Field(min_length=1, max_length=100)
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


@router.post("/{m}/inference", status_code=202, name="models.infer")
def start(m: str, body: InferenceIn, request: Request, session: SessionDep, state: StateDep,
          who: Inferrer) -> dict[str, Any]:
    audit_context(request, object_type="model", object_name=m)
    job = inference.queue_historical(session, Caller(who.name), m, body.dataset, body.from_, body.to,
                                     dataset_service(state))
    return job.to_json()


@router.delete("/{m}/inference", name="models.infer_stop")
def stop(m: str, request: Request, session: SessionDep, state: StateDep, who: Inferrer) -> dict[str, Any]:
    audit_context(request, object_type="model", object_name=m)
    services = {"settings": state.settings, "store": state.extras.get("store"), **state.extras}
    return inference.stop(session, Caller(who.name), m, services)


@router.get("/{m}/results", name="models.results")
def results(m: str, session: SessionDep, _: PrincipalDep,
            element: Annotated[str | None, Query(max_length=100)] = None,
            from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
            to: Annotated[dt.datetime | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
            cursor: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    return inference.results_page(session, m, element=element, start=_utc(from_), end=_utc(to), limit=limit,
                                  cursor=cursor)
