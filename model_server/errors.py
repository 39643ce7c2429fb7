"""The model server's exception tree.

Every error the model server raises derives from :class:`ModelServerError`, which knows the HTTP
status that represents it (for the routes) and the exit code (for the command line), so the
edges translate errors in one place. Third-party errors (onnxruntime's, pydantic's, the OS's)
are translated where they are caught, with ``raise … from``.
"""

from __future__ import annotations


class ModelServerError(Exception):
    """Base of every model-server error."""

    http_status: int = 500
    exit_code: int = 1
    retry_after: int | None = None  # seconds, sent as a Retry-After header

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- start-up: the payload, its model or its signature is broken -------------------------------

class SettingsError(ModelServerError):
    """Invalid command-line flags or environment."""

    exit_code = 2


class PayloadError(ModelServerError):
    """The payload directory, its model file or its signature file is missing or unusable."""

    exit_code = 3


class SignatureError(PayloadError):
    """The signature file is malformed or does not fit the model."""


class ModelLoadError(PayloadError):
    """onnxruntime could not load the model."""


# -- requests -----------------------------------------------------------------------------------

class BadRequest(ModelServerError):
    """The request body is not what the protocol expects (not JSON, not an object or a list of
    objects, an empty batch, …)."""

    http_status = 400


class InvalidInput(ModelServerError):
    """A row's arguments do not fit the signature (unknown or missing argument, wrong type,
    wrong shape, out of range)."""

    http_status = 422


class InvalidTensor(BadRequest):
    """An Open Inference Protocol input tensor is malformed or does not fit the model (unknown or
    missing name, wrong datatype, shape or element count, bad binary data)."""


class FunctionNotFound(ModelServerError):
    """The request names a function the model does not offer."""

    http_status = 404


class ModelNotFound(ModelServerError):
    """The request names a model (or a version) this server does not serve."""

    http_status = 404


class MethodNotAllowed(ModelServerError):
    http_status = 405


class PayloadTooLarge(ModelServerError):
    """The request body exceeds the configured maximum size."""

    http_status = 413


class ModelNotReady(ModelServerError):
    """The model is not loaded, its warm-up inference has not passed, or the server is draining."""

    http_status = 503


class Overloaded(ModelServerError):
    """More rows wait for the model than ``--max-queue-rows`` allows: the request is refused at once
    rather than queued behind minutes of work; the client may retry."""

    http_status = 503
    retry_after = 1


class InferenceError(ModelServerError):
    """The model failed on input that passed validation, or returned something unusable."""

    http_status = 500
