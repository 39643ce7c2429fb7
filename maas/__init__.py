"""MaaS control plane: configuration, ZooKeeper layout, request queue, controller, launchers,
model store, runner and discovery client."""

from maas.errors import MaasError

__all__ = ["MaasError"]
