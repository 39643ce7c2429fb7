"""The model gateway behind ``MAAS_GET_ENDPOINT`` and ``MAAS_MODEL_APPLY``.

Endpoints come from the ZooKeeper discovery client's local cache (so lookups never wait on the
network and keep working while ZooKeeper is unreachable); calls go over pooled keep-alive HTTP/1.1
(:class:`enrichment.httppool.KeepAlivePool`, chosen for its low cost per call: see that module).
The gateway is thread-safe: a stream calls it from several threads at once.

- ``get_endpoint`` returns Metron's endpoint map ``{name, version, url, "endpoint:<alias>": path}``
  for the newest version by natural order unless a version is given.
- ``apply`` calls the named function (``apply`` unless another is named — Metron ignores the
  name; we honour it) with the arguments as query parameters, Metron style. The instance is picked
  by power-of-two-choices on this client's in-flight requests; an instance that fails is ejected
  for a while (doubling on repeated failures) and the call is retried on another instance of the
  same model and version. Results are cached (bounded LRU with a TTL) by model, version, function
  and arguments. Failures are logged and give None: never an exception into the stream.
- ``apply_batch`` makes the same calls for many rows at once: the rows not in the cache (each
  distinct row once) are POSTed as one JSON list (in chunks of ``batch_max_rows``) and answered
  by a list. A batch that fails on an instance (unreachable, 5xx) is retried on another; a batch
  the model refuses (4xx) or answers with something else than one object per row is split in
  halves until the rows it cannot take are alone, and a lone row is made as the plain ``apply``
  call, so one bad row costs that row its result, not the whole batch.
- What the gateway keeps per instance URL (requests in flight, failures and ejection, idle
  connections) is kept only for URLs still registered: it is pruned after every change of the
  registrations (and at least every ``prune_interval`` seconds), so it stays bounded however many
  instances come and go.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Protocol
from urllib.parse import urlencode

import orjson
from cachetools import TTLCache

from enrichment.httppool import HttpTransport, KeepAlivePool, Response, TransportError
from maas.endpoint_auth import EndpointCredentials
from maas.registration import Endpoint

log = logging.getLogger(__name__)

DEFAULT_FUNCTION = "apply"


@dataclass(frozen=True)
class GatewaySettings:
    timeout: float = 5.0  # seconds per HTTP call
    attempts: int = 3  # instances tried per call
    cache_size: int = 10_000  # results kept; 0 disables the cache
    cache_ttl: float = 300.0  # seconds a result is reused
    eject_base: float = 1.0  # seconds a failed instance is left out, doubling per consecutive failure
    eject_max: float = 30.0
    max_connections: int = 64
    batch_max_rows: int = 1000  # rows in one batched request (the built-in model server takes 1024)
    # bearer token and CA bundle of authenticated model endpoints; None: from $MAAS_MODEL_TOKEN_FILE, $MAAS_MODEL_CA_FILE
    credentials: EndpointCredentials | None = None
    prune_interval: float = 30.0  # seconds between prunings of per-URL state without a registration change


class Discovery(Protocol):
    """What the gateway needs of :class:`maas.discovery.DiscoveryClient`."""

    def endpoints(self, name: str, version: str | None = None) -> list[Endpoint]: ...

    def all(self) -> list[Endpoint]: ...


def endpoint_map(endpoint: Endpoint) -> dict[str, Any]:
    result: dict[str, Any] = {"name": endpoint.name, "version": endpoint.version, "url": endpoint.url}
    result.update({f"endpoint:{alias}": path for alias, path in endpoint.functions.items()})
    return result


class _Outliers:
    """Consecutive failures and ejection deadlines per instance URL."""

    def __init__(self, base: float, cap: float, clock: Callable[[], float]) -> None:
        self.base, self.cap, self.clock = base, cap, clock
        self._failures: dict[str, int] = defaultdict(int)
        self._until: dict[str, float] = {}

    def ejected(self, url: str) -> bool:
        until = self._until.get(url)
        return until is not None and self.clock() < until

    def failed(self, url: str) -> None:
        self._failures[url] += 1
        self._until[url] = self.clock() + min(self.cap, self.base * 2 ** (self._failures[url] - 1))

    def succeeded(self, url: str) -> None:
        if self._failures:
            self._failures.pop(url, None)
            self._until.pop(url, None)

    def keep_only(self, urls: set[str]) -> None:
        for url in [u for u in self._failures if u not in urls]:
            del self._failures[url]
        for url in [u for u in self._until if u not in urls]:
            del self._until[url]

    def urls(self) -> set[str]:
        return set(self._failures) | set(self._until)


class MaasGateway:
    """Implements :class:`stellar_like.gateway.ModelGateway` over a :class:`maas.discovery.DiscoveryClient`."""

    def __init__(self, discovery: Discovery, settings: GatewaySettings = GatewaySettings(), *,
                 http: HttpTransport | None = None, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.discovery = discovery
        self.settings = settings
        if http is None:
            credentials = settings.credentials or EndpointCredentials.from_environment()
            http = KeepAlivePool(timeout=settings.timeout, max_connections=settings.max_connections,
                                 tls=credentials.ssl_context, headers=credentials.headers)
        self.http: HttpTransport = http
        self.clock = clock
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._outliers = _Outliers(settings.eject_base, settings.eject_max, clock)
        self._cache: TTLCache[tuple[Any, ...], dict[str, Any]] | None = (
            TTLCache(settings.cache_size, settings.cache_ttl, timer=clock) if settings.cache_size > 0 else None
        )
        self._urls: set[str] = set()  # instance URLs the transport has been asked to reach
        self._prune_due = clock() + settings.prune_interval
        self._registrations_changed = False
        add_listener = getattr(discovery, "add_listener", None)
        if callable(add_listener):
            add_listener(self._on_registrations)
        # calls: rows asked for (apply or apply_batch); batches / batch_rows: batched requests sent
        self.stats = {"calls": 0, "cache_hits": 0, "failures": 0, "retries": 0, "batches": 0, "batch_rows": 0,
                      "no_endpoint": 0}
        #: Lookups per model (``name`` or ``name@version``) that found no registered instance.
        self.missing: dict[str, int] = {}

    def close(self) -> None:
        self.http.close()

    # -- per-URL state ------------------------------------------------------------------------
    def _on_registrations(self) -> None:
        """A registration came or went (called on ZooKeeper's event thread: only a flag)."""
        self._registrations_changed = True

    def _maybe_prune(self) -> None:
        if self._registrations_changed or self.clock() >= self._prune_due:
            self.prune()

    def prune(self) -> None:
        """Forget what is kept of instance URLs no longer registered (requests still in flight to
        one keep its count until they end)."""
        self._registrations_changed = False
        self._prune_due = self.clock() + self.settings.prune_interval
        registered = {e.url.rstrip("/") for e in self.discovery.all()}
        with self._lock:
            for url in [u for u, n in self._in_flight.items() if u not in registered and n <= 0]:
                del self._in_flight[url]
            self._outliers.keep_only(registered)
            gone = self._urls - registered
            self._urls -= gone
        for url in gone:
            self.http.forget(url)

    def tracked_urls(self) -> set[str]:
        """Every instance URL the gateway keeps some state of."""
        with self._lock:
            return set(self._in_flight) | self._outliers.urls() | self._urls

    # -- choosing an instance -----------------------------------------------------------------
    def _choose(self, candidates: list[Endpoint], exclude: set[str]) -> Endpoint | None:
        """Power of two choices on in-flight requests among the instances not ejected."""
        self._maybe_prune()
        with self._lock:
            usable = [e for e in candidates if e.url not in exclude and not self._outliers.ejected(e.url)]
            if not usable:  # everything ejected: better an ejected instance than none
                usable = [e for e in candidates if e.url not in exclude]
            if not usable:
                return None
            if len(usable) == 1:
                return usable[0]
            a, b = self.rng.sample(usable, 2)
            in_flight = self._in_flight
            return a if in_flight.get(a.url, 0) <= in_flight.get(b.url, 0) else b

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        candidates = self.discovery.endpoints(name, version)
        if not candidates:
            self._no_endpoint(name if version is None else f"{name}@{version}")
            return None
        chosen = self._choose(candidates, set())
        return endpoint_map(chosen) if chosen is not None else None

    def _no_endpoint(self, model: str) -> None:
        """Count a lookup of a model nothing serves; warn the first time for each model, since
        every field computed from it silently becomes null."""
        with self._lock:
            first = model not in self.missing
            self.missing[model] = self.missing.get(model, 0) + 1
            self.stats["no_endpoint"] += 1
        if first:
            log.warning("no instance of model %r is registered: MAAS_GET_ENDPOINT gives null, and so do the fields "
                        "computed from it (warned once per model; see maas_deploy -mo LIST)", model)

    # -- calling ------------------------------------------------------------------------------
    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        name, version, path = _target(endpoint, function)
        params = {str(k): _param(v) for k, v in args.items()}
        key = _cache_key(name, version, path, params)
        with self._lock:
            self.stats["calls"] += 1
            if self._cache is not None:
                hit = self._cache.get(key)
                if hit is not None:
                    self.stats["cache_hits"] += 1
                    return hit
        return self._get(endpoint, name, version, path, params, key)

    def _get(self, endpoint: Mapping[str, Any], name: str, version: Any, path: str, params: dict[str, str],
             key: tuple[Any, ...]) -> dict[str, Any] | None:
        """One Metron-style GET, retried on other instances; caches what it gets."""
        url = str(endpoint.get("url", "")).rstrip("/")
        tried: set[str] = set()
        for attempt in range(self.settings.attempts):
            result, retryable = self._call(url, path, params)
            if result is not None:
                if self._cache is not None:
                    with self._lock:
                        self._cache[key] = result
                return result
            if not retryable:
                break
            tried.add(url)
            nxt = self._choose(self.discovery.endpoints(name, version), tried)
            if nxt is None:
                break
            url = nxt.url.rstrip("/")
            with self._lock:
                self.stats["retries"] += 1
        with self._lock:
            self.stats["failures"] += 1
        return None

    def _send(self, method: str, url: str, path: str, what: str, *, query: str = "",
              body: bytes | None = None) -> Response | str:
        """One HTTP call to an instance, counted in its in-flight requests, with the outlier
        bookkeeping every call shares: the response of a healthy answer (2xx-4xx), else the
        outcome ``unreachable`` (transport error) or ``server`` (5xx), the instance ejected."""
        with self._lock:
            self._in_flight[url] += 1
            if url not in self._urls:
                self._urls.add(url)
        try:
            response = self.http.request(method, url, path, query=query, body=body)
        except TransportError as exc:
            log.warning("%s to model %s failed: %s", what, url, exc)
            with self._lock:
                self._in_flight[url] -= 1
                self._outliers.failed(url)
            return "unreachable"
        except BaseException:
            with self._lock:
                self._in_flight[url] -= 1
            raise
        with self._lock:
            self._in_flight[url] -= 1
            if response.status >= 500:
                self._outliers.failed(url)
            else:
                self._outliers.succeeded(url)
        if response.status >= 500:
            log.warning("model %s answered %d to %s", url, response.status, what)
            return "server"
        return response

    def _call(self, url: str, path: str, params: dict[str, str]) -> tuple[dict[str, Any] | None, bool]:
        """(result, whether another instance might do better)."""
        response = self._send("GET", url, path, "a call", query=urlencode(params))
        if isinstance(response, str):
            return None, True
        if response.status != 200:  # the request itself is wrong: another instance won't help
            log.warning("model %s refused the call (%d): %s", url, response.status, response.text[:200])
            return None, False
        try:
            body = orjson.loads(response.body)
        except ValueError:
            log.warning("model %s answered non-JSON", url)
            return None, False
        return (body, False) if isinstance(body, dict) else (None, False)

    # -- batched calling ----------------------------------------------------------------------
    def apply_batch(self, endpoint: dict[str, Any], function: str | None,
                    rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        """``apply(endpoint, function, row)`` for every row, answered in order, in few requests.

        Rows already in the cache are answered from it and equal rows are sent once; the others
        are POSTed as JSON lists of at most ``batch_max_rows`` objects. A batch is retried on
        another instance when one is unreachable or fails (5xx); when the model refuses a batch
        (4xx) or answers it with anything but one object per row, the batch is split in halves,
        down to single rows, which are made as plain ``apply`` calls (GET). Never raises: a row
        that cannot be answered gets None.
        """
        name, version, path = _target(endpoint, function)
        keys: list[tuple[Any, ...]] = []
        for row in rows:
            keys.append(_cache_key(name, version, path, {str(k): _param(v) for k, v in row.items()}))
        results: list[dict[str, Any] | None] = [None] * len(rows)
        todo: dict[tuple[Any, ...], list[int]] = {}
        with self._lock:
            self.stats["calls"] += len(rows)
            for index, key in enumerate(keys):
                if self._cache is not None and key in self._cache:
                    self.stats["cache_hits"] += 1
                    results[index] = self._cache[key]
                else:
                    todo.setdefault(key, []).append(index)
        unique = [(key, rows[indexes[0]]) for key, indexes in todo.items()]
        size = max(1, self.settings.batch_max_rows)
        for start in range(0, len(unique), size):
            chunk = unique[start:start + size]
            answers = self._post_rows(endpoint, name, version, path, [row for _, row in chunk], [k for k, _ in chunk])
            for (key, _), answer in zip(chunk, answers):
                for index in todo[key]:
                    results[index] = answer
        return results

    def _post_rows(self, endpoint: Mapping[str, Any], name: str, version: Any, path: str,
                   rows: list[Mapping[str, Any]], keys: list[tuple[Any, ...]]) -> list[dict[str, Any] | None]:
        """Answers for ``rows`` (distinct, not cached): one POST, retried elsewhere, split on refusal."""
        if len(rows) == 1:  # a batch of one is the plain call
            return [self._get(endpoint, name, version, path, {str(k): _param(v) for k, v in rows[0].items()}, keys[0])]
        url = str(endpoint.get("url", "")).rstrip("/")
        body = [_json_value(dict(row)) for row in rows]
        tried: set[str] = set()
        answered = False  # did any instance answer HTTP (rather than being unreachable)?
        for _attempt in range(self.settings.attempts):
            with self._lock:
                self.stats["batches"] += 1
                self.stats["batch_rows"] += len(rows)
            answers, outcome = self._post(url, path, body)
            if answers is not None:
                results: list[dict[str, Any] | None] = list(answers)
                for i, answer in enumerate(answers):
                    if answer is None:  # not an object: this row alone, the plain way
                        results[i] = self._post_rows(endpoint, name, version, path, [rows[i]], [keys[i]])[0]
                    elif self._cache is not None:
                        with self._lock:
                            self._cache[keys[i]] = answer
                return results
            answered = answered or outcome != "unreachable"
            if outcome not in ("unreachable", "server"):
                break  # the model refused this batch: another instance would too
            tried.add(url)
            nxt = self._choose(self.discovery.endpoints(name, version), tried)
            if nxt is None:
                break
            url = nxt.url.rstrip("/")
            with self._lock:
                self.stats["retries"] += 1
        if not answered:  # no instance could be reached: single calls would fare no better
            with self._lock:
                self.stats["failures"] += len(rows)
            return [None] * len(rows)
        half = len(rows) // 2
        return (self._post_rows(endpoint, name, version, path, rows[:half], keys[:half])
                + self._post_rows(endpoint, name, version, path, rows[half:], keys[half:]))

    def _post(self, url: str, path: str, body: list[Any]) -> tuple[list[dict[str, Any] | None] | None, str]:
        """(one answer per row — None for a row answered with a non-object — or None, and the
        outcome: ``ok``, ``unreachable``, ``server`` (5xx), ``refused`` (4xx) or ``malformed``)."""
        # the standard library's encoder, as the model server's reader is the standard library's
        # (a non-finite float goes as NaN/Infinity and is refused by name, not silently nulled)
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        response = self._send("POST", url, path, f"a batch of {len(body)}", body=data)
        if isinstance(response, str):
            return None, response
        if response.status != 200:
            log.info("model %s refused a batch of %d (%d): %s", url, len(body), response.status,
                     response.text[:200])
            return None, "refused"
        try:
            answer = orjson.loads(response.body)
        except ValueError:
            log.warning("model %s answered a batch with non-JSON", url)
            return None, "malformed"
        if not isinstance(answer, list) or len(answer) != len(body):
            log.warning("model %s answered a batch of %d with %s", url, len(body),
                        f"{len(answer)} items" if isinstance(answer, list) else type(answer).__name__)
            return None, "malformed"
        return [item if isinstance(item, dict) else None for item in answer], "ok"


def _target(endpoint: Mapping[str, Any], function: str | None) -> tuple[str, Any, str]:
    """(model name, version, request path) of a call."""
    alias = function or DEFAULT_FUNCTION
    path = str(endpoint.get(f"endpoint:{alias}") or alias).lstrip("/")
    return str(endpoint.get("name", "")), endpoint.get("version"), path


def _cache_key(name: str, version: Any, path: str, params: dict[str, str]) -> tuple[Any, ...]:
    return (name, version, path, tuple(sorted(params.items())))


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _json_value(value: Any) -> Any:
    """``value`` as JSON can carry it (a batch row's argument values keep their JSON types)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_value(v) for v in value]
    return str(value)
