"""The market-shock detector: steps found with direction, size and start; the shared
seasonality ignored; one finding per shock; saved state; parameter checks."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest

from detectors import MarketShockDetector, ShockFinding
from simulator import SEASONALITY

DAY0 = date(2024, 1, 1)
# Orders per trading day, like the simulator's regions (from a small one to a big one).
RATES = {"01": 9.0, "02": 8.0, "05": 6.0, "06": 7.0, "07": 14.0, "13": 4.0, "16": 5.0, "09": 3.0}


def daily_stream(days: int, seed: int, shock: tuple[str, int, float] | None = None, rates: dict[str, float] = RATES):
    """(day, sales per region, orders per region) with the simulator's seasonality,
    no orders at weekends, Poisson counts and gamma amounts whose mean differs by region."""
    rng = np.random.default_rng(seed)
    mean_amount = {region: 2_000.0 + 400.0 * k for k, region in enumerate(rates)}
    for t in range(days):
        day = DAY0 + timedelta(days=t)
        sales: dict[str, float] = {}
        orders: dict[str, float] = {}
        if day.weekday() < 5:
            for region, rate in rates.items():
                factor = shock[2] if shock and region == shock[0] and t >= shock[1] else 1.0
                n = rng.poisson(rate * SEASONALITY[day.month - 1] * factor)
                if n:
                    orders[region] = float(n)
                    sales[region] = float(rng.gamma(2.0, mean_amount[region] / 2.0, size=n).sum())
        yield day, sales, orders


def run(detector: MarketShockDetector, stream) -> list[ShockFinding]:
    found = []
    for day, sales, orders in stream:
        found += detector.update(day, sales, orders).findings
    return found


def test_catches_a_regional_drop_with_direction_size_and_start():
    shock_day = 400
    found = run(MarketShockDetector(), daily_stream(800, seed=1, shock=("01", shock_day, 0.6)))
    assert [(f.region, f.direction) for f in found] == [("01", "drop")]
    f = found[0]
    start = DAY0 + timedelta(days=shock_day)
    assert -0.55 < f.size < -0.25  # true change: -40%
    assert abs((f.start - start).days) <= 21
    assert 0 <= (f.detected_on - start).days <= 60
    assert f.evidence.detector == "page_hinkley"
    assert f.evidence.statistic > f.evidence.threshold == 10.0
    assert f.evidence.recent_share < f.evidence.baseline_share
    assert f.evidence.actual_since_start < f.evidence.expected_since_start
    assert json.loads(json.dumps(f.to_dict()))["start"] == f.start.isoformat()


def test_catches_a_regional_rise():
    shock_day = 420
    found = run(MarketShockDetector(), daily_stream(800, seed=7, shock=("02", shock_day, 1.5)))
    assert [(f.region, f.direction) for f in found] == [("02", "rise")]
    assert 0.25 < found[0].size < 0.9  # true change: +50%
    assert 0 <= (found[0].detected_on - (DAY0 + timedelta(days=shock_day))).days <= 60


def test_order_counts_find_the_same_drop_sooner():
    stream = list(daily_stream(800, seed=10, shock=("06", 400, 0.6)))
    by_sales = run(MarketShockDetector(), stream)
    by_orders = run(MarketShockDetector(measure="orders"), stream)
    assert [(f.region, f.direction) for f in by_sales] == [("06", "drop")]
    assert [(f.region, f.direction) for f in by_orders] == [("06", "drop")]
    assert by_orders[0].detected_on < by_sales[0].detected_on


def test_strong_shared_seasonality_is_not_a_shock():
    stream = list(daily_stream(3 * 365, seed=5))
    # The seasonality is really there: December sells about 2.5x August everywhere.
    dec = sum(s.get("07", 0.0) for d, s, _ in stream if d.month == 12 and d.year == 2024)
    aug = sum(s.get("07", 0.0) for d, s, _ in stream if d.month == 8 and d.year == 2024)
    assert dec > 2 * aug
    detector = MarketShockDetector()
    assert run(detector, stream) == []
    assert set(detector.statistics) == set(RATES)  # every region was judged


def test_one_finding_per_shock_not_one_per_day():
    detector = MarketShockDetector()
    found = run(detector, daily_stream(3 * 365, seed=6, shock=("07", 380, 0.7)))
    assert [(f.region, f.direction) for f in found] == [("07", "drop")]
    # After the re-arm the new level is measured and taken out of the others' reference.
    assert detector.levels["07"] == pytest.approx(0.7, abs=0.1)
    assert all(level == 1.0 for region, level in detector.levels.items() if region != "07")


def test_save_and_restore_mid_stream_gives_identical_findings():
    stream = list(daily_stream(800, seed=6, shock=("05", 450, 0.5)))
    straight = MarketShockDetector()
    expected = run(straight, stream)
    assert expected, "the scenario must produce a finding after the restore"

    first = MarketShockDetector()
    run(first, stream[:430])  # stop before the shock
    state = json.loads(json.dumps(first.state_dict()))  # through JSON, like a store
    restored = MarketShockDetector().load_state_dict(state)
    assert restored.state_dict() == first.state_dict()
    # Replaying days already seen (a restart re-reading its input) changes nothing.
    assert run(restored, stream[420:430]) == []
    assert [f.to_dict() for f in run(restored, stream[430:])] == [f.to_dict() for f in expected]


def test_a_state_of_version_2_with_buffers_as_lists_restores_the_same_detector():
    """A worker upgraded in place reads the checkpoint the previous version wrote."""
    from core.river_codec import load_array

    stream = list(daily_stream(800, seed=6, shock=("05", 450, 0.5)))
    expected = run(MarketShockDetector(), stream)
    first = MarketShockDetector()
    run(first, stream[:430])
    state = first.state_dict()
    legacy = {
        **state,
        "version": 2,
        "regions": {
            region: {**data, "buffer": load_array(data["buffer"]).tolist()} for region, data in state["regions"].items()
        },
    }
    restored = MarketShockDetector().load_state_dict(json.loads(json.dumps(legacy)))
    assert restored.state_dict() == state
    assert [f.to_dict() for f in run(restored, stream[430:])] == [f.to_dict() for f in expected]


def test_restored_state_must_match_the_measure_and_version():
    state = MarketShockDetector().state_dict()
    with pytest.raises(ValueError, match="measure='sales'"):
        MarketShockDetector(measure="orders").load_state_dict(state)
    with pytest.raises(ValueError, match="valid: 2"):
        MarketShockDetector().load_state_dict({**state, "version": 99})


def test_orders_measure_needs_order_counts():
    with pytest.raises(ValueError, match="needs orders_by_region"):
        MarketShockDetector(measure="orders").update(DAY0, {"A": 10.0})


def test_bad_input_values_are_refused():
    detector = MarketShockDetector()
    with pytest.raises(ValueError, match="finite number >= 0"):
        detector.update(DAY0, {"A": -1.0})
    with pytest.raises(ValueError, match="finite number >= 0"):
        detector.update(DAY0, {"A": float("nan")})
    with pytest.raises(TypeError, match="datetime.date"):
        detector.update("2024-01-01", {"A": 1.0})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0}, "threshold must be a finite number > 0"),
        ({"delta": -0.1}, "delta must be a finite number >= 0"),
        ({"min_history_days": 1}, "min_history_days must be an integer >= 2"),
        ({"rearm_days": 0}, "rearm_days must be an integer >= 2"),
        ({"baseline_halflife_days": 0}, "baseline_halflife_days must be a finite number > 0"),
        ({"min_batch_orders": -1}, "min_batch_orders must be a finite number >= 0"),
        ({"min_change": 1.0}, r"min_change must be a number in \[0, 1\)"),
        ({"measure": "revenue"}, "measure must be one of 'sales', 'orders'"),
    ],
)
def test_invalid_parameters_are_refused_with_the_valid_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MarketShockDetector(**kwargs)


def test_hyperparameters_are_stored_under_their_names():
    detector = MarketShockDetector(
        threshold=9.0,
        delta=0.35,
        min_history_days=30,
        rearm_days=45,
        baseline_halflife_days=200.0,
        min_batch_orders=6,
        min_change=0.1,
        measure="orders",
    )
    assert (
        detector.threshold,
        detector.delta,
        detector.min_history_days,
        detector.rearm_days,
        detector.baseline_halflife_days,
        detector.min_batch_orders,
        detector.min_change,
        detector.measure,
    ) == (9.0, 0.35, 30, 45, 200.0, 6.0, 0.1, "orders")


@pytest.mark.parametrize("measure", ["sales", "orders"])
def test_a_company_in_one_region_has_no_region_to_compare_and_no_finding(measure):
    # A company inside one state (real accounts of North Carolina): that region is the whole
    # company, its share is 1 and cannot move; a second region appearing later is judged as usual.
    detector = MarketShockDetector(measure=measure)
    rng = np.random.default_rng(5)
    day, found = date(2024, 1, 1), []
    for n in range(400):
        sales = {"US-NC": float(rng.gamma(50.0, 100.0))}
        if n >= 300:
            sales["US-SC"] = float(rng.gamma(5.0, 100.0))
        counts = {region: max(1, round(value / 100)) for region, value in sales.items()}
        found += detector.update(day + timedelta(days=n), sales, counts if measure == "orders" else None).findings
    assert found == []


def test_a_region_signal_names_the_region_once():
    signal = MarketShockDetector().example_signal()
    assert signal.subject.label == "Bayern (DE-02)"
    assert signal.summary is not None and "(DE-02) (DE-02)" not in signal.summary
