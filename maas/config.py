"""The cluster configuration stored in the config znode, and its defaults.

The znode holds Metron's ``MaaSConfig`` JSON (``queue``, ``queueConfig``, ``serviceRoot``) with
our keys beside them. Every process (controller, runner, deploy client) reads it once at start
and validates it; unknown keys are kept so a Metron tool's additions survive a round trip.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maas.errors import ConfigError, describe_validation

DEFAULT_CONFIG_PATH = "/metron/maas/config"
DEFAULT_STORE_URI = "file:///var/lib/maas/store"


def _znode_path(value: str) -> str:
    if not value.startswith("/") or value.endswith("/") and value != "/" or "//" in value:
        raise ValueError(f"{value!r} is not an absolute ZooKeeper path")
    return value


class QueueConfig(BaseModel):
    """Metron's ``queueConfig``: where the ZooKeeper queue lives."""

    model_config = ConfigDict(extra="allow")

    zk_path: str = "/maas/queue"

    _check = field_validator("zk_path")(staticmethod(_znode_path))


class MaasConfig(BaseModel):
    """Content of the config znode (docs/contracts.md)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    queue: Literal["ZOOKEEPER"] = "ZOOKEEPER"
    queue_config: QueueConfig = Field(default_factory=QueueConfig, alias="queueConfig")
    service_root: str = Field("/maas/service", alias="serviceRoot")
    #: Root of the controller-owned desired state and request statuses.
    state_root: str = Field("/maas/state", alias="stateRoot")
    #: Where payloads live: ``file:///dir`` (embedded default).
    store_uri: str = Field(DEFAULT_STORE_URI, alias="storeUri")
    #: Which launcher runs instances.
    launcher: Literal["local", "kubernetes"] = "local"
    #: Largest payload the store accepts and runners download, in MB.
    max_payload_mb: int = Field(4096, alias="maxPayloadMB", gt=0)

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb << 20

    _check_roots = field_validator("service_root", "state_root")(staticmethod(_znode_path))

    @field_validator("store_uri")
    @staticmethod
    def _check_store_uri(value: str) -> str:
        from maas.store import supported_schemes, uri_scheme

        if uri_scheme(value) not in supported_schemes():
            raise ValueError(
                f"store URI {value!r} has an unsupported scheme; supported: {', '.join(supported_schemes())}"
            )
        return value

    @property
    def queue_path(self) -> str:
        return self.queue_config.zk_path

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(by_alias=True), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "config") -> "MaasConfig":
        try:
            raw: Any = json.loads(data or b"{}")
        except ValueError as exc:
            raise ConfigError(f"{source}: not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {describe_validation(exc)}") from exc

    def with_overrides(self, **overrides: Any) -> "MaasConfig":
        """A copy with the given fields (by field name) replaced, validated."""
        data = self.model_dump(by_alias=False)
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return MaasConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation(exc)) from exc
