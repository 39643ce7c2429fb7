"""Prometheus metrics of one controller process, and its HTTP endpoint (``/metrics``, ``/healthz``).

Each :class:`ControllerMetrics` has its own :class:`prometheus_client.CollectorRegistry`, so
several controllers can live in one process (as in tests). Series:

* ``maas_controller_leader`` — 1 while this controller leads, else 0;
* ``maas_controller_requests_total{state}`` — requests this controller brought to ``accepted``,
  ``done`` or ``failed``;
* ``maas_controller_reconcile_passes_total{outcome}`` (``ok`` / ``error``) and
  ``maas_controller_reconcile_duration_seconds`` — reconcile passes and how long they took;
* ``maas_model_instances{model,version,state}`` — ``desired``, ``running`` (process up) and
  ``ready`` (registered) instances per model, as last published by the leader;
* ``maas_model_restarts_total{model,version}`` — failed starts, crashes and health-check kills;
* ``process_*`` — the process' own CPU, memory and file descriptors.

``/healthz`` is a liveness check: 200 while the controller thread runs and, when it leads, its
reconcile loop has completed a pass recently; 503 otherwise. It does not depend on ZooKeeper
being reachable: restarting a controller does not bring ZooKeeper back.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from maas.model_status import ModelStatus

PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _ModelCollector(Collector):
    """Per-model series, read at scrape time from what the controller last published (so a
    removed model's series disappear with it)."""

    def __init__(self, statuses: Callable[[], Iterable[ModelStatus]]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[Any]:
        instances = GaugeMetricFamily("maas_model_instances", "Instances per model by state (desired, running, ready)",
                                      labels=["model", "version", "state"])
        restarts = CounterMetricFamily("maas_model_restarts", "Failed starts, crashes and health-check kills per model",
                                       labels=["model", "version"])
        for st in self.statuses():
            for state, value in (("desired", st.desired), ("running", st.running), ("ready", st.ready)):
                instances.add_metric([st.name, st.version, state], value)
            restarts.add_metric([st.name, st.version], st.restarts)
        yield instances
        yield restarts


class ControllerMetrics:
    """The metrics a controller updates as it runs."""

    def __init__(self, statuses: Callable[[], Iterable[ModelStatus]] = lambda: ()) -> None:
        self.registry = CollectorRegistry()
        self.leader = Gauge("maas_controller_leader", "1 while this controller is the leader", registry=self.registry)
        self.requests = Counter("maas_controller_requests", "Requests by the state this controller brought them to",
                                ["state"], registry=self.registry)
        self.passes = Counter("maas_controller_reconcile_passes", "Reconcile passes by outcome (ok, error)",
                              ["outcome"], registry=self.registry)
        self.pass_duration = Histogram("maas_controller_reconcile_duration_seconds", "Duration of a reconcile pass",
                                       buckets=PASS_BUCKETS, registry=self.registry)
        for state in ("accepted", "done", "failed"):
            self.requests.labels(state)  # present at 0 before the first request
        for outcome in ("ok", "error"):
            self.passes.labels(outcome)
        self.registry.register(_ModelCollector(statuses))
        ProcessCollector(registry=self.registry)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a line
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on a thread. The standard library's WSGI server is
    enough for a scrape every few seconds; prometheus-client renders the metrics."""

    def __init__(self, host: str, port: int) -> None:
        self._metrics_app: Callable[..., Iterable[bytes]] | None = None
        self._health: Callable[[], tuple[bool, dict[str, Any]]] = lambda: (False, {"reason": "starting"})
        self._server = make_server(host, port, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self, metrics: ControllerMetrics, health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        """Serve ``metrics`` and the ``health`` check (until then: 503)."""
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._health = health

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics" and self._metrics_app is not None:
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            ok, detail = self._health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        body = json.dumps({"error": f"no such path {path!r}: try /metrics or /healthz"}).encode()
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
