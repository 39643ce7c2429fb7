"""``GET /api/v1/audit?object=&type=&actor=&action=&outcome=&from=&to=&after=&limit=``: the audit
trail (docs/lifecycle.md), oldest first, ``[from, to)`` in ISO 8601; ``after`` is the last id of the
previous page (the answer's ``next`` when more entries match)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from lifecycle import audit
from lifecycle.api.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


@router.get("/audit", name="audit.query")
def query_audit(
    session: SessionDep,
    _: PrincipalDep,
    object: Annotated[str | None, Query(max_length=250, description="Object name (model, model/element, …)")] = None,
    type: Annotated[str | None, Query(max_length=30, description="Object type (model, element, markup, …)")] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=60, description="e.g. models.publish")] = None,
    outcome: Annotated[str | None, Query(pattern="^(ok|refused|failed)$")] = None,
    from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: Annotated[dt.datetime | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, object]:
    entries = audit.query(session, object_name=object, object_type=type, actor=actor, action=action,
                          outcome=outcome, since=_utc(from_), until=_utc(to), after_id=after, limit=limit + 1)
    page = entries[:limit]
    return {"entries": [e.to_json() for e in page],
            "next": page[-1].id if len(entries) > limit else None}
