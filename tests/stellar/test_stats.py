"""STATS_*, BIN, STATS_BIN, OUTLIER_MAD_* and IT_ENTROPY, checked against independent references
(Python's ``statistics``, scipy) and against the examples of Metron's statistics documentation."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from scipy import stats as scipy_stats

from stellar_like import StellarEvaluationError, evaluate
from stellar_like.functions.stats import OnlineStatistics, WindowedStatistics
from stellar_like.serialization import deserialize, serialize

_RNG = random.Random(7)
VALUES = [_RNG.gauss(10, 3) for _ in range(500)]
POSITIVE = [abs(v) + 0.1 for v in VALUES]


def run(expression: str, **variables: object) -> object:
    return evaluate(expression, variables)


@pytest.fixture(params=["online", "windowed"])
def filled(request: pytest.FixtureRequest) -> object:
    init = "STATS_INIT()" if request.param == "online" else "STATS_INIT(1000)"
    return run(f"STATS_ADD({init}, values)", values=POSITIVE)


@pytest.mark.parametrize(
    ("function", "reference"),
    [
        ("STATS_COUNT", lambda v: float(len(v))),
        ("STATS_SUM", math.fsum),
        ("STATS_MEAN", statistics.fmean),
        ("STATS_MIN", min),
        ("STATS_MAX", max),
        ("STATS_VARIANCE", statistics.variance),
        ("STATS_POPULATION_VARIANCE", statistics.pvariance),
        ("STATS_SD", statistics.stdev),
        ("STATS_GEOMETRIC_MEAN", statistics.geometric_mean),
        ("STATS_QUADRATIC_MEAN", lambda v: math.sqrt(math.fsum(x * x for x in v) / len(v))),
        ("STATS_SUM_LOGS", lambda v: math.fsum(math.log(x) for x in v)),
        ("STATS_SUM_SQUARES", lambda v: math.fsum(x * x for x in v)),
        ("STATS_SKEWNESS", lambda v: float(scipy_stats.skew(v, bias=False))),
        ("STATS_KURTOSIS", lambda v: float(scipy_stats.kurtosis(v, bias=False))),
    ],
)
def test_summary_statistics_match_references(filled: object, function: str, reference: object) -> None:
    actual = run(f"{function}(s)", s=filled)
    assert isinstance(actual, float)
    assert actual == pytest.approx(reference(POSITIVE), rel=1e-9)  # type: ignore[operator]


def test_percentiles_online_are_close_and_windowed_exact() -> None:
    online = run("STATS_ADD(STATS_INIT(), values)", values=VALUES)
    windowed = run("STATS_ADD(STATS_INIT(600), values)", values=VALUES)
    ordered = sorted(VALUES)
    for p in (10, 25, 50, 75, 90, 99):
        exact = float(scipy_stats.scoreatpercentile(ordered, p, interpolation_method="fraction"))
        assert run("STATS_PERCENTILE(s, p)", s=online, p=p) == pytest.approx(exact, abs=0.25)
    # commons-math's estimate: position p(n+1)/100 between the sorted values
    assert run("STATS_PERCENTILE(s, 50)", s=run("STATS_ADD(STATS_INIT(10), [1, 2, 3, 4])")) == 2.5
    assert run("STATS_PERCENTILE(s, 25)", s=run("STATS_ADD(STATS_INIT(10), [1, 2, 3, 4])")) == 1.25
    assert run("STATS_PERCENTILE(s, 100)", s=windowed) == max(VALUES)


def test_window_keeps_only_the_last_values() -> None:
    s = run("STATS_ADD(STATS_INIT(3), 1, 2, 3, 4, 5)")
    assert run("STATS_COUNT(s)", s=s) == 3.0
    assert run("STATS_MEAN(s)", s=s) == 4.0
    assert run("STATS_MIN(s)", s=s) == 3.0


def test_add_accepts_lists_numeric_strings_and_skips_nulls() -> None:
    s = run("STATS_ADD(null, 1, [2, null, '3'], null)")
    assert isinstance(s, OnlineStatistics)
    assert run("STATS_SUM(s)", s=s) == 6.0
    with pytest.raises(StellarEvaluationError, match="STATS_ADD: argument 2 'x' is not a number"):
        run("STATS_ADD(null, 'x')")


def test_null_statistics_give_nan() -> None:
    for name in ("STATS_MEAN", "STATS_COUNT", "STATS_SD", "STATS_KURTOSIS"):
        assert math.isnan(run(f"{name}(null)"))  # type: ignore[arg-type]
    assert math.isnan(run("STATS_PERCENTILE(null, 50)"))  # type: ignore[arg-type]
    assert math.isnan(run("STATS_PERCENTILE(STATS_INIT(), null)"))  # type: ignore[arg-type]


def test_small_samples_have_no_skewness_or_kurtosis() -> None:
    s = run("STATS_ADD(STATS_INIT(), 1, 2)")
    assert math.isnan(run("STATS_SKEWNESS(s)", s=s))  # type: ignore[arg-type]
    assert math.isnan(run("STATS_KURTOSIS(s)", s=s))  # type: ignore[arg-type]


def test_merge_equals_adding_everything_to_one() -> None:
    parts = [VALUES[:100], VALUES[100:350], VALUES[350:]]
    merged = run(
        "STATS_MERGE([STATS_ADD(null, a), null, STATS_ADD(null, b), STATS_ADD(null, c)])",
        a=parts[0],
        b=parts[1],
        c=parts[2],
    )
    whole = run("STATS_ADD(null, v)", v=VALUES)
    for name in (
        "STATS_COUNT",
        "STATS_MEAN",
        "STATS_VARIANCE",
        "STATS_SKEWNESS",
        "STATS_KURTOSIS",
        "STATS_MIN",
        "STATS_MAX",
    ):
        assert run(f"{name}(m)", m=merged) == pytest.approx(run(f"{name}(w)", w=whole), rel=1e-9)
    assert run("STATS_PERCENTILE(m, 50)", m=merged) == pytest.approx(statistics.median(VALUES), abs=0.25)
    assert run("STATS_MERGE([])") is None
    with pytest.raises(StellarEvaluationError, match="windowed statistics, which cannot be merged"):
        run("STATS_MERGE([STATS_INIT(5), STATS_INIT(5)])")


def test_statistics_serialise_and_come_back_equal() -> None:
    online = run("STATS_ADD(null, v)", v=VALUES)
    windowed = run("STATS_ADD(STATS_INIT(50), v)", v=VALUES)
    for original in (online, windowed):
        copy = deserialize(serialize(original))
        assert type(copy) is type(original)
        assert run("STATS_MEAN(s)", s=copy) == run("STATS_MEAN(s)", s=original)
        assert run("STATS_PERCENTILE(s, 90)", s=copy) == run("STATS_PERCENTILE(s, 90)", s=original)
    assert isinstance(deserialize(serialize(windowed)), WindowedStatistics)


def test_init_is_never_folded_so_each_evaluation_starts_fresh() -> None:
    from stellar_like import compile

    rule = compile("STATS_COUNT(STATS_ADD(STATS_INIT(), x))")
    assert rule.evaluate({"x": 1}) == 1.0
    assert rule.evaluate({"x": 2}) == 1.0


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (9, 0), (10, 0), (11, 1), (19, 1), (21, 2), (29, 2), (31, 3), (1000, 3)]
)
def test_bin(value: int, expected: int) -> None:
    assert run("BIN(value, [10, 20, 30])", value=value) == expected


def test_bin_edge_cases() -> None:
    assert run("BIN(null, [1])") == -1
    assert run("BIN(5, [])") == -1
    assert run("BIN('15', ['10', 20])") == 1
    with pytest.raises(StellarEvaluationError, match="non-decreasing"):
        run("BIN(50, [30, 20])")


def test_stats_bin_uses_percentiles_of_the_distribution() -> None:
    s = run("STATS_ADD(STATS_INIT(200), v)", v=list(range(1, 101)))
    assert run("STATS_BIN(s, 10)", s=s) == 0
    assert run("STATS_BIN(s, 40)", s=s) == 1
    assert run("STATS_BIN(s, 60)", s=s) == 2
    assert run("STATS_BIN(s, 99)", s=s) == 3
    assert run("STATS_BIN(s, 15, 'DECILE')", s=s) == 1
    assert run("STATS_BIN(s, 95, 'QUINTILE')", s=s) == 4
    assert run("STATS_BIN(s, 55, [50, 75])", s=s) == 1
    assert run("STATS_BIN(null, 5)") == -1
    with pytest.raises(StellarEvaluationError, match="STATS_BIN: argument 3 'TERTILE' is not a known split"):
        run("STATS_BIN(s, 5, 'TERTILE')", s=s)


def test_mad_scores_an_outlier_far_above_normal_values() -> None:
    rng = random.Random(3)
    state = run("OUTLIER_MAD_STATE_MERGE([], null)")
    state = run("OUTLIER_MAD_ADD(s, v)", s=state, v=[rng.gauss(0, 1) for _ in range(1000)])
    tick = run("OUTLIER_MAD_STATE_MERGE([s], null)", s=state)  # the next window sees the previous states
    normal = run("OUTLIER_MAD_SCORE(s, 0.5)", s=tick)
    outlier = run("OUTLIER_MAD_SCORE(s, 10)", s=tick)
    assert normal < 1.0 < 3.5 < outlier  # type: ignore[operator]
    assert run("OUTLIER_MAD_SCORE(s, 10, 1.0)", s=tick) == pytest.approx(outlier / 0.6745)  # type: ignore[operator]
    assert math.isnan(run("OUTLIER_MAD_SCORE(null, 1)"))  # type: ignore[arg-type]
    assert run("OUTLIER_MAD_ADD(null, 1)") is None
    copy = deserialize(serialize(tick))
    assert run("OUTLIER_MAD_SCORE(s, 10)", s=copy) == pytest.approx(outlier)


def test_it_entropy() -> None:
    assert run("IT_ENTROPY({'a': 1, 'b': 1})") == 1.0
    assert run("IT_ENTROPY(MULTISET_INIT(['a', 'b', 'c', 'd']))") == 2.0
    assert run("IT_ENTROPY({})") == 0.0
    assert run("IT_ENTROPY({'a': 10})") == 0.0
    assert run("IT_ENTROPY(null)") is None
    assert run("IT_ENTROPY(MULTISET_INIT(['a', 'a', 'b']))") == pytest.approx(
        -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    )
    with pytest.raises(StellarEvaluationError, match="IT_ENTROPY: argument 1"):
        run("IT_ENTROPY(['a'])")


def test_statistics_of_one_to_ten() -> None:
    s = run("STATS_ADD(STATS_INIT(), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)")
    assert run("STATS_COUNT(s)", s=s) == 10.0
    assert run("STATS_SUM(s)", s=s) == 55.0
    assert run("STATS_MEAN(s)", s=s) == 5.5
    assert run("STATS_MIN(s)", s=s) == 1.0 and run("STATS_MAX(s)", s=s) == 10.0
    assert run("STATS_VARIANCE(s)", s=s) == pytest.approx(55 / 6)
    assert run("STATS_POPULATION_VARIANCE(s)", s=s) == pytest.approx(8.25)
    assert run("STATS_SD(s)", s=s) == pytest.approx(math.sqrt(55 / 6))
    assert run("STATS_GEOMETRIC_MEAN(s)", s=s) == pytest.approx(math.factorial(10) ** 0.1)
    assert run("STATS_QUADRATIC_MEAN(s)", s=s) == pytest.approx(math.sqrt(38.5))
    assert run("STATS_SUM_LOGS(s)", s=s) == pytest.approx(math.log(math.factorial(10)))
    assert run("STATS_SUM_SQUARES(s)", s=s) == 385.0
    assert run("STATS_SKEWNESS(s)", s=s) == pytest.approx(0.0, abs=1e-12)
    assert run("STATS_KURTOSIS(s)", s=s) == pytest.approx(-1.2)
    assert run("STATS_PERCENTILE(s, 50)", s=s) == pytest.approx(5.5)


def test_errors_carry_the_position_of_the_call() -> None:
    from stellar_like import Position

    with pytest.raises(StellarEvaluationError) as info:
        run("STATS_MEAN(\n  STATS_ADD(null, 'x'))")
    assert info.value.function == "STATS_ADD" and info.value.argument == 2
    assert info.value.position == Position(2, 3, 14)
    assert "(at line 2, column 3)" in str(info.value)
