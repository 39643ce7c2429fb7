"""The routes of datasets, jobs and markup masks through the real app, on SQLite and PostgreSQL:
uploads (rights, audit, bad files naming the row, duplicates), listing, jobs and their cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.api.app import create_app
from lifecycle.api.datasets import dataset_service, markup_mask
from lifecycle.settings import LifecycleSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "lifecycle"
ADMIN = "data-admin-token-0123456789"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(LifecycleSettings(data_dir=tmp_path / "data", db=db_url, workers=0, admin_token=ADMIN))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def user_with(client: TestClient, name: str, rights: list[str]) -> dict[str, str]:
    assert client.post("/api/v1/roles", json={"name": f"r-{name}", "rights": rights}).status_code == 201
    made = client.post("/api/v1/users", json={"name": name, "roles": [f"r-{name}"]})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def upload(client: TestClient, name: str, file: str, headers: dict[str, str] | None = None,
           **form: Any) -> Any:
    with open(DATA / file, "rb") as fh:
        return client.post("/api/v1/datasets", data={"name": name, **form}, files={"file": (file, fh)},
                           headers=headers)


def audit(client: TestClient, **query: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/audit", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()["entries"]


def test_upload_list_describe(client: TestClient) -> None:
    answer = upload(client, "pump7", "semicolon_epoch_ms.csv", grid_step_s="10")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert {k: body[k] for k in ("name", "tags", "rows", "start", "end", "grid_step_s")} == {
        "name": "pump7", "tags": ["Pressure", "Motor current"], "rows": 5,
        "start": "2024-03-01T00:00:00Z", "end": "2024-03-01T00:00:50Z", "grid_step_s": 10.0}
    assert body["created_by"] == "admin" and len(body["sha256"]) == 64
    assert client.get("/api/v1/datasets").json()["datasets"] == [body]
    assert client.get("/api/v1/datasets/pump7").json() == body
    assert client.get("/api/v1/datasets/nope").status_code == 404
    [entry] = audit(client, action="datasets.upload")
    assert (entry["actor"], entry["object"], entry["outcome"]) == ("admin", "pump7", "ok")


def test_bad_uploads_name_the_problem_and_are_audited(client: TestClient) -> None:
    answer = upload(client, "bad", "non_numeric.csv")
    assert answer.status_code == 422
    assert answer.json() == {"error": "row 2 (line 3): column 'Motor current' holds 'abc', not a finite number "
                                      "(tags must be numeric)", "field": "file"}
    answer = upload(client, "bad", "no_time.csv")
    assert answer.status_code == 422 and answer.json()["field"] == "time_column"
    assert upload(client, "ok", "comma_iso.csv", time_column="nope").json()["field"] == "time_column"
    assert upload(client, "a/b", "comma_iso.csv").json()["field"] == "name"
    assert upload(client, "x" * 101, "comma_iso.csv").status_code == 422
    assert upload(client, "d", "comma_iso.csv", grid_step_s="-1").status_code == 422
    missing_file = client.post("/api/v1/datasets", data={"name": "d"})
    assert missing_file.status_code == 422 and missing_file.json()["field"] == "file"
    assert upload(client, "d", "comma_iso.csv").status_code == 201
    conflict = upload(client, "d", "epoch_s.csv")
    assert conflict.status_code == 409 and "immutable" in conflict.json()["error"]
    refused = audit(client, action="datasets.upload", outcome="refused")
    assert len(refused) >= 6 and any(e["object"] == "bad" for e in refused)
    assert [d["name"] for d in client.get("/api/v1/datasets").json()["datasets"]] == ["d"]


def test_upload_needs_the_right(client: TestClient) -> None:
    reader = user_with(client, "reader", ["models.edit"])
    answer = upload(client, "d", "comma_iso.csv", headers=reader)
    assert answer.status_code == 403 and "datasets.upload" in answer.json()["error"]
    assert client.post("/api/v1/datasets", data={"name": "d"}, headers={"Authorization": ""}).status_code == 401
    uploader = user_with(client, "uploader", ["datasets.upload"])
    assert upload(client, "d", "comma_iso.csv", headers=uploader).status_code == 201
    assert client.get("/api/v1/datasets", headers=reader).status_code == 200  # everyone may read
    entries = audit(client, action="datasets.upload")
    assert {(e["actor"], e["outcome"]) for e in entries} >= {("reader", "refused"), ("uploader", "ok")}


def test_markup_mask_over_a_dataset(client: TestClient) -> None:
    assert upload(client, "pump7", "comma_iso.csv", grid_step_s="10").status_code == 201
    state = client.app.state.lifecycle  # type: ignore[attr-defined]
    with state.sessions() as session:
        spec = {"condition": "Motor_current > 0.5", "inconclusive_positive": False}
        answer = markup_mask(session, dataset_service(state), spec, "pump7")
        # grid 0..50 s: current 0.1, NaN, 0.7, 0.9, NaN, 1.1 → points 20, 30 and 50
        assert (answer["points"], answer["grid_points"], answer["inconclusive_points"]) == (3, 6, 2)
        assert answer["intervals"] == [{"from": "2024-03-01T00:00:20Z", "to": "2024-03-01T00:00:40Z"},
                                       {"from": "2024-03-01T00:00:50Z", "to": "2024-03-01T00:01:00Z"}]
        coarse = markup_mask(session, dataset_service(state), {**spec, "grid_step_s": 30}, "pump7")
        assert coarse["grid_step_s"] == 30 and coarse["grid_points"] == 2  # 00:00:00 and 00:00:30


def queued(client: TestClient, kind: str = "train", model: str = "m1") -> int:
    state = client.app.state.lifecycle  # type: ignore[attr-defined]
    with Session(state.engine) as s:
        job = jobs.enqueue(s, kind, model, {"elements": ["e1"]}, "admin")
        s.commit()
        return job.id


def test_jobs_list_show_cancel(client: TestClient) -> None:
    first, second = queued(client), queued(client, model="m2")
    listed = client.get("/api/v1/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == [second, first] and listed["next"] is None
    page = client.get("/api/v1/jobs", params={"limit": 1}).json()
    assert [j["id"] for j in page["jobs"]] == [second] and page["next"] == second
    assert [j["id"] for j in client.get("/api/v1/jobs", params={"before": second}).json()["jobs"]] == [first]
    shown = client.get(f"/api/v1/jobs/{first}").json()
    assert (shown["kind"], shown["state"], shown["model"], shown["created_by"]) == ("train", "queued", "m1", "admin")
    assert shown["params"] == {"elements": ["e1"]} and shown["progress"] is None
    assert client.get("/api/v1/jobs/999999").status_code == 404
    assert client.get("/api/v1/jobs", params={"state": "sleeping"}).status_code == 422
    cancelled = client.post(f"/api/v1/jobs/{first}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{first}/cancel")
    assert again.status_code == 409 and "cancelled job cannot cancel" in again.json()["error"]
    assert [j["id"] for j in client.get("/api/v1/jobs", params={"state": "queued"}).json()["jobs"]] == [second]
    [entry] = audit(client, action="jobs.cancel", outcome="ok")
    assert (entry["object"], entry["status_before"], entry["status_after"]) == (str(first), "queued", "cancelled")


def test_cancel_needs_the_right_of_the_jobs_kind(client: TestClient) -> None:
    job_id = queued(client, kind="inference")
    trainer = user_with(client, "trainer", ["models.train"])
    refused = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=trainer)
    assert refused.status_code == 403 and "models.infer" in refused.json()["error"]
    inferrer = user_with(client, "inferrer", ["models.infer"])
    assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=inferrer).json()["state"] == "cancelled"
    assert {e["actor"] for e in audit(client, action="jobs.cancel", outcome="refused")} == {"trainer"}


def test_mask_route_evaluates_a_stored_markup(client: TestClient) -> None:
    assert upload(client, "pump7", "comma_iso.csv", grid_step_s="10").status_code == 201
    made = client.post("/api/v1/markups", json={
        "name": "running", "description": "current flows",
        "condition": "Motor_current > 0.5", "inconclusive_positive": True,
        "intervals": [{"from": "2024-03-01T00:00:10Z", "to": "2024-03-01T00:00:45Z"}]})
    assert made.status_code == 201, made.text
    answer = client.get("/api/v1/markups/running/mask", params={"dataset": "pump7"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # in [10 s, 45 s): 10 (NaN → inconclusive, positive), 20 (0.7), 30 (0.9), 40 (NaN → positive)
    assert (body["markup"], body["dataset"], body["points"], body["inconclusive_points"]) == ("running", "pump7", 4, 2)
    assert body["intervals"] == [{"from": "2024-03-01T00:00:10Z", "to": "2024-03-01T00:00:50Z"}]
    part = client.get("/api/v1/markups/running/mask",
                      params={"dataset": "pump7", "from": "2024-03-01T00:00:25Z", "to": "2024-03-01T00:00:35Z"})
    assert part.json()["grid_points"] == 1 and part.json()["points"] == 1
    assert client.get("/api/v1/markups/running/mask", params={"dataset": "nope"}).status_code == 404
    assert client.get("/api/v1/markups/nope/mask", params={"dataset": "pump7"}).status_code == 404
    assert client.get("/api/v1/markups/running/mask").status_code == 422


def test_the_service_runs_registered_handlers_with_its_services(db_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def echo(ctx: jobs.JobContext) -> dict[str, Any]:
        seen.update(ctx.services)
        ctx.report_progress({"half": True})
        return {"echo": ctx.params["say"]}

    monkeypatch.setitem(jobs.DEFAULT_HANDLERS, "echo", echo)
    app = create_app(LifecycleSettings(data_dir=tmp_path / "data", db=db_url, workers=1, admin_token=ADMIN))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        state = app.state.lifecycle
        assert state.extras["workers"].n == 1
        with Session(state.engine) as s:
            job_id = jobs.enqueue(s, "echo", "m1", {"say": "hello"}, "admin").id
            s.commit()
        from maas.retry import wait_until

        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job_id}").json())["state"] == "done" and j,
                          timeout=30, what="the echo job")
        assert done["result"] == {"echo": "hello"} and done["progress"] == {"half": True}
        assert seen["datasets"] is dataset_service(state) and seen["store"] is state.extras["store"]
    assert "workers" not in state.extras  # stopped with the app
