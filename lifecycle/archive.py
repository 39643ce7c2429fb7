"""Model archives: export a model with its trained payloads, import it elsewhere (docs/lifecycle.md).

An archive is a ``.tar.gz`` (or ``.zip``) holding

* ``manifest.json`` — ``{"format": "maas-lifecycle-model", "version": 1, "model": {name, asset,
  description, status, sha256, inference_markups}, "elements": [{name, kind, inputs, outputs,
  window, params, training, detection, training_status, artifact, payload}], "markups": {name:
  {description, spec}}, "definition_sha256", "files": {path: sha256}}``;
* ``payloads/<element>/…`` — each trained element's payload, as the model store holds it.

Import checks everything before it writes anything to the database: the size (compressed, and
uncompressed against the same limit), member names (no absolute paths, no ``..``, regular files
only), the manifest's shape, every file's sha256 (no file missing or extra), each payload's store
digest against its element's ``artifact.sha256``, and the definition's sha256 against the
manifest. Markups the archive uses are created when missing, reused when identical, and refused
(409) when a different markup has the name. The imported model is ``NOT_ACTIVATED`` with origin
``imported``; ``activate`` makes it ``TRAINED``. Its definition digest equals the source's.

Payloads are uploaded to the store (``/lifecycle/imports/<model>/<element>-<id>``) before the
database transaction commits; if it does not, they stay unreferenced in the store (payloads are
immutable and the path is never reused), never a half-imported model.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from maas.errors import MaasError
from maas.store import ModelStore

from lifecycle import audit, markups, models
from lifecycle.errors import Conflict, InvalidInput, Unavailable
from lifecycle.markups import Caller
from lifecycle.status import Status

FORMAT = "maas-lifecycle-model"
VERSION = 1
MANIFEST = "manifest.json"
EXPORTABLE = frozenset({Status.TRAINED, Status.READY_FOR_PUBLICATION, Status.PUBLISHED})
ArchiveFormat = Literal["tar.gz", "zip"]
CHUNK = 1 << 20


class ArchiveTooLarge(InvalidInput):
    http_status = 413


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestModel(_M):
    name: str = Field(min_length=1, max_length=100)
    asset: str = Field("", max_length=models.MAX_ASSET)
    description: str = Field("", max_length=models.MAX_DESCRIPTION)
    status: str
    sha256: str | None = None
    inference_markups: list[str] = Field(default_factory=list, max_length=50)


class ManifestElement(_M):
    name: str = Field(min_length=1, max_length=100)
    kind: str
    inputs: list[str]
    outputs: list[str]
    window: int
    params: dict[str, Any]
    training: dict[str, Any]
    detection: dict[str, Any]
    training_status: Literal["trained", "not_trained"]
    artifact: dict[str, Any] | None = None
    payload: str | None = None


class ManifestMarkup(_M):
    description: str = ""
    spec: dict[str, Any]


class Manifest(_M):
    format: Literal["maas-lifecycle-model"]
    version: int = Field(ge=1, le=VERSION)
    model: ManifestModel
    elements: list[ManifestElement] = Field(max_length=1000)
    markups: dict[str, ManifestMarkup] = Field(default_factory=dict)
    definition_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    files: dict[str, str] = Field(default_factory=dict)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# -- export --------------------------------------------------------------------------------------

def export_model(session: Session, store: ModelStore, name: str, dest: Path, fmt: ArchiveFormat = "tar.gz") -> Path:
    """Write the archive of model ``name`` to ``dest`` (a file path) and return it."""
    m = models.get(session, name)
    if m.state not in EXPORTABLE:
        raise Conflict(f"cannot export: the model is {m.status}; only a TRAINED, READY_FOR_PUBLICATION or "
                       "PUBLISHED model (every element trained) is exported", field="status")
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        root = Path(tmp)
        elements = []
        for e in m.elements:
            payload = None
            if e.artifact and e.artifact.get("path"):
                payload = f"payloads/{e.name}"
                try:
                    store.download(e.artifact["path"], root / payload)
                except MaasError as exc:
                    raise Unavailable(f"element {e.name!r}: its payload {e.artifact['path']} cannot be read from the "
                                      f"model store: {exc}") from exc
            artifact = {k: v for k, v in (e.artifact or {}).items() if k != "path"} or None
            elements.append(ManifestElement(name=e.name, kind=e.kind, inputs=e.inputs, outputs=e.outputs,
                                            window=e.window, params=e.params, training=e.training,
                                            detection=e.detection, training_status=e.training_status,  # type: ignore[arg-type]
                                            artifact=artifact, payload=payload))
        used = {}
        for mk in markups.existing(session, models.markups_used(m), "markups"):
            used[mk.name] = ManifestMarkup(description=mk.description, spec=mk.spec)
        files = {p.relative_to(root).as_posix(): _sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
        manifest = Manifest(
            format=FORMAT, version=VERSION,
            model=ManifestModel(name=m.name, asset=m.asset, description=m.description, status=m.status,
                                sha256=m.sha256, inference_markups=m.inference_markups),
            elements=elements, markups=used, definition_sha256=models.digest(session, m), files=files)
        (root / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        members = [MANIFEST, *files]
        if fmt == "zip":
            with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for rel in members:
                    zf.write(root / rel, rel)
        else:
            with tarfile.open(dest, "w:gz") as tf:
                for rel in members:
                    tf.add(root / rel, rel, recursive=False)
    return dest


# -- import --------------------------------------------------------------------------------------

def save_upload(stream: IO[bytes], dest: Path, limit: int) -> int:
    """Copy an uploaded archive to ``dest``, refusing it (413) once it passes ``limit`` bytes."""
    total = 0
    with open(dest, "wb") as out:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            total += len(chunk)
            if total > limit:
                raise ArchiveTooLarge(f"the archive is larger than the limit of {limit} bytes", field="archive")
            out.write(chunk)
    if total == 0:
        raise InvalidInput("the archive is empty", field="archive")
    return total


def _safe_name(name: str) -> str:
    norm = posixpath.normpath(name)
    if name.startswith("/") or norm.startswith("..") or norm in (".", "") or "\\" in name:
        raise InvalidInput(f"the archive holds an unsafe path {name!r}", field="archive")
    return norm


def _extract(path: Path, dest: Path, limit: int) -> None:
    """Unpack a tar or zip archive into ``dest`` safely (regular files only, bounded size)."""
    total = 0

    def account(size: int, name: str) -> None:
        nonlocal total
        total += size
        if total > limit:
            raise ArchiveTooLarge(f"the archive unpacks to more than the limit of {limit} bytes", field="archive")

    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    rel = _safe_name(info.filename)
                    account(info.file_size, rel)
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        for chunk in iter(lambda: src.read(CHUNK), b""):
                            out.write(chunk)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InvalidInput(f"the archive is not a readable zip file: {exc}", field="archive") from exc
        return
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InvalidInput(f"the archive member {member.name!r} is not a regular file", field="archive")
                rel = _safe_name(member.name)
                account(member.size, rel)
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None
                with src, open(target, "wb") as out:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        out.write(chunk)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise InvalidInput(f"the archive is neither a tar nor a zip file: {exc}", field="archive") from exc


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"the archive has no {MANIFEST}", field="archive")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{MANIFEST}: {loc}: {err['msg']}", field=f"archive.{loc}") from None


def _verify_files(root: Path, manifest: Manifest) -> None:
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    listed = set(manifest.files)
    if present - listed:
        raise InvalidInput(f"the archive holds files its manifest does not list: {sorted(present - listed)[:5]}",
                           field="archive")
    if listed - present:
        raise InvalidInput(f"files of the manifest are missing: {sorted(listed - present)[:5]}", field="archive")
    for rel, expected in manifest.files.items():
        got = _sha256_file(root / rel)
        if got != expected:
            raise InvalidInput(f"checksum mismatch of {rel}: the manifest says {expected[:12]}…, the file is "
                               f"{got[:12]}…", field="archive")


def _check_definition(manifest: Manifest) -> None:
    elements = [{**e.model_dump(), "artifact_sha256": (e.artifact or {}).get("sha256")} for e in manifest.elements]
    specs = {name: mk.spec for name, mk in manifest.markups.items()}
    digest = hashlib.sha256(models.canonical_json(
        models.definition_from(elements, manifest.model.inference_markups, specs))).hexdigest()
    if digest != manifest.definition_sha256:
        raise InvalidInput("the definition does not match the manifest's definition_sha256 (the archive was altered)",
                           field="archive.definition_sha256")


def _markups(session: Session, who: Caller, manifest: Manifest) -> None:
    for name, mk in sorted(manifest.markups.items()):
        row = session.scalar(select(markups.Markup).where(markups.Markup.name == name))
        if row is None:
            markups.create(session, who, name, mk.description, mk.spec)
        elif row.spec != mk.spec:
            raise Conflict(f"a different markup {name!r} exists here; rename or remove it before importing",
                           field=f"markups.{name}")


def import_archive(session: Session, who: Caller, store: ModelStore, archive: Path, *, limit: int,
                   name: str | None = None, asset: str | None = None) -> models.Model:
    """Verify ``archive`` and create its model, ``NOT_ACTIVATED`` (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        root = Path(tmp)
        _extract(archive, root, limit)
        manifest = read_manifest(root)
        _verify_files(root, manifest)
        _check_definition(manifest)
        target = name or manifest.model.name
        who.note(object_name=target)
        if session.scalar(select(models.Model.id).where(models.Model.name == target)) is not None:
            raise Conflict(f"a model {target!r} exists already; import it under another name", field="name")
        _markups(session, who, manifest)
        elements: list[dict[str, Any]] = []
        for i, e in enumerate(manifest.elements):
            d = e.model_dump()
            if e.payload is not None:
                if not (e.artifact and e.artifact.get("sha256")):
                    raise InvalidInput(f"elements[{i}]: a payload without artifact.sha256", field=f"elements[{i}].artifact")
                local = root / _safe_name(e.payload)
                if not local.is_dir():
                    raise InvalidInput(f"elements[{i}]: its payload {e.payload} is not in the archive",
                                       field=f"elements[{i}].payload")
                path = f"/lifecycle/imports/{target}/{e.name}-{uuid.uuid4().hex[:12]}"
                try:
                    uploaded = store.upload(local, path)
                except MaasError as exc:
                    raise Unavailable(f"element {e.name!r}: the payload cannot be stored: {exc}") from exc
                if uploaded.digest != e.artifact["sha256"]:
                    raise InvalidInput(f"elements[{i}]: the payload's digest {uploaded.digest[:12]}… is not the "
                                       f"artifact's {e.artifact['sha256'][:12]}…", field=f"elements[{i}].artifact")
                d["artifact"] = {**e.artifact, "path": path}
            elif e.kind in models.TRAINABLE_KINDS and e.training_status == "trained":
                raise InvalidInput(f"elements[{i}]: a trained {e.kind} without its payload", field=f"elements[{i}].payload")
            elements.append(d)
        return models.create_imported(
            session, who, name=target, asset=manifest.model.asset if asset is None else asset,
            description=manifest.model.description,
            source=f"{manifest.model.name} (sha256 {manifest.definition_sha256[:12]})",
            inference_markups=manifest.model.inference_markups, elements=elements)
