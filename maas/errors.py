"""The control plane's exception tree.

Every error raised by `maas` derives from :class:`MaasError` and knows the process exit code
and HTTP status that represent it, so the edges (CLI, HTTP) translate errors in one place.
Third-party errors (kazoo, OS, HTTP) are translated where they are caught, with ``raise … from``.
"""

from __future__ import annotations

from pydantic import ValidationError


class MaasError(Exception):
    """Base of every control-plane error."""

    exit_code: int = 1
    http_status: int = 500


class ConfigError(MaasError):
    """Invalid settings or config znode content."""

    exit_code = 2
    http_status = 400


class RequestError(MaasError):
    """A malformed deployment request."""

    exit_code = 2
    http_status = 400


class StoreNotAllowed(RequestError):
    """A request names a payload outside the allowed stores (``allowedStores``)."""

    http_status = 403


class PayloadError(MaasError):
    """A payload that breaks the payload contract (docs/contracts.md)."""

    exit_code = 3
    http_status = 422


class StoreError(MaasError):
    """The model store failed or refused an operation."""

    exit_code = 4
    http_status = 502


class StoreNotFound(StoreError):
    """The store answered that a path does not exist (and nothing else went wrong)."""


class PayloadChanged(StoreError):
    """A different payload is already at the path; replacing it needs ``force`` (``--force``)."""


class LauncherError(MaasError):
    """Starting, stopping or listing instances failed."""

    exit_code = 5
    http_status = 503


class CoordinationError(MaasError):
    """ZooKeeper is unreachable or answered with an unexpected error."""

    exit_code = 6
    http_status = 503


class AccessDenied(CoordinationError):
    """ZooKeeper refused an operation or the credentials: the znode's ACL does not grant this
    process's identity the right (docs/security.md)."""

    exit_code = 9
    http_status = 403


class ClusterNotConfigured(MaasError):
    """The config znode is absent: no controller has ever configured this cluster (or this
    ``-zr``), so there is no store to upload to and nobody to apply a request."""

    exit_code = 10
    http_status = 503


class RequestFailed(MaasError):
    """A deployment request reached the terminal ``failed`` status."""

    exit_code = 7
    http_status = 409


class WaitTimeout(MaasError):
    """Waiting for a request or an endpoint ran past its deadline."""

    exit_code = 8
    http_status = 504


def describe_validation(exc: ValidationError) -> str:
    """A pydantic validation error as one line naming each offending field."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
