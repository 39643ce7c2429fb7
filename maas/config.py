"""The cluster configuration: what the config znode and its sibling ``.ext`` znode hold.

Two znodes, because Metron's own Java tools (``maas_deploy.sh``, its discoverer, its ``MAAS_*``
Stellar functions) parse the config znode strictly and refuse any key they do not know:

- the **config znode** (default ``/metron/maas/config``, ``-zr``) holds Metron's ``MaaSConfig``
  keys and nothing else: ``queue``, ``queueConfig``, ``serviceRoot`` (:data:`METRON_KEYS`);
- the **ext znode** beside it, ``<config znode>.ext`` (:func:`ext_path`), holds this project's
  keys: ``stateRoot``, ``storeUri``, ``launcher``, ``maxPayloadMB``, … and any unknown key
  another tool of ours put there (kept on a round trip).

Processes see one merged :class:`MaasConfig`. Reading (:meth:`MaasConfig.from_znodes`) also
accepts a config znode written by earlier versions, which held our keys beside Metron's: such a
key is used when the ext znode does not set it. Writing (:meth:`MaasConfig.znode_payloads`)
always splits: Metron's keys to the config znode, every other field and unknown key to the ext
znode.

To add a cluster-wide setting, add one field to :class:`MaasConfig` with its camelCase alias;
since it is not one of :data:`METRON_KEYS`, it is stored in the ext znode, read back from it,
and read from an old-style config znode too, with nothing else to change.

Who writes: ``maas_service`` creates whichever of the two znodes is absent, moves our keys out of
an old-style config znode, and replaces the content only when started with ``--write-config``
(see :func:`maas.zk.ensure_config`); a running leader watches both and applies changes.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maas.errors import ConfigError, describe_validation

DEFAULT_CONFIG_PATH = "/metron/maas/config"
DEFAULT_STORE_URI = "file:///var/lib/maas/store"
#: Suffix of the znode holding our keys, beside the config znode.
EXT_SUFFIX = ".ext"
#: The keys of Metron's ``MaaSConfig``: the only ones the config znode may hold.
METRON_KEYS: frozenset[str] = frozenset({"queue", "queueConfig", "serviceRoot"})


def ext_path(config_path: str) -> str:
    """Where our settings live for the config znode ``config_path``."""
    return config_path + EXT_SUFFIX


def _znode_path(value: str) -> str:
    if not value.startswith("/") or value.endswith("/") and value != "/" or "//" in value:
        raise ValueError(f"{value!r} is not an absolute ZooKeeper path")
    return value


def _json_object(data: bytes | str | None, source: str) -> dict[str, Any] | None:
    """The JSON object in ``data``; None for an absent znode (``data is None``)."""
    if data is None:
        return None
    try:
        raw: Any = json.loads(data or b"{}")
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    return raw


class QueueConfig(BaseModel):
    """Metron's ``queueConfig``: where the ZooKeeper queue lives."""

    # Metron's QueueConfig is a map: keep whatever else it carries.
    model_config = ConfigDict(extra="allow")

    zk_path: str = "/maas/queue"

    _check = field_validator("zk_path")(staticmethod(_znode_path))


class MaasConfig(BaseModel):
    """The merged content of the config znode and the ext znode (docs/contracts.md)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    # -- Metron's keys: the config znode ------------------------------------------------------
    queue: Literal["ZOOKEEPER"] = "ZOOKEEPER"
    queue_config: QueueConfig = Field(default_factory=QueueConfig, alias="queueConfig")
    service_root: str = Field("/maas/service", alias="serviceRoot")
    # -- ours: the ext znode ------------------------------------------------------------------
    #: Root of the controller-owned desired state and request statuses.
    state_root: str = Field("/maas/state", alias="stateRoot")
    #: Where payloads live: ``file:///dir`` (embedded default).
    store_uri: str = Field(DEFAULT_STORE_URI, alias="storeUri")
    #: Stores requests may take payloads from besides ``storeUri`` (always allowed); see
    #: :mod:`maas.store.allowed`. Empty: the configured store only.
    allowed_stores: list[str] = Field(default_factory=list, alias="allowedStores")
    #: Which launcher runs instances.
    launcher: Literal["local", "kubernetes"] = "local"
    #: Largest payload the store accepts and runners download, in MB.
    max_payload_mb: int = Field(4096, alias="maxPayloadMB", gt=0)

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb << 20

    _check_roots = field_validator("service_root", "state_root")(staticmethod(_znode_path))

    @field_validator("allowed_stores")
    @staticmethod
    def _check_allowed_stores(values: list[str]) -> list[str]:
        from maas.errors import StoreError
        from maas.store import check_store_uri

        for value in values:
            try:
                check_store_uri(value)
            except StoreError as exc:
                raise ValueError(str(exc)) from exc
        return values

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

    # -- serialisation ------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """Every key (by its JSON name), Metron's and ours."""
        return self.model_dump(by_alias=True, mode="json")

    def metron_dict(self) -> dict[str, Any]:
        """What the config znode holds: Metron's keys only."""
        return {k: v for k, v in self.as_dict().items() if k in METRON_KEYS}

    def ext_dict(self) -> dict[str, Any]:
        """What the ext znode holds: everything that is not Metron's."""
        return {k: v for k, v in self.as_dict().items() if k not in METRON_KEYS}

    def znode_payloads(self) -> tuple[bytes, bytes]:
        """``(config znode data, ext znode data)``."""
        return _dumps(self.metron_dict()), _dumps(self.ext_dict())

    def to_json(self) -> bytes:
        """The merged view as one JSON object (for logs and tools, not for a znode)."""
        return _dumps(self.as_dict())

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "config") -> "MaasConfig":
        """One JSON object holding any of the keys (a merged view, or an old-style config znode)."""
        return cls._validate(_json_object(data, source) or {}, source)

    @classmethod
    def from_znodes(
        cls,
        config_data: bytes | None,
        ext_data: bytes | None,
        *,
        config_source: str = "config znode",
        ext_source: str = "ext znode",
    ) -> "MaasConfig":
        """Merge the two znodes' data (None: absent). A key of ours left in an old-style config
        znode counts unless the ext znode sets it; the ext znode cannot override Metron's keys."""
        main = _json_object(config_data, config_source) or {}
        ext = _json_object(ext_data, ext_source) or {}
        stray = sorted(k for k in ext if k in METRON_KEYS)
        if stray:
            raise ConfigError(f"{ext_source}: {', '.join(stray)} belong in the config znode, not here")
        merged = {**main, **ext}
        return cls._validate(merged, f"{config_source} (+ {ext_source})")

    @staticmethod
    def is_metron_only(config_data: bytes | None) -> bool:
        """Whether the config znode's data holds Metron's keys only (what Metron can read)."""
        try:
            raw = _json_object(config_data, "config znode")
        except ConfigError:
            return False
        return raw is not None and set(raw) <= METRON_KEYS

    @classmethod
    def _validate(cls, raw: dict[str, Any], source: str) -> "MaasConfig":
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {describe_validation(exc)}") from exc

    def with_overrides(self, **overrides: Any) -> "MaasConfig":
        """A copy with the given fields (by field name) replaced, validated; None means keep."""
        data = self.model_dump(by_alias=False)
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return MaasConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation(exc)) from exc

    def differences(self, overrides: dict[str, Any]) -> list[str]:
        """``field: have → want`` for each override (by field name, None skipped) that differs."""
        found = []
        for name, want in overrides.items():
            have = getattr(self, name)
            if want is not None and have != want:
                alias = MaasConfig.model_fields[name].alias or name
                found.append(f"{alias}: {have!r} → {want!r}")
        return found


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()
