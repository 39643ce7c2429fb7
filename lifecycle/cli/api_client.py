"""The lifecycle service's HTTP API as Python calls (httpx), used by ``maas_model``.

Every error answer becomes the :mod:`lifecycle.errors` exception of its status, with the server's
message and field, so the CLI maps it to its exit code; a service that cannot be reached is
:class:`~lifecycle.errors.Unavailable`. The token is sent as ``Authorization: Bearer`` and never
printed or logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import httpx

from lifecycle.errors import (Conflict, Forbidden, InvalidInput, LifecycleError, NotFound, Unauthenticated,
                              Unavailable)

DEFAULT_URL = "http://127.0.0.1:8480"


def error_of(response: httpx.Response) -> LifecycleError:
    """The exception that represents an error answer."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("error") or response.text.strip()[:300] or response.reason_phrase)
    field = body.get("field")
    status = response.status_code
    if status == 401:
        return Unauthenticated(message, field=field)
    if status == 403:
        return Forbidden(str(body.get("right", "")), message)
    if status == 404:
        return NotFound(message, field=field)
    if status == 409:
        return Conflict(message, field=field)
    if status in (400, 413, 422):
        return InvalidInput(message, field=field)
    if status in (502, 503, 504):
        return Unavailable(message, field=field)
    return LifecycleError(f"HTTP {status}: {message}", field=field)


class ApiClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"the lifecycle service at {self.url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        r = self.request("POST", path, json=body)
        return r.json() if r.content else None

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body).json()

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> Any:
        r = self.request("DELETE", path)
        return r.json() if r.content else None

    def upload(self, path: str, field: str, file: Path, data: dict[str, Any]) -> Any:
        with open(file, "rb") as fh:
            return self.request("POST", path, files={field: (file.name, fh)},
                                data={k: str(v) for k, v in data.items() if v is not None}).json()

    def download(self, path: str, out: BinaryIO, **params: Any) -> int:
        try:
            with self._http.stream("GET", "/api/v1" + path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                total = 0
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    total += len(chunk)
                return total
        except httpx.TransportError as exc:
            raise Unavailable(f"the lifecycle service at {self.url} cannot be reached: {exc}") from exc
