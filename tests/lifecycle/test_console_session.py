"""The console's cookie sessions over the real app: sign-in, CSRF, rights, logout, revocation, audit."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lifecycle.console.session import COOKIE, SessionKeeper
from tests.lifecycle.conftest import ADMIN_TOKEN, auth_header


def _user(admin: TestClient, name: str, rights: list[str]) -> str:
    assert admin.post("/api/v1/roles", json={"name": f"r-{name}", "rights": rights}).status_code == 201
    r = admin.post("/api/v1/users", json={"name": name, "roles": [f"r-{name}"]})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _audit(admin: TestClient, **query: str) -> list[dict[str, Any]]:
    r = admin.get("/api/v1/audit", params=query)
    assert r.status_code == 200
    body = r.json()
    return list(body.get("entries", body.get("items", [])))


def test_sign_in_sets_an_httponly_strict_cookie_and_the_session_answers(client: TestClient,
                                                                       make_app: Callable[..., FastAPI]) -> None:
    with TestClient(client.app) as browser:
        r = browser.post("/api/v1/session", json={"token": ADMIN_TOKEN})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert ADMIN_TOKEN not in cookie
        body = r.json()
        assert body["user"] == "admin" and "models.publish" in body["rights"] and body["csrf_token"]
        me = browser.get("/api/v1/session").json()
        assert me["via"] == "cookie" and me["csrf_token"] == body["csrf_token"]
        # reads need no CSRF header; the cookie is the principal of every API route
        assert browser.get("/api/v1/models").status_code == 200


def test_mutating_cookie_calls_need_the_csrf_header_and_bearer_clients_do_not(client: TestClient) -> None:
    with TestClient(client.app) as browser:
        csrf = browser.post("/api/v1/session", json={"token": ADMIN_TOKEN}).json()["csrf_token"]
        r = browser.post("/api/v1/models", json={"name": "m1", "asset": "plant/p1"})
        assert r.status_code == 403 and r.json()["field"] == "X-CSRF-Token"
        r = browser.post("/api/v1/models", json={"name": "m1"}, headers={"X-CSRF-Token": "0" * 64})
        assert r.status_code == 403
        assert client.get("/api/v1/models/m1").status_code == 404  # nothing was written
        r = browser.post("/api/v1/models", json={"name": "m1", "asset": "plant/p1"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
    # a bearer client never needs the header
    assert client.post("/api/v1/models", json={"name": "m2"}).status_code == 201
    refused = [e for e in _audit(client, actor="admin") if e.get("outcome") == "refused"]
    assert any("X-CSRF-Token" in str(e.get("detail")) for e in refused)


def test_rights_follow_the_user_and_the_server_refuses_what_it_lacks(client: TestClient) -> None:
    token = _user(client, "viewer", ["models.create"])
    with TestClient(client.app) as browser:
        body = browser.post("/api/v1/session", json={"token": token}).json()
        assert body["rights"] == ["models.create"]
        h = {"X-CSRF-Token": body["csrf_token"]}
        assert browser.post("/api/v1/models", json={"name": "mine"}, headers=h).status_code == 201
        r = browser.delete("/api/v1/models/mine", headers=h)
        assert r.status_code == 403 and r.json()["right"] == "models.delete"


def test_unknown_token_is_refused_and_audited(client: TestClient) -> None:
    with TestClient(client.app) as browser:
        r = browser.post("/api/v1/session", json={"token": "mlt_0123456789abcdef_" + "x" * 30})
        assert r.status_code == 401 and COOKIE not in r.headers.get("set-cookie", "")
        assert browser.get("/api/v1/session").json()["user"] is None
    entries = _audit(client, actor="anonymous")
    assert any(e["action"] == "session.create" and e["outcome"] == "refused" for e in entries)


def test_sign_out_ends_the_session_even_for_a_copy_of_the_cookie(client: TestClient) -> None:
    with TestClient(client.app) as browser:
        csrf = browser.post("/api/v1/session", json={"token": ADMIN_TOKEN}).json()["csrf_token"]
        copy = browser.cookies.get(COOKIE)
        assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert browser.get("/api/v1/session").json()["user"] is None
    with TestClient(client.app, cookies={COOKIE: copy}) as thief:
        assert thief.get("/api/v1/models").status_code == 401
    actions = [e["action"] for e in _audit(client, actor="admin")]
    assert "session.create" in actions and "session.delete" in actions


def test_a_revoked_token_ends_its_sessions_at_once(client: TestClient) -> None:
    token = _user(client, "temp", [])
    with TestClient(client.app) as browser:
        assert browser.post("/api/v1/session", json={"token": token}).status_code == 200
        assert browser.get("/api/v1/session").status_code == 200
        tokens = client.get("/api/v1/users/temp/tokens").json()
        public_id = (tokens.get("tokens") or tokens.get("items"))[0]["id"]
        assert client.delete(f"/api/v1/tokens/{public_id}").status_code in (200, 204)
        assert browser.get("/api/v1/session").json()["user"] is None
        assert browser.get("/api/v1/models").status_code == 401


def test_a_forged_or_expired_cookie_is_no_session() -> None:
    now = [1000.0]
    keeper = SessionKeeper(b"k" * 32, max_age=60, timer=lambda: now[0])
    other = SessionKeeper(b"j" * 32)
    from lifecycle.auth import Principal

    value, claims = keeper.issue(Principal("u", frozenset(), "abcd"))
    assert keeper.load(value) is not None
    assert other.load(value) is None
    assert keeper.load(value[:-2] + "xx") is None
    assert keeper.csrf_ok(claims, keeper.csrf_token(claims)) and not keeper.csrf_ok(claims, None)
    keeper.end(claims)
    assert keeper.load(value) is None


def test_the_console_page_and_its_files_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/console/vendor/uplot/uPlot.esm.js").status_code == 200
    assert "MIT License" in client.get("/console/vendor/uplot/LICENSE").text


def test_overview_without_zookeeper_says_so(client: TestClient) -> None:
    assert client.get("/api/v1/maas/overview").json() == {"configured": False, "zk_quorum": None, "models": []}
