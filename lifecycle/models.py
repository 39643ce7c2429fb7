"""ML models and their elements: tables, the repository, and the service calls of §10–§11.

Every call that changes a model goes through :func:`lifecycle.status.check` (the one status table)
and appends an audit entry in the caller's transaction. The guards beyond the status are here:
an imported-origin model cannot gain or lose elements; prepare needs every element trained;
publish honours the four-eyes rule; a name is free.

Element validation is :func:`lifecycle.elements.params.validate_element` (kind, tags, window,
params); the training and detection settings are validated by the pydantic models of
:mod:`lifecycle.api.models` before they get here, and stored with every default filled in.

For training (:mod:`lifecycle.training`): :func:`training_plan` says what to train,
:func:`mark_element_trained` records a trained element (refused when the element changed since
the job started: its ``revision`` is checked) and moves the model to ``TRAINED`` when it is.

Prepare computes the **definition digest**: sha256 over the canonical JSON (sorted keys, no
spaces, UTF-8) of :func:`definition` — the elements with their kind, tags, window, params,
training and detection settings and artifact checksums, the inference markups, and the spec of
every markup used. Name, asset, description and origin are not part of it, so an exported model
imported under another name has the same digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any, Iterable

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from lifecycle import audit, status as sm
from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.elements.params import TRAINABLE_KINDS, validate_element
from lifecycle.errors import Conflict, InvalidInput, NotFound
from lifecycle.markups import Caller, FrozenMarkup, Markup, check_name, existing as existing_markups
from lifecycle.status import ElementStatus, Status

ORIGINS = ("manual", "imported", "template", "clone")
MAX_DESCRIPTION = 2000
MAX_ASSET = 200
ASSET = re.compile(r"^[^\x00-\x1f]{0,200}$")
DEFINITION_FORMAT = 1


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    asset: Mapped[str] = mapped_column(String(MAX_ASSET), default="", index=True)
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), default="")
    origin: Mapped[str] = mapped_column(String(20), default="manual")
    origin_source: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), default=Status.DRAFT.value, index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    inference_markups: Mapped[list[str]] = mapped_column(JSON, default=list)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    prepared_by: Mapped[str | None] = mapped_column(String(100))
    prepared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    elements: Mapped[list["Element"]] = relationship(back_populates="model", cascade="all, delete-orphan",
                                                     lazy="selectin", order_by="Element.id")

    @property
    def state(self) -> Status:
        return Status(self.status)


class Element(Base):
    __tablename__ = "elements"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    inputs: Mapped[list[str]] = mapped_column(JSON)
    outputs: Mapped[list[str]] = mapped_column(JSON)
    window: Mapped[int] = mapped_column(Integer, default=1)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    training: Mapped[dict[str, Any]] = mapped_column(JSON)
    detection: Mapped[dict[str, Any]] = mapped_column(JSON)
    training_status: Mapped[str] = mapped_column(String(20), default=ElementStatus.NOT_TRAINED.value)
    #: Set by training: {"path": store path of the payload, "sha256": its digest, "threshold", …}.
    artifact: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trained_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    model: Mapped[Model] = relationship(back_populates="elements")


# -- reading -------------------------------------------------------------------------------------

def get(session: Session, name: str, *, for_update: bool = False) -> Model:
    stmt = select(Model).where(Model.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"no model {name!r}", field="model")
    return row


def list_all(session: Session, *, asset: str | None = None, status: str | None = None) -> list[Model]:
    stmt = select(Model).order_by(Model.name)
    if asset is not None:
        stmt = stmt.where((Model.asset == asset) | Model.asset.startswith(asset.rstrip("/") + "/", autoescape=True))
    if status is not None:
        stmt = stmt.where(Model.status == status)
    return list(session.scalars(stmt))


def element_of(model: Model, name: str) -> Element:
    for e in model.elements:
        if e.name == name:
            return e
    raise NotFound(f"model {model.name!r} has no element {name!r}", field="element")


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def element_json(e: Element) -> dict[str, Any]:
    return {"name": e.name, "kind": e.kind, "inputs": e.inputs, "outputs": e.outputs, "window": e.window,
            "params": e.params, "training": e.training, "detection": e.detection,
            "training_status": e.training_status, "trainable": e.kind in TRAINABLE_KINDS,
            "artifact": e.artifact, "trained_at": _iso(e.trained_at), "revision": e.revision}


def model_json(m: Model, *, elements: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name, "asset": m.asset, "description": m.description,
        "origin": m.origin, "origin_source": m.origin_source, "status": m.status, "revision": m.revision,
        "inference_markups": m.inference_markups, "sha256": m.sha256,
        "created_by": m.created_by, "created": _iso(m.created_at), "updated": _iso(m.updated_at),
        "prepared_by": m.prepared_by, "prepared": _iso(m.prepared_at),
        "published_by": m.published_by, "published": _iso(m.published_at),
    }
    if elements:
        out["elements"] = [element_json(e) for e in m.elements]
    else:
        out["element_count"] = len(m.elements)
    return out


# -- the definition digest -----------------------------------------------------------------------

def markups_used(m: Model) -> list[str]:
    names = set(m.inference_markups)
    for e in m.elements:
        names.update(e.training.get("markups") or [])
    return sorted(names)


def definition(session: Session, m: Model) -> dict[str, Any]:
    """What the sha256 of a prepared model covers (see the module's docstring)."""
    specs: dict[str, Any] = {}
    for name in markups_used(m):
        row = session.scalar(select(Markup).where(Markup.name == name))
        specs[name] = row.spec if row is not None else None
    return definition_from([element_definition(e) for e in m.elements], m.inference_markups, specs)


def element_definition(e: Element) -> dict[str, Any]:
    return {"name": e.name, "kind": e.kind, "inputs": e.inputs, "outputs": e.outputs, "window": e.window,
            "params": e.params, "training": e.training, "detection": e.detection,
            "artifact_sha256": (e.artifact or {}).get("sha256")}


def definition_from(elements: list[dict[str, Any]], inference_markups: list[str],
                    markup_specs: dict[str, Any]) -> dict[str, Any]:
    """The digested definition from its parts (also used on an archive's manifest)."""
    keys = ("name", "kind", "inputs", "outputs", "window", "params", "training", "detection", "artifact_sha256")
    return {
        "format": DEFINITION_FORMAT,
        "inference_markups": sorted(inference_markups),
        "markups": dict(sorted(markup_specs.items())),
        "elements": [{k: e.get(k) for k in keys} for e in sorted(elements, key=lambda e: e["name"])],
    }


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(session: Session, m: Model) -> str:
    return hashlib.sha256(canonical_json(definition(session, m))).hexdigest()


# -- status helpers ------------------------------------------------------------------------------

def element_status_for(kind: str) -> ElementStatus:
    """A new or changed element's training status: a rule is pretrained, the others must train."""
    return ElementStatus.NOT_TRAINED if kind in TRAINABLE_KINDS else ElementStatus.TRAINED


def _derived(m: Model) -> Status:
    return sm.derived_status((e.kind, e.training_status) for e in m.elements)


def _touch(m: Model) -> None:
    m.revision += 1
    m.updated_at = utcnow()


def _settle(session: Session, who: Caller, m: Model, action: str, before: Status, detail: dict[str, Any] | None = None,
            object_type: str = "model", object_name: str | None = None, changed: bool = True) -> None:
    """Set the model's status after ``action`` and audit it; the revision counts real changes."""
    after = sm.target_of(action, before, _derived(m))
    m.status = after.value
    if changed:
        _touch(m)
    else:
        detail = {**(detail or {}), "changed": False}
    session.flush()
    audit.record(session, actor=who.name, action=f"models.{action}", object_type=object_type,
                 object_name=object_name or m.name, status_before=before.value, status_after=after.value,
                 detail=detail)


def _begin(session: Session, who: Caller, name: str, action: str) -> tuple[Model, Status]:
    m = get(session, name, for_update=True)
    who.note(status_before=m.status)
    sm.check(action, m.status)
    return m, m.state


def _check_asset(asset: str) -> str:
    if not ASSET.match(asset):
        raise InvalidInput("asset: a path of at most 200 printable characters", field="asset")
    return asset.strip("/")


def _free(session: Session, name: str, field: str = "name") -> None:
    check_name(name, "model", field)
    if session.scalar(select(Model.id).where(Model.name == name)) is not None:
        raise Conflict(f"a model {name!r} exists already", field=field)


# -- models --------------------------------------------------------------------------------------

def create(session: Session, who: Caller, *, name: str, asset: str = "", description: str = "",
           inference_markups: Iterable[str] = ()) -> Model:
    who.note(object_name=name)
    _free(session, name)
    marks = list(inference_markups)
    existing_markups(session, marks, "inference_markups")
    m = Model(name=name, asset=_check_asset(asset), description=description, origin="manual",
              status=Status.DRAFT.value, revision=1, inference_markups=marks, created_by=who.name)
    session.add(m)
    session.flush()
    audit.record(session, actor=who.name, action="models.create", object_type="model", object_name=name,
                 status_after=m.status)
    return m


def update(session: Session, who: Caller, name: str, *, asset: str | None = None, description: str | None = None,
           inference_markups: list[str] | None = None) -> Model:
    m, before = _begin(session, who, name, "edit")
    old = (m.asset, m.description, list(m.inference_markups))
    if asset is not None:
        m.asset = _check_asset(asset)
    if description is not None:
        m.description = description
    if inference_markups is not None:
        existing_markups(session, inference_markups, "inference_markups")
        m.inference_markups = list(inference_markups)
    _settle(session, who, m, "edit", before, changed=(m.asset, m.description, list(m.inference_markups)) != old)
    return m


def delete(session: Session, who: Caller, name: str) -> None:
    m, before = _begin(session, who, name, "delete")
    session.delete(m)
    session.flush()
    audit.record(session, actor=who.name, action="models.delete", object_type="model", object_name=name,
                 status_before=before.value)


# -- elements ------------------------------------------------------------------------------------

def _element_fields(kind: str, inputs: list[str], outputs: list[str], window: int | None,
                    params: dict[str, Any] | None) -> tuple[list[str], list[str], int, dict[str, Any]]:
    normalized = validate_element(kind, inputs, outputs, window, params)
    return list(inputs), list(outputs or []), int(window or 1), normalized


def _check_training_markups(session: Session, training: dict[str, Any]) -> None:
    existing_markups(session, list(training.get("markups") or []), "training.markups")


def add_element(session: Session, who: Caller, model_name: str, *, name: str, kind: str, inputs: list[str],
                outputs: list[str], window: int | None, params: dict[str, Any] | None,
                training: dict[str, Any], detection: dict[str, Any]) -> Element:
    m, before = _begin(session, who, model_name, "element.add")
    who.note(object_type="element", object_name=f"{model_name}/{name}")
    if m.origin == "imported":
        raise Conflict(f"cannot add an element: the model {model_name!r} was imported and cannot gain elements "
                       "(clone it to change its composition)", field="model")
    check_name(name, "element")
    if any(e.name == name for e in m.elements):
        raise Conflict(f"the model {model_name!r} has an element {name!r} already", field="name")
    ins, outs, win, norm = _element_fields(kind, inputs, outputs, window, params)
    _check_training_markups(session, training)
    e = Element(name=name, kind=kind, inputs=ins, outputs=outs, window=win, params=norm, training=training,
                detection=detection, training_status=element_status_for(kind).value, revision=1)
    m.elements.append(e)
    _settle(session, who, m, "element.add", before, {"kind": kind}, "element", f"{model_name}/{name}")
    return e


def change_element(session: Session, who: Caller, model_name: str, element_name: str, *, kind: str,
                   inputs: list[str], outputs: list[str], window: int | None, params: dict[str, Any] | None,
                   training: dict[str, Any], detection: dict[str, Any]) -> Element:
    """Replace an element's definition; a change resets its training (a rule stays trained)."""
    m, before = _begin(session, who, model_name, "element.change")
    who.note(object_type="element", object_name=f"{model_name}/{element_name}")
    e = element_of(m, element_name)
    if m.origin == "imported" and kind != e.kind:
        raise Conflict("cannot change the kind of an element of an imported model", field="kind")
    ins, outs, win, norm = _element_fields(kind, inputs, outputs, window, params)
    _check_training_markups(session, training)
    new = dict(kind=kind, inputs=ins, outputs=outs, window=win, params=norm, training=training, detection=detection)
    old = dict(kind=e.kind, inputs=e.inputs, outputs=e.outputs, window=e.window, params=e.params,
               training=e.training, detection=e.detection)
    if new != old:
        for key, value in new.items():
            setattr(e, key, value)
        only_detection = all(new[k] == old[k] for k in new if k != "detection")
        if not only_detection:  # detection settings do not touch what was learnt
            e.training_status = element_status_for(kind).value
            e.artifact = None
            e.trained_at = None
        e.revision += 1
        e.updated_at = utcnow()
    _settle(session, who, m, "element.change", before, {"training_status": e.training_status}, "element",
            f"{model_name}/{element_name}", changed=new != old)
    return e


def remove_element(session: Session, who: Caller, model_name: str, element_name: str) -> None:
    m, before = _begin(session, who, model_name, "element.remove")
    who.note(object_type="element", object_name=f"{model_name}/{element_name}")
    e = element_of(m, element_name)
    if m.origin == "imported":
        raise Conflict(f"cannot remove an element: the model {model_name!r} was imported and cannot lose elements "
                       "(clone it to change its composition)", field="model")
    m.elements.remove(e)
    _settle(session, who, m, "element.remove", before, None, "element", f"{model_name}/{element_name}")


# -- training (used by lifecycle.training) ------------------------------------------------------

def training_plan(session: Session, who: Caller, model_name: str, elements: list[str] | None = None) -> list[Element]:
    """The trainable elements to train (all untrained ones by default); guards of ``train``."""
    m, _before = _begin(session, who, model_name, "train")
    trainable = [e for e in m.elements if e.kind in TRAINABLE_KINDS]
    if elements:
        chosen = [element_of(m, n) for n in elements]
        for e in chosen:
            if e.kind not in TRAINABLE_KINDS:
                raise InvalidInput(f"element {e.name!r} is a {e.kind}: it is pretrained, there is nothing to train",
                                   field="elements")
    else:
        chosen = [e for e in trainable if e.training_status != ElementStatus.TRAINED.value] or trainable
    if not chosen:
        raise Conflict(f"the model {model_name!r} has no trainable element (rule elements are pretrained)",
                       field="elements")
    for e in chosen:
        if not (e.training.get("dataset")):
            raise InvalidInput(f"element {e.name!r} has no training dataset (training.dataset)",
                               field=f"elements.{e.name}.training.dataset")
    return chosen


def mark_element_trained(session: Session, who: Caller, model_name: str, element_name: str, *,
                         revision: int, artifact: dict[str, Any]) -> Model:
    """Record a trained element; refused (409) when the element changed since its training began."""
    m, before = _begin(session, who, model_name, "train.done")
    e = element_of(m, element_name)
    if e.revision != revision:
        raise Conflict(f"element {element_name!r} changed during its training (revision {revision} → "
                       f"{e.revision}); the result is dropped", field="element")
    e.training_status = ElementStatus.TRAINED.value
    e.artifact = artifact
    e.trained_at = utcnow()
    _settle(session, who, m, "train.done", before, {"artifact_sha256": artifact.get("sha256")}, "element",
            f"{model_name}/{element_name}")
    return m


def reset_elements_using_markup(session: Session, markup_name: str) -> None:
    """A markup changed: elements of editable models training on it must train again."""
    for m in session.scalars(select(Model).where(Model.status.in_([s.value for s in sm.EDITABLE]))):
        touched = False
        for e in m.elements:
            if markup_name in (e.training.get("markups") or []) and e.kind in TRAINABLE_KINDS:
                e.training_status = ElementStatus.NOT_TRAINED.value
                e.artifact = None
                e.trained_at = None
                e.revision += 1
                touched = True
        if touched:
            m.status = _derived(m).value
            _touch(m)
    session.flush()


def models_using_markup(session: Session, markup_name: str) -> list[str]:
    return sorted(m.name for m in session.scalars(select(Model)) if markup_name in markups_used(m))


# -- prepare, publish, activate ------------------------------------------------------------------

def prepare(session: Session, who: Caller, name: str) -> Model:
    m = get(session, name, for_update=True)
    who.note(status_before=m.status)
    untrained = [e.name for e in m.elements if e.training_status != ElementStatus.TRAINED.value]
    if m.state is not Status.DRAFT:
        sm.check("prepare", m.status)
    before = m.state
    if untrained or not m.elements:
        raise Conflict(f"cannot prepare: element{'s' if len(untrained) > 1 else ''} "
                       f"{', '.join(map(repr, untrained))} not trained (the model is {m.status}; every element must be "
                       "trained before it can be prepared for publication)" if untrained else
                       "cannot prepare: the model has no element", field="elements")
    used = markups_used(m)
    rows = existing_markups(session, used, "markups")
    m.sha256 = digest(session, m)
    m.prepared_by = who.name
    m.prepared_at = utcnow()
    for row in rows:
        session.add(FrozenMarkup(model_id=m.id, markup_id=row.id))
    _settle(session, who, m, "prepare", before, {"sha256": m.sha256, "markups": used})
    return m


def publish(session: Session, who: Caller, name: str, *, four_eyes: bool) -> Model:
    m, before = _begin(session, who, name, "publish")
    if four_eyes and m.prepared_by == who.name:
        raise Conflict(f"cannot publish: the four-eyes rule is on and {who.name!r} prepared this model; "
                       "someone else with the right 'models.publish' must publish it", field="publisher")
    m.published_by = who.name
    m.published_at = utcnow()
    _settle(session, who, m, "publish", before, {"sha256": m.sha256})
    return m


def activate(session: Session, who: Caller, name: str) -> Model:
    m, before = _begin(session, who, name, "activate")
    untrained = [e.name for e in m.elements if e.training_status != ElementStatus.TRAINED.value]
    if untrained:
        raise Conflict(f"cannot activate: the archive's element(s) {', '.join(map(repr, untrained))} are not trained",
                       field="elements")
    _settle(session, who, m, "activate", before)
    return m


# -- copies --------------------------------------------------------------------------------------

def copy(session: Session, who: Caller, source_name: str, *, name: str, origin: str, asset: str | None = None,
         description: str | None = None) -> Model:
    """A clone (``origin="clone"``) or a model from a template (``"template"``): same elements and
    settings, keeping each element's training state; editable whatever the source's status."""
    action = "clone" if origin == "clone" else "template"
    src = get(session, source_name)
    who.note(status_before=src.status)
    sm.check(action, src.status)
    who.note(object_name=name)
    _free(session, name)
    m = Model(name=name, asset=src.asset if asset is None else _check_asset(asset),
              description=src.description if description is None else description, origin=origin,
              origin_source=src.name, status=Status.DRAFT.value, revision=1,
              inference_markups=list(src.inference_markups), created_by=who.name)
    for e in src.elements:
        m.elements.append(Element(name=e.name, kind=e.kind, inputs=list(e.inputs), outputs=list(e.outputs),
                                  window=e.window, params=dict(e.params), training=dict(e.training),
                                  detection=dict(e.detection), training_status=e.training_status,
                                  artifact=dict(e.artifact) if e.artifact else None, trained_at=e.trained_at,
                                  revision=1))
    session.add(m)
    session.flush()
    after = sm.target_of(action, src.state, _derived(m))
    m.status = after.value
    session.flush()
    audit.record(session, actor=who.name, action=f"models.{action}", object_type="model", object_name=name,
                 status_after=after.value, detail={"source": src.name, "source_status": src.status})
    return m


def create_imported(session: Session, who: Caller, *, name: str, asset: str, description: str, source: str,
                    inference_markups: list[str], elements: list[dict[str, Any]]) -> Model:
    """The model of a verified archive (:mod:`lifecycle.archive`), ``NOT_ACTIVATED``."""
    who.note(object_name=name)
    _free(session, name)
    existing_markups(session, inference_markups, "inference_markups")
    m = Model(name=name, asset=_check_asset(asset), description=description, origin="imported",
              origin_source=source, status=Status.NOT_ACTIVATED.value, revision=1,
              inference_markups=list(inference_markups), created_by=who.name)
    for i, d in enumerate(elements):
        try:
            ins, outs, win, norm = _element_fields(d["kind"], d["inputs"], d["outputs"], d["window"], d["params"])
        except InvalidInput as exc:
            raise InvalidInput(f"elements[{i}] of the archive: {exc.message}", field=f"elements[{i}].{exc.field}") from None
        _check_training_markups(session, d["training"])
        m.elements.append(Element(name=check_name(d["name"], "element", f"elements[{i}].name"), kind=d["kind"],
                                  inputs=ins, outputs=outs, window=win, params=norm, training=d["training"],
                                  detection=d["detection"], training_status=d["training_status"],
                                  artifact=d.get("artifact"), trained_at=utcnow() if d.get("artifact") else None,
                                  revision=1))
    session.add(m)
    session.flush()
    audit.record(session, actor=who.name, action="models.import", object_type="model", object_name=name,
                 status_after=m.status, detail={"source": source})
    return m
