"""The model connection of the ``stellar`` command (``stellar eval|shell -zq HOST:PORT [-zr ZNODE]``).

The expression language knows nothing of ZooKeeper or HTTP (its ``MAAS_*`` functions call a
:class:`~stellar_like.gateway.ModelGateway` found in the evaluation context); this module, which
:mod:`stellar_like.cli` imports only when a quorum is given, builds that context: a ZooKeeper
client, the discovery client on the cluster's service root and the :class:`MaasGateway`.
"""

from __future__ import annotations

from dataclasses import dataclass

from enrichment.errors import EnrichmentError
from enrichment.gateway import GatewaySettings
from enrichment.service import ModelConnection, connect_models
from maas.config import DEFAULT_CONFIG_PATH
from maas.errors import MaasError
from stellar_like import Context

__all__ = ["ModelsUnavailable", "StellarModels", "connect"]


class ModelsUnavailable(EnrichmentError):
    """ZooKeeper or the cluster's config could not be reached; ``exit_code`` is the cause's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class StellarModels:
    """An evaluation context whose gateway reaches the cluster's models, and what to close."""

    context: Context
    connection: ModelConnection

    def close(self) -> None:
        self.connection.close()


def connect(quorum: str, zk_root: str | None = None, *, timeout: float = 10.0,
            settings: GatewaySettings | None = None) -> StellarModels:
    """Connect to the cluster at ``quorum`` (its config znode ``zk_root``); raises
    :class:`ModelsUnavailable` naming the quorum when that fails."""
    try:
        connection = connect_models(quorum, zk_root or DEFAULT_CONFIG_PATH, settings, timeout=timeout)
    except MaasError as exc:
        raise ModelsUnavailable(f"cannot reach the models of the cluster at {quorum}: {exc}", exc.exit_code) from exc
    except ValueError as exc:  # kazoo's word for a quorum it cannot parse
        raise ModelsUnavailable(f"-zq {quorum!r} is not a ZooKeeper quorum (HOST:PORT[,…]): {exc}", 2) from exc
    return StellarModels(Context(gateway=connection.gateway), connection)
