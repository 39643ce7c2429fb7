"""Desired state: how many instances of which payload each (name, version) should have."""

from __future__ import annotations

import json
from typing import NamedTuple

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas.errors import CoordinationError
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


def read_desired(client: KazooClient, layout: Layout) -> dict[ModelKey, tuple[DesiredModel, int]]:
    """Every desired model with its znode version (for transactions).

    Reads are pipelined (all requests of a level in flight at once), so the cost is a few round
    trips rather than two per model.
    """
    result: dict[ModelKey, tuple[DesiredModel, int]] = {}
    try:
        names = client.get_children(layout.models)
        version_lists = [(name, client.get_children_async(f"{layout.models}/{name}")) for name in names]
        reads = []
        for name, pending in version_lists:
            try:
                versions = pending.get()
            except NoNodeError:
                continue
            reads.extend(client.get_async(layout.model(name, version)) for version in versions)
        for pending in reads:
            try:
                data, stat = pending.get()
            except NoNodeError:
                continue
            try:
                model = DesiredModel.model_validate(json.loads(data))
            except (ValueError, ValidationError):
                continue  # not ours to interpret; left untouched
            result[model.key] = (model, stat.version)
    except NoNodeError:
        return result
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read desired state under {layout.models}", exc) from exc
    return result
