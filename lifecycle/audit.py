"""The audit trail (docs/lifecycle.md): one append-only row per mutating call, allowed or refused.

How to use it (every module with a mutating route):

* an allowed call records, in the request's own transaction (so the entry exists exactly when the
  change does)::

      audit.record(session, actor=principal.name, action="models.publish", object_type="model",
                   object_name=name, status_before="READY_FOR_PUBLICATION", status_after="PUBLISHED")

* a refused call (401, 403, 404, 409, 422 on a POST/PUT/PATCH/DELETE) is recorded by the API's
  exception handler (:mod:`lifecycle.api.app`) in a transaction of its own, so the rollback of the
  request does not lose it. A route or service that knows more about the object than the path
  tells (its status before the refused call) calls :func:`lifecycle.api.deps.audit_context`.
* ``outcome`` is ``"ok"``, ``"refused"`` (a guard, a right, bad input) or ``"failed"`` (an
  unexpected error). ``detail`` is a short JSON-able dict — never a secret (tokens, passwords).

:func:`query` answers "which models were published on 1 March, and by whom".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lifecycle.db import Base, UTCDateTime, utcnow

Outcome = Literal["ok", "refused", "failed"]
OUTCOMES: tuple[str, ...] = ("ok", "refused", "failed")
#: Longest detail message kept (refusal reasons are short; this bounds a pathological one).
MAX_DETAIL_CHARS = 2000


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(30))
    object_name: Mapped[str] = mapped_column(String(250), index=True)
    status_before: Mapped[str | None] = mapped_column(String(30))
    status_after: Mapped[str | None] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_name: str
    status_before: str | None
    status_after: str | None
    outcome: str
    detail: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": self.at.isoformat().replace("+00:00", "Z"), "actor": self.actor,
            "action": self.action, "object_type": self.object_type, "object": self.object_name,
            "status_before": self.status_before, "status_after": self.status_after,
            "outcome": self.outcome, "detail": self.detail,
        }


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_name: str,
    status_before: str | None = None,
    status_after: str | None = None,
    outcome: Outcome = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry in ``session``'s transaction (flushed with it)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r} is not one of {OUTCOMES}")
    if detail is not None:
        detail = {k: (v[:MAX_DETAIL_CHARS] if isinstance(v, str) else v) for k, v in detail.items()}
    session.add(AuditEntry(
        at=utcnow(), actor=actor[:100], action=action[:60], object_type=object_type[:30],
        object_name=object_name[:250], status_before=status_before, status_after=status_after,
        outcome=outcome, detail=detail,
    ))


def query(
    session: Session,
    *,
    object_name: str | None = None,
    object_type: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 500,
    after_id: int | None = None,
) -> list[AuditView]:
    """Entries matching every given filter, oldest first; ``[since, until)`` on the time.

    ``after_id`` pages: pass the last id of the previous page.
    """
    stmt = select(AuditEntry).order_by(AuditEntry.id).limit(limit)
    if object_name is not None:
        stmt = stmt.where(AuditEntry.object_name == object_name)
    if object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if outcome is not None:
        stmt = stmt.where(AuditEntry.outcome == outcome)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if after_id is not None:
        stmt = stmt.where(AuditEntry.id > after_id)
    return [
        AuditView(e.id, e.at, e.actor, e.action, e.object_type, e.object_name, e.status_before,
                  e.status_after, e.outcome, e.detail)
        for e in session.scalars(stmt)
    ]
