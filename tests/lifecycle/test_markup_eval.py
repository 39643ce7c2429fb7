"""Markup evaluation on small handmade grids with known answers: fixed and recurrent intervals
(across midnight, UTC), conditions with nulls, inconclusive on and off, unions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lifecycle.errors import InvalidInput
from lifecycle.markup_eval import (
    MarkupSpec,
    condition_names,
    evaluate_mask,
    indicator_mask,
    interval_mask,
    mask_intervals,
    parse_spec,
    tag_variables,
    union_mask,
)

NaN = math.nan


def hourly(start: str, hours: int, **tags: list[float]) -> pd.DataFrame:
    index = pd.date_range(start, periods=hours, freq="h", tz="UTC", unit="ns", name="time")
    return pd.DataFrame({k: v for k, v in tags.items()}, index=index) if tags else pd.DataFrame(index=index)


def on_hours(mask: np.ndarray, frame: pd.DataFrame) -> list[str]:
    return [t.strftime("%a %H") for t in frame.index[mask]]


def test_no_intervals_and_no_condition_is_everywhere() -> None:
    frame = hourly("2024-03-01", 5, a=[1, 2, 3, 4, 5])
    mask = evaluate_mask(MarkupSpec(), frame)
    assert mask.count == 5 and mask.values.all()
    assert mask.intervals == [(frame.index[0], frame.index[-1] + pd.Timedelta(hours=1))]


def test_fixed_intervals_are_half_open_and_utc() -> None:
    frame = hourly("2024-03-01", 10)
    spec = parse_spec({"intervals": [{"from": "2024-03-01T02:00:00Z", "to": "2024-03-01T04:00:00Z"},
                                     {"from": "2024-03-01T08:00:00+02:00", "to": "2024-03-01T07:00:00"}]})
    # the second interval is 06:00Z–07:00Z: an offset is converted, a time without one is UTC
    assert on_hours(evaluate_mask(spec, frame).values, frame) == ["Fri 02", "Fri 03", "Fri 06"]


def test_recurrent_interval_across_midnight() -> None:
    # Friday 1 March 2024 00:00 UTC for three days, hourly
    frame = hourly("2024-03-01", 72)
    spec = parse_spec({"recurrent": [{"days": ["fri"], "from_time": "22:00", "to_time": "02:00"}]})
    mask = evaluate_mask(spec, frame)
    assert on_hours(mask.values, frame) == ["Fri 22", "Fri 23", "Sat 00", "Sat 01"]
    assert [(a.isoformat(), b.isoformat()) for a, b in mask.intervals] == [
        ("2024-03-01T22:00:00+00:00", "2024-03-02T02:00:00+00:00")]
    # Thursday's night reaches into Friday morning even though Thursday is not on the grid
    spec = parse_spec({"recurrent": [{"days": ["Thursday"], "from_time": "23:00", "to_time": "01:30"}]})
    assert on_hours(evaluate_mask(spec, frame).values, frame) == ["Fri 00", "Fri 01"]


def test_recurrent_equal_times_mean_a_whole_day_and_days_default_to_all() -> None:
    frame = hourly("2024-03-01", 72)
    spec = parse_spec({"recurrent": [{"days": ["sat"], "from_time": "06:00", "to_time": "06:00"}]})
    hours = on_hours(evaluate_mask(spec, frame).values, frame)
    assert len(hours) == 24 and hours[0] == "Sat 06" and hours[-1] == "Sun 05"
    spec = parse_spec({"recurrent": [{"from_time": "12:00", "to_time": "13:00"}]})
    assert on_hours(evaluate_mask(spec, frame).values, frame) == ["Fri 12", "Sat 12", "Sun 12"]


def test_fixed_or_recurrent() -> None:
    frame = hourly("2024-03-01", 24)
    spec = parse_spec({"intervals": [{"from": "2024-03-01T01:00:00Z", "to": "2024-03-01T02:00:00Z"}],
                       "recurrent": [{"days": ["fri"], "from_time": "20:00:00", "to_time": "21:00:00"}]})
    assert on_hours(interval_mask(spec, frame.index), frame) == ["Fri 01", "Fri 20"]


CURRENT = [0.1, 0.6, NaN, 0.9, 0.7, NaN]
PRESSURE = [1.0, 0.05, 1.0, NaN, 2.0, 0.0]


def pump() -> pd.DataFrame:
    return hourly("2024-03-01", 6, **{"Current": CURRENT, "Pressure": PRESSURE})


@pytest.mark.parametrize("positive, expected", [
    # point:  0: 0.1 fails; 1: Pressure < 0.1 → false; 2: Current null → inconclusive;
    #         3: Pressure null → inconclusive; 4: true; 5: Current null → inconclusive
    (False, [False, False, False, False, True, False]),
    (True, [False, False, True, True, True, True]),
])
def test_condition_with_nulls_inconclusive_off_and_on(positive: bool, expected: list[bool]) -> None:
    spec = MarkupSpec(condition="Current > 0.5 && not(Pressure < 0.1)", inconclusive_positive=positive)
    mask = evaluate_mask(spec, pump())
    assert mask.values.tolist() == expected
    assert mask.inconclusive.tolist() == [False, False, True, True, False, True]
    assert mask.to_json()["inconclusive_points"] == 3


def test_short_circuit_decides_without_the_missing_tag() -> None:
    spec = MarkupSpec(condition="Current > 0.5 || Pressure > 1.5")
    mask = evaluate_mask(spec, pump())
    # 2: Current null read first → inconclusive; 3: Current 0.9 decides, Pressure not read; 5: inconclusive
    assert mask.values.tolist() == [False, True, False, True, True, False]
    assert mask.inconclusive.tolist() == [False, False, True, False, False, True]


def test_condition_errors_non_booleans_and_unknown_tags_are_inconclusive() -> None:
    frame = pump()
    for condition in ("Current > 'abc'", "Current + 1"):  # an evaluation error, a number
        assert not evaluate_mask(MarkupSpec(condition=condition), frame).values.any()
        assert evaluate_mask(MarkupSpec(condition=condition, inconclusive_positive=True), frame).values[0]
    mask = evaluate_mask(MarkupSpec(condition="Flow > 1"), frame)
    assert mask.missing_tags == ("Flow",) and mask.inconclusive.all() and mask.count == 0
    assert evaluate_mask(MarkupSpec(condition="Flow > 1", inconclusive_positive=True), frame).count == 6


def test_condition_only_inside_the_intervals() -> None:
    spec = MarkupSpec(condition="Current > 0.5", inconclusive_positive=True,
                      intervals=[{"from": "2024-03-01T02:00:00Z", "to": "2024-03-01T05:00:00Z"}])
    mask = evaluate_mask(spec, pump())
    assert mask.values.tolist() == [False, False, True, True, True, False]
    assert mask.inconclusive_count == 1  # hour 2 only; hour 5 is outside the interval


def test_tag_names_with_spaces_through_aliases() -> None:
    frame = hourly("2024-03-01", 3, **{"Motor current": [0.1, 0.9, NaN], "1st stage": [1, 2, 3], "in": [0, 0, 1],
                                       "a-b": [1, 1, 1], "a_b": [0, 0, 0]})
    variables = tag_variables(list(frame.columns))
    assert variables["Motor_current"] == "Motor current"
    assert variables["_1st_stage"] == "1st stage"
    assert variables["in_"] == "in"
    assert variables["a_b"] == "a_b"  # 'a-b' would alias onto a real tag: it has no alias
    assert "a-b" not in variables.values()
    mask = evaluate_mask(MarkupSpec(condition="Motor_current > 0.5 and _1st_stage >= 2 and in_ == 0"), frame)
    assert mask.values.tolist() == [False, True, False]


def test_condition_names_skip_lambda_parameters() -> None:
    assert condition_names("exists(A) && MAP(B, x -> x > C) != null") == {"A", "B", "C"}


def test_parse_errors_name_the_field_and_position() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec({"condition": "Current > && Pressure"})
    assert err.value.field == "condition"
    assert "line 1, column 11" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_spec({"name": "x" * 101})
    assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        parse_spec({"intervals": [{"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}]})
    assert err.value.field == "intervals.0" and "must be after" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_spec({"recurrent": [{"days": ["mon", "funday"], "from_time": "01:00", "to_time": "02:00"}]})
    assert "days[1]: 'funday' is not a day" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_spec({"colour": "red"})
    assert err.value.field == "colour"
    with pytest.raises(InvalidInput) as err:
        parse_spec({"grid_step_s": 0})
    assert err.value.field == "grid_step_s"


def test_spec_round_trips_through_json_with_from_and_to() -> None:
    spec = parse_spec({"name": "night", "intervals": [{"from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}],
                       "recurrent": [{"days": ["SAT", "sun"], "from_time": "22:00", "to_time": "06:00"}],
                       "condition": "  ", "inconclusive_positive": True})
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert dumped["intervals"] == [{"from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}]
    assert dumped["recurrent"][0]["days"] == ["sat", "sun"] and dumped["condition"] is None
    assert parse_spec(dumped) == spec


def test_union_and_indicator_and_intervals() -> None:
    frame = hourly("2024-03-01", 12, v=list(range(12)))
    a = evaluate_mask(MarkupSpec(condition="v < 2"), frame)
    b = evaluate_mask(MarkupSpec(condition="v >= 5 && v < 7"), frame)
    u = union_mask([a, b])
    assert u.values.nonzero()[0].tolist() == [0, 1, 5, 6] and u.count == 4
    assert [(s.hour, e.hour) for s, e in u.intervals] == [(0, 2), (5, 7)]
    assert indicator_mask([], frame).count == 12
    assert indicator_mask([MarkupSpec(condition="v < 2"), MarkupSpec(condition="v > 10")], frame).count == 3
    with pytest.raises(InvalidInput, match="different grids"):
        union_mask([a, evaluate_mask(MarkupSpec(), frame.iloc[:5])])
    with pytest.raises(InvalidInput):
        union_mask([])


def test_mask_intervals_break_at_holes_in_the_grid() -> None:
    frame = hourly("2024-03-01", 6).drop(pd.Timestamp("2024-03-01T03:00:00Z"))
    intervals = mask_intervals(np.ones(5, dtype=bool), frame.index, 3600)
    assert [(s.hour, e.hour) for s, e in intervals] == [(0, 3), (4, 6)]
    assert mask_intervals(np.zeros(5, dtype=bool), frame.index) == []
