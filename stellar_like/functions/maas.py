"""Model-as-a-Service functions: MAAS_GET_ENDPOINT and MAAS_MODEL_APPLY.

Both delegate to the :class:`~stellar_like.gateway.ModelGateway` of the evaluation context, so a
stream enriches messages with a model through, for example::

    MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))

With no gateway configured (no ZooKeeper given), both give null and log a warning, as Metron's
do. MAAS_MODEL_APPLY never lets anything escape into the stream — a null endpoint, an endpoint or
arguments that are not maps, a function name that is not a string, a gateway failure: it logs
a warning and gives null, so one bad call or unavailable model does not stop the messages flowing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stellar_like.context import Context
from stellar_like.errors import StellarError, StellarEvaluationError
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.gateway import ModelGateway

log = logging.getLogger(__name__)

NO_GATEWAY = ("%s: no model gateway is configured, so it gives null (the stellar command: give -zq HOST:PORT; "
              "Python: evaluate with a Context(gateway=...) or call stellar_like.set_default_context())")


def _gateway(context: Context, function: str) -> ModelGateway | None:
    """The context's gateway, or None after a warning (logged the first time for each function,
    then at debug level: a stream without ZooKeeper would otherwise log it for every event)."""
    gateway = context.gateway if context is not None else None
    if gateway is None:
        level = logging.DEBUG if function in _warned else logging.WARNING
        _warned.add(function)
        log.log(level, NO_GATEWAY, function)
    return gateway


_warned: set[str] = set()


def _name(endpoint: Mapping[str, Any]) -> Any:
    return endpoint.get("name", dict(endpoint))


@stellar_function(
    "MAAS_GET_ENDPOINT",
    description="Looks up a deployed model and returns its endpoint: a map with the name, version and url "
    "of one of its instances, suitable as the first argument of MAAS_MODEL_APPLY.",
    params=["model_name - The name of the model", "model_version? - The version; default the most current"],
    returns="The endpoint map, or null if no instance of the model is available (or no gateway is configured)",
    context=True,
    pure=False,
)
def maas_get_endpoint(context: Context, name: Any, version: Any = None) -> dict[str, Any] | None:
    model = A.string(1, name)
    gateway = _gateway(context, "MAAS_GET_ENDPOINT")
    if gateway is None:
        return None
    wanted = None if version is None else str(version)
    try:
        endpoint = gateway.get_endpoint(model, wanted)
    except StellarError:
        raise
    except Exception as exc:
        raise StellarEvaluationError(f"model gateway failed to look up {model!r}: {exc}") from exc
    if endpoint is None:
        return None
    return dict(endpoint)


@stellar_function(
    "MAAS_MODEL_APPLY",
    description="Calls a model deployed via Model as a Service and returns its output. "
    "Called as MAAS_MODEL_APPLY(endpoint, args) or MAAS_MODEL_APPLY(endpoint, function, args).",
    params=[
        "endpoint - The endpoint map from MAAS_GET_ENDPOINT",
        "function? - The model's function (endpoint path); default 'apply'",
        "model_args - A map of arguments for the model (they become request parameters)",
    ],
    returns="The model's output map, or null if the endpoint is null or not a map, the arguments are not a map, "
    "or the call fails",
    context=True,
    pure=False,
)
def maas_model_apply(context: Context, endpoint: Any, second: Any, third: Any = None) -> dict[str, Any] | None:
    if endpoint is None:
        return None
    if third is None and (second is None or isinstance(second, Mapping)):
        function, arguments, args_index = None, second, 2
    else:
        function, arguments, args_index = second, third, 3
    if not isinstance(endpoint, Mapping):
        log.warning("MAAS_MODEL_APPLY: argument 1 %r is not an endpoint map (from MAAS_GET_ENDPOINT); null",
                    endpoint)
        return None
    if function is not None and not isinstance(function, str):
        log.warning("MAAS_MODEL_APPLY on %s: argument 2 %r is not a function name; null", _name(endpoint), function)
        return None
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, Mapping):
        log.warning("MAAS_MODEL_APPLY on %s: argument %d %r is not a map of model arguments; null",
                    _name(endpoint), args_index, arguments)
        return None
    gateway = _gateway(context, "MAAS_MODEL_APPLY")
    if gateway is None:
        return None
    try:
        result = gateway.apply(dict(endpoint), function, dict(arguments))
    except Exception as exc:  # never let a model failure escape into the stream
        log.warning("MAAS_MODEL_APPLY on %s failed: %s", _name(endpoint), exc)
        return None
    if result is None:
        return None
    if not isinstance(result, Mapping):
        log.warning("MAAS_MODEL_APPLY on %s returned %s, not a map", _name(endpoint), type(result).__name__)
        return None
    return dict(result)
