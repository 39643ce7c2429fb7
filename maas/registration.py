"""Endpoint registrations: Curator ``ServiceInstance`` JSON (docs/contracts.md), wire-compatible with
Metron's Java discoverer, stored as ephemeral znodes ``<serviceRoot>/<name>/<instanceId>``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from maas.errors import RequestError

MODEL_ENDPOINT_CLASS = "org.apache.metron.maas.config.ModelEndpoint"


@dataclass(frozen=True)
class Endpoint:
    """One registered, ready model instance."""

    name: str
    version: str
    instance_id: str
    url: str
    functions: dict[str, str] = field(default_factory=lambda: {"apply": "apply"})
    container_id: str = ""
    registered_ms: int = 0

    @property
    def address(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def to_service_instance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.instance_id,
            "address": self.address,
            "port": self.port,
            "sslPort": None,
            "payload": {
                "@class": MODEL_ENDPOINT_CLASS,
                "name": self.name,
                "version": self.version,
                "containerId": self.container_id,
                "endpoint": {"url": self.url, "functions": dict(self.functions)},
            },
            "registrationTimeUTC": self.registered_ms or int(time.time() * 1000),
            "serviceType": "DYNAMIC",
            "uriSpec": None,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_service_instance()).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Endpoint":
        """Parse a registration; :class:`RequestError` if it is not a ModelEndpoint instance."""
        try:
            raw = json.loads(data)
            payload = raw["payload"]
            endpoint = payload["endpoint"]
            return cls(
                name=str(payload.get("name") or raw["name"]),
                version=str(payload["version"]),
                instance_id=str(raw["id"]),
                url=str(endpoint["url"]),
                functions=dict(endpoint.get("functions") or {"apply": "apply"}),
                container_id=str(payload.get("containerId") or ""),
                registered_ms=int(raw.get("registrationTimeUTC") or 0),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RequestError(f"not a ModelEndpoint service instance: {exc!r}") from exc
