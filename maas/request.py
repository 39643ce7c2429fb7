"""Deployment requests (queue items, docs/contracts.md) and their statuses.

A request is Metron's ``ModelRequest`` JSON (``name``, ``version``, ``numInstances``, ``memory``,
``action``, ``path``) plus our optional fields. Parsing never raises anything but
:class:`~maas.errors.RequestError`, whose message names the offending field.
"""

from __future__ import annotations

import json
import re
import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maas.errors import RequestError, StoreError, describe_validation

#: Model names and versions become znode names and directory names.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Action(str, Enum):
    ADD = "ADD"
    REMOVE = "REMOVE"
    SCALE = "SCALE"


def check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


class ModelRequest(BaseModel):
    """One deployment request."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", use_enum_values=False)

    name: str
    version: str
    num_instances: int = Field(1, alias="numInstances", ge=0, le=10_000)
    memory: int = Field(512, ge=0, description="Memory per instance, in MB")
    action: Action
    path: str | None = None
    request_id: str | None = Field(None, alias="requestId")
    cpu: float | None = Field(None, gt=0)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @staticmethod
    def _name(value: str) -> str:
        return check_name(value, "name")

    @field_validator("version")
    @staticmethod
    def _version(value: str) -> str:
        return check_name(value, "version")

    @field_validator("request_id")
    @staticmethod
    def _rid(value: str | None) -> str | None:
        return None if value is None else check_name(value, "requestId")

    @field_validator("path")
    @staticmethod
    def _path(value: str | None) -> str | None:
        # Checked here, so a request naming a malformed store URI fails at once with its reason.
        from maas.store import split_uri

        if value:
            try:
                split_uri(value, "file:///")
            except StoreError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("action", mode="before")
    @staticmethod
    def _action(value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def model_post_init(self, _context: Any) -> None:
        if self.action is not Action.REMOVE and not self.path:
            raise ValueError(f"{self.action.value} needs 'path', the payload's store path")
        if self.action is not Action.SCALE and self.num_instances == 0:
            raise ValueError(
                f"numInstances: {self.action.value} of 0 instances does nothing; give at least 1 "
                "(SCALE to 0 removes every instance)"
            )

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True, mode="json")).encode()


def parse_request(data: bytes | str) -> ModelRequest:
    """Parse a queue item; a :class:`RequestError` names what is wrong."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"request is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise RequestError(f"request must be a JSON object, got {type(raw).__name__}")
    try:
        return ModelRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestError("invalid request: " + describe_validation(exc)) from exc


class RequestState(str, Enum):
    ACCEPTED = "accepted"  # applied to the desired state; instances being brought in line
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self is not RequestState.ACCEPTED


class RequestStatus(BaseModel):
    """What ``<state>/requests/<requestId>`` holds."""

    model_config = ConfigDict(populate_by_name=True)

    request_id: str = Field(alias="requestId")
    state: RequestState
    reason: str | None = None
    name: str | None = None
    version: str | None = None
    action: str | None = None
    target: int | None = Field(None, description="Desired instance count after this request")
    updated: float = Field(default_factory=time.time)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(by_alias=True, mode="json")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "RequestStatus":
        return cls.model_validate_json(data)
