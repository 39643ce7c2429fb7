"""Process identities: a pid with its start time and the machine's boot time, so that a pid read
back from a file (after a controller restart, or a reboot) is only ever signalled when it is still
the same process. A bare pid can be reused by any other process once its owner is gone."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

import psutil

#: Start and boot times are compared to this many seconds (psutil derives them from clock ticks).
_TOLERANCE = 0.05


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    create_time: float
    boot_time: float

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity | None":
        """The identity of the live process ``pid``; None when there is none."""
        try:
            return cls(pid, psutil.Process(pid).create_time(), psutil.boot_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "boot_time": self.boot_time}

    @classmethod
    def from_dict(cls, raw: object) -> "ProcessIdentity | None":
        """Parse :meth:`to_dict`'s form; None for anything else (a bare pid cannot be trusted)."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(int(raw["pid"]), float(raw["create_time"]), float(raw["boot_time"]))
        except (KeyError, TypeError, ValueError):
            return None

    def is_running(self) -> bool:
        """Whether this very process still runs (not a zombie, not a later process with its pid)."""
        current = ProcessIdentity.of(self.pid)
        if current is None or abs(current.boot_time - self.boot_time) > _TOLERANCE * 20:
            return False
        if abs(current.create_time - self.create_time) > _TOLERANCE:
            return False
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def same_boot(self) -> bool:
        return abs(psutil.boot_time() - self.boot_time) <= _TOLERANCE * 20

    def killpg(self, sig: signal.Signals) -> bool:
        """Signal the process group this process led; whether it was sent. Sent while the leader
        is this very process, or — in the same boot — once the leader is gone and no other process
        holds its pid (Linux does not reuse a pid that is still some group's id, so the group's
        leftovers are reached). Never after a reboot, never when the pid is another process's."""
        if not self.same_boot():
            return False
        current = ProcessIdentity.of(self.pid)
        if current is not None and abs(current.create_time - self.create_time) > _TOLERANCE:
            return False
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def kill(self, sig: signal.Signals) -> bool:
        if not self.is_running():
            return False
        try:
            os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True
