"""Markup records: named sets of time intervals kept in the database (docs/lifecycle.md).

This module stores and guards markups; what a markup *means* over a dataset (the mask) is
:mod:`lifecycle.markup_eval`. A markup's ``spec`` is validated by ``markup_eval.MarkupSpec``
(intervals, recurrent intervals, the Stellar condition with its position on a syntax error,
``inconclusive_positive``), so a stored spec is always one the evaluator accepts.

Guard: a markup used by a frozen model (``READY_FOR_PUBLICATION`` or ``PUBLISHED``; recorded in
``frozen_markups`` when the model is prepared) cannot be changed or deleted — 409 naming the
model. A markup named by any model (in an element's training settings or the model's inference
markups) cannot be deleted either.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import JSON, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lifecycle import audit
from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.errors import Conflict, InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\- ]{0,99}$")
MAX_DESCRIPTION = 2000


class Markup(Base):
    __tablename__ = "markups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FrozenMarkup(Base):
    """A markup used by a prepared (frozen) model: it can no longer change."""

    __tablename__ = "frozen_markups"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    markup_id: Mapped[int] = mapped_column(ForeignKey("markups.id", ondelete="RESTRICT"), primary_key=True)


@dataclass(frozen=True)
class Caller:
    """Who changes something, and where the refusal auditor learns the object's status before."""

    name: str
    notes: dict[str, Any] | None = None

    def note(self, **values: Any) -> None:
        if self.notes is not None:
            self.notes.update({k: v for k, v in values.items() if v is not None})


def check_name(name: str, what: str = "markup", field: str = "name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"a {what} name is 1-100 letters, digits, spaces, '.', '_' or '-', starting with a "
                           "letter or digit", field=field)
    return name


def validate_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec (name and description left out) as the evaluator normalizes it; InvalidInput naming
    the field (and a condition's position)."""
    from lifecycle.markup_eval import MarkupSpec

    try:
        parsed = MarkupSpec.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "spec"
        inner = (err.get("ctx") or {}).get("error")
        message = getattr(inner, "message", None) or err.get("msg", "invalid value")
        field = getattr(inner, "field", None) or loc
        raise InvalidInput(f"{field}: {message}", field=field) from None
    return parsed.model_dump(mode="json", by_alias=True, exclude={"name", "description"})


def get(session: Session, name: str) -> Markup:
    row = session.scalar(select(Markup).where(Markup.name == name))
    if row is None:
        raise NotFound(f"no markup {name!r}", field="name")
    return row


def list_all(session: Session) -> list[Markup]:
    return list(session.scalars(select(Markup).order_by(Markup.name)))


def existing(session: Session, names: list[str], field: str) -> list[Markup]:
    rows = []
    for i, name in enumerate(names):
        row = session.scalar(select(Markup).where(Markup.name == name))
        if row is None:
            raise InvalidInput(f"{field}[{i}]: no markup {name!r}", field=f"{field}[{i}]")
        rows.append(row)
    return rows


def frozen_users(session: Session, markup: Markup) -> list[str]:
    from lifecycle.models import Model

    return list(session.scalars(
        select(Model.name).join(FrozenMarkup, FrozenMarkup.model_id == Model.id)
        .where(FrozenMarkup.markup_id == markup.id).order_by(Model.name)))


def _guard_frozen(session: Session, markup: Markup, action: str) -> None:
    users = frozen_users(session, markup)
    if users:
        raise Conflict(f"cannot {action} the markup {markup.name!r}: it is used by the frozen model"
                       f"{'s' if len(users) > 1 else ''} {', '.join(map(repr, users))}", field="name")


def create(session: Session, who: Caller, name: str, description: str, spec: dict[str, Any]) -> Markup:
    check_name(name)
    who.note(object_name=name)
    normalized = validate_spec(spec)
    if session.scalar(select(Markup.id).where(Markup.name == name)) is not None:
        raise Conflict(f"a markup {name!r} exists already", field="name")
    row = Markup(name=name, description=description, spec=normalized, revision=1, created_by=who.name)
    session.add(row)
    session.flush()
    audit.record(session, actor=who.name, action="markups.create", object_type="markup", object_name=name)
    return row


def update(session: Session, who: Caller, name: str, description: str, spec: dict[str, Any]) -> Markup:
    row = get(session, name)
    _guard_frozen(session, row, "change")
    normalized = validate_spec(spec)
    changed = normalized != row.spec
    row.description = description
    if changed:
        row.spec = normalized
        row.revision += 1
        _reset_users(session, row)
    row.updated_at = utcnow()
    session.flush()
    audit.record(session, actor=who.name, action="markups.update", object_type="markup", object_name=name,
                 detail={"revision": row.revision})
    return row


def _reset_users(session: Session, markup: Markup) -> None:
    """A changed markup changes the learning indicator of every element training on it."""
    from lifecycle.models import reset_elements_using_markup

    reset_elements_using_markup(session, markup.name)


def delete(session: Session, who: Caller, name: str) -> None:
    from lifecycle.models import models_using_markup

    row = get(session, name)
    _guard_frozen(session, row, "delete")
    users = models_using_markup(session, name)
    if users:
        raise Conflict(f"cannot delete the markup {name!r}: the model{'s' if len(users) > 1 else ''} "
                       f"{', '.join(map(repr, users))} use{'' if len(users) > 1 else 's'} it", field="name")
    session.delete(row)
    session.flush()
    audit.record(session, actor=who.name, action="markups.delete", object_type="markup", object_name=name)


def to_json(row: Markup, session: Session | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": row.name, "description": row.description, **row.spec,
                           "revision": row.revision, "created_by": row.created_by,
                           "created": row.created_at.isoformat().replace("+00:00", "Z"),
                           "updated": row.updated_at.isoformat().replace("+00:00", "Z")}
    if session is not None:
        out["frozen_by"] = frozen_users(session, row)
    return out
