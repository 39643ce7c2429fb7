"""Desired state: how many instances of which payload each (name, version) should have.

A znode under ``<stateRoot>/models`` that does not parse is *quarantined* (:class:`Unreadable`):
reported, never read as "absent" (which would stop the model's instances)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas.errors import describe_validation
from maas.zk import ZK_ERRORS, Layout, zk_error


class ModelKey(NamedTuple):
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class DesiredModel(BaseModel):
    """What ``<stateRoot>/models/<name>/<version>`` holds."""

    model_config = ConfigDict(extra="ignore")

    name: str
    version: str
    instances: int = Field(ge=0)
    path: str
    store_uri: str
    memory: int = 512
    cpu: float | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @property
    def key(self) -> ModelKey:
        return ModelKey(self.name, self.version)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class Unreadable(NamedTuple):
    """A desired-state znode whose content is not a :class:`DesiredModel`: quarantined. Its model's
    instances are left as they are (never stopped because of it) until someone repairs it."""

    key: ModelKey
    path: str
    reason: str


def parse_desired(key: ModelKey, path: str, data: bytes) -> DesiredModel | Unreadable:
    """The content of ``path`` (the znode of ``key``), or why it cannot be used."""
    try:
        model = DesiredModel.model_validate(json.loads(data))
    except (ValueError, UnicodeDecodeError) as exc:
        detail = describe_validation(exc) if isinstance(exc, ValidationError) else f"not valid JSON: {exc}"
        return Unreadable(key, path, f"desired state {path} is unreadable ({detail})")
    if model.key != key:
        return Unreadable(key, path, f"desired state {path} names {model.key} instead")
    return model


@dataclass
class DesiredState:
    """Every desired model with its znode version (for transactions), and the quarantined znodes."""

    models: dict[ModelKey, tuple[DesiredModel, int]] = field(default_factory=dict)
    unreadable: dict[ModelKey, Unreadable] = field(default_factory=dict)


def read_desired_state(client: KazooClient, layout: Layout) -> DesiredState:
    """The whole desired state.

    Reads are pipelined (all requests of a level in flight at once), so the cost is a few round
    trips rather than two per model.
    """
    result = DesiredState()
    try:
        names = client.get_children(layout.models)
        version_lists = [(name, client.get_children_async(f"{layout.models}/{name}")) for name in names]
        reads = []
        for name, pending in version_lists:
            try:
                versions = pending.get()
            except NoNodeError:
                continue
            reads.extend((ModelKey(name, version), client.get_async(layout.model(name, version))) for version in versions)
        for key, pending in reads:
            try:
                data, stat = pending.get()
            except NoNodeError:
                continue
            parsed = parse_desired(key, layout.model(*key), data)
            if isinstance(parsed, Unreadable):
                result.unreadable[key] = parsed
            else:
                result.models[key] = (parsed, stat.version)
    except NoNodeError:
        return result
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read desired state under {layout.models}", exc) from exc
    return result


def read_desired(client: KazooClient, layout: Layout) -> dict[ModelKey, tuple[DesiredModel, int]]:
    """Every readable desired model with its znode version."""
    return read_desired_state(client, layout).models


def read_model(client: KazooClient, layout: Layout, key: ModelKey) -> tuple[DesiredModel | Unreadable | None, int]:
    """One model's desired state and znode version: ``(None, -1)`` when it has none."""
    path = layout.model(*key)
    try:
        data, stat = client.get(path)
    except NoNodeError:
        return None, -1
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read desired state {path}", exc) from exc
    return parse_desired(key, path, data), stat.version
