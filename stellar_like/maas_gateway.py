"""The model gateway behind ``MAAS_GET_ENDPOINT`` and ``MAAS_MODEL_APPLY``: endpoints come from
the ZooKeeper discovery client's local cache, calls go over pooled keep-alive HTTP.

``get_endpoint`` returns Metron's endpoint map ``{name, version, url, "endpoint:<alias>": path}``;
``apply`` calls one of the endpoint's functions (``apply`` unless another is named) and returns
the service's JSON object, trying another instance of the same model when one fails. It never
raises into the stream: failures are logged and give None.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

import httpx

from maas.discovery import DiscoveryClient
from maas.registration import Endpoint

log = logging.getLogger(__name__)

DEFAULT_FUNCTION = "apply"


def endpoint_map(endpoint: Endpoint) -> dict[str, Any]:
    result: dict[str, Any] = {"name": endpoint.name, "version": endpoint.version, "url": endpoint.url}
    result.update({f"endpoint:{alias}": path for alias, path in endpoint.functions.items()})
    return result


class MaasGateway:
    """Implements :class:`stellar_like.gateway.ModelGateway` over a :class:`DiscoveryClient`."""

    def __init__(self, discovery: DiscoveryClient, *, timeout: float = 5.0, attempts: int = 2,
                 http: httpx.Client | None = None) -> None:
        self.discovery = discovery
        self.attempts = max(1, attempts)
        self.http = http or httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=32))
        self._rr = itertools.count()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def _pick(self, candidates: list[Endpoint], exclude: set[str]) -> Endpoint | None:
        usable = [e for e in candidates if e.instance_id not in exclude]
        if not usable:
            return None
        with self._lock:
            n = next(self._rr)
        return usable[n % len(usable)]

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        chosen = self._pick(self.discovery.endpoints(name, version), set())
        return endpoint_map(chosen) if chosen is not None else None

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        alias = function or DEFAULT_FUNCTION
        path = str(endpoint.get(f"endpoint:{alias}") or alias).lstrip("/")
        params = {k: _param(v) for k, v in args.items()}
        url = str(endpoint.get("url", "")).rstrip("/")
        tried: set[str] = set()
        for attempt in range(self.attempts):
            try:
                response = self.http.get(f"{url}/{path}", params=params)
                if response.status_code == 200:
                    body = response.json()
                    return body if isinstance(body, dict) else None
                if 400 <= response.status_code < 500:  # the request is wrong: another instance won't help
                    log.warning("model %s answered %d: %s", url, response.status_code, response.text[:200])
                    return None
                log.warning("model %s answered %d", url, response.status_code)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("call to model %s failed: %s", url, exc)
            # Retry on another instance of the same model and version.
            tried.add(url)
            others = [e for e in self.discovery.endpoints(str(endpoint.get("name", "")), endpoint.get("version"))
                      if e.url not in tried]
            if not others:
                return None
            url = others[0].url
        return None


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
