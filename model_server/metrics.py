"""Prometheus metrics of one model server, served at ``GET /metrics`` (text exposition format).

Every app gets its own :class:`prometheus_client.CollectorRegistry` (so several apps can live in
one process, as in the tests). Metric names start with ``model_server_``; every series carries the
``model`` label (the served model's name). ``route`` is the route's template (``/{function}``,
``/v2/models/{model_name}/infer``, …; ``unmatched`` for unknown paths), never the raw path, so the
number of series stays bounded.

* ``model_server_requests_total{model,route,method,status}`` and
  ``model_server_request_duration_seconds{model,route}`` — every HTTP request;
* ``model_server_errors_total{model,route,status,kind}`` — error responses by status and kind (the
  exception class: ``InvalidInput``, ``BadRequest``, ``ModelNotFound``, ``PayloadTooLarge``, …);
* ``model_server_queue_duration_seconds{model}`` — per inference request, from its submission to
  the batcher until its onnxruntime call started;
* ``model_server_compute_duration_seconds{model}`` — per onnxruntime call;
* ``model_server_batch_size{model}`` (rows) and ``model_server_batch_requests{model}`` (requests
  coalesced) — per onnxruntime call;
* ``model_server_inference_rows_total{model}``, ``model_server_queue_rows{model}``,
  ``model_server_model_ready{model,version}``, and the process' own metrics (``process_*``).
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, MutableMapping

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
ERROR_KIND_KEY = "model_server_error_kind"  # set in the request's state by the error handlers
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The model server's metrics; also the batcher's :class:`~model_server.batcher.BatchObserver`."""

    def __init__(self, model: str, version: str = "") -> None:
        self.model = model
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter("model_server_requests", "HTTP requests, by route template, method and status",
                                ["model", "route", "method", "status"], registry=r)
        self.request_duration = Histogram("model_server_request_duration_seconds",
                                          "Time from receiving a request to the end of its response",
                                          ["model", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("model_server_errors", "Error responses, by status and kind (exception class)",
                              ["model", "route", "status", "kind"], registry=r)
        self.queue_duration = Histogram("model_server_queue_duration_seconds",
                                        "Time an inference request waited for the model (batch queue)",
                                        ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.compute_duration = Histogram("model_server_compute_duration_seconds",
                                          "Time of one onnxruntime call (one batch)", ["model"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("model_server_batch_size", "Rows in one onnxruntime call", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_requests = Histogram("model_server_batch_requests", "Requests coalesced into one onnxruntime call",
                                        ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.rows = Counter("model_server_inference_rows", "Rows inferred", ["model"], registry=r)
        self.queue_rows = Gauge("model_server_queue_rows", "Rows waiting for the model", ["model"], registry=r)
        self.ready = Gauge("model_server_model_ready", "1 when the model is ready to serve", ["model", "version"],
                           registry=r)
        self._ready = self.ready.labels(model, version)
        # children bound once: the hot path does no label lookups
        self._queue = self.queue_duration.labels(model)
        self._compute = self.compute_duration.labels(model)
        self._batch_size = self.batch_size.labels(model)
        self._batch_requests = self.batch_requests.labels(model)
        self._rows = self.rows.labels(model)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    # -- the batcher's observer ---------------------------------------------------------------------
    def observe_queue(self, seconds: float) -> None:
        self._queue.observe(seconds)

    def observe_batch(self, rows: int, requests: int, seconds: float) -> None:
        self._compute.observe(seconds)
        self._batch_size.observe(rows)
        self._batch_requests.observe(requests)
        self._rows.inc(rows)

    # -- gauges -------------------------------------------------------------------------------------
    def track_queue(self, rows: Callable[[], int]) -> None:
        """Read the queue's depth when scraped."""
        self.queue_rows.labels(self.model).set_function(rows)

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    # -- requests -----------------------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float, error_kind: str | None) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(self.model, route, method, str(status)),
                        self.request_duration.labels(self.model, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.errors.labels(self.model, route, str(status), error_kind or f"HTTP{status}").inc()

    def exposition(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request; the route template comes from the router
    (``scope["route"]``), the error kind from the request's state."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            state = scope.get("state")
            kind = state.get(ERROR_KIND_KEY) if isinstance(state, dict) else None
            method = scope.get("method", "")
            self.metrics.observe_request(route, method if method in METHODS else "OTHER", status,
                                         time.perf_counter() - start, kind)
