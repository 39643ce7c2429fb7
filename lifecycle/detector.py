"""The incident detector of one element (docs/lifecycle.md): grid points in, incident events out.

It is pure — no database, no network, no wall clock of its own — so historical and streaming
inference run the very same code and give the same incidents on the same data. Feed it the
element's scored grid points in time order (:meth:`Detector.observe`); it answers with the events
that point caused: :class:`Opened`, :class:`Reminder`, :class:`Closed`.

The rules, with ``step`` the grid step and ``obs = max(observation_s, step)``:

* **Observation interval.** A point whose artifact is at or above its threshold, while no
  incident is open and no interval is running, opens an observation interval ``[t, t + obs)``.
* **Registration.** Every anomalous point of the interval counts ``step`` seconds; when their sum
  reaches ``share × obs`` an incident is registered (:class:`Opened`), starting at the interval's
  first anomalous point. When the interval runs out first, it is dropped; the next anomalous
  point opens a new one.
* **Open while the anomaly lasts.** An open incident closes when a full ``obs`` of consecutive
  counted points is below the threshold (:class:`Closed`); its end is the first of those points.
* **Suppression.** No observation interval opens before ``suppression_s`` has passed since the
  end of the element's previous incident: a recurring alert does not become a new incident right
  after one.
* **Reminder.** While an incident stays open, :class:`Reminder` every ``reminder_s`` since the
  last notification (0: never). Its time is the detector's clock: the points' own time by default
  (historical runs), a wall clock for streaming runs, which also call :meth:`Detector.tick` when
  no point arrives.
* **Gaps.** A point outside the model's inference indicator, or without a finite artifact, is a
  gap: it counts neither as anomalous nor as normal, for registering or for closing.
* **Top tags.** Each point carries the per-tag contributions to its artifact; an incident's top
  tags are those with the largest share of the artifact summed over its anomalous points, each
  with its value at the incident's peak (the point of largest artifact), and that share.
* **Defaults.** Status and cause come from the element's detection settings; ``production``
  says whether the model was ``PUBLISHED`` when the run started (else the incident is a test one).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from lifecycle.errors import InvalidInput

#: How many top deviating tags an incident carries by default.
TOP_TAGS = 3

Clock = Callable[[], dt.datetime]
"""The detector's notion of "now" for reminders (returns an aware UTC datetime)."""


@dataclass(frozen=True)
class DetectionSettings:
    """An element's detection settings (the ``detection`` object of an element, §12)."""

    threshold: float
    observation_s: float = 0.0
    share: float = 1.0
    suppression_s: float = 0.0
    reminder_s: float = 0.0
    default_status: str = "Under review"
    default_cause: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise InvalidInput("detection.threshold: a threshold is a finite number", field="detection.threshold")
        if not 0.0 < self.share <= 1.0:
            raise InvalidInput("detection.share: the anomaly duration share is in (0, 1]", field="detection.share")
        for name in ("observation_s", "suppression_s", "reminder_s"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"detection.{name}: a duration is not negative", field=f"detection.{name}")

    @classmethod
    def of_element(cls, detection: Mapping[str, Any], trained_threshold: float | None) -> "DetectionSettings":
        """From an element's stored detection settings; an unset threshold is the trained one."""
        threshold = detection.get("threshold")
        if threshold is None:
            threshold = trained_threshold
        if threshold is None:
            raise InvalidInput("the element has no threshold: set detection.threshold or train it",
                               field="detection.threshold")
        return cls(threshold=float(threshold),
                   observation_s=float(detection.get("observation_s") or 0.0),
                   share=float(detection.get("share") or 1.0),
                   suppression_s=float(detection.get("suppression_s") or 0.0),
                   reminder_s=float(detection.get("reminder_s") or 0.0),
                   default_status=str(detection.get("default_status") or "Under review"),
                   default_cause=detection.get("default_cause"))


@dataclass(frozen=True)
class Point:
    """One scored grid point of one element."""

    time: dt.datetime
    artifact: float
    threshold: float
    #: Per-tag contributions to the artifact (non-negative; their shares are what ranks the tags).
    contributions: Mapping[str, float] = field(default_factory=dict)
    #: The tag values at this point (reported with the top tags).
    values: Mapping[str, float] = field(default_factory=dict)
    #: Inside the model's inference indicator; False is a gap.
    counted: bool = True

    @property
    def anomalous(self) -> bool:
        return self.counted and math.isfinite(self.artifact) and self.artifact >= self.threshold

    @property
    def gap(self) -> bool:
        return not self.counted or not math.isfinite(self.artifact)


@dataclass(frozen=True)
class TopTag:
    tag: str
    value: float | None
    share: float

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "value": self.value, "share": self.share}


@dataclass(frozen=True)
class IncidentState:
    """What the detector knows of an incident when it emits an event about it."""

    model: str
    element: str
    kind: str
    #: Number of this incident among the detector's (1, 2, …): with model and element, its key in a run.
    seq: int
    start: dt.datetime
    end: dt.datetime | None
    registered_at: dt.datetime
    artifact: float
    threshold: float
    top_tags: tuple[TopTag, ...]
    status: str
    cause: str | None
    production: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "element": self.element, "kind": self.kind, "seq": self.seq,
            "start": _iso(self.start), "end": _iso(self.end), "registered_at": _iso(self.registered_at),
            "artifact": self.artifact, "threshold": self.threshold,
            "top_tags": [t.to_json() for t in self.top_tags], "status": self.status, "cause": self.cause,
            "production": self.production,
        }


@dataclass(frozen=True)
class Event:
    """An incident event; ``at`` is when it happened on the detector's clock."""

    kind: str
    incident: IncidentState
    at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "at": _iso(self.at), "incident": self.incident.to_json()}


def Opened(incident: IncidentState, at: dt.datetime) -> Event:  # noqa: N802 (an event constructor)
    return Event("opened", incident, at)


def Reminder(incident: IncidentState, at: dt.datetime) -> Event:  # noqa: N802
    return Event("reminder", incident, at)


def Closed(incident: IncidentState, at: dt.datetime) -> Event:  # noqa: N802
    return Event("closed", incident, at)


EVENT_KINDS = ("opened", "reminder", "closed")


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


class _Evidence:
    """Contributions summed over anomalous points, and the peak point."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.peak: Point | None = None

    def add(self, point: Point) -> None:
        for tag, c in point.contributions.items():
            if math.isfinite(c) and c > 0:
                self.sums[tag] = self.sums.get(tag, 0.0) + float(c)
        if self.peak is None or point.artifact > self.peak.artifact:
            self.peak = point

    def top(self, n: int) -> tuple[TopTag, ...]:
        total = sum(self.sums.values())
        if total <= 0:
            return ()
        ranked = sorted(self.sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        values = self.peak.values if self.peak is not None else {}
        out = []
        for tag, s in ranked:
            v = values.get(tag)
            out.append(TopTag(tag, float(v) if v is not None and math.isfinite(v) else None, s / total))
        return tuple(out)


class Detector:
    """The incident detector of one element of one model run (see the module's rules)."""

    def __init__(self, settings: DetectionSettings, *, model: str, element: str, kind: str, step_s: float,
                 production: bool, clock: Clock | None = None, top_tags: int = TOP_TAGS) -> None:
        if not step_s > 0:
            raise InvalidInput("the grid step is a positive number of seconds", field="grid_step_s")
        self.settings = settings
        self.model, self.element, self.kind = model, element, kind
        self.step = float(step_s)
        self.production = production
        self.clock = clock
        self.top_n = top_tags
        self.obs = max(settings.observation_s, self.step)
        # The duration of anomalous points an interval needs; a hair of tolerance for float sums.
        self.needed = settings.share * self.obs - 1e-9 * self.obs
        self._last_time: dt.datetime | None = None
        self._seq = 0
        # The running observation interval.
        self._obs_start: dt.datetime | None = None
        self._obs_anomalous = 0.0
        self._obs_evidence = _Evidence()
        # The open incident.
        self._open: IncidentState | None = None
        self._evidence = _Evidence()
        self._normal_run = 0.0
        self._normal_since: dt.datetime | None = None
        self._last_notified: dt.datetime | None = None
        # Suppression: the end of the previous incident.
        self._previous_end: dt.datetime | None = None

    @property
    def open_incident(self) -> IncidentState | None:
        return self._open

    def _now(self, point_time: dt.datetime | None) -> dt.datetime:
        if self.clock is not None:
            return self.clock()
        assert point_time is not None or self._last_time is not None
        return point_time or self._last_time  # type: ignore[return-value]

    def observe(self, point: Point) -> list[Event]:
        """The events ``point`` causes. Points come in strictly increasing time."""
        if point.time.tzinfo is None:
            raise InvalidInput("a point's time must carry its timezone (UTC)", field="time")
        if self._last_time is not None and point.time <= self._last_time:
            raise InvalidInput(f"point at {_iso(point.time)} is not after the previous one ({_iso(self._last_time)})",
                               field="time")
        self._last_time = point.time
        events: list[Event] = []
        if self._open is not None:
            self._observe_open(point, events)
        else:
            self._observe_idle(point, events)
        events.extend(self.tick(self._now(point.time)) if self._open is not None else [])
        return events

    def tick(self, now: dt.datetime | None = None) -> list[Event]:
        """A reminder when one is due at ``now`` (default: the clock) for the open incident."""
        if self._open is None or self.settings.reminder_s <= 0:
            return []
        now = now or self._now(None)
        assert self._last_notified is not None
        if (now - self._last_notified).total_seconds() + 1e-9 >= self.settings.reminder_s:
            self._last_notified = now
            return [Reminder(self._refreshed(), now)]
        return []

    # -- idle: maybe an observation interval ------------------------------------------------------
    def _observe_idle(self, point: Point, events: list[Event]) -> None:
        if self._obs_start is not None and (point.time - self._obs_start).total_seconds() >= self.obs - 1e-9:
            self._obs_start = None  # the interval ran out without reaching the share
        if point.gap:
            return
        if self._obs_start is None:
            if not point.anomalous or self._suppressed(point.time):
                return
            self._obs_start = point.time
            self._obs_anomalous = 0.0
            self._obs_evidence = _Evidence()
        if point.anomalous:
            self._obs_anomalous += self.step
            self._obs_evidence.add(point)
        if self._obs_anomalous >= self.needed:
            self._register(point, events)

    def _suppressed(self, t: dt.datetime) -> bool:
        return (self._previous_end is not None and self.settings.suppression_s > 0
                and (t - self._previous_end).total_seconds() < self.settings.suppression_s)

    def _register(self, point: Point, events: list[Event]) -> None:
        assert self._obs_start is not None
        self._seq += 1
        self._evidence = self._obs_evidence
        peak = self._evidence.peak or point
        self._open = IncidentState(
            model=self.model, element=self.element, kind=self.kind, seq=self._seq, start=self._obs_start,
            end=None, registered_at=point.time, artifact=float(peak.artifact), threshold=float(peak.threshold),
            top_tags=self._evidence.top(self.top_n), status=self.settings.default_status,
            cause=self.settings.default_cause, production=self.production)
        self._obs_start = None
        self._normal_run, self._normal_since = 0.0, None
        at = self._now(point.time)
        self._last_notified = at
        events.append(Opened(self._open, at))

    # -- open: stays open while the anomaly lasts -------------------------------------------------
    def _observe_open(self, point: Point, events: list[Event]) -> None:
        if point.gap:
            return
        if point.anomalous:
            self._evidence.add(point)
            self._normal_run, self._normal_since = 0.0, None
            return
        if self._normal_since is None:
            self._normal_since = point.time
        self._normal_run += self.step
        if self._normal_run >= self.obs - 1e-9:
            closed = replace(self._refreshed(), end=self._normal_since)
            self._open = None
            self._previous_end = closed.end
            self._normal_run, self._normal_since = 0.0, None
            events.append(Closed(closed, self._now(point.time)))

    def _refreshed(self) -> IncidentState:
        """The open incident with its peak and top tags brought up to date."""
        assert self._open is not None
        peak = self._evidence.peak
        self._open = replace(self._open, top_tags=self._evidence.top(self.top_n),
                             artifact=float(peak.artifact) if peak else self._open.artifact,
                             threshold=float(peak.threshold) if peak else self._open.threshold)
        return self._open

    def run(self, points: Sequence[Point]) -> list[Event]:
        """Every event of ``points`` in order (a convenience of historical runs and tests)."""
        out: list[Event] = []
        for p in points:
            out.extend(self.observe(p))
        return out
