"""Routes of ML models and their elements (docs/lifecycle.md); the logic is in :mod:`lifecycle.models`,
the status table in :mod:`lifecycle.status`.

Bodies are validated here (unknown fields refused, lengths bounded, defaults filled in), the
element's kind/tags/params by :func:`lifecycle.elements.params.validate_element` in the service.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.background import BackgroundTask

from lifecycle import archive, models as svc
from lifecycle.api.deps import PrincipalDep, SessionDep, StateDep, require, store_of
from lifecycle.auth import Principal
from lifecycle.errors import InvalidInput
from lifecycle.markups import Caller

router = APIRouter(prefix="/api/v1/models", tags=["models"])

Name = Annotated[str, Field(min_length=1, max_length=100)]
TagName = Annotated[str, Field(min_length=1, max_length=200)]
WEEK_S = 7 * 86400.0


def caller(request: Request, who: Principal) -> Caller:
    notes = getattr(request.state, "audit", None)
    if notes is None:
        notes = {}
        request.state.audit = notes
    return Caller(who.name, notes)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelIn(_Body):
    name: Name
    asset: str = Field("", max_length=svc.MAX_ASSET)
    description: str = Field("", max_length=svc.MAX_DESCRIPTION)
    inference_markups: list[Name] = Field(default_factory=list, max_length=50)


class ModelPatch(_Body):
    name: Name | None = None
    asset: str | None = Field(None, max_length=svc.MAX_ASSET)
    description: str | None = Field(None, max_length=svc.MAX_DESCRIPTION)
    inference_markups: list[Name] | None = Field(None, max_length=50)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class TrainingIn(_Body):
    dataset: Name | None = None
    markups: list[Name] = Field(default_factory=list, max_length=50)
    from_: dt.datetime | None = Field(None, alias="from")
    to: dt.datetime | None = None
    validation_split: float = Field(0.2, ge=0.0, le=0.9)
    max_epochs: int = Field(500, ge=1, le=100_000)
    patience: int = Field(15, ge=1, le=10_000)
    batch_size: int = Field(16, ge=1, le=65_536)
    max_duration_s: float | None = Field(None, gt=0, le=WEEK_S)

    @model_validator(mode="after")
    def _interval(self) -> "TrainingIn":
        self.from_, self.to = _utc(self.from_), _utc(self.to)
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("training.from must be before training.to")
        return self


class DetectionIn(_Body):
    threshold: float | None = Field(None, description="None: derived from the validation artifact")
    observation_s: float = Field(0.0, ge=0, le=WEEK_S)
    share: float = Field(1.0, gt=0, le=1)
    suppression_s: float = Field(0.0, ge=0, le=WEEK_S * 52)
    reminder_s: float = Field(0.0, ge=0, le=WEEK_S * 52)
    default_status: str = Field("Under review", min_length=1, max_length=60)
    default_cause: str | None = Field(None, max_length=200)

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("a threshold is a finite number")
        return v


class ElementIn(_Body):
    name: Name
    kind: str = Field(min_length=1, max_length=20)
    inputs: list[TagName] = Field(default_factory=list, max_length=200)
    outputs: list[TagName] = Field(default_factory=list, max_length=200)
    window: int | None = Field(None, ge=1, le=1000)
    params: dict[str, Any] = Field(default_factory=dict)
    training: TrainingIn = Field(default_factory=TrainingIn)
    detection: DetectionIn = Field(default_factory=DetectionIn)


class ElementPut(ElementIn):
    name: Name | None = None  # type: ignore[assignment]


class CopyIn(_Body):
    name: Name
    asset: str | None = Field(None, max_length=svc.MAX_ASSET)
    description: str | None = Field(None, max_length=svc.MAX_DESCRIPTION)


def _element_args(body: ElementIn) -> dict[str, Any]:
    return dict(kind=body.kind, inputs=body.inputs, outputs=body.outputs, window=body.window, params=body.params,
                training=body.training.model_dump(mode="json", by_alias=True),
                detection=body.detection.model_dump(mode="json"))




@router.get("", name="models.list")
def list_models(session: SessionDep, _: PrincipalDep,
                asset: Annotated[str | None, Query(max_length=200)] = None,
                status: Annotated[str | None, Query(max_length=30)] = None) -> dict[str, Any]:
    return {"models": [svc.model_json(m, elements=False) for m in svc.list_all(session, asset=asset, status=status)]}


@router.post("", status_code=201, name="models.create")
def create_model(body: ModelIn, request: Request, session: SessionDep,
                 who: Annotated[Principal, Depends(require("models.create"))]) -> dict[str, Any]:
    m = svc.create(session, caller(request, who), name=body.name, asset=body.asset, description=body.description,
                   inference_markups=body.inference_markups)
    return svc.model_json(m)


@router.get("/{m}", name="models.show")
def show_model(m: str, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    model = svc.get(session, m)
    out = svc.model_json(model)
    out["definition_sha256"] = svc.digest(session, model)
    return out


@router.put("/{m}", name="models.edit")
@router.patch("/{m}", name="models.edit")
def edit_model(m: str, body: ModelPatch, request: Request, session: SessionDep,
               who: Annotated[Principal, Depends(require("models.edit"))]) -> dict[str, Any]:
    if body.name is not None and body.name != m:
        raise InvalidInput("a model cannot be renamed; clone it under the new name", field="name")
    model = svc.update(session, caller(request, who), m, asset=body.asset, description=body.description,
                       inference_markups=body.inference_markups)
    return svc.model_json(model)


@router.delete("/{m}", status_code=204, name="models.delete")
def delete_model(m: str, request: Request, session: SessionDep,
                 who: Annotated[Principal, Depends(require("models.delete"))]) -> None:
    svc.delete(session, caller(request, who), m)


@router.get("/{m}/elements", name="elements.list")
def list_elements(m: str, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return {"elements": [svc.element_json(e) for e in svc.get(session, m).elements]}


@router.post("/{m}/elements", status_code=201, name="models.element.add")
def add_element(m: str, body: ElementIn, request: Request, session: SessionDep,
                who: Annotated[Principal, Depends(require("models.edit"))]) -> dict[str, Any]:
    e = svc.add_element(session, caller(request, who), m, name=body.name, **_element_args(body))
    return svc.element_json(e)


@router.get("/{m}/elements/{e}", name="elements.show")
def show_element(m: str, e: str, session: SessionDep, _: PrincipalDep) -> dict[str, Any]:
    return svc.element_json(svc.element_of(svc.get(session, m), e))


@router.put("/{m}/elements/{e}", name="models.element.change")
def change_element(m: str, e: str, body: ElementPut, request: Request, session: SessionDep,
                   who: Annotated[Principal, Depends(require("models.edit"))]) -> dict[str, Any]:
    if body.name is not None and body.name != e:
        raise InvalidInput("an element cannot be renamed; remove it and add a new one", field="name")
    el = svc.change_element(session, caller(request, who), m, e, **_element_args(body))
    return svc.element_json(el)


@router.delete("/{m}/elements/{e}", status_code=204, name="models.element.remove")
def remove_element(m: str, e: str, request: Request, session: SessionDep,
                   who: Annotated[Principal, Depends(require("models.edit"))]) -> None:
    svc.remove_element(session, caller(request, who), m, e)


@router.post("/{m}/prepare", name="models.prepare")
def prepare(m: str, request: Request, session: SessionDep,
            who: Annotated[Principal, Depends(require("models.prepare"))]) -> dict[str, Any]:
    return svc.model_json(svc.prepare(session, caller(request, who), m))


@router.post("/{m}/publish", name="models.publish")
def publish(m: str, request: Request, session: SessionDep, state: StateDep,
            who: Annotated[Principal, Depends(require("models.publish"))]) -> dict[str, Any]:
    return svc.model_json(svc.publish(session, caller(request, who), m, four_eyes=state.settings.four_eyes))


@router.post("/{m}/clone", status_code=201, name="models.clone")
def clone(m: str, body: CopyIn, request: Request, session: SessionDep,
          who: Annotated[Principal, Depends(require("models.create"))]) -> dict[str, Any]:
    return svc.model_json(svc.copy(session, caller(request, who), m, name=body.name, origin="clone",
                                   asset=body.asset, description=body.description))


@router.post("/{m}/template", status_code=201, name="models.template")
def from_template(m: str, body: CopyIn, request: Request, session: SessionDep,
                  who: Annotated[Principal, Depends(require("models.create"))]) -> dict[str, Any]:
    return svc.model_json(svc.copy(session, caller(request, who), m, name=body.name, origin="template",
                                   asset=body.asset, description=body.description))


@router.post("/{m}/activate", name="models.activate")
def activate(m: str, request: Request, session: SessionDep,
             who: Annotated[Principal, Depends(require("models.upload"))]) -> dict[str, Any]:
    return svc.model_json(svc.activate(session, caller(request, who), m))


class TrainIn(_Body):
    elements: list[Name] | None = Field(None, max_length=1000, description="Default: every untrained trainable element")


@router.post("/{m}/train", status_code=202, name="models.train")
def train(m: str, request: Request, session: SessionDep,
          who: Annotated[Principal, Depends(require("models.train"))],
          body: TrainIn | None = None) -> dict[str, Any]:
    """Queue a ``train`` job (run by the job workers, :mod:`lifecycle.training`) → 202 with the job."""
    from lifecycle.training import queue_training

    job = queue_training(session, caller(request, who), m, body.elements if body else None)
    return job.to_json()


@router.get("/{m}/export", name="models.export")
def export(m: str, session: SessionDep, state: StateDep, _: PrincipalDep,
           format: Annotated[str, Query(pattern=r"^(tar\.gz|zip)$")] = "tar.gz") -> FileResponse:
    """The model's archive (manifest, checksums, trained payloads), to import elsewhere."""
    tmp = tempfile.NamedTemporaryFile(prefix="model-", suffix="." + format, delete=False)
    tmp.close()
    path = Path(tmp.name)
    try:
        archive.export_model(session, store_of(state), m, path, format)  # type: ignore[arg-type]
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(path, filename=f"{m}.{format}", media_type="application/gzip" if format == "tar.gz"
                        else "application/zip", background=BackgroundTask(path.unlink, missing_ok=True))


@router.post("/import", status_code=201, name="models.import")
def import_model(request: Request, session: SessionDep, state: StateDep,
                 who: Annotated[Principal, Depends(require("models.upload"))],
                 archive_file: Annotated[UploadFile, File(alias="archive", description="A model archive (.tar.gz or .zip)")],
                 name: Annotated[str | None, Form(min_length=1, max_length=100)] = None,
                 asset: Annotated[str | None, Form(max_length=svc.MAX_ASSET)] = None) -> dict[str, Any]:
    """Import an archive made by ``GET …/export``: the model is ``NOT_ACTIVATED`` until activated."""
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        path = Path(tmp) / "archive"
        archive.save_upload(archive_file.file, path, state.settings.max_archive_bytes)
        m = archive.import_archive(session, caller(request, who), store_of(state), path,
                                   limit=state.settings.max_archive_bytes, name=name, asset=asset)
        return svc.model_json(m)
