"""Process identities: a pid with its start time and the boot it belongs to, so that a pid read
back from a file (after a controller restart, or a reboot) is only ever signalled when it is still
the same process. A bare pid can be reused by any other process once its owner is gone.

The start time is kept as seconds since boot (psutil's creation time minus its boot time: both
move together when the wall clock is stepped, their difference does not), and the boot as the
kernel's boot id (``/proc/sys/kernel/random/boot_id``), which changes at every boot.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

#: Start times are compared to this many seconds (the kernel counts them in clock ticks).
_TOLERANCE = 0.05
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@lru_cache(maxsize=1)
def boot_id() -> str:
    """This boot's id; where the kernel has none, the boot time to the second."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return f"boot-{int(psutil.boot_time())}"


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    #: Seconds from boot to the process's start.
    started: float
    boot: str

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity | None":
        """The identity of the live process ``pid``; None when there is none."""
        try:
            started = psutil.Process(pid).create_time() - psutil.boot_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return None
        return cls(pid, started, boot_id())

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started, "boot": self.boot}

    @classmethod
    def from_dict(cls, raw: object) -> "ProcessIdentity | None":
        """Parse :meth:`to_dict`'s form; None for anything else (a bare pid cannot be trusted)."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(int(raw["pid"]), float(raw["started"]), str(raw["boot"]))
        except (KeyError, TypeError, ValueError):
            return None

    def same_boot(self) -> bool:
        return self.boot == boot_id()

    def _same_as(self, current: "ProcessIdentity") -> bool:
        return current.boot == self.boot and abs(current.started - self.started) <= _TOLERANCE

    def is_running(self) -> bool:
        """Whether this very process still runs (not a zombie, not a later process with its pid)."""
        current = ProcessIdentity.of(self.pid)
        if current is None or not self._same_as(current):
            return False
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def killpg(self, sig: signal.Signals) -> bool:
        """Signal the process group this process led; whether it was sent. Sent while the leader
        is this very process, or — in the same boot — once the leader is gone and no other process
        holds its pid (Linux does not reuse a pid that is still some group's id, so the group's
        leftovers are reached). Never after a reboot, never when the pid is another process's."""
        if not self.same_boot():
            return False
        current = ProcessIdentity.of(self.pid)
        if current is not None and not self._same_as(current):
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
