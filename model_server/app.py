"""The HTTP edge: a FastAPI app whose routes only translate HTTP to the protocols and back.

Routes:

* ``GET /`` — what the model offers (name, version, readiness, the function's arguments and keys);
* ``GET|POST /<function>`` — the Metron-style REST protocol (:mod:`model_server.rest`);
* ``/v2…`` — the Open Inference Protocol (:mod:`model_server.v2`): ``GET /v2``,
  ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{m}[/versions/{v}]``,
  ``GET …/ready``, ``POST …/infer``;
* ``GET /metrics`` — Prometheus metrics (:mod:`model_server.metrics`).

With a token file configured, every route but ``/metrics`` and health needs a bearer token
(:mod:`model_server.auth`), checked in front of everything else.

Both protocols infer through one :class:`~model_server.batcher.Batcher`, started and drained by
the app's lifespan (which first warms the model up). Every error is a JSON ``{"error": "…"}`` with
the status of its :class:`~model_server.errors.ModelServerError`; no request can stop the service.

:func:`create_app` returns :class:`HotPaths`, a small ASGI front that answers the two inference
routes of the served model (``GET|POST /<its function>`` and ``POST /v2/models/<its name>/infer``)
itself — the same protocol calls and error translation as the FastAPI routes, without FastAPI's
middleware stack, which costs more than the rest of a request — and hands everything else,
lifespan included, to the FastAPI app, which alone serves every route correctly.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams, State
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_server import jsonio
from model_server.auth import BearerAuth
from model_server.batcher import Batcher
from model_server.errors import ModelNotFound, ModelServerError, PayloadTooLarge
from model_server.metrics import CONTENT_TYPE, ERROR_KIND_KEY, Message, Metrics, MetricsMiddleware, Receive, Scope, Send
from model_server.rest import MetronProtocol
from model_server.runtime import ModelRuntime
from model_server.settings import Settings
from model_server.v2 import HEADER_LENGTH, V2Protocol

log = logging.getLogger("model_server.app")


class JSONBody(Response):
    """Compact JSON, written by :func:`model_server.jsonio.dumps` (valid whatever the strings hold)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsonio.dumps(content)


def error_response(status: int, message: str, retry_after: int | None = None) -> JSONBody:
    return JSONBody({"error": message}, status_code=status,
                    headers=None if retry_after is None else {"retry-after": str(retry_after)})


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode("ascii")


def check_declared_length(declared: str | None, limit: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body has {declared} bytes; at most {limit} are accepted")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    check_declared_length(request.headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
    return bytes(body)


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


class Serving:
    """Whether the app serves: the model is ready and the server is not draining."""

    def __init__(self, runtime: ModelRuntime, metrics: Metrics) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.draining = False

    def ready(self) -> bool:
        return self.runtime.ready and not self.draining

    def drain(self) -> None:
        """The server stops: report not ready from now on (requests in flight still finish)."""
        self.draining = True
        self.metrics.set_ready(False)


def create_app(settings: Settings, runtime: ModelRuntime | None = None, *, hot_paths: bool = True) -> HotPaths:
    """The ASGI app serving ``runtime`` (loaded from ``settings`` when not given). The model is warmed
    up at start-up unless it is ready already. ``hot_paths`` False sends every request through
    FastAPI (the two must answer alike)."""
    if runtime is None:
        runtime = ModelRuntime.load(settings.model_path, settings.signature_path, threads=settings.threads,
                                    name=settings.model_name, version=settings.model_version,
                                    max_batch_size=settings.max_batch_size)
    metrics = Metrics(runtime.name, runtime.version)
    batcher = Batcher(runtime.infer, max_batch_size=settings.max_batch_size, max_queue_delay=settings.max_queue_delay,
                      max_queue_rows=settings.queue_rows_limit, max_inline=settings.max_inline,
                      enabled=settings.batching and runtime.batchable, observer=metrics)
    metrics.track_queue(lambda: batcher.queued_rows)
    serving = Serving(runtime, metrics)
    metron = MetronProtocol(runtime, batcher, max_rows=settings.max_batch_size)
    v2 = V2Protocol(runtime, batcher, max_rows=settings.max_batch_size, ready=serving.ready)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not runtime.ready:
            await run_in_threadpool(runtime.warm_up)
        await batcher.start()
        serving.draining = False
        metrics.set_ready(True)
        log.info("serving model %r (version %r): batching %s", runtime.name, runtime.version,
                 f"on, at most {settings.max_batch_size} rows" if batcher.enabled
                 else "off" if not settings.batching else "off (the model's batch dimension is fixed)")
        try:
            yield
        finally:
            serving.drain()
            await batcher.stop()  # finishes what is queued

    app = FastAPI(title=f"model_server: {runtime.name}", version=runtime.version or "0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.serving = serving
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # -- errors -------------------------------------------------------------------------------------
    def failed(request: Request, status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
        setattr(request.state, ERROR_KIND_KEY, kind)
        return error_response(status, message, retry_after)

    @app.exception_handler(ModelServerError)
    async def _model_server_error(request: Request, exc: ModelServerError) -> Response:
        if exc.http_status >= 500 and exc.retry_after is None:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return failed(request, exc.http_status, type(exc).__name__, exc.message, exc.retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405 and "model_name" in request.path_params:  # an unknown model wins over the method
            try:
                v2.check_model(request.path_params["model_name"], request.path_params.get("model_version"))
            except ModelNotFound as missing:
                return failed(request, missing.http_status, type(missing).__name__, missing.message)
        return failed(request, exc.status_code, "HTTPException", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return failed(request, 422, "RequestValidationError", "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return failed(request, 500, type(exc).__name__, f"internal error: {type(exc).__name__}")

    # -- routes: metadata, health, metrics ------------------------------------------------------------
    @app.get("/")
    async def metadata() -> Response:
        return JSONBody(runtime.metadata())

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v2")
    async def server_metadata() -> Response:
        return JSONBody(v2.server_metadata())

    @app.get("/v2/health/live")
    async def live() -> Response:
        return JSONBody({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        is_ready = serving.ready()
        return JSONBody({"ready": is_ready}, status_code=200 if is_ready else 503)

    # -- routes: the Open Inference Protocol ----------------------------------------------------------
    @app.get("/v2/models/{model_name}")
    @app.get("/v2/models/{model_name}/versions/{model_version}")
    async def model_metadata(request: Request) -> Response:
        return JSONBody(v2.model_metadata(request.path_params["model_name"], request.path_params.get("model_version")))

    @app.get("/v2/models/{model_name}/ready")
    @app.get("/v2/models/{model_name}/versions/{model_version}/ready")
    async def model_ready(request: Request) -> Response:
        name = request.path_params["model_name"]
        is_ready = v2.model_ready(name, request.path_params.get("model_version"))
        return JSONBody({"name": name, "ready": is_ready}, status_code=200 if is_ready else 503)

    @app.post("/v2/models/{model_name}/infer")
    @app.post("/v2/models/{model_name}/versions/{model_version}/infer")
    async def infer(request: Request) -> Response:
        name, version = request.path_params["model_name"], request.path_params.get("model_version")
        v2.check_model(name, version)
        body = await read_body(request, settings.max_body_bytes)
        content, headers = await v2.infer(name, version, body, request.headers.get(HEADER_LENGTH))
        return Response(content, headers=headers)

    # -- routes: the Metron-style function ------------------------------------------------------------
    @app.get("/{function}")
    async def apply_get(request: Request) -> Response:
        return JSONBody(await metron.apply_query(request.path_params["function"], request.query_params.multi_items()))

    @app.post("/{function}")
    async def apply_post(request: Request) -> Response:
        function = request.path_params["function"]
        metron.check_function(function)
        body = await read_body(request, settings.max_body_bytes)
        return JSONBody(await metron.apply_body(function, body))

    return HotPaths(app, metron, v2, metrics, settings, enabled=hot_paths, auth=BearerAuth.from_settings(settings))


HEADER_LENGTH_BYTES = HEADER_LENGTH.encode("ascii")
RawHeaders = list[tuple[bytes, bytes]]
Handler = Callable[[Scope, Receive], Awaitable[tuple[bytes, RawHeaders]]]


def _header(scope: Scope, name: bytes) -> str | None:
    """A request header (``name`` in lower case), as Starlette's ``Headers`` would give it."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class HotPaths:
    """The ASGI app that is served: the inference routes of the served model answered directly, every
    other request (and the lifespan) passed to the FastAPI app ``api``."""

    def __init__(self, api: FastAPI, metron: MetronProtocol, v2: V2Protocol, metrics: Metrics, settings: Settings,
                 *, enabled: bool = True, auth: BearerAuth | None = None) -> None:
        self.api = api
        self.auth = auth
        self.metron = metron
        self.v2 = v2
        self.metrics = metrics
        self.limit = settings.max_body_bytes
        runtime = metron.runtime
        self.function_path = f"/{runtime.function}"
        self.infer_paths: dict[str, tuple[str, str | None, str]] = {}
        if enabled:
            self.infer_paths[f"/v2/models/{runtime.name}/infer"] = (runtime.name, None, "/v2/models/{model_name}/infer")
            if runtime.version:
                self.infer_paths[f"/v2/models/{runtime.name}/versions/{runtime.version}/infer"] = (
                    runtime.name, runtime.version, "/v2/models/{model_name}/versions/{model_version}/infer")
        self.enabled = enabled

    @property
    def state(self) -> State:
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.auth is not None and scope["type"] == "http" and not self.auth.allows(scope):
            await self.auth.refuse(receive, send)
            return
        if self.enabled and scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == self.function_path and method in ("GET", "POST"):
                await self._serve(scope, receive, send, "/{function}", self._apply)
                return
            if method == "POST" and path in self.infer_paths:
                await self._serve(scope, receive, send, self.infer_paths[path][2], self._infer)
                return
        await self.api(scope, receive, send)

    async def _apply(self, scope: Scope, receive: Receive) -> tuple[bytes, RawHeaders]:
        function = self.metron.function
        if scope["method"] == "GET":
            answer = await self.metron.apply_query(function, QueryParams(scope["query_string"]).multi_items())
        else:
            answer = await self.metron.apply_body(function, await self._body(scope, receive))
        return jsonio.dumps(answer), [(b"content-type", b"application/json")]

    async def _infer(self, scope: Scope, receive: Receive) -> tuple[bytes, RawHeaders]:
        name, version, _ = self.infer_paths[scope["path"]]
        body = await self._body(scope, receive)
        content, headers = await self.v2.infer(name, version, body, _header(scope, HEADER_LENGTH_BYTES))
        return content, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        check_declared_length(_header(scope, b"content-length"), self.limit)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            body += message.get("body", b"")
            if len(body) > self.limit:
                raise PayloadTooLarge(f"the request body exceeds {self.limit} bytes")
            if not message.get("more_body", False):
                return bytes(body)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: str, handler: Handler) -> None:
        start = time.perf_counter()
        kind: str | None = None
        try:
            content, headers = await handler(scope, receive)
            status = 200
        except ClientGone:
            self.metrics.observe_request(route, scope["method"], 499, time.perf_counter() - start, "ClientGone")
            return
        except ModelServerError as exc:
            if exc.http_status >= 500 and exc.retry_after is None:
                log.error("%s: %s", type(exc).__name__, exc.message)
            status, kind = exc.http_status, type(exc).__name__
            content, headers = error_body(exc.message), [(b"content-type", b"application/json")]
            if exc.retry_after is not None:
                headers.append((b"retry-after", str(exc.retry_after).encode("ascii")))
        except Exception as exc:
            log.exception("unexpected error")
            status, kind = 500, type(exc).__name__
            content = error_body(f"internal error: {type(exc).__name__}")
            headers = [(b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(content)).encode("ascii")))
        message: Message = {"type": "http.response.start", "status": status, "headers": headers}
        await send(message)
        await send({"type": "http.response.body", "body": content})
        self.metrics.observe_request(route, scope["method"], status, time.perf_counter() - start, kind)
