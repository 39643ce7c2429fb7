"""Incidents (docs/lifecycle.md): the ``incidents`` and ``incident_statuses`` tables, recording the
detector's events, triage, grouping of similar incidents, listing with filters and pages, export.

* **Recording.** :func:`apply_event` turns a :class:`~lifecycle.detector.Event` of a run into rows:
  ``opened`` inserts the incident (with its group), ``reminder`` refreshes its peak and top tags,
  ``closed`` sets its end. A run is identified by ``source`` (``historical`` / ``streaming``) and
  its job id; the detector's ``seq`` keys the incident inside the run.
* **Statuses.** The defaults of §10 (:data:`DEFAULT_STATUSES`) always exist; an administrator adds
  more (``incident_statuses`` holds only the additions) and may remove an addition no incident uses.
* **Triage.** :func:`triage` sets status, cause, expert opinion and note (who and when are kept).
* **Groups.** An incident joins the group of the latest earlier incident of the same model and
  element whose first top tag is the same, when it starts within :data:`GROUP_GAP` of that one's
  end (or start, while it is open); otherwise it starts a group of its own (its id).
* **Replacing.** :func:`delete_between` removes the incidents of a model starting in ``[from, to)``
  (a historical rerun over the same interval replaces them).
* **Listing.** :func:`query` filters by model, element, status, time (incidents overlapping
  ``[from, to)``) and production, newest first, paged by id (``before``).
* **Export.** :func:`export_csv` / :func:`export_json` of a filtered list.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import JSON, Boolean, Float, Integer, String, delete, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.detector import Event
from lifecycle.errors import Conflict, InvalidInput, NotFound

DEFAULT_STATUSES: tuple[str, ...] = (
    "Under review", "Decision pending", "Instructions issued", "Problem closed", "Cause unknown", "Ignore",
    "False positive",
)
MAX_STATUS = 60
MAX_CAUSE = 200
MAX_TEXT = 4000
#: Similar incidents within this gap share a group.
GROUP_GAP = dt.timedelta(hours=24)
SOURCES = ("historical", "streaming")


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    element: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    top_tags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    top_tag: Mapped[str | None] = mapped_column(String(200))
    artifact: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(MAX_STATUS), index=True)
    cause: Mapped[str | None] = mapped_column(String(MAX_CAUSE))
    opinion: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    note: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    group: Mapped[int | None] = mapped_column("group_id", Integer, index=True)
    production: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20))
    run: Mapped[int | None] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class IncidentStatus(Base):
    """A status added by an administrator (the defaults are :data:`DEFAULT_STATUSES`)."""

    __tablename__ = "incident_statuses"

    name: Mapped[str] = mapped_column(String(MAX_STATUS), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def to_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id, "model": i.model, "element": i.element, "kind": i.kind, "start": _iso(i.start),
        "end": _iso(i.end), "registered_at": _iso(i.registered_at), "top_tags": i.top_tags,
        "artifact": i.artifact, "threshold": i.threshold, "status": i.status, "cause": i.cause,
        "opinion": i.opinion, "note": i.note, "group": i.group, "production": i.production,
        "source": i.source, "run": i.run, "updated_at": _iso(i.updated_at), "updated_by": i.updated_by,
    }


# -- statuses --------------------------------------------------------------------------------------

def statuses(session: Session) -> list[dict[str, Any]]:
    added = session.scalars(select(IncidentStatus).order_by(IncidentStatus.created_at, IncidentStatus.name))
    return ([{"name": s, "builtin": True} for s in DEFAULT_STATUSES]
            + [{"name": s.name, "builtin": False, "created_by": s.created_by, "created_at": _iso(s.created_at)}
               for s in added])


def status_names(session: Session) -> set[str]:
    return set(DEFAULT_STATUSES) | set(session.scalars(select(IncidentStatus.name)))


def add_status(session: Session, name: str, *, actor: str) -> dict[str, Any]:
    name = name.strip()
    if not name or len(name) > MAX_STATUS:
        raise InvalidInput(f"a status name has 1 to {MAX_STATUS} characters", field="name")
    if name.casefold() in {s.casefold() for s in status_names(session)}:
        raise Conflict(f"the incident status {name!r} exists", field="name")
    row = IncidentStatus(name=name, created_by=actor, created_at=utcnow())
    session.add(row)
    session.flush()
    return {"name": row.name, "builtin": False, "created_by": actor, "created_at": _iso(row.created_at)}


def remove_status(session: Session, name: str) -> None:
    if name in DEFAULT_STATUSES:
        raise Conflict(f"{name!r} is a default status and cannot be removed", field="name")
    row = session.get(IncidentStatus, name)
    if row is None:
        raise NotFound(f"no incident status {name!r}", field="name")
    used = session.scalar(select(func.count()).select_from(Incident).where(Incident.status == name))
    if used:
        raise Conflict(f"{used} incident(s) have the status {name!r}; change theirs first", field="name")
    session.delete(row)


# -- recording the detector's events ---------------------------------------------------------------

def _group_of(session: Session, model: str, element: str, top_tag: str | None, start: dt.datetime) -> int | None:
    """The group of the latest similar incident within :data:`GROUP_GAP` before ``start``, if any."""
    stmt = (select(Incident).where(Incident.model == model, Incident.element == element,
                                   Incident.top_tag.is_(None) if top_tag is None else Incident.top_tag == top_tag,
                                   Incident.start <= start)
            .order_by(Incident.start.desc(), Incident.id.desc()).limit(1))
    previous = session.scalar(stmt)
    if previous is None:
        return None
    edge = previous.end or previous.start
    return previous.group if start - edge <= GROUP_GAP else None


def _find(session: Session, event: Event, source: str, run: int | None) -> Incident:
    inc = event.incident
    row = session.scalar(select(Incident).where(Incident.model == inc.model, Incident.element == inc.element,
                                                Incident.source == source, Incident.run == run,
                                                Incident.seq == inc.seq))
    if row is None:
        raise NotFound(f"no incident {inc.seq} of element {inc.element!r} in this run", field="incident")
    return row


def apply_event(session: Session, event: Event, *, source: str, run: int | None) -> Incident:
    """Record ``event`` of run ``run`` (``source`` historical/streaming); returns the incident row."""
    if source not in SOURCES:
        raise InvalidInput(f"unknown incident source {source!r}", field="source")
    inc = event.incident
    tops = [t.to_json() for t in inc.top_tags]
    if event.kind == "opened":
        top = inc.top_tags[0].tag if inc.top_tags else None
        group = _group_of(session, inc.model, inc.element, top, inc.start)
        now = utcnow()
        row = Incident(model=inc.model, element=inc.element, kind=inc.kind, start=inc.start, end=inc.end,
                       registered_at=inc.registered_at, top_tags=tops, top_tag=top, artifact=inc.artifact,
                       threshold=inc.threshold, status=inc.status, cause=inc.cause, group=group,
                       production=inc.production, source=source, run=run, seq=inc.seq, created_at=now,
                       updated_at=now)
        session.add(row)
        session.flush()
        if row.group is None:
            row.group = row.id
        return row
    row = _find(session, event, source, run)
    row.top_tags, row.artifact, row.threshold = tops, inc.artifact, inc.threshold
    if event.kind == "closed":
        row.end = inc.end
    return row


def delete_between(session: Session, model: str, start: dt.datetime, end: dt.datetime,
                   *, source: str = "historical") -> int:
    """Remove ``model``'s incidents of ``source`` starting in ``[start, end)``; returns how many."""
    result = session.execute(delete(Incident).where(Incident.model == model, Incident.source == source,
                                                    Incident.start >= start, Incident.start < end))
    return int(result.rowcount or 0)


# -- triage ----------------------------------------------------------------------------------------

def get(session: Session, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id)
    if row is None:
        raise NotFound(f"no incident {incident_id}", field="id")
    return row


_UNSET: Any = object()


def triage(session: Session, incident_id: int, *, actor: str, status: str | None = _UNSET,
           cause: str | None = _UNSET, opinion: str | None = _UNSET, note: str | None = _UNSET) -> Incident:
    """Set the given triage fields (``None`` clears cause, opinion or note; a status is required)."""
    row = get(session, incident_id)
    if status is not _UNSET:
        if status is None or status not in status_names(session):
            raise InvalidInput(f"unknown incident status {status!r}; see GET /api/v1/incident-statuses",
                               field="status")
        row.status = status
    for name, value, limit in (("cause", cause, MAX_CAUSE), ("opinion", opinion, MAX_TEXT), ("note", note, MAX_TEXT)):
        if value is _UNSET:
            continue
        if value is not None and len(value) > limit:
            raise InvalidInput(f"{name} has at most {limit} characters", field=name)
        setattr(row, name, value)
    row.updated_at, row.updated_by = utcnow(), actor
    return row


# -- listing and export ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    model: str | None = None
    element: str | None = None
    status: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    production: bool | None = None
    group: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidInput("from must be before to", field="from")


def query(session: Session, f: Filter, *, limit: int = 100, before: int | None = None) -> list[Incident]:
    """Incidents matching ``f`` (overlapping ``[start, end)`` in time), newest first, ``before`` an id."""
    stmt = select(Incident)
    if f.model is not None:
        stmt = stmt.where(Incident.model == f.model)
    if f.element is not None:
        stmt = stmt.where(Incident.element == f.element)
    if f.status is not None:
        stmt = stmt.where(Incident.status == f.status)
    if f.production is not None:
        stmt = stmt.where(Incident.production == f.production)
    if f.group is not None:
        stmt = stmt.where(Incident.group == f.group)
    if f.end is not None:
        stmt = stmt.where(Incident.start < f.end)
    if f.start is not None:
        stmt = stmt.where(or_(Incident.end.is_(None), Incident.end > f.start))
    if before is not None:
        stmt = stmt.where(Incident.id < before)
    return list(session.scalars(stmt.order_by(Incident.id.desc()).limit(limit)))


def all_matching(session: Session, f: Filter, *, page: int = 1000) -> Iterable[Incident]:
    before: int | None = None
    while True:
        rows = query(session, f, limit=page, before=before)
        yield from rows
        if len(rows) < page:
            return
        before = rows[-1].id


CSV_COLUMNS = ("id", "model", "element", "kind", "start", "end", "registered_at", "top_tags", "artifact",
               "threshold", "status", "cause", "opinion", "note", "group", "production", "source")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # a spreadsheet would run a cell starting like a formula: keep it text
        return "'" + value
    return value


def export_csv(rows: Iterable[Incident]) -> str:
    """CSV with a header; top tags as ``tag=value (share%)`` joined by ``; ``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        j = to_json(r)
        j["top_tags"] = "; ".join(f"{t['tag']}={t['value']} ({100 * t['share']:.1f}%)" for t in r.top_tags)
        writer.writerow([_csv_cell(j[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def export_json(rows: Iterable[Incident]) -> str:
    return json.dumps({"incidents": [to_json(r) for r in rows]}, ensure_ascii=False, indent=1)

