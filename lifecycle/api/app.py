"""The FastAPI application of ``maas_lifecycle serve``: its routers, error translation and metrics.

* Routers: each module named in :data:`ROUTERS` defines ``router`` (a ``fastapi.APIRouter`` whose
  prefix starts with ``/api/v1``). To add one, append its module path to :data:`ROUTERS` — a
  one-line registration.
* Errors: every :class:`~lifecycle.errors.LifecycleError` becomes ``{"error": message, "field":
  field}`` with the error's HTTP status. Pydantic request validation gives 422 naming the field
  (``elements.0.name``); a body that is not JSON gives 400 with the position. Unknown paths 404,
  anything unexpected 500 ``{"error": "internal error"}`` (logged, never the exception text).
* Refusals of mutating calls (POST/PUT/PATCH/DELETE answered 4xx) and failures (5xx) are recorded
  in the audit trail here, each in a transaction of its own (see :mod:`lifecycle.api.deps`).
* ``/metrics``: Prometheus text format (request counts and latencies per route, per process).
* :func:`create_app` also upgrades the database schema (unless told not to) and, on an empty
  database, creates the bootstrap administrator (its token in ``app.state.bootstrap_token`` when
  it was generated, so that ``serve`` prints it once).
"""

from __future__ import annotations

import importlib
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle import audit, auth
from lifecycle.api.deps import ServiceState, translate_db_error
from lifecycle.db import make_engine
from lifecycle.errors import Forbidden, LifecycleError
from lifecycle.settings import LifecycleSettings

log = logging.getLogger(__name__)

#: Modules defining ``router``, included in this order.
ROUTERS: list[str] = [
    "lifecycle.api.admin",
    "lifecycle.api.models",
    "lifecycle.api.markups",
    "lifecycle.api.datasets",
    "lifecycle.api.jobs",
    "lifecycle.api.audit",
    "lifecycle.api.incidents",
    "lifecycle.api.inference",
]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Functions run when the app starts / stops (the job worker pool registers itself here).
Hook = Callable[[ServiceState], Any]
STARTUP_HOOKS: list[Hook] = []
SHUTDOWN_HOOKS: list[Hook] = []


def _singular(segment: str) -> str:
    if segment.endswith("ses"):
        return segment[:-2]
    return segment[:-1] if segment.endswith("s") else segment


def audit_target(request: Request) -> tuple[str, str, str]:
    """(action, object type, object name) of the call, from the route and the audit context."""
    route = request.scope.get("route")
    action = getattr(route, "name", None) or f"{request.method} {request.url.path}"
    template: str = getattr(route, "path", request.url.path)
    segments = [s for s in template.removeprefix("/api/v1").split("/") if s]
    params = request.path_params
    object_type, names = "", []
    for i, seg in enumerate(segments):
        if seg.startswith("{"):
            value = params.get(seg.strip("{}").split(":")[0])
            if value is not None:
                names.append(str(value))
            if i > 0 and not segments[i - 1].startswith("{"):
                object_type = _singular(segments[i - 1])
        elif not object_type and not names:
            object_type = _singular(seg)
    ctx = getattr(request.state, "audit", None) or {}
    return (action, ctx.get("object_type") or object_type or "service",
            ctx.get("object_name") or "/".join(names))


def _record_outcome(request: Request, outcome: str, message: str, status: int) -> None:
    """Audit a refused or failed mutating call in a transaction of its own (run in a worker
    thread: the database call must not block the event loop)."""
    if request.method not in MUTATING or request.scope.get("route") is None:
        return
    state: ServiceState | None = getattr(request.app.state, "lifecycle", None)
    if state is None:
        return
    action, object_type, object_name = audit_target(request)
    principal = getattr(request.state, "principal", None)
    ctx = getattr(request.state, "audit", None) or {}
    try:
        with state.sessions.begin() as session:
            audit.record(session, actor=principal.name if principal else "anonymous", action=action,
                         object_type=object_type, object_name=object_name,
                         status_before=ctx.get("status_before"), outcome=outcome,  # type: ignore[arg-type]
                         detail={"status": status, "reason": message})
    except Exception:  # the answer to the client must not depend on the audit write
        log.exception("could not record the %s call %s in the audit trail", outcome, action)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else [str(p) for p in loc]
    return ".".join(parts) or (str(loc[0]) if loc else "body")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LifecycleError)
    async def _lifecycle_error(request: Request, exc: LifecycleError) -> JSONResponse:
        await run_in_threadpool(_record_outcome, request, "refused" if exc.http_status < 500 else "failed",
                                exc.message, exc.http_status)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        body = exc.to_body()
        if isinstance(exc, Forbidden):
            body["right"] = exc.right
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
        loc = tuple(first.get("loc") or ("body",))
        if first.get("type") == "json_invalid":
            pos = loc[1] if len(loc) > 1 else "?"
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            body = {"error": f"the body is not valid JSON at position {pos}: {reason}", "field": "body"}
            status = 400
        else:
            field = _field_of(loc)
            msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            if first.get("type") == "extra_forbidden":
                msg = "unknown field"
            body = {"error": f"{field}: {msg}", "field": field}
            if len(errors) > 1:
                body["more"] = [{"field": _field_of(tuple(e.get("loc") or ())), "error": str(e.get("msg"))}
                                for e in errors[1:10]]
            status = 422
        await run_in_threadpool(_record_outcome, request, "refused", str(body["error"]), status)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        translated = translate_db_error(exc)
        if isinstance(translated, LifecycleError):
            return await _lifecycle_error(request, translated)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        await run_in_threadpool(_record_outcome, request, "failed", f"internal error ({type(exc).__name__})", 500)
        return JSONResponse({"error": "internal error"}, status_code=500)


def install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    requests = Counter("lifecycle_http_requests", "HTTP requests answered", ["method", "route", "status"],
                       registry=registry)
    latency = Histogram("lifecycle_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
                        registry=registry)
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def _measure(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - start)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def build_state(settings: LifecycleSettings, *, upgrade: bool = True,
                hasher: PasswordHasher | None = None) -> tuple[ServiceState, auth.IssuedToken | None]:
    """Engine, session factory and verifier; the schema upgraded and the administrator bootstrapped."""
    settings.ensure_dirs()
    engine = make_engine(settings.db)
    if upgrade:
        from lifecycle.migrations import upgrade_engine
        upgrade_engine(engine)
    sessions = sessionmaker(engine, expire_on_commit=True)
    verifier = auth.TokenVerifier(settings.token_cache_seconds, hasher=hasher)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    with sessions.begin() as session:
        issued = auth.bootstrap(session, verifier, admin_token)
        if issued is not None:
            audit.record(session, actor="system", action="users.bootstrap", object_type="user",
                         object_name=auth.ADMIN_USER, detail={"token_id": issued.public_id})
    generated = issued if issued is not None and not admin_token else None
    return ServiceState(settings, engine, sessions, verifier), generated


def create_app(settings: LifecycleSettings, *, upgrade: bool = True, hasher: PasswordHasher | None = None) -> FastAPI:
    """The application; ``hasher`` replaces argon2's default cost (tests use a cheap one)."""
    state, generated = build_state(settings, upgrade=upgrade, hasher=hasher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in STARTUP_HOOKS:
            hook(state)
        try:
            yield
        finally:
            for hook in reversed(SHUTDOWN_HOOKS):
                try:
                    hook(state)
                except Exception:
                    log.exception("shutdown hook %s failed", hook)
            state.engine.dispose()

    app = FastAPI(title="MaaS lifecycle", version="1", lifespan=lifespan,
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.state.lifecycle = state
    app.state.bootstrap_token = generated.token if generated else None
    install_error_handlers(app)
    install_metrics(app)
    for module_name in ROUTERS:
        app.include_router(importlib.import_module(module_name).router)
    importlib.import_module("lifecycle.console").install(app)  # the web console at / (its session cookie, pages)
    return app
