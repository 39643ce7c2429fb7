"""Launchers start, stop and observe model instances. The controller talks to one through
:class:`Launcher`; ``local`` runs each instance as a runner process on this machine.

Observation (:meth:`Launcher.instances`) only looks: every change to the world — start, stop,
kill, cleanup — is an action of the plan that the executor carries out through the other methods."""

from __future__ import annotations

from abc import ABC, abstractmethod

from maas.instance import Instance, InstanceSpec


class Launcher(ABC):
    """The controller's only way to act on instances. Calls never block on an instance."""

    @abstractmethod
    def start(self, spec: InstanceSpec) -> None:
        """Begin starting an instance; it shows up in :meth:`instances` as STARTING."""

    @abstractmethod
    def stop(self, instance_id: str) -> None:
        """Ask an instance to stop: deregister, drain, stop; force-kill after its grace."""

    @abstractmethod
    def instances(self) -> list[Instance]:
        """Every instance this launcher knows, with its current state."""

    @abstractmethod
    def forget(self, instance_id: str) -> None:
        """Drop an EXITED instance and whatever it left behind (its logs may be kept, bounded)."""

    def kill(self, instance_id: str) -> None:
        """Force an instance that did not stop within its grace (``Instance.stop_overdue``)."""

    def logs_hint(self, instance_id: str) -> str | None:
        """Where an instance's logs can be read once it is forgotten: a path, a command."""
        return None

    def resync(self) -> None:
        """Rebuild what the launcher knows from the world: adopt instances that a previous
        controller started. Called at the start of every leadership term."""

    def close(self) -> None:
        """Release resources; instances keep running (a new controller adopts them)."""
