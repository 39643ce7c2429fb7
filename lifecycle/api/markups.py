"""Routes of markup records (docs/lifecycle.md): ``POST /api/v1/markups``, ``GET/PUT/DELETE
/api/v1/markups/{name}``; storage and freeze guards in :mod:`lifecycle.markups`, the spec's
validation by :class:`lifecycle.markup_eval.MarkupSpec` (the body; unknown fields refused, a
condition that does not parse named with its position)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from lifecycle import markups as svc
from lifecycle.api.deps import PrincipalDep, SessionDep, require
from lifecycle.api.models import caller
from lifecycle.auth import Principal
from lifecycle.errors import InvalidInput
from lifecycle.markup_eval import MarkupSpec

router = APIRouter(prefix="/api/v1/markups", tags=["markups"])
Editor = Annotated[Principal, Depends(require("markups.edit"))]


class MarkupIn(MarkupSpec):
    """A markup as the API takes it: ``name``, ``description`` and the spec's fields."""

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude={"name", "description"})


@router.get("", name="markups.list")
def list_markups(session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return {"markups": [svc.to_json(m) for m in svc.list_all(session)]}


@router.post("", status_code=201, name="markups.create")
def create_markup(body: MarkupIn, request: Request, session: SessionDep, who: Editor) -> dict[str, Any]:
    if body.name is None:
        raise InvalidInput("name: Field required", field="name")
    row = svc.create(session, caller(request, who), body.name, body.description, body.spec())
    return svc.to_json(row, session)


@router.get("/{name}", name="markups.show")
def show_markup(name: str, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return svc.to_json(svc.get(session, name), session)


@router.put("/{name}", name="markups.update")
def update_markup(name: str, body: MarkupIn, request: Request, session: SessionDep, who: Editor) -> dict[str, Any]:
    if body.name is not None and body.name != name:
        raise InvalidInput("a markup cannot be renamed; create a new one", field="name")
    row = svc.update(session, caller(request, who), name, body.description, body.spec())
    return svc.to_json(row, session)


@router.delete("/{name}", status_code=204, name="markups.delete")
def delete_markup(name: str, request: Request, session: SessionDep, who: Editor) -> None:
    svc.delete(session, caller(request, who), name)
