"""The HTTP edge: a FastAPI app whose routes only translate HTTP to the data plane and back.

Routes: ``GET /`` (what the model offers), ``GET|POST /<function>`` (the Metron-style REST
protocol, :mod:`model_server.rest`), ``GET /v2/health/live`` and ``GET /v2/health/ready`` (Open
Inference Protocol health). Every error is a JSON ``{"error": "…"}`` with the status of its
:class:`~model_server.errors.ModelServerError`; no request can stop the service.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_server.errors import FunctionNotFound, ModelServerError, PayloadTooLarge
from model_server.rest import rows_from_body, rows_from_query
from model_server.runtime import ModelRuntime
from model_server.settings import Settings

log = logging.getLogger("model_server.app")


class JSONBody(Response):
    """JSON with non-ASCII escaped: valid whatever the strings hold (even lone surrogates)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status: int, message: str) -> JSONBody:
    return JSONBody({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body has {declared} bytes; at most {limit} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
    return bytes(body)


def create_app(settings: Settings, runtime: ModelRuntime | None = None) -> FastAPI:
    """The app serving ``runtime`` (loaded from ``settings`` when not given). The model is warmed up
    at start-up unless it is ready already."""
    if runtime is None:
        runtime = ModelRuntime.load(settings.model_path, settings.signature_path, threads=settings.threads,
                                    name=settings.model_name, version=settings.model_version,
                                    max_batch_size=settings.max_batch_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not runtime.ready:
            await run_in_threadpool(runtime.warm_up)
        yield

    app = FastAPI(title=f"model_server: {runtime.name}", version=runtime.version or "0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    app.state.settings = settings

    @app.exception_handler(ModelServerError)
    async def _model_server_error(_: Request, exc: ModelServerError) -> Response:
        if exc.http_status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return error_response(exc.http_status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(422, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return error_response(500, f"internal error: {type(exc).__name__}")

    def check_function(function: str) -> None:
        if function != runtime.function:
            raise FunctionNotFound(f"unknown function {function!r}; this model offers {runtime.function!r}")

    def apply_query(params: list[tuple[str, str]]) -> Any:
        rows = rows_from_query(params)
        return rows.answer(runtime.predict(rows.rows, text=rows.text))

    def apply_body(body: bytes) -> Any:
        rows = rows_from_body(body, max_rows=settings.max_batch_size)
        return rows.answer(runtime.predict(rows.rows, text=rows.text))

    @app.get("/")
    async def metadata() -> Response:
        return JSONBody(runtime.metadata())

    @app.get("/v2/health/live")
    async def live() -> Response:
        return JSONBody({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return JSONBody({"ready": runtime.ready}, status_code=200 if runtime.ready else 503)

    @app.get("/{function}")
    async def apply_get(function: str, request: Request) -> Response:
        check_function(function)
        return JSONBody(await run_in_threadpool(apply_query, request.query_params.multi_items()))

    @app.post("/{function}")
    async def apply_post(function: str, request: Request) -> Response:
        check_function(function)
        body = await read_body(request, settings.max_body_bytes)
        return JSONBody(await run_in_threadpool(apply_body, body))

    return app
