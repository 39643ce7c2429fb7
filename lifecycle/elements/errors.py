"""Why training an element stopped: refusals of the data or settings, divergence, time-outs,
cancellation. Each carries a short machine-readable ``reason`` that the training job records next
to the message (``no_points``, ``missing_tag``, ``constant_tag``, ``window_too_long``, ``nan``,
``too_few_points``, ``too_large``, ``diverged``, ``timed_out``, ``cancelled``)."""

from __future__ import annotations

from lifecycle.errors import InvalidInput, LifecycleError


class TrainingRefused(InvalidInput):
    """The element cannot be trained on this data with these settings (422): the message says why."""

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason = reason


class TrainingFailed(LifecycleError):
    """Training started but did not produce a usable model (diverged, timed out)."""

    http_status = 422
    exit_code = 7

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TrainingCancelled(LifecycleError):
    """The job was cancelled while the element trained; nothing was kept."""

    http_status = 409
    exit_code = 7
    reason = "cancelled"
