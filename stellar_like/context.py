"""The evaluation context: services that Stellar functions need beyond their arguments.

A :class:`Context` carries the :class:`~stellar_like.gateway.ModelGateway` used by the MAAS
functions and any other named services. ``evaluate()`` uses the context it is given or, failing
that, the process-wide default set with :func:`set_default_context`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from stellar_like.gateway import ModelGateway

__all__ = ["Context", "set_default_context", "get_default_context"]


class Context:
    """Services available to functions during evaluation; immutable once made."""

    __slots__ = ("gateway", "_services")

    gateway: ModelGateway | None
    _services: Mapping[str, Any]

    def __init__(self, gateway: ModelGateway | None = None, **services: Any) -> None:
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "_services", dict(services))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Context is immutable; make a new one with replace()")

    def service(self, name: str, default: Any = None) -> Any:
        """The service registered as ``name`` (``"gateway"`` is the model gateway)."""
        if name == "gateway":
            return self.gateway if self.gateway is not None else default
        return self._services.get(name, default)

    @property
    def services(self) -> Mapping[str, Any]:
        """The named services other than the gateway."""
        return dict(self._services)

    def replace(self, **changes: Any) -> Context:
        """A copy with some services (or the gateway) replaced."""
        services = dict(self._services)
        gateway = changes.pop("gateway", self.gateway)
        services.update(changes)
        return Context(gateway=gateway, **services)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._services))
        return f"Context(gateway={self.gateway!r}{', ' + names if names else ''})"


_lock = threading.Lock()
_default = Context()


def set_default_context(context: Context | None) -> Context:
    """Make ``context`` the process-wide default (None resets to an empty one); returns the previous."""
    global _default
    if context is not None and not isinstance(context, Context):
        raise TypeError(f"expected a stellar_like.Context, got {type(context).__name__}")
    with _lock:
        previous = _default
        _default = context if context is not None else Context()
    return previous


def get_default_context() -> Context:
    """The process-wide default context."""
    return _default
