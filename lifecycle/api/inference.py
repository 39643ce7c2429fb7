"""Routes of inference and its results (docs/lifecycle.md); the logic is in :mod:`lifecycle.inference`.

* ``POST /api/v1/models/{m}/inference`` ``{mode: "historical", dataset, from, to}`` → 202 with the
  ``inference`` job (right ``models.infer``; the model ``TRAINED`` or ``PUBLISHED``; audited).
* ``DELETE /api/v1/models/{m}/inference`` → cancels the model's queued and running inference jobs
  and removes its element instances (right ``models.infer``; audited).
* ``POST /api/v1/models/{m}/inference`` ``{mode: "streaming"}`` → 201, starts the model's stream
  (its trained elements deployed, detectors ready); ``POST /api/v1/models/{m}/stream`` with JSON
  lines as the body (``application/x-ndjson``) feeds it — starting it when it is not running — and
  answers ``{lines, points, bad_lines, errors: [{line, error, field}], events: [...]}`` for that
  body, line numbers counting from the stream's start; incidents are recorded as they happen
  (``source: streaming``) and notified. ``DELETE …/inference`` also ends the stream.
* ``GET /api/v1/models/{m}/results?element=&from=&to=&limit=&cursor=`` → ``{"points": [{time,
  element, artifact, threshold, anomalous, counted, predictions}], "next": cursor|null}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lifecycle import inference
from lifecycle.api.datasets import dataset_service
from lifecycle.api.deps import PrincipalDep, ServiceState, SessionDep, StateDep, audit_context, require, store_of
from lifecycle.auth import Principal
from lifecycle.errors import InvalidInput
from lifecycle.markups import Caller

router = APIRouter(prefix="/api/v1/models", tags=["inference"])
Inferrer = Annotated[Principal, Depends(require("models.infer"))]
#: Largest body of one ``POST …/stream`` (send a long stream in chunks).
MAX_STREAM_BODY = 16 << 20


class InferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    mode: Literal["historical", "streaming"]
    dataset: str | None = Field(None, min_length=1, max_length=100)
    from_: dt.datetime | None = Field(None, alias="from")
    to: dt.datetime | None = None

    @model_validator(mode="after")
    def _historical(self) -> "InferenceIn":
        if self.mode == "historical":
            for name, value in (("dataset", self.dataset), ("from", self.from_), ("to", self.to)):
                if value is None:
                    raise ValueError(f"a historical run needs {name}")
        return self


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


@router.post("/{m}/inference", status_code=202, name="models.infer")
def start(m: str, body: InferenceIn, request: Request, response: Response, session: SessionDep, state: StateDep,
          who: Inferrer) -> dict[str, Any]:
    audit_context(request, object_type="model", object_name=m)
    if body.mode == "streaming":
        response.status_code = 201
        return inference.start_stream(session, Caller(who.name), m, services_of(state))
    assert body.dataset is not None and body.from_ is not None and body.to is not None
    job = inference.queue_historical(session, Caller(who.name), m, body.dataset, body.from_, body.to,
                                     dataset_service(state))
    return job.to_json()


def services_of(state: ServiceState) -> dict[str, Any]:
    """The process's services for inference (shared with its job workers' when they run)."""
    pool = state.extras.get("workers")
    services = pool.services if pool is not None else state.extras.setdefault("inference_services", {})
    services.setdefault("settings", state.settings)
    if services.get("store") is None:
        services["store"] = store_of(state)
    return services  # type: ignore[no-any-return]


@router.post("/{m}/stream", name="models.stream")
async def stream(m: str, request: Request, session: SessionDep, state: StateDep, who: Inferrer) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_STREAM_BODY:
        raise InvalidInput(f"a stream body has at most {MAX_STREAM_BODY} bytes; send smaller chunks", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 (byte {exc.start})", field="body") from None
    return await run_in_threadpool(inference.feed_stream, session, Caller(who.name), m, text.splitlines(),
                                   services_of(state))


@router.delete("/{m}/inference", name="models.infer_stop")
def stop(m: str, request: Request, session: SessionDep, state: StateDep, who: Inferrer) -> dict[str, Any]:
    audit_context(request, object_type="model", object_name=m)
    return inference.stop(session, Caller(who.name), m, services_of(state))


@router.get("/{m}/results", name="models.results")
def results(m: str, session: SessionDep, _: PrincipalDep,
            element: Annotated[str | None, Query(max_length=100)] = None,
            from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
            to: Annotated[dt.datetime | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
            cursor: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    return inference.results_page(session, m, element=element, start=_utc(from_), end=_utc(to), limit=limit,
                                  cursor=cursor)
