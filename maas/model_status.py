"""Per-model status that the controller publishes under ``<stateRoot>/status/<name>/<version>``
and ``maas_deploy -mo STATUS`` prints."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field


class ModelStatus(BaseModel):
    name: str
    version: str
    desired: int = 0
    running: int = Field(0, description="Instances whose process is up (starting or ready)")
    ready: int = Field(0, description="Instances registered and serving")
    restarts: int = Field(0, description="Failed starts, crashes and health-check kills")
    last_error: str | None = None
    last_logs: str | None = Field(None, description="Where the logs of the instance behind last_error are")
    backoff_seconds: float | None = Field(None, description="Seconds until the next start is allowed")
    updated: float = Field(default_factory=time.time)

    def same_as(self, other: "ModelStatus | None") -> bool:
        """Equal but for the timestamp (and a backoff that only counted down)."""
        if other is None:
            return False
        ignore = {"updated", "backoff_seconds"}
        return self.model_dump(exclude=ignore) == other.model_dump(exclude=ignore) and (
            (self.backoff_seconds is None) == (other.backoff_seconds is None)
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
