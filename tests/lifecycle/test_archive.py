"""Model archives: export → import → activate gives an equal model (same sha256), with its
trained payloads and markups; every kind of bad archive is refused naming the problem, with
nothing written. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lifecycle import models as svc
from lifecycle.api.deps import store_of
from lifecycle.markups import Caller

MARKUP = {"name": "running", "intervals": [{"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}],
          "condition": "Current > 0.5", "inconclusive_positive": False}
FORECASTER: dict[str, Any] = {"name": "f1", "kind": "forecaster", "inputs": ["Current"], "outputs": ["Pressure"],
                              "window": 3, "training": {"dataset": "pump", "markups": ["running"]},
                              "detection": {"threshold": 0.8}}
RULE: dict[str, Any] = {"name": "r1", "kind": "rule", "inputs": ["Pressure"], "params": {"expression": "Pressure > 10"}}


def trained_model(client: TestClient, tmp_path: Path, name: str = "m", publish: bool = True) -> dict[str, Any]:
    """A published (or only TRAINED) model with a rule and a forecaster whose payload is in the store."""
    assert client.post("/api/v1/markups", json=MARKUP).status_code in (201, 409)
    assert client.post("/api/v1/models", json={"name": name, "asset": "plant1/pump7",
                                               "inference_markups": ["running"]}).status_code == 201
    assert client.post(f"/api/v1/models/{name}/elements", json=RULE).status_code == 201
    assert client.post(f"/api/v1/models/{name}/elements", json=FORECASTER).status_code == 201
    payload = tmp_path / f"payload-{name}"
    payload.mkdir()
    (payload / "model.onnx").write_bytes(b"\x08\x07onnx-bytes" * 50)
    (payload / "signature.json").write_text('{"inputs": []}')
    state = client.app.state.lifecycle  # type: ignore[attr-defined]
    uploaded = store_of(state).upload(payload, f"/lifecycle/payloads/{name}/f1/1")
    with state.sessions.begin() as session:
        e = svc.element_of(svc.get(session, name), "f1")
        svc.mark_element_trained(session, Caller("trainer"), name, "f1", revision=e.revision,
                                 artifact={"path": f"/lifecycle/payloads/{name}/f1/1", "sha256": uploaded.digest,
                                           "threshold": 0.8, "epochs": 12})
    if not publish:
        return client.get(f"/api/v1/models/{name}").json()
    assert client.post(f"/api/v1/models/{name}/prepare").status_code == 200
    published = client.post(f"/api/v1/models/{name}/publish")
    assert published.status_code == 200
    return published.json()


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_export_import_activate_gives_an_equal_model(client: TestClient, tmp_path: Path, fmt: str) -> None:
    source = trained_model(client, tmp_path)
    archive = client.get("/api/v1/models/m/export", params={"format": fmt})
    assert archive.status_code == 200
    r = client.post("/api/v1/models/import", files={"archive": (f"m.{fmt}", archive.content)},
                    data={"name": "m-site2", "asset": "plant2/pump1"})
    assert r.status_code == 201, r.text
    imported = r.json()
    assert imported["status"] == "NOT_ACTIVATED" and imported["origin"] == "imported"
    assert imported["asset"] == "plant2/pump1" and imported["origin_source"].startswith("m (sha256 ")
    assert client.get("/api/v1/models/m-site2").json()["definition_sha256"] == source["sha256"]
    f1 = next(e for e in imported["elements"] if e["name"] == "f1")
    assert f1["training_status"] == "trained" and f1["artifact"]["path"] != "/lifecycle/payloads/m/f1/1"
    assert f1["artifact"]["sha256"] == next(e for e in source["elements"] if e["name"] == "f1")["artifact"]["sha256"]
    # the imported payload is in the store, verified on download
    state = client.app.state.lifecycle  # type: ignore[attr-defined]
    store_of(state).download(f1["artifact"]["path"], tmp_path / "check")
    assert (tmp_path / "check" / "model.onnx").read_bytes() == b"\x08\x07onnx-bytes" * 50

    activated = client.post("/api/v1/models/m-site2/activate").json()
    assert activated["status"] == "TRAINED"
    prepared = client.post("/api/v1/models/m-site2/prepare").json()
    assert prepared["sha256"] == source["sha256"]
    trail = client.get("/api/v1/audit", params={"object": "m-site2"}).json()["entries"]
    assert [e["action"] for e in trail] == ["models.import", "models.activate", "models.prepare"]


def test_imported_model_keeps_its_elements(client: TestClient, tmp_path: Path) -> None:
    trained_model(client, tmp_path)
    archive = client.get("/api/v1/models/m/export").content
    client.post("/api/v1/models/import", files={"archive": ("m.tar.gz", archive)}, data={"name": "imp"})
    client.post("/api/v1/models/imp/activate")
    r = client.post("/api/v1/models/imp/elements", json={**RULE, "name": "r2"})
    assert r.status_code == 409 and "cannot gain elements" in r.json()["error"]
    r = client.delete("/api/v1/models/imp/elements/r1")
    assert r.status_code == 409 and "cannot lose elements" in r.json()["error"]
    # its detection settings may still be tuned
    r = client.put("/api/v1/models/imp/elements/f1", json={**FORECASTER, "detection": {"threshold": 0.9}})
    assert r.status_code == 200 and r.json()["training_status"] == "trained"


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]


def _altered(archive: bytes, change: str) -> bytes:
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    if change == "payload":
        members["payloads/f1/model.onnx"] = b"tampered"
    elif change == "definition":
        manifest["elements"][0]["detection"]["threshold"] = 123.0
    elif change == "extra file":
        members["payloads/f1/extra.bin"] = b"x"
    elif change == "missing file":
        del members["payloads/f1/model.onnx"]
    elif change == "unknown field":
        manifest["surprise"] = 1
    elif change == "unsafe path":
        members["../escape"] = b"x"
    members["manifest.json"] = json.dumps(manifest).encode()
    return _tar(members)


@pytest.mark.parametrize("change, message", [
    ("payload", "checksum mismatch of payloads/f1/model.onnx"),
    ("definition", "definition_sha256"),
    ("extra file", "does not list"),
    ("missing file", "missing"),
    ("unknown field", "surprise"),
    ("unsafe path", "unsafe path"),
])
def test_bad_archives_are_refused_and_nothing_is_written(client: TestClient, tmp_path: Path, change: str,
                                                          message: str) -> None:
    trained_model(client, tmp_path)
    bad = _altered(client.get("/api/v1/models/m/export").content, change)
    r = client.post("/api/v1/models/import", files={"archive": ("m.tar.gz", bad)}, data={"name": "imp"})
    assert r.status_code == 422, r.text
    assert message in r.json()["error"] and r.json()["field"].startswith("archive")
    assert client.get("/api/v1/models/imp").status_code == 404
    refused = client.get("/api/v1/audit", params={"action": "models.import", "outcome": "refused"}).json()["entries"]
    assert refused and refused[-1]["object"] in ("", "imp")


def test_not_an_archive_and_too_large(make_app: Any, tmp_path: Path) -> None:
    from tests.lifecycle.conftest import ADMIN_TOKEN, auth_header

    with TestClient(make_app(max_archive_bytes=4096), headers=auth_header(ADMIN_TOKEN)) as c:
        r = c.post("/api/v1/models/import", files={"archive": ("x.tar.gz", b"not an archive at all")})
        assert r.status_code == 422 and "neither a tar nor a zip" in r.json()["error"]
        r = c.post("/api/v1/models/import", files={"archive": ("x.tar.gz", b"\0" * 5000)})
        assert r.status_code == 413 and "limit of 4096 bytes" in r.json()["error"]
        r = c.post("/api/v1/models/import", files={"archive": ("x.tar.gz", b"")})
        assert r.status_code == 422 and "empty" in r.json()["error"]


def test_a_different_markup_of_the_same_name_is_a_conflict(client: TestClient, tmp_path: Path) -> None:
    trained_model(client, tmp_path, publish=False)
    archive = client.get("/api/v1/models/m/export").content
    # here the markup changes after the export (m is not frozen, so it may)
    assert client.put("/api/v1/markups/running", json={**MARKUP, "condition": "Current > 0.6"}).status_code == 200
    r = client.post("/api/v1/models/import", files={"archive": ("m.tar.gz", archive)}, data={"name": "imp"})
    assert r.status_code == 409 and "a different markup 'running'" in r.json()["error"]
    assert client.get("/api/v1/models/imp").status_code == 404
    # the change reset the element training on it: m must train again
    assert client.get("/api/v1/models/m").json()["status"] == "DRAFT"


def test_only_trained_models_export(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "d"})
    client.post("/api/v1/models/d/elements", json=FORECASTER | {"training": {"dataset": "pump"}})
    r = client.get("/api/v1/models/d/export")
    assert r.status_code == 409 and "DRAFT" in r.json()["error"]
