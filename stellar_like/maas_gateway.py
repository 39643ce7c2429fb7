"""The model gateway behind ``MAAS_GET_ENDPOINT`` and ``MAAS_MODEL_APPLY``.

Endpoints come from the ZooKeeper discovery client's local cache (so lookups never wait on the
network and keep working while ZooKeeper is unreachable); calls go over pooled keep-alive HTTP.

- ``get_endpoint`` returns Metron's endpoint map ``{name, version, url, "endpoint:<alias>": path}``
  for the newest version by natural order unless a version is given.
- ``apply`` calls the named function (``apply`` unless another is named — Metron ignores the
  name; we honour it) with the arguments as query parameters, Metron style. The instance is picked
  by power-of-two-choices on this client's in-flight requests; an instance that fails is ejected
  for a while (doubling on repeated failures) and the call is retried on another instance of the
  same model and version. Results are cached (bounded LRU with a TTL) by model, version, function
  and arguments. Failures are logged and give None: never an exception into the stream.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import httpx
from cachetools import TTLCache

from maas.discovery import DiscoveryClient
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
        self._failures.pop(url, None)
        self._until.pop(url, None)


class MaasGateway:
    """Implements :class:`stellar_like.gateway.ModelGateway` over a :class:`DiscoveryClient`."""

    def __init__(self, discovery: DiscoveryClient, settings: GatewaySettings = GatewaySettings(), *,
                 http: httpx.Client | None = None, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.discovery = discovery
        self.settings = settings
        self.http = http or httpx.Client(
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections),
        )
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._outliers = _Outliers(settings.eject_base, settings.eject_max, clock)
        self._cache: TTLCache[tuple[Any, ...], dict[str, Any]] | None = (
            TTLCache(settings.cache_size, settings.cache_ttl, timer=clock) if settings.cache_size > 0 else None
        )
        self.stats = {"calls": 0, "cache_hits": 0, "failures": 0, "retries": 0}

    def close(self) -> None:
        self.http.close()

    # -- choosing an instance -----------------------------------------------------------------
    def _choose(self, candidates: list[Endpoint], exclude: set[str]) -> Endpoint | None:
        """Power of two choices on in-flight requests among the instances not ejected."""
        with self._lock:
            usable = [e for e in candidates if e.url not in exclude and not self._outliers.ejected(e.url)]
            if not usable:  # everything ejected: better an ejected instance than none
                usable = [e for e in candidates if e.url not in exclude]
            if not usable:
                return None
            if len(usable) == 1:
                return usable[0]
            a, b = self.rng.sample(usable, 2)
            return a if self._in_flight[a.url] <= self._in_flight[b.url] else b

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        chosen = self._choose(self.discovery.endpoints(name, version), set())
        return endpoint_map(chosen) if chosen is not None else None

    # -- calling ------------------------------------------------------------------------------
    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        alias = function or DEFAULT_FUNCTION
        path = str(endpoint.get(f"endpoint:{alias}") or alias).lstrip("/")
        params = {str(k): _param(v) for k, v in args.items()}
        name, version = str(endpoint.get("name", "")), endpoint.get("version")
        key = (name, version, path, tuple(sorted(params.items())))
        with self._lock:
            self.stats["calls"] += 1
            if self._cache is not None and key in self._cache:
                self.stats["cache_hits"] += 1
                return self._cache[key]

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
            url = nxt.url
            with self._lock:
                self.stats["retries"] += 1
        with self._lock:
            self.stats["failures"] += 1
        return None

    def _call(self, url: str, path: str, params: dict[str, str]) -> tuple[dict[str, Any] | None, bool]:
        """(result, whether another instance might do better)."""
        with self._lock:
            self._in_flight[url] += 1
        try:
            response = self.http.get(f"{url}/{path}", params=params)
        except httpx.HTTPError as exc:
            log.warning("call to model %s failed: %s", url, exc or type(exc).__name__)
            with self._lock:
                self._outliers.failed(url)
            return None, True
        finally:
            with self._lock:
                self._in_flight[url] -= 1
        if response.status_code >= 500:
            log.warning("model %s answered %d", url, response.status_code)
            with self._lock:
                self._outliers.failed(url)
            return None, True
        with self._lock:
            self._outliers.succeeded(url)
        if response.status_code != 200:  # the request itself is wrong: another instance won't help
            log.warning("model %s refused the call (%d): %s", url, response.status_code, response.text[:200])
            return None, False
        try:
            body = response.json()
        except ValueError:
            log.warning("model %s answered non-JSON", url)
            return None, False
        return (body, False) if isinstance(body, dict) else (None, False)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
