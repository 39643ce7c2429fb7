"""HTTP readiness of a model endpoint: the one check used by the runner (before registering)
and by the controller's health prober."""

from __future__ import annotations

import httpx


def check_http(client: httpx.Client, url: str) -> str | None:
    """None when ``url`` answers HTTP below 500 (any REST service counts as up once it answers),
    else the reason it is not ready."""
    try:
        response = client.get(url.rstrip("/") + "/")
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    return None
