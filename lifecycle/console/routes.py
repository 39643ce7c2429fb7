"""API routes the web console needs beside the resource routes; any API client may call them.

* ``POST /api/v1/session {"token"}`` → sign in: sets the session cookie (see
  :mod:`lifecycle.console.session`) and answers ``{user, rights, csrf_token, expires}``; an unknown
  token is 401, audited as refused. ``GET /api/v1/session`` → the caller and its rights (with the
  CSRF token when the call came with the cookie; ``{"user": null}`` without any credentials). ``DELETE /api/v1/session`` → sign out.
* ``GET /api/v1/maas/overview`` → what ``maas_deploy -mo STATUS`` and ``-mo LIST`` show, read from
  ZooKeeper (``-zq``) through :class:`deploy_client.api.DeployClient`: per (model, version) the
  desired/running/ready instances, restarts, last error and the registered endpoints.
  ``{"configured": false}`` when the service runs without ``-zq``; 503 when ZooKeeper cannot be read.
* ``GET /api/v1/datasets/{name}/series?tag=&from=&to=&buckets=`` → a tag of a dataset downsampled
  min/max per bucket (:mod:`lifecycle.console.downsample`) for charts over millions of points.
* ``GET /api/v1/models/{m}/results/series?element=&tag=&from=&to=&buckets=`` → the same for an
  element's inference results: its artifact, threshold and predictions of the ``tag`` outputs.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lifecycle import audit
from lifecycle.api.deps import PrincipalDep, SessionDep, ServiceState, StateDep, current_principal, get_state
from lifecycle.console.downsample import MAX_BUCKETS, minmax
from lifecycle.console.session import COOKIE, Claims, SessionKeeper
from lifecycle.errors import InvalidInput, Unauthenticated, Unavailable

router = APIRouter(prefix="/api/v1", tags=["console"])


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=300)


def keeper_of(state: ServiceState) -> SessionKeeper:
    return state.extras["console_sessions"]  # type: ignore[no-any-return]


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


@router.post("/session", name="session.create")
def sign_in(body: SignIn, request: Request, response: Response, session: SessionDep,
            state: StateDep) -> dict[str, Any]:
    principal = state.verifier.verify(session, body.token)
    request.state.principal = principal
    keeper = keeper_of(state)
    value, claims = keeper.issue(principal)
    response.set_cookie(COOKIE, value, max_age=keeper.max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    audit.record(session, actor=principal.name, action="session.create", object_type="session",
                 object_name=principal.name, detail={"token_id": principal.token_id})
    return {"user": principal.name, "rights": sorted(principal.rights), "via": "cookie",
            "csrf_token": keeper.csrf_token(claims), "expires": _iso(keeper.expires(claims))}


@router.get("/session", name="session.show")
def show_session(request: Request, state: StateDep) -> dict[str, Any]:
    """The caller; ``{"user": null}`` (200) when the call has neither a session nor a bearer token,
    so a page can ask whether it is signed in without provoking an error."""
    claims: Claims | None = getattr(request.state, "console_session", None)
    if claims is None and not request.headers.get("authorization"):
        return {"user": None, "rights": [], "via": None, "csrf_token": None, "expires": None}
    who = current_principal(request)
    out: dict[str, Any] = {"user": who.name, "rights": sorted(who.rights), "via": "bearer",
                           "csrf_token": None, "expires": None}
    if claims is not None:
        keeper = keeper_of(state)
        out.update(via="cookie", csrf_token=keeper.csrf_token(claims), expires=_iso(keeper.expires(claims)))
    return out


@router.delete("/session", status_code=204, name="session.delete")
def sign_out(request: Request, session: SessionDep, who: PrincipalDep, state: StateDep) -> Response:
    claims: Claims | None = getattr(request.state, "console_session", None)
    if claims is None:
        raise Unauthenticated("no console session: this call was not made with the session cookie")
    keeper_of(state).end(claims)
    audit.record(session, actor=who.name, action="session.delete", object_type="session", object_name=who.name)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- the MaaS overview ---------------------------------------------------------------------------

_deploy_lock = threading.Lock()


def deploy_client_of(state: ServiceState) -> Any:
    """The process's :class:`DeployClient` (one ZooKeeper session, opened on first use)."""
    from deploy_client.api import DeployClient
    from maas.errors import MaasError

    client = state.extras.get("deploy_client")
    if client is not None:
        return client
    with _deploy_lock:
        client = state.extras.get("deploy_client")
        if client is None:
            assert state.settings.zk_quorum
            try:
                client = DeployClient(state.settings.zk_quorum, state.settings.zk_root)
            except MaasError as exc:
                raise Unavailable(f"ZooKeeper {state.settings.zk_quorum}: {exc}") from exc
            state.extras["deploy_client"] = client
    return client


def close_deploy_client(state: ServiceState) -> None:
    client = state.extras.pop("deploy_client", None)
    if client is not None:
        client.close()


def overview_rows(statuses: list[Any], endpoints: dict[tuple[str, str], list[Any]]) -> list[dict[str, Any]]:
    """One row per (model, version) known to the controller or registered, in ``maas_deploy`` order."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for st in statuses:
        rows[(st.name, st.version)] = {
            "name": st.name, "version": st.version, "desired": st.desired, "running": st.running,
            "ready": st.ready, "restarts": st.restarts, "last_error": st.last_error,
            "backoff_seconds": st.backoff_seconds, "updated": _iso(st.updated), "endpoints": []}
    for (name, version), found in endpoints.items():
        row = rows.setdefault((name, version), {
            "name": name, "version": version, "desired": None, "running": None, "ready": None,
            "restarts": None, "last_error": None, "backoff_seconds": None, "updated": None, "endpoints": []})
        row["endpoints"] = [{"instance_id": e.instance_id, "url": e.url, "container_id": e.container_id,
                             "functions": e.functions,
                             "registered": _iso(e.registered_ms / 1000) if e.registered_ms else None}
                            for e in found]
    from maas.discovery import version_key  # natural version order, as maas_deploy prints
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], version_key(k[1])))]


@router.get("/maas/overview", name="maas.overview")
def maas_overview(_: PrincipalDep, state: StateDep) -> dict[str, Any]:
    from maas.errors import MaasError

    if not state.settings.zk_quorum:
        return {"configured": False, "zk_quorum": None, "models": []}
    client = deploy_client_of(state)
    try:
        rows = overview_rows(client.model_statuses(), client.list())
    except MaasError as exc:
        raise Unavailable(f"cannot read MaaS from ZooKeeper {state.settings.zk_quorum}: {exc}") from exc
    return {"configured": True, "zk_quorum": state.settings.zk_quorum, "models": rows,
            "read": _iso(dt.datetime.now(dt.timezone.utc).timestamp())}


# -- downsampled series of a dataset's tag -------------------------------------------------------

def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


@router.get("/datasets/{name}/series", name="datasets.series")
def dataset_series(name: str, session: SessionDep, _: PrincipalDep, request: Request,
                   tag: list[str] = Query(..., min_length=1, max_length=20),
                   from_: dt.datetime | None = Query(None, alias="from"),
                   to: dt.datetime | None = None,
                   buckets: int = Query(1000, ge=1, le=MAX_BUCKETS)) -> dict[str, Any]:
    from lifecycle.api.datasets import dataset_service

    service = dataset_service(get_state(request))
    info = service.describe(session, name)
    unknown = [t for t in tag if t not in info.tags]
    if unknown:
        raise InvalidInput(f"dataset {name!r} has no tag {unknown[0]!r}", field="tag")
    lo = _epoch(from_) if from_ is not None else _epoch(info.start)
    hi = _epoch(to) if to is not None else _epoch(info.end)
    assert lo is not None and hi is not None
    if hi <= lo:
        if to is not None or from_ is not None:
            raise InvalidInput("'to' must be after 'from'", field="to")
        hi = lo + 1.0
    frame = service.read(session, name, start=dt.datetime.fromtimestamp(lo, dt.timezone.utc),
                         end=dt.datetime.fromtimestamp(hi, dt.timezone.utc), tags=tag)
    times = frame.index.asi8.astype("float64") / 1e9 if len(frame) else np.empty(0)
    end = np.nextafter(hi, np.inf)  # the range is inclusive of its last sample
    series = {t: minmax(times, frame[t].to_numpy(), lo, end, buckets).to_json() for t in tag}
    return {"dataset": name, "from": _iso(lo), "to": _iso(hi), "buckets": buckets, "series": series}


# -- downsampled inference results of an element -------------------------------------------------

def _epoch_column(session: Any, column: Any) -> Any:
    """``column`` (a UTC timestamp) as epoch seconds, computed by the database."""
    from sqlalchemy import Float, cast, func

    if session.get_bind().dialect.name == "sqlite":  # stored as naive UTC text
        return (func.julianday(column) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", column), Float)


@router.get("/models/{m}/results/series", name="models.results.series")
def results_series(m: str, session: SessionDep, _: PrincipalDep,
                   element: str = Query(..., min_length=1, max_length=100),
                   tag: list[str] = Query(default_factory=list, max_length=20,
                                          description="Predicted output tags to include"),
                   from_: dt.datetime | None = Query(None, alias="from"),
                   to: dt.datetime | None = None,
                   buckets: int = Query(1000, ge=1, le=MAX_BUCKETS)) -> dict[str, Any]:
    """The element's artifact, threshold and (for ``tag``) predictions over ``[from, to]``, each
    downsampled min/max per bucket like :func:`dataset_series`; ``null`` series when there are no
    results. The range defaults to the element's stored results."""
    from sqlalchemy import func, select

    from lifecycle import models
    from lifecycle.inference import InferenceResult as R

    model = models.get(session, m)
    if element not in {e.name for e in model.elements}:
        raise InvalidInput(f"model {m!r} has no element {element!r}", field="element")
    where = (R.model == m, R.element == element)
    lo_t, hi_t = session.execute(select(func.min(R.time), func.max(R.time)).where(*where)).one()
    lo = _epoch(from_) if from_ is not None else _epoch(lo_t)
    hi = _epoch(to) if to is not None else _epoch(hi_t)
    if lo is None or hi is None:
        return {"model": m, "element": element, "from": None, "to": None, "buckets": buckets, "series": {}}
    if hi <= lo:
        if to is not None or from_ is not None:
            raise InvalidInput("'to' must be after 'from'", field="to")
        hi = lo + 1.0
    in_range = (*where, R.time >= dt.datetime.fromtimestamp(lo, dt.timezone.utc),
                R.time <= dt.datetime.fromtimestamp(hi, dt.timezone.utc))
    # epoch seconds computed by the database: 10⁶ rows of plain floats, no datetime objects
    epoch = _epoch_column(session, R.time)
    # Core, not the ORM (whose row loading costs ~5 s per 10⁶ rows), and the driver's own tuples,
    # which numpy reads ~40× faster than Row objects; None (no artifact) becomes NaN
    result = session.connection().execute(select(epoch, R.artifact, R.threshold).where(*in_range).order_by(R.time))
    try:
        parts = []
        while chunk := result.cursor.fetchmany(50_000):
            parts.append(np.array(chunk, dtype="float64").reshape(-1, 3))
    finally:
        result.close()
    table = np.concatenate(parts) if parts else np.empty((0, 3))
    times, artifact, threshold = np.round(table[:, 0], 3), table[:, 1], table[:, 2]
    rows = (session.execute(select(R.predictions).where(*in_range).order_by(R.time)).scalars().all()
            if tag else [])
    end = np.nextafter(hi, np.inf)
    series: dict[str, Any] = {"artifact": minmax(times, artifact, lo, end, buckets).to_json(),
                              "threshold": minmax(times, threshold, lo, end, buckets).to_json()}
    for t in tag:
        values = np.fromiter((np.nan if not r or r.get(t) is None else r[t] for r in rows),
                             dtype="float64", count=len(rows))
        series[f"predicted:{t}"] = minmax(times, values, lo, end, buckets).to_json()
    return {"model": m, "element": element, "from": _iso(lo), "to": _iso(hi), "buckets": buckets, "series": series}
