"""The interface between Stellar's MAAS functions and the Model-as-a-Service deployment.

``MAAS_GET_ENDPOINT`` and ``MAAS_MODEL_APPLY`` do not talk to ZooKeeper or HTTP themselves: they
call a :class:`ModelGateway` found in the evaluation :class:`~stellar_like.context.Context`. The
real gateway (service discovery plus HTTP calls) lives elsewhere; tests use fakes.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ModelGateway"]


@runtime_checkable
class ModelGateway(Protocol):
    """Finds model endpoints and calls them.

    ``get_endpoint`` returns Metron's endpoint map — at least ``name``, ``version`` and ``url`` —
    or None when no instance of the model is available. ``apply`` calls ``function`` (None means
    the model's default, ``apply``) on that endpoint with ``args`` as request parameters and
    returns the model's JSON object, or None.
    """

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None: ...

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None: ...
