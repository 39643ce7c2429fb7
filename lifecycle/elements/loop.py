"""The epoch loop shared by every trainable element: early stopping on the validation loss,
maximum epochs and duration, divergence, per-epoch reports and cancellation.

The loop knows nothing about models: ``step()`` trains one epoch and returns the training and
validation losses; ``snapshot()`` captures the model as it is, so the best epoch's model is the
one kept. Time comes from an injected :class:`maas.clock.Clock`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from maas.clock import SYSTEM_CLOCK, Clock

from lifecycle.elements.errors import TrainingCancelled, TrainingFailed

MIN_RELATIVE_IMPROVEMENT = 1e-4  # a validation loss this much lower (relative) than the best counts as better
DIVERGENCE_FACTOR = 1e6  # a loss this many times the first epoch's (or not finite) has diverged


@dataclass(frozen=True)
class TrainingSettings:
    """An element's training settings (docs/lifecycle.md), with their defaults."""

    validation_split: float = 0.2
    max_epochs: int = 500
    patience: int = 15
    batch_size: int = 16
    max_duration_s: float | None = None  # None: no limit

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TrainingSettings":
        data = data or {}
        defaults = cls()
        def pick(name: str) -> Any:
            value = data.get(name)
            return getattr(defaults, name) if value is None else value
        return cls(validation_split=float(pick("validation_split")), max_epochs=int(pick("max_epochs")),
                   patience=int(pick("patience")), batch_size=int(pick("batch_size")),
                   max_duration_s=None if data.get("max_duration_s") is None else float(data["max_duration_s"]))


@dataclass(frozen=True)
class EpochReport:
    """One epoch: its number (from 1), its losses and the time spent so far."""

    epoch: int
    train_loss: float
    validation_loss: float | None
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "validation_loss": self.validation_loss,
                "elapsed_s": round(self.elapsed_s, 3)}


@dataclass
class Callbacks:
    """What the caller hears during training: each epoch, and whether it should stop (cancel)."""

    on_epoch: Callable[[EpochReport], None] = lambda report: None
    cancelled: Callable[[], bool] = lambda: False
    clock: Clock = field(default_factory=lambda: SYSTEM_CLOCK)


@dataclass(frozen=True)
class LoopResult:
    history: list[EpochReport]
    best_epoch: int
    best: Any  # the snapshot taken at the best epoch
    stopped: str  # "early_stopping", "max_epochs", "converged" (a one-epoch solver)

    @property
    def best_validation_loss(self) -> float | None:
        return self.history[self.best_epoch - 1].validation_loss

    @property
    def best_train_loss(self) -> float:
        return self.history[self.best_epoch - 1].train_loss


class Trainee(Protocol):
    def step(self) -> tuple[float, float | None]: ...

    def snapshot(self) -> Any: ...


def run(trainee: Trainee, settings: TrainingSettings, callbacks: Callbacks, *, max_epochs: int | None = None) -> LoopResult:
    """Train epoch by epoch until the validation loss (training loss without validation) has not
    improved for ``patience`` epochs, or ``max_epochs``; raises TrainingFailed when a loss
    diverges or ``max_duration_s`` passes, TrainingCancelled when ``callbacks.cancelled()``."""
    limit = settings.max_epochs if max_epochs is None else min(max_epochs, settings.max_epochs)
    start = callbacks.clock.monotonic()
    history: list[EpochReport] = []
    best_loss = math.inf
    best_epoch = 0
    best: Any = None
    first: float | None = None
    for epoch in range(1, limit + 1):
        if callbacks.cancelled():
            raise TrainingCancelled(f"training was cancelled at epoch {epoch}")
        train_loss, validation_loss = trainee.step()
        elapsed = callbacks.clock.monotonic() - start
        monitored = validation_loss if validation_loss is not None else train_loss
        first = monitored if first is None else first
        if not (math.isfinite(train_loss) and math.isfinite(monitored)) or (
                first > 0 and monitored > DIVERGENCE_FACTOR * first):
            raise TrainingFailed("diverged", f"training diverged at epoch {epoch} (training loss {train_loss:g}, "
                                 f"validation loss {validation_loss}): lower params.learning_rate or check the data")
        report = EpochReport(epoch, float(train_loss), None if validation_loss is None else float(validation_loss), elapsed)
        history.append(report)
        callbacks.on_epoch(report)
        if monitored < best_loss * (1.0 - MIN_RELATIVE_IMPROVEMENT) or best_epoch == 0:
            best_loss, best_epoch, best = monitored, epoch, trainee.snapshot()
        elif epoch - best_epoch >= settings.patience:
            return LoopResult(history, best_epoch, best, "early_stopping")
        if settings.max_duration_s is not None and elapsed > settings.max_duration_s and epoch < limit:
            raise TrainingFailed("timed_out", f"training timed out after {epoch} epoch(s) and {elapsed:.0f} s "
                                 f"(training.max_duration_s = {settings.max_duration_s:g})")
    return LoopResult(history, best_epoch, best, "max_epochs" if limit > 1 else "converged")
