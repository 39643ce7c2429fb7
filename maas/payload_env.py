"""The environment a payload's script runs with: an allow-list, nothing inherited by default.

The runner holds secrets a payload must never see (the store's ``MAAS_HDFS_TOKEN``, its
ZooKeeper credentials, whatever the controller's host put in its environment such as cloud
keys). So the script's environment is built from scratch (docs/payload.md):

1. from the runner's own environment, only :data:`INHERITED` (``PATH``, ``HOME``, locale, time
   zone);
2. the request's own ``env`` (what the deployer asked for; it cannot replace a contract variable);
3. the payload contract's variables (:data:`CONTRACT`), set by the runner.

A contract variable the runner does not know is a programming error, refused here so the
allow-list and the documented contract cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Variables a payload inherits from the runner's environment when they are set there.
INHERITED: tuple[str, ...] = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")

#: The payload contract's variables (docs/contracts.md and docs/payload.md), all set by the runner.
CONTRACT: frozenset[str] = frozenset({
    "MAAS_PORT",
    "MAAS_MODEL_NAME",
    "MAAS_MODEL_VERSION",
    "MAAS_INSTANCE_ID",
    "MAAS_MEMORY_MB",
    "MAAS_PYTHON",
    "MAAS_BIND_HOST",
    "MAAS_ADVERTISED_HOST",
    # authenticated model endpoints (docs/security.md): paths, never the secrets themselves
    "MAAS_MODEL_TOKEN_FILE",
    "MAAS_TLS_CERT_FILE",
    "MAAS_TLS_KEY_FILE",
})

#: Used when the runner's environment has no PATH (a bare container).
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def payload_environment(
    contract: Mapping[str, str],
    request_env: Mapping[str, str] | None = None,
    *,
    inherited_from: Mapping[str, str] | None = None,
    path_prefix: str | None = None,
) -> dict[str, str]:
    """The script's whole environment.

    ``contract`` holds the contract variables the runner sets (each must be in :data:`CONTRACT`),
    ``request_env`` the request's ``env``, ``inherited_from`` the runner's environment
    (``os.environ`` by default); ``path_prefix`` goes in front of ``PATH`` (the directory of the
    interpreter that has this project, so ``python`` in a script is that one).
    """
    unknown = sorted(set(contract) - CONTRACT)
    if unknown:
        raise ValueError(f"not payload contract variables: {', '.join(unknown)}")
    source = os.environ if inherited_from is None else inherited_from
    env = {name: source[name] for name in INHERITED if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update({k: v for k, v in (request_env or {}).items() if k not in CONTRACT})
    env.update(contract)
    if path_prefix:
        env["PATH"] = os.pathsep.join([path_prefix, env["PATH"]])
    return env
