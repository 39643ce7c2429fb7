"""Streaming inference: telemetry as JSON lines, scored in micro-batches by the same element
scorers and the same :class:`~lifecycle.detector.Detector` as historical inference, so a stream
of a dataset's grid points gives the incidents a historical run over it gives.

A line is one grid point: ``{"time": <ISO 8601 or epoch seconds/milliseconds>, "<tag>": value, …}``
(``null`` or a missing tag: no value there). A line that is not JSON, not an object, lacks the
time, has a non-numeric tag value or does not come after the previous point is **refused**: it is
counted and reported (:class:`LineError`, with its line number and the field at fault) and the
stream goes on with the next line. Good lines are buffered and scored ``batch`` lines at a time
(:meth:`ModelStream.feed` / :meth:`ModelStream.flush`); a forecaster keeps the last points its
window needs from batch to batch, and the artifact's despiking and smoothing state is carried
over, restarting after a gap in time exactly as a historical run restarts after missing points.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from lifecycle import markup_eval
from lifecycle.detector import DetectionSettings, Detector, Event, Point
from lifecycle.elements.artifact import SmoothingState, smooth
from lifecycle.elements.rule import RULE_THRESHOLD, RuleModel
from lifecycle.errors import InvalidInput
from lifecycle.inference import ElementRun, ElementScorer

MAX_LINE = 1 << 20
EPOCH_MS_ABOVE = 1e11  # a number above this is epoch milliseconds (year 5138 in seconds)


@dataclass(frozen=True)
class LineError:
    line: int
    reason: str
    field: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.reason, "field": self.field}


def parse_time(value: Any) -> dt.datetime:
    if isinstance(value, bool) or value is None:
        raise InvalidInput("the time is missing or not a time", field="time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidInput("the time is not finite", field="time")
        seconds = value / 1000.0 if abs(value) > EPOCH_MS_ABOVE else float(value)
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"time {value[:40]!r} is not ISO 8601", field="time") from None
        return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)
    raise InvalidInput("the time is not a string or a number", field="time")


def parse_line(text: str, tags: Sequence[str]) -> tuple[dt.datetime, dict[str, float]]:
    """(time, values of ``tags``) of one line; raises InvalidInput naming the field."""
    if len(text) > MAX_LINE:
        raise InvalidInput(f"a line has at most {MAX_LINE} characters", field=None)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise InvalidInput("a line is a JSON object {\"time\": …, \"<tag>\": value}")
    if "time" not in data:
        raise InvalidInput("the line has no time", field="time")
    t = parse_time(data["time"])
    values: dict[str, float] = {}
    for tag in tags:
        v = data.get(tag)
        if v is None:
            values[tag] = math.nan
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidInput(f"tag {tag!r}: {json.dumps(v)[:40]} is not a number", field=tag)
        else:
            values[tag] = float(v)
    return t, values


class _ElementStream:
    """One element of a stream: its scorer, the window's carry-over, smoothing state and detector."""

    def __init__(self, run: ElementRun, scorer: ElementScorer | None, detector: Detector, threshold: float,
                 step: float) -> None:
        self.run, self.detector, self.threshold, self.step = run, detector, threshold, step
        self.rule = RuleModel(run.inputs, str(run.params["expression"]), bool(run.params.get("inconclusive_positive"))) \
            if run.kind == "rule" else None
        self.scorer = scorer
        horizon = int(run.params.get("horizon") or 0) if run.kind == "forecaster" else 0
        self.carry = (run.window + horizon - 1) if run.kind == "forecaster" else 0
        self.halflife = float(run.artifact.get("smoothing_halflife", run.params.get("smoothing_halflife", 0.0)) or 0.0)
        self.despike = int(run.artifact.get("despike", run.params.get("despike", 1)) or 1)
        self.state = SmoothingState()
        self.previous: pd.Timestamp | None = None  # the last scored point
        self.buffer: pd.DataFrame | None = None

    def push(self, chunk: pd.DataFrame, indicator: np.ndarray) -> list[Event]:
        frame = chunk if self.buffer is None or not len(self.buffer) else pd.concat([self.buffer, chunk])
        offset = len(frame) - len(chunk)
        self.buffer = frame.iloc[len(frame) - self.carry:] if self.carry else None
        scores = (self.rule or self.scorer).score(frame)  # type: ignore[union-attr]
        keep = np.asarray(scores.positions) >= offset
        positions = np.asarray(scores.positions)[keep]
        artifact = np.asarray(scores.artifact, dtype=np.float64)[keep]
        contributions = None if scores.contributions is None else np.asarray(scores.contributions)[keep]
        if self.rule is None:
            restarts = np.zeros(len(positions), dtype=bool)
            step = pd.Timedelta(seconds=self.step)
            for k, pos in enumerate(positions.tolist()):
                t = frame.index[pos]
                restarts[k] = self.previous is None or t - self.previous != step
                self.previous = t
            smoothed, self.state = smooth(artifact, self.halflife, self.despike, self.state, restarts)
        else:
            smoothed = artifact
        tags = self.run.tags
        columns = list(dict.fromkeys(self.run.inputs + self.run.outputs))
        events: list[Event] = []
        for k, pos in enumerate(positions.tolist()):
            if contributions is not None and len(contributions):
                contrib = {tag: float(c) for tag, c in zip(tags, contributions[k]) if math.isfinite(c)}
            else:
                contrib = {tag: 1.0 for tag in self.run.inputs}
            row = frame.iloc[pos]
            values = {tag: float(row[tag]) for tag in columns if math.isfinite(row[tag])}
            events.extend(self.detector.observe(Point(frame.index[pos].to_pydatetime(), float(smoothed[k]),
                                                      self.threshold, contrib, values,
                                                      counted=bool(indicator[pos - offset]))))
        return events


@dataclass
class StreamReport:
    """Counts since the stream started; ``errors`` holds the refused lines not yet taken (:meth:`take_errors`)."""

    lines: int = 0
    points: int = 0
    bad_lines: int = 0
    incidents: int = 0
    errors: list[LineError] = field(default_factory=list)

    def take_errors(self) -> list[LineError]:
        out, self.errors = self.errors, []
        return out

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "points": self.points, "bad_lines": self.bad_lines, "incidents": self.incidents}


class ModelStream:
    """The streaming inference of one model: lines in, incident events out."""

    def __init__(self, model: str, elements: Sequence[ElementRun], scorers: Mapping[str, ElementScorer], *,
                 step_s: float, inference_markups: Sequence[Mapping[str, Any]] = (), production: bool = False,
                 batch: int = 256, clock: Any = None) -> None:
        if not step_s > 0:
            raise InvalidInput("the grid step is a positive number of seconds", field="grid_step_s")
        self.model, self.step, self.batch = model, float(step_s), max(1, batch)
        self.specs = [markup_eval.parse_spec(s) for s in inference_markups]
        self.tags = sorted({t for e in elements for t in e.inputs + e.outputs}
                           | {t for s in self.specs for t in _condition_tags(s)})
        self.elements: list[_ElementStream] = []
        for e in elements:
            settings = DetectionSettings.of_element(e.detection, RULE_THRESHOLD if e.kind == "rule"
                                                    else e.artifact.get("threshold"))
            detector = Detector(settings, model=model, element=e.name, kind=e.kind, step_s=self.step,
                                production=production, clock=clock)
            self.elements.append(_ElementStream(e, scorers.get(e.name), detector, settings.threshold, self.step))
        self.report = StreamReport()
        self._pending: list[tuple[dt.datetime, dict[str, float]]] = []
        self._last: dt.datetime | None = None

    def feed(self, line_no: int, text: str) -> list[Event]:
        """Take one line; the events of a batch when this line completes one."""
        self.report.lines += 1
        if not text.strip():
            return []
        try:
            t, values = parse_line(text, self.tags)
            if self._last is not None and t <= self._last:
                raise InvalidInput(f"time {t.isoformat()} is not after the previous point's", field="time")
        except InvalidInput as exc:
            self.report.errors.append(LineError(line_no, exc.message, exc.field))
            self.report.bad_lines += 1
            return []
        self._last = t
        self._pending.append((t, values))
        return self.flush() if len(self._pending) >= self.batch else []

    def flush(self) -> list[Event]:
        """Score what is buffered; the events it causes."""
        if not self._pending:
            return []
        index = pd.DatetimeIndex([pd.Timestamp(t) for t, _ in self._pending])
        chunk = pd.DataFrame([v for _, v in self._pending], index=index, columns=self.tags, dtype="float64")
        self._pending = []
        indicator = markup_eval.indicator_mask(self.specs, chunk).values
        events: list[Event] = []
        for element in self.elements:
            events.extend(element.push(chunk, indicator))
        events.sort(key=lambda e: (e.at, e.incident.element))
        self.report.points += len(chunk)
        self.report.incidents += sum(1 for e in events if e.kind == "opened")
        return events

    def run(self, lines: Iterable[str]) -> Iterator[Event]:
        for n, text in enumerate(lines, start=1):
            yield from self.feed(n, text)
        yield from self.flush()


def _condition_tags(spec: Any) -> set[str]:
    condition = getattr(spec, "condition", None)
    if not condition:
        return set()
    try:
        return set(markup_eval.condition_names(condition))
    except Exception:
        return set()


# -- streams kept by the service ---------------------------------------------------------------------

#: Streams one service process runs at once.
MAX_STREAMS = 8


@dataclass
class StreamSession:
    model: str
    run: int
    stream: ModelStream
    lock: Any


class StreamSessions:
    """The streaming inferences of one service process, by model (at most :data:`MAX_STREAMS`)."""

    def __init__(self, cap: int = MAX_STREAMS) -> None:
        import threading

        self.cap = cap
        self._lock = threading.Lock()
        self._by_model: dict[str, StreamSession] = {}

    def get(self, model: str) -> StreamSession | None:
        with self._lock:
            return self._by_model.get(model)

    def open(self, model: str, make: Any) -> tuple[StreamSession, bool]:
        """The model's stream, made by ``make(run)`` when there is none; (session, made)."""
        import threading

        from lifecycle.errors import Conflict

        with self._lock:
            found = self._by_model.get(model)
            if found is not None:
                return found, False
            if len(self._by_model) >= self.cap:
                raise Conflict(f"{self.cap} streams run already (the cap); stop one first", field="model")
            run = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000) % (2**31 - 1)
            session = StreamSession(model, run, make(run), threading.Lock())
            self._by_model[model] = session
            return session, True

    def close(self, model: str) -> StreamSession | None:
        with self._lock:
            return self._by_model.pop(model, None)

    def models(self) -> list[str]:
        with self._lock:
            return sorted(self._by_model)
