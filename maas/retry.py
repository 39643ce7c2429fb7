"""The one retry/backoff helper: exponential backoff with full jitter, a cap on each delay,
an overall deadline and an injectable clock and random source.

Used for every retried call in the project (ZooKeeper, HTTP probes, launcher calls) and, through
:meth:`Backoff.delay`, for spacing the restarts of crash-looping instances.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, TypeVar

from maas.clock import SYSTEM_CLOCK, Clock
from maas.errors import WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delay policy: ``initial * multiplier**attempt``, capped at ``max_delay``, then jittered.

    ``jitter`` is the fraction of the delay that is randomised (0: none, 1: "full jitter").
    """

    initial: float = 0.1
    multiplier: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (0-based)."""
        base = min(self.max_delay, self.initial * (self.multiplier ** max(0, attempt)))
        if self.jitter <= 0:
            return base
        r = (rng or random).random()
        return base * (1.0 - self.jitter) + base * self.jitter * r


def retry(
    fn: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    backoff: Backoff = Backoff(),
    deadline: float | None = None,
    max_attempts: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call ``fn`` until it returns, retrying on ``retry_on`` errors.

    Gives up (re-raising the last error) after ``max_attempts`` calls or when the next delay
    would pass ``deadline`` seconds from the first call.
    """
    start = clock.monotonic()
    attempt = 0
    while True:
        try:
            return fn()
        except retry_on as exc:
            attempt += 1
            if max_attempts is not None and attempt >= max_attempts:
                raise
            pause = backoff.delay(attempt - 1, rng)
            if deadline is not None and clock.monotonic() + pause - start > deadline:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, pause)
            clock.sleep(pause)


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: Backoff = Backoff(initial=0.05, max_delay=0.5, jitter=0.2),
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Poll ``predicate`` until it returns a truthy value; raise :class:`WaitTimeout` naming ``what``."""
    start = clock.monotonic()
    attempt = 0
    while True:
        value = predicate()
        if value:
            return value
        if clock.monotonic() - start >= timeout:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}")
        clock.sleep(interval.delay(attempt))
        attempt += 1
