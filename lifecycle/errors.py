"""The lifecycle service's exception tree.

Every error raised by :mod:`lifecycle` derives from :class:`LifecycleError` and knows the HTTP
status and the CLI exit code that represent it, so the REST routes and the CLIs translate errors
in one place. Third-party errors (SQLAlchemy, pandas, onnx, HTTP) are translated where they are
caught, with ``raise … from``.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every lifecycle error. ``field`` names the offending input when there is one."""

    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(LifecycleError):
    """A malformed request body, a bad field value, a bad dataset or markup."""

    http_status = 422
    exit_code = 2


class Unauthenticated(LifecycleError):
    """No token, or a token that is unknown, revoked or expired."""

    http_status = 401
    exit_code = 3


class Forbidden(LifecycleError):
    """The caller's active roles lack the right the call needs (named in the message)."""

    http_status = 403
    exit_code = 3

    def __init__(self, right: str, message: str | None = None) -> None:
        super().__init__(message or f"the right {right!r} is needed for this call")
        self.right = right


class NotFound(LifecycleError):
    http_status = 404
    exit_code = 4


class Conflict(LifecycleError):
    """A guard of the status machine (or a uniqueness rule) refuses the call; says why."""

    http_status = 409
    exit_code = 5


class JobFailed(LifecycleError):
    """A waited-for job ended ``failed`` or ``cancelled``."""

    http_status = 409
    exit_code = 7


class Unavailable(LifecycleError):
    """A backend (database, model store, ZooKeeper, a model instance) cannot be reached."""

    http_status = 503
    exit_code = 6
