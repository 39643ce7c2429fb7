"""The incident detector's rules (docs/lifecycle.md), each on a hand-made series of grid points, with
the points' time as the clock or a fake wall clock for reminders."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import pytest

from lifecycle.detector import DetectionSettings, Detector, Event, Point
from lifecycle.errors import InvalidInput

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
STEP = 10.0


def at(i: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=STEP * i)


def points(pattern: str, *, start: int = 0, contributions: dict[str, float] | None = None) -> list[Point]:
    """'x' anomalous (artifact 2 over threshold 1), '.' normal (0.1), '_' outside the indicator,
    '?' no artifact (missing data)."""
    out = []
    for k, c in enumerate(pattern):
        artifact = {"x": 2.0, ".": 0.1, "_": 5.0, "?": float("nan")}[c]
        out.append(Point(at(start + k), artifact, 1.0, contributions or {"a": 1.0}, {"a": float(start + k)},
                         counted=c != "_"))
    return out


def detector(**settings: float) -> Detector:
    return Detector(DetectionSettings(threshold=1.0, **settings), model="pump7", element="e1", kind="envelope",
                    step_s=STEP, production=False)


def kinds(events: Sequence[Event]) -> list[tuple[str, int]]:
    """(event, index of the grid point it happened at)."""
    return [(e.kind, int((e.at - T0).total_seconds() // STEP)) for e in events]


def test_share_below_the_duration_share_registers_nothing() -> None:
    # interval of 6 points, share 0.5 → 3 anomalous points needed; only 2 in each interval
    d = detector(observation_s=60, share=0.5)
    assert d.run(points("xx....x.x...")) == []


def test_share_reached_registers_at_the_point_that_reaches_it_starting_at_the_first() -> None:
    d = detector(observation_s=60, share=0.5)
    events = d.run(points("..x.x.x..."))
    assert kinds(events) == [("opened", 6)]
    incident = events[0].incident
    assert incident.start == at(2) and incident.registered_at == at(6) and incident.end is None
    assert incident.seq == 1 and incident.status == "Under review" and not incident.production


def test_an_interval_that_runs_out_is_dropped_and_the_next_anomalous_point_opens_another() -> None:
    d = detector(observation_s=40, share=0.75)  # 4 points, 3 anomalous needed
    # points 0..3: x x . . → 2 only; point 4 opens a new interval 4..7: x . x x → 3
    events = d.run(points("xx..x.xx"))
    assert kinds(events) == [("opened", 7)]
    assert events[0].incident.start == at(4)


def test_no_observation_interval_registers_at_the_first_anomalous_point() -> None:
    events = detector().run(points("..x"))
    assert kinds(events) == [("opened", 2)]


def test_stays_open_while_the_anomaly_lasts_and_closes_after_a_full_interval_below() -> None:
    d = detector(observation_s=30, share=1.0)  # 3 points
    events = d.run(points("xxx..x..xxxx...x"))
    # opened at 2; normal runs of 2 (3,4) and 2 (6,7) are too short; closes at 14 (12,13,14 normal)
    assert kinds(events) == [("opened", 2), ("closed", 14)]
    closed = events[1].incident
    assert closed.start == at(0) and closed.end == at(12) and closed.seq == 1


def test_suppression_stops_a_new_incident_right_after_one() -> None:
    d = detector(observation_s=10, suppression_s=50)
    # incident 0..0 closes at 1 (end 1); anomalies at 2..5 are within 50 s of the end; the one at 6 is not
    events = d.run(points("x.xxxx.x"))
    assert kinds(events) == [("opened", 0), ("closed", 1), ("opened", 7)]
    assert events[2].incident.seq == 2 and events[2].incident.start == at(7)


def test_without_suppression_the_recurring_alert_is_a_new_incident() -> None:
    events = detector(observation_s=10).run(points("x.x"))
    assert kinds(events) == [("opened", 0), ("closed", 1), ("opened", 2)]


def test_reminder_every_period_while_open_on_the_points_time() -> None:
    d = detector(reminder_s=30)
    events = d.run(points("xxxxxxxx."))
    assert kinds(events) == [("opened", 0), ("reminder", 3), ("reminder", 6), ("closed", 8)]


def test_reminder_on_a_fake_wall_clock_also_without_points() -> None:
    now = [dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)]
    d = Detector(DetectionSettings(threshold=1.0, reminder_s=60), model="m", element="e", kind="rule",
                 step_s=STEP, production=True, clock=lambda: now[0])
    opened = d.observe(points("x")[0])
    assert [e.kind for e in opened] == ["opened"] and opened[0].at == now[0]
    now[0] += dt.timedelta(seconds=59)
    assert d.tick() == []
    now[0] += dt.timedelta(seconds=1)
    reminders = d.tick()
    assert [e.kind for e in reminders] == ["reminder"] and reminders[0].incident.production
    assert d.tick() == []  # the next one is a full period later
    now[0] += dt.timedelta(seconds=60)
    assert [e.kind for e in d.observe(points("x", start=1)[0])] == ["reminder"]


def test_no_reminder_when_the_period_is_zero() -> None:
    assert kinds(detector().run(points("x" * 50))) == [("opened", 0)]


def test_top_tags_by_share_of_the_artifact_with_their_values_at_the_peak() -> None:
    d = Detector(DetectionSettings(threshold=1.0, observation_s=30, share=1.0, default_status="Decision pending",
                                   default_cause="bearing"),
                 model="pump7", element="e1", kind="forecaster", step_s=STEP, production=True, top_tags=2)
    series = [
        Point(at(0), 2.0, 1.0, {"vib": 1.5, "temp": 0.4, "flow": 0.1}, {"vib": 7.0, "temp": 60.0, "flow": 3.0}),
        Point(at(1), 4.0, 1.0, {"vib": 3.0, "temp": 0.9, "flow": 0.1}, {"vib": 9.5, "temp": 61.0, "flow": 3.1}),
        Point(at(2), 3.0, 1.0, {"vib": 2.5, "temp": 0.4, "flow": 0.1}, {"vib": 8.0, "temp": 62.0, "flow": 3.2}),
    ]
    [opened] = d.run(series)
    incident = opened.incident
    assert incident.artifact == 4.0 and incident.threshold == 1.0
    assert [t.tag for t in incident.top_tags] == ["vib", "temp"]
    assert incident.top_tags[0].value == 9.5 and incident.top_tags[1].value == 61.0
    assert incident.top_tags[0].share == pytest.approx(7.0 / 9.0)
    assert incident.top_tags[1].share == pytest.approx(1.7 / 9.0)
    assert incident.status == "Decision pending" and incident.cause == "bearing" and incident.production


def test_top_tags_follow_the_anomaly_while_it_stays_open() -> None:
    d = detector(reminder_s=10)
    first = d.observe(Point(at(0), 2.0, 1.0, {"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 2.0}))
    assert [t.tag for t in first[0].incident.top_tags] == ["a"]
    later = d.observe(Point(at(1), 9.0, 1.0, {"a": 1.0, "b": 8.0}, {"a": 1.5, "b": 20.0}))
    assert later[0].kind == "reminder"
    assert [(t.tag, t.value) for t in later[0].incident.top_tags] == [("b", 20.0), ("a", 1.5)]
    assert later[0].incident.artifact == 9.0


def test_points_outside_the_inference_indicator_do_not_count_towards_registering() -> None:
    d = detector(observation_s=40, share=0.75)  # 3 anomalous of 4 needed
    # the '_' points have a huge artifact but are outside the indicator: a gap
    assert d.run(points("x__x....")) == []
    assert d.run(points("____", start=8)) == []


def test_a_gap_neither_closes_nor_keeps_alive_an_open_incident() -> None:
    d = detector(observation_s=30)
    events = d.run(points("xxx___??_..x...."))
    # the gap 3..8 does not close it; normal 9,10 then x at 11 resets; 12,13,14 close it
    assert kinds(events) == [("opened", 2), ("closed", 14)]
    assert events[1].incident.end == at(12)


def test_missing_artifacts_are_a_gap() -> None:
    assert detector(observation_s=30, share=1.0).run(points("x?x")) == []


def test_time_going_back_or_naive_is_refused() -> None:
    d = detector()
    d.observe(points("x", start=5)[0])
    with pytest.raises(InvalidInput, match="not after"):
        d.observe(points("x", start=5)[0])
    with pytest.raises(InvalidInput, match="timezone"):
        d.observe(Point(dt.datetime(2024, 3, 1), 0.0, 1.0))


def test_settings_from_an_element_take_the_trained_threshold_when_unset() -> None:
    s = DetectionSettings.of_element({"threshold": None, "observation_s": 60, "share": 0.5, "suppression_s": 0,
                                      "reminder_s": 0, "default_status": "Under review", "default_cause": None}, 3.5)
    assert s.threshold == 3.5 and s.observation_s == 60
    assert DetectionSettings.of_element({"threshold": 2.0}, 3.5).threshold == 2.0
    with pytest.raises(InvalidInput) as e:
        DetectionSettings.of_element({}, None)
    assert e.value.field == "detection.threshold"
    with pytest.raises(InvalidInput):
        DetectionSettings(threshold=1.0, share=0.0)


def test_the_same_points_give_the_same_incidents_whatever_the_batching() -> None:
    series = points("..xxx....xx.x.xxxx......x")
    whole = Detector(DetectionSettings(threshold=1.0, observation_s=30, share=0.6), model="m", element="e",
                     kind="rule", step_s=STEP, production=False).run(series)
    pieces = Detector(DetectionSettings(threshold=1.0, observation_s=30, share=0.6), model="m", element="e",
                      kind="rule", step_s=STEP, production=False)
    split = [e for chunk in (series[:7], series[7:8], series[8:]) for e in pieces.run(chunk)]
    assert [e.to_json() for e in whole] == [e.to_json() for e in split]
    assert [e.kind for e in whole].count("opened") >= 2
