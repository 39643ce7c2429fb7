"""What a model instance is: the spec a launcher starts and the runner executes, and the
observed state a launcher reports back."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class InstanceSpec(BaseModel):
    """Everything a runner needs to start one instance, written as ``spec.json``."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    name: str
    version: str
    store_uri: str
    path: str
    memory: int = 512
    cpu: float | None = None
    env: dict[str, str] = Field(default_factory=dict)
    zk_quorum: str
    config_path: str
    advertise_host: str = "127.0.0.1"
    #: Address the service is told to listen on (``MAAS_BIND_HOST``); None: derived from
    #: ``advertise_host`` (see :func:`maas.runner.bind_host_for`).
    bind_host: str | None = None
    #: Seconds the script has to write endpoint.dat.
    start_timeout: float = 60.0
    #: Seconds the announced endpoint has to answer HTTP once endpoint.dat exists.
    ready_timeout: float = 30.0
    #: Seconds between deregistration and stopping the service, so clients see the change.
    drain_seconds: float = 0.5
    #: Seconds the service has to exit after SIGTERM before it is killed.
    stop_grace: float = 10.0
    zk_session_timeout: float = 10.0
    #: The node's payload cache directory (None: download every time).
    cache_dir: str | None = None
    #: Bound on the node cache's total size (least recently used payloads are evicted).
    cache_max_bytes: int = 10 << 30
    #: Refuse payloads larger than this many bytes.
    max_payload_bytes: int | None = None
    #: Authenticated model endpoints: file paths given to the payload (never the secrets themselves).
    model_token_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    model_ca_file: str | None = None
    #: The runner's ZooKeeper credentials file (None: from its environment).
    zk_auth_file: str | None = None


class InstanceState(str, Enum):
    STARTING = "starting"  # runner localizing, script starting, not yet registered
    RUNNING = "running"  # registered and serving
    STOPPING = "stopping"  # asked to stop, not gone yet
    EXITED = "exited"  # gone; ``reason`` says why if it was not asked to stop


@dataclass(frozen=True)
class Instance:
    """One instance as a launcher observes it."""

    instance_id: str
    name: str
    version: str
    state: InstanceState
    started_at: float  # monotonic
    running_since: float | None = None
    stop_requested: bool = False
    #: Asked to stop, and still not gone past its grace: the plan kills it.
    stop_overdue: bool = False
    reason: str | None = None
    url: str | None = None
    #: Consecutive failed health checks, and the last one's reason (filled in by the prober).
    probe_failures: int = 0
    probe_reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    @property
    def alive(self) -> bool:
        return self.state in (InstanceState.STARTING, InstanceState.RUNNING)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that readers see either the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
