"""Routes of incidents and incident statuses (docs/lifecycle.md, §12); the logic is in :mod:`lifecycle.incidents`.

* ``GET /api/v1/incidents?model=&element=&status=&from=&to=&production=&group=&limit=&cursor=`` →
  ``{"incidents": [...], "next": cursor|null}``, newest first; ``from``/``to`` select incidents
  overlapping ``[from, to)``; ``cursor=next`` gives the next page.
* ``GET /api/v1/incidents/export?format=csv|json&<the same filters>`` → every matching incident as a
  file (``incidents.csv`` / ``incidents.json``).
* ``GET /api/v1/incidents/{id}``; ``PATCH /api/v1/incidents/{id}`` ``{status, cause, opinion, note}``
  (any subset; ``null`` clears cause, opinion or note) — triage, right ``incidents.edit``, audited
  with the status before → after.
* ``GET /api/v1/incident-statuses``; ``POST /api/v1/incident-statuses`` ``{name}`` and
  ``DELETE /api/v1/incident-statuses/{name}`` (an addition no incident uses) — right ``admin``, audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from lifecycle import audit, incidents
from lifecycle.api.deps import PrincipalDep, SessionDep, audit_context, require
from lifecycle.auth import Principal

router = APIRouter(prefix="/api/v1", tags=["incidents"])
Editor = Annotated[Principal, Depends(require("incidents.edit"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class TriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, min_length=1, max_length=incidents.MAX_STATUS)
    cause: str | None = Field(None, max_length=incidents.MAX_CAUSE)
    opinion: str | None = Field(None, max_length=incidents.MAX_TEXT)
    note: str | None = Field(None, max_length=incidents.MAX_TEXT)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=incidents.MAX_STATUS)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def incident_filter(
    model: Annotated[str | None, Query(max_length=100)] = None,
    element: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=incidents.MAX_STATUS)] = None,
    from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: Annotated[dt.datetime | None, Query()] = None,
    production: Annotated[bool | None, Query()] = None,
    group: Annotated[int | None, Query(ge=1)] = None,
) -> incidents.Filter:
    return incidents.Filter(model=model, element=element, status=status, start=_utc(from_), end=_utc(to),
                            production=production, group=group)


FilterDep = Annotated[incidents.Filter, Depends(incident_filter)]


@router.get("/incidents", name="incidents.list")
def list_incidents(session: SessionDep, _: PrincipalDep, f: FilterDep,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   cursor: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    rows = incidents.query(session, f, limit=limit + 1, before=cursor)
    page = rows[:limit]
    return {"incidents": [incidents.to_json(r) for r in page],
            "next": page[-1].id if len(rows) > limit else None}


@router.get("/incidents/export", name="incidents.export")
def export_incidents(session: SessionDep, _: PrincipalDep, f: FilterDep,
                     format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv") -> Response:
    rows = incidents.all_matching(session, f)
    if format == "csv":
        body, media = incidents.export_csv(rows), "text/csv; charset=utf-8"
    else:
        body, media = incidents.export_json(rows), "application/json"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="incidents.{format}"'})


@router.get("/incidents/{incident_id}", name="incidents.show")
def show_incident(incident_id: int, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return incidents.to_json(incidents.get(session, incident_id))


@router.patch("/incidents/{incident_id}", name="incidents.triage")
def triage_incident(incident_id: int, body: TriageIn, request: Request, session: SessionDep,
                    who: Editor) -> dict[str, Any]:
    row = incidents.get(session, incident_id)
    before = row.status
    audit_context(request, object_type="incident", object_name=str(incident_id), status_before=before)
    given = body.model_dump(exclude_unset=True)
    row = incidents.triage(session, incident_id, actor=who.name, **given)
    audit.record(session, actor=who.name, action="incidents.triage", object_type="incident",
                 object_name=str(incident_id), status_before=before, status_after=row.status,
                 detail={"model": row.model, "element": row.element, "fields": sorted(given)})
    return incidents.to_json(row)


@router.get("/incident-statuses", name="incident_statuses.list")
def list_statuses(session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return {"statuses": incidents.statuses(session)}


@router.post("/incident-statuses", status_code=201, name="incident_statuses.create")
def add_status(body: StatusIn, request: Request, session: SessionDep, who: Admin) -> dict[str, Any]:
    audit_context(request, object_type="incident-status", object_name=body.name)
    out = incidents.add_status(session, body.name, actor=who.name)
    audit.record(session, actor=who.name, action="incident_statuses.create", object_type="incident-status",
                 object_name=out["name"])
    return out


@router.delete("/incident-statuses/{name}", status_code=204, name="incident_statuses.delete")
def remove_status(name: str, session: SessionDep, who: Admin) -> Response:
    incidents.remove_status(session, name)
    audit.record(session, actor=who.name, action="incident_statuses.delete", object_type="incident-status",
                 object_name=name)
    return Response(status_code=204)
