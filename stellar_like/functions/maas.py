"""Model-as-a-Service functions: MAAS_GET_ENDPOINT and MAAS_MODEL_APPLY.

Both delegate to the :class:`~stellar_like.gateway.ModelGateway` of the evaluation context, so a
stream enriches messages with a model through, for example::

    MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))

MAAS_GET_ENDPOINT fails with a StellarError when no gateway is configured. MAAS_MODEL_APPLY gives
null for a null endpoint and never lets a gateway failure escape into the stream: it logs it and
gives null, so one unavailable model does not stop the messages flowing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stellar_like.context import Context
from stellar_like.errors import StellarError, StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.gateway import ModelGateway

log = logging.getLogger(__name__)


def _gateway(context: Context) -> ModelGateway:
    gateway = context.gateway if context is not None else None
    if gateway is None:
        raise StellarEvaluationError(
            "no model gateway is configured: evaluate with a Context(gateway=...) "
            "or call stellar_like.set_default_context()"
        )
    return gateway


@stellar_function(
    "MAAS_GET_ENDPOINT",
    description="Looks up a deployed model and returns its endpoint: a map with the name, version and url "
    "of one of its instances, suitable as the first argument of MAAS_MODEL_APPLY.",
    params=["model_name - The name of the model", "model_version? - The version; default the most current"],
    returns="The endpoint map, or null if no instance of the model is available",
    context=True,
    pure=False,
)
def maas_get_endpoint(context: Context, name: Any, version: Any = None) -> dict[str, Any] | None:
    gateway = _gateway(context)
    model = A.string(1, name)
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
    returns="The model's output map, or null if the endpoint is null or the call fails",
    context=True,
    pure=False,
)
def maas_model_apply(context: Context, endpoint: Any, second: Any, third: Any = None) -> dict[str, Any] | None:
    if endpoint is None:
        return None
    gateway = _gateway(context)
    if third is None and (second is None or isinstance(second, Mapping)):
        function, arguments, args_index = None, second, 2
    else:
        function, arguments, args_index = second, third, 3
        if function is not None and not isinstance(function, str):
            raise argument_error(2, function, "is not a function name")
    if not isinstance(endpoint, Mapping):
        raise argument_error(1, endpoint, "is not an endpoint map")
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, Mapping):
        raise argument_error(args_index, arguments, "is not a map of model arguments")
    try:
        result = gateway.apply(dict(endpoint), function, dict(arguments))
    except Exception as exc:  # never let a model failure escape into the stream
        log.warning("MAAS_MODEL_APPLY on %s failed: %s", endpoint.get("name", endpoint), exc)
        return None
    if result is None:
        return None
    if not isinstance(result, Mapping):
        log.warning(
            "MAAS_MODEL_APPLY on %s returned %s, not a map", endpoint.get("name", endpoint), type(result).__name__
        )
        return None
    return dict(result)
