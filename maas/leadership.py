"""Who leads the cluster: what a controller writes into its leader-election node, and how a
client reads it back.

Every controller contends with an ephemeral sequential node under ``<stateRoot>/leader`` (kazoo's
election recipe); the node with the lowest sequence number is the leader's. Its data is
:class:`LeaderInfo` JSON: host and pid from the start, and ``since`` once the controller has
taken leadership. A node is ephemeral, so a stopped or dead controller's node goes with its
ZooKeeper session, and "no contender" means "no controller is leading".
"""

from __future__ import annotations

import json
import os
import socket
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from pydantic import BaseModel, ValidationError

from maas.errors import CoordinationError
from maas.zk import ZK_ERRORS, describe


class LeaderInfo(BaseModel):
    host: str
    pid: int
    started: float
    #: Wall-clock time leadership was taken; None while the controller only contends.
    since: float | None = None
    #: Where the controller serves /metrics and /healthz, if it does.
    metrics: str | None = None

    @classmethod
    def for_this_process(cls, metrics: str | None = None) -> "LeaderInfo":
        return cls(host=socket.gethostname(), pid=os.getpid(), started=time.time(), metrics=metrics)

    def identifier(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def describe(self) -> str:
        where = f"{self.host} (pid {self.pid})"
        when = ("taking over" if self.since is None
                else f"since {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(self.since))}")
        return f"{where}, {when}" + (f"; metrics at {self.metrics}/metrics" if self.metrics else "")


def election_path(state_root: str) -> str:
    return f"{state_root}/leader"


def current_leader(client: KazooClient, state_root: str) -> LeaderInfo | str | None:
    """The leading controller: its :class:`LeaderInfo`, the raw identifier of a controller that
    writes another format, or None when no controller contends."""
    path = election_path(state_root)
    try:
        if client.exists(path) is None:
            return None
        contenders = client.Election(path).contenders()
    except NoNodeError:
        return None
    except ZK_ERRORS as exc:
        raise CoordinationError(f"cannot read the leader election at {path}: {describe(exc)}") from exc
    if not contenders:
        return None
    try:
        return LeaderInfo.model_validate(json.loads(contenders[0]))
    except (ValueError, ValidationError):
        return contenders[0] or "an unidentified controller"
