"""Rights on the server (docs/lifecycle.md): every mutating route refuses a call without a token (401)
and one whose roles lack its right (403 naming it); an inactive role grants nothing; a revoked
token is refused at once; the administrator role cannot be changed; every refusal is audited.
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lifecycle.auth import RIGHTS
from tests.lifecycle.conftest import auth_header

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: Routes any authenticated user may call (on its own objects): they check ownership instead.
#: Cancelling a job needs the right of the job's kind, known once the job is read (tests/lifecycle/test_api_data.py).
OWN = {("DELETE", "/api/v1/tokens/{token_id}"), ("POST", "/api/v1/jobs/{job_id}/cancel")}
#: Signing in to and out of the web console: the body's token or the session cookie is the credential
#: (tests/lifecycle/browser and the console's own tests check them).
SIGN_IN = {("POST", "/api/v1/session"), ("DELETE", "/api/v1/session")}


def mutating_routes(client: TestClient) -> list[tuple[str, str, tuple[str, str]]]:
    """(method, path with every parameter 'x', (method, template)) of every mutating API route."""
    out = []
    for template, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method in operations:
            if method.upper() in MUTATING:
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "1", template), (method.upper(), template)))
    return sorted(out)


def user_with(client: TestClient, name: str, rights: list[str], active: bool = True) -> str:
    role = f"role-{name}"
    r = client.post("/api/v1/roles", json={"name": role, "rights": rights, "active": active})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/users", json={"name": name, "roles": [role]})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_every_mutating_route_needs_a_token_and_its_right(client: TestClient) -> None:
    routes = [r for r in mutating_routes(client) if r[2] not in SIGN_IN]
    assert len(routes) >= 25
    nobody = client.post("/api/v1/users", json={"name": "nobody", "roles": []}).json()["token"]
    for method, path, name in routes:
        r = client.request(method, path, headers={"Authorization": ""})
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.request(method, path, headers=auth_header("mlt_0123456789abcdef_" + "x" * 30))
        assert r.status_code == 401, (method, path, r.text)
        if name in OWN:
            continue
        r = client.request(method, path, headers=auth_header(nobody))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["right"] in RIGHTS and r.json()["right"] in r.json()["error"]
    refused = client.get("/api/v1/audit", params={"outcome": "refused", "actor": "nobody"}).json()["entries"]
    assert len(refused) == len([r for r in routes if r[2] not in OWN])
    assert {e["detail"]["status"] for e in refused} == {403}
    anonymous = client.get("/api/v1/audit", params={"outcome": "refused", "actor": "anonymous",
                                                    "limit": 5000}).json()["entries"]
    assert len(anonymous) == 2 * len(routes)


RIGHT_OF: list[tuple[str, str, Any, str]] = [
    ("POST", "/api/v1/models", {"name": "n"}, "models.create"),
    ("PUT", "/api/v1/models/m", {"description": "d"}, "models.edit"),
    ("POST", "/api/v1/models/m/elements", {"name": "r", "kind": "rule"}, "models.edit"),
    ("PUT", "/api/v1/models/m/elements/r1", {"kind": "rule"}, "models.edit"),
    ("DELETE", "/api/v1/models/m/elements/r1", None, "models.edit"),
    ("POST", "/api/v1/models/m/train", None, "models.train"),
    ("POST", "/api/v1/models/m/prepare", None, "models.prepare"),
    ("POST", "/api/v1/models/m/publish", None, "models.publish"),
    ("POST", "/api/v1/models/m/clone", {"name": "c"}, "models.create"),
    ("POST", "/api/v1/models/m/template", {"name": "c"}, "models.create"),
    ("POST", "/api/v1/models/import", None, "models.upload"),
    ("POST", "/api/v1/models/m/activate", None, "models.upload"),
    ("DELETE", "/api/v1/models/m", None, "models.delete"),
    ("POST", "/api/v1/markups", {"name": "k"}, "markups.edit"),
    ("PUT", "/api/v1/markups/k", {}, "markups.edit"),
    ("DELETE", "/api/v1/markups/k", None, "markups.edit"),
    ("POST", "/api/v1/datasets", None, "datasets.upload"),
    ("POST", "/api/v1/roles", {"name": "r"}, "admin"),
    ("POST", "/api/v1/users", {"name": "u"}, "admin"),
    ("PATCH", "/api/v1/users/someone", {"roles": []}, "admin"),
]


@pytest.mark.parametrize("method, path, body, right", RIGHT_OF, ids=[f"{m} {p}" for m, p, _b, _r in RIGHT_OF])
def test_each_route_names_its_right(client: TestClient, method: str, path: str, body: Any, right: str) -> None:
    others = [r for r in RIGHTS if r != right]
    token = user_with(client, "almost", others)
    r = client.request(method, path, json=body, headers=auth_header(token))
    assert r.status_code == 403 and r.json()["right"] == right, r.text
    entry = client.get("/api/v1/audit", params={"actor": "almost", "outcome": "refused"}).json()["entries"][-1]
    assert entry["detail"] == {"status": 403, "reason": r.json()["error"]}


def test_an_inactive_role_grants_nothing(client: TestClient) -> None:
    token = user_with(client, "sleeper", list(RIGHTS), active=False)
    r = client.post("/api/v1/models", json={"name": "m"}, headers=auth_header(token))
    assert r.status_code == 403 and r.json()["right"] == "models.create"
    assert client.get("/api/v1/whoami", headers=auth_header(token)).json()["rights"] == []
    # reading needs only a valid token
    assert client.get("/api/v1/models", headers=auth_header(token)).status_code == 200
    # activating the role grants its rights at once
    assert client.patch("/api/v1/roles/role-sleeper", json={"active": True}).status_code == 200
    r = client.post("/api/v1/models", json={"name": "m"}, headers=auth_header(token))
    assert r.status_code == 201 and r.json()["created_by"] == "sleeper"


def test_a_revoked_token_is_refused_at_once(client: TestClient) -> None:
    token = user_with(client, "leaver", ["models.create"])
    assert client.get("/api/v1/whoami", headers=auth_header(token)).status_code == 200  # now cached
    token_id = client.get("/api/v1/users/leaver/tokens").json()["tokens"][0]["id"]
    r = client.delete(f"/api/v1/tokens/{token_id}")
    assert r.status_code == 200 and r.json()["revoked"] is not None
    r = client.post("/api/v1/models", json={"name": "m"}, headers=auth_header(token))
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    assert client.get("/api/v1/whoami", headers=auth_header(token)).status_code == 401
    # a new token works; a user revokes its own tokens without the right 'admin'
    fresh = client.post("/api/v1/users/leaver/tokens", json={"description": "laptop"}).json()
    assert client.get("/api/v1/whoami", headers=auth_header(fresh["token"])).json()["name"] == "leaver"
    own = client.delete(f"/api/v1/tokens/{fresh['id']}", headers=auth_header(fresh["token"]))
    assert own.status_code == 200
    refused = client.get("/api/v1/audit", params={"actor": "anonymous", "outcome": "refused"}).json()["entries"]
    assert refused[-1]["action"] == "models.create" and refused[-1]["detail"]["status"] == 401


def test_someone_elses_token_cannot_be_revoked(client: TestClient) -> None:
    mallory = user_with(client, "mallory", [])
    admin_token_id = client.get("/api/v1/users/admin/tokens").json()["tokens"][0]["id"]
    r = client.delete(f"/api/v1/tokens/{admin_token_id}", headers=auth_header(mallory))
    assert r.status_code == 403 and r.json()["right"] == "admin"
    assert client.get("/api/v1/whoami").status_code == 200  # the admin's token still works


def test_the_administrator_role_cannot_be_changed_or_removed(client: TestClient) -> None:
    for method, body in (("PUT", {"rights": []}), ("PATCH", {"active": False}), ("DELETE", None)):
        r = client.request(method, "/api/v1/roles/administrator", json=body)
        assert r.status_code == 409 and "built-in" in r.json()["error"], r.text
    role = client.get("/api/v1/roles/administrator").json()
    assert role["active"] and role["builtin"] and sorted(role["rights"]) == sorted(RIGHTS)
    refused = client.get("/api/v1/audit", params={"object": "administrator", "outcome": "refused"}).json()["entries"]
    assert [e["action"] for e in refused] == ["roles.update", "roles.update", "roles.delete"]


def test_roles_and_users_administration(client: TestClient) -> None:
    r = client.post("/api/v1/roles", json={"name": "analyst", "rights": ["markups.edit", "no.such.right"]})
    assert r.status_code == 422 and r.json()["field"] == "rights" and "no.such.right" in r.json()["error"]
    assert client.post("/api/v1/roles", json={"name": "analyst", "rights": ["markups.edit"]}).status_code == 201
    assert client.post("/api/v1/roles", json={"name": "analyst"}).status_code == 409
    r = client.post("/api/v1/users", json={"name": "ann", "roles": ["analyst", "ghost"]})
    assert r.status_code == 422 and "ghost" in r.json()["error"]
    ann = client.post("/api/v1/users", json={"name": "ann", "roles": ["analyst"]}).json()
    assert ann["token"].startswith("mlt_") and ann["rights"] == ["markups.edit"]
    assert "token" not in client.get("/api/v1/users/ann").json()
    r = client.delete("/api/v1/roles/analyst")
    assert r.status_code == 409 and "ann" in r.json()["error"]
    client.patch("/api/v1/users/ann", json={"roles": []})
    assert client.delete("/api/v1/roles/analyst").status_code == 204
    # a deactivated user's tokens stop working
    client.patch("/api/v1/users/ann", json={"active": False})
    assert client.get("/api/v1/whoami", headers=auth_header(ann["token"])).status_code == 401
    # tokens are stored only as argon2 hashes
    from sqlalchemy import select

    from lifecycle.auth import Token
    with client.app.state.lifecycle.sessions() as session:  # type: ignore[attr-defined]
        hashes = session.scalars(select(Token.hash)).all()
    assert all(h.startswith("$argon2") for h in hashes) and not any(ann["token"] in h for h in hashes)


def test_the_last_administrator_cannot_be_removed(client: TestClient) -> None:
    for method, path, body in (("PATCH", "/api/v1/users/admin", {"roles": []}),
                               ("PATCH", "/api/v1/users/admin", {"active": False}),
                               ("DELETE", "/api/v1/users/admin", None)):
        r = client.request(method, path, json=body)
        assert r.status_code == 409 and "no active user would hold the role 'administrator'" in r.json()["error"]
    assert client.get("/api/v1/whoami").json()["name"] == "admin"
    # with a second administrator, the first may go
    client.post("/api/v1/users", json={"name": "root2", "roles": ["administrator"]})
    assert client.delete("/api/v1/users/admin").status_code == 204


def test_models_by_asset(client: TestClient) -> None:
    for name, asset in (("a", "plant1/pump7"), ("b", "plant1"), ("c", "plant10/pump1"), ("d", "plant_1")):
        client.post("/api/v1/models", json={"name": name, "asset": asset})
    names = [m["name"] for m in client.get("/api/v1/models", params={"asset": "plant1"}).json()["models"]]
    assert names == ["a", "b"]
    assert [m["name"] for m in client.get("/api/v1/models", params={"asset": "plant_"}).json()["models"]] == []
