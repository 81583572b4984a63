"""The simulator: reproducible, real geography, balanced start, the event contract,
a visible shock and seasonality. Pure: no Kafka (the producer is tested with a fake)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from simulator import (
    SEASONALITY,
    Shock,
    default_shock,
    expected_order_value,
    fair_share_deviation,
    generate_company,
    generate_events,
    ground_truth_frame,
    load_cities,
    nearest_rep_fraction,
    pick_shock_region,
    region_name,
    region_of,
)

DE_LAT = (47.0, 55.1)
DE_LON = (5.8, 15.1)
EVENT_RANGE = (60_000, 90_000)  # documented volume for the defaults

# type -> (topic, key field, required data fields and their types), after design/EVENTS.md
NUMBER = (int, float)
CONTRACT = {
    "rep.upserted": ("crm.reps", "rep_id", {"rep_id": str, "home_lat": NUMBER, "home_lon": NUMBER}),
    "account.upserted": ("crm.accounts", "account_id", {"account_id": str, "lat": NUMBER, "lon": NUMBER}),
    "order.placed": ("sales.orders", "account_id", {"order_id": str, "account_id": str, "amount": NUMBER}),
    "opportunity.updated": (
        "crm.opportunities",
        "account_id",
        {"opportunity_id": str, "account_id": str, "stage": str, "amount": NUMBER},
    ),
    "activity.logged": (
        "sales.activities",
        "account_id",
        {"activity_id": str, "account_id": str, "rep_id": str, "kind": str, "duration_min": NUMBER},
    ),
}


@pytest.fixture(scope="module")
def company():
    return generate_company()


@pytest.fixture(scope="module")
def shock(company):
    return default_shock(company)


@pytest.fixture(scope="module")
def timed_events(company, shock):
    started = time.perf_counter()
    events = generate_events(company, shock=shock, seed=7)
    return events, time.perf_counter() - started


@pytest.fixture(scope="module")
def events(timed_events):
    return timed_events[0]


def _month(envelope: dict) -> str:
    return envelope["occurred_at"][:7]


def _order_value_by(events, company, key) -> dict[tuple[str, str], float]:
    """Sum of order amounts per (key(account), 'YYYY-MM')."""
    accounts = {a.account_id: a for a in company.accounts}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for _, _, env in events:
        if env["type"] == "order.placed":
            totals[(key(accounts[env["data"]["account_id"]]), _month(env))] += env["data"]["amount"]
    return totals


# --- reproducibility -----------------------------------------------------------------


def test_same_seed_same_company_and_events(company, events, shock):
    again = generate_company()
    assert again == company
    assert generate_events(again, shock=default_shock(again), seed=7) == events


def test_other_seed_differs(company, events):
    other = generate_company(seed=8)
    assert [a.true_potential for a in other.accounts] != [a.true_potential for a in company.accounts]
    small = generate_events(company, months=2, seed=8)
    assert [e[2]["event_id"] for e in small[:3000]] != [e[2]["event_id"] for e in events[:3000]]
    assert [e[2]["data"] for e in small[2008:2100]] != [e[2]["data"] for e in events[2008:2100]]


# --- geography ---------------------------------------------------------------------


def test_cities_are_real():
    cities = {c.name: c for c in load_cities("DE")}
    berlin, munich = cities["Berlin"], cities["Munich"]  # GeoNames spells München "Munich"
    assert berlin.lat == pytest.approx(52.52, abs=0.05) and berlin.lon == pytest.approx(13.40, abs=0.05)
    assert munich.lat == pytest.approx(48.14, abs=0.05) and munich.lon == pytest.approx(11.58, abs=0.05)
    assert berlin.region_name == "Berlin" and munich.region_name == "Bayern"
    assert berlin.population > 3_000_000
    # City districts (Kreuzberg, Altona) are folded into their city, not double-counted.
    assert "Kreuzberg" not in cities and "Altona" not in cities
    assert all(c.population >= 15_000 for c in cities.values())
    assert region_of(48.14, 11.58) == "02" and region_name("02") == "Bayern"
    assert region_name("07", "XX") == "07"  # unknown names fall back to the code


def test_accounts_inside_germany(company):
    cities = {c.name for c in load_cities("DE")}
    for a in company.accounts:
        assert DE_LAT[0] <= a.lat <= DE_LAT[1] and DE_LON[0] <= a.lon <= DE_LON[1], a
        assert a.city in cities
    regions = {a.region for a in company.accounts}
    assert len(regions) >= 12  # accounts all over the country, not a few cities


def test_reps_in_large_distinct_cities(company):
    big = {c.name for c in load_cities("DE")[:40]}
    homes = [r.home_city for r in company.reps]
    assert len(set(homes)) == len(homes) == 8
    assert set(homes) <= big


# --- initial territories -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"seed": 1}, {"seed": 3, "n_reps": 5}, {"seed": 4, "n_reps": 12, "n_accounts": 3000}]
)
def test_initial_territories_balanced_and_nearby(kwargs):
    company = generate_company(**kwargs)
    deviation = fair_share_deviation(company)
    assert max(abs(d) for d in deviation.values()) <= 0.05, deviation
    assert nearest_rep_fraction(company) >= 0.8
    locked = sum(a.locked for a in company.accounts)
    assert 0.01 * len(company.accounts) <= locked <= 0.03 * len(company.accounts)
    # Every account is within its owner's travel limit.
    from simulator.company import distance_to_owner_km

    reps = {r.rep_id: r for r in company.reps}
    for account_id, km in distance_to_owner_km(company).items():
        assert km <= reps[company.account(account_id).rep_id].max_travel_km


def test_shock_region_is_a_meaningful_share(company, shock):
    assert shock.region == pick_shock_region(company)
    total = sum(a.true_potential for a in company.accounts)
    share = sum(a.true_potential for a in company.accounts if a.region == shock.region) / total
    assert 0.08 <= share <= 0.20
    assert shock.start == datetime(2025, 3, 15, tzinfo=timezone.utc)


# --- the event contract ----------------------------------------------------------------


def test_every_envelope_follows_the_contract(events, company):
    seen_ids = set()
    reps = {r.rep_id for r in company.reps}
    accounts = {a.account_id for a in company.accounts}
    for topic, key, env in events:
        assert set(env) == {"event_id", "type", "occurred_at", "source", "data"}
        assert isinstance(env["event_id"], str) and env["event_id"] not in seen_ids
        seen_ids.add(env["event_id"])
        assert env["source"] == "simulator"
        moment = datetime.fromisoformat(env["occurred_at"])
        assert moment.utcoffset() == timedelta(0) and env["occurred_at"].endswith("+00:00")
        expected_topic, key_field, required = CONTRACT[env["type"]]
        data = env["data"]
        assert topic == expected_topic and key == data[key_field]
        for field, kind in required.items():
            assert isinstance(data[field], kind) and not isinstance(data[field], bool), (env, field)
        assert json.loads(json.dumps(env)) == env  # plain JSON types only
        if env["type"] == "order.placed":
            assert data["amount"] > 0 and round(data["amount"], 2) == data["amount"]
            assert data["currency"] == "EUR" and data["account_id"] in accounts
        elif env["type"] == "activity.logged":
            assert data["kind"] in {"visit", "call", "video"} and data["rep_id"] in reps
            assert data["duration_min"] > 0 and (data["travel_min"] > 0) == (data["kind"] == "visit")
        elif env["type"] == "opportunity.updated":
            assert data["stage"] in {"open", "won", "lost"} and data["amount"] > 0
            assert 0.0 <= data["probability"] <= 1.0
        elif env["type"] == "account.upserted":
            assert -90 <= data["lat"] <= 90 and -180 <= data["lon"] <= 180
            assert data["rep_id"] in reps and isinstance(data["locked"], bool)
            assert isinstance(data["employees"], int) and isinstance(data["industry"], str)
        elif env["type"] == "rep.upserted":
            assert data["active"] is True and data["capacity_fte"] > 0 and data["max_travel_km"] > 0


def test_events_sorted_and_master_data_first(events, company):
    stamps = [datetime.fromisoformat(e[2]["occurred_at"]) for e in events]
    assert stamps == sorted(stamps)
    n_master = len(company.reps) + len(company.accounts)
    assert [e[2]["type"] for e in events[: len(company.reps)]] == ["rep.upserted"] * len(company.reps)
    assert Counter(e[2]["type"] for e in events[:n_master])["account.upserted"] == len(company.accounts)
    assert stamps[0] == company.start
    assert stamps[-1] < datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_volume_and_generation_time(timed_events):
    events, seconds = timed_events
    counts = Counter(e[2]["type"] for e in events)
    assert EVENT_RANGE[0] <= len(events) <= EVENT_RANGE[1], counts
    assert counts["order.placed"] > counts["activity.logged"] > counts["opportunity.updated"] > 500
    assert seconds < 10


# --- what the detectors must find ------------------------------------------------------


def test_shock_region_drops_against_the_rest(events, company, shock):
    by_region = _order_value_by(events, company, key=lambda a: "shock" if a.region == shock.region else "rest")
    # Whole months after the shock (2025-04..12) against the same months a year earlier,
    # so seasonality cancels out.
    months = [f"{m:02d}" for m in range(4, 13)]

    def ratio(group: str) -> float:
        after = sum(by_region[(group, f"2025-{m}")] for m in months)
        before = sum(by_region[(group, f"2024-{m}")] for m in months)
        return after / before

    assert ratio("shock") < 0.7 * ratio("rest")
    assert 0.9 < ratio("rest") < 1.1


def test_seasonality_visible(events, company, shock):
    assert sum(SEASONALITY) == pytest.approx(12.0)  # a year's orders add up to the potential
    rest = _order_value_by(events, company, key=lambda a: a.region == shock.region)
    for year in ("2024", "2025"):
        assert rest[(False, f"{year}-12")] > 1.8 * rest[(False, f"{year}-08")]


def test_orders_match_ground_truth(events, company, shock):
    truth = ground_truth_frame(company, shock=shock)
    assert len(truth) == 24 * len(company.accounts)
    realised = sum(e[2]["data"]["amount"] for e in events if e[2]["type"] == "order.placed")
    assert realised == pytest.approx(truth["expected_value"].sum(), rel=0.03)
    # Without a shock a calendar year of expected orders is exactly the yearly potential.
    a = company.accounts[0]
    year = expected_order_value(a, datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert year == pytest.approx(a.true_potential)


def test_boom_shock_raises_demand(company):
    region = pick_shock_region(company)
    boom = Shock(region=region, start=datetime(2024, 7, 1, tzinfo=timezone.utc), factor=2.0)
    events = generate_events(company, months=12, shock=boom, seed=3)
    value = _order_value_by(events, company, key=lambda a: a.region == region)
    first = sum(value[(True, f"2024-{m:02d}")] for m in range(1, 7)) / sum(
        value[(False, f"2024-{m:02d}")] for m in range(1, 7)
    )
    second = sum(value[(True, f"2024-{m:02d}")] for m in range(7, 13)) / sum(
        value[(False, f"2024-{m:02d}")] for m in range(7, 13)
    )
    assert second > 1.5 * first


# --- producing (fake producer, no broker) ------------------------------------------------


class _FakeProducer:
    instances: list["_FakeProducer"] = []

    def __init__(self, **config):
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.started = self.stopped = self.flushed = False
        _FakeProducer.instances.append(self)

    async def start(self):
        self.started = True

    async def stop(self):
        self.stopped = True

    async def flush(self):
        self.flushed = True

    async def send(self, topic, value=None, key=None):
        self.sent.append((topic, key, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_produce_events_sends_json_keyed_in_order(monkeypatch, events):
    from simulator import produce

    monkeypatch.setattr(produce, "AIOKafkaProducer", _FakeProducer)
    progress = []
    sample = events[:2500]
    sent = asyncio.run(produce.produce_events(sample, "127.0.0.1:9", on_progress=lambda *p: progress.append(p)))
    fake = _FakeProducer.instances[-1]
    assert sent == len(sample) == len(fake.sent)
    assert fake.started and fake.flushed and fake.stopped
    assert "enable_idempotence" not in fake.config and fake.config["bootstrap_servers"] == "127.0.0.1:9"
    topic, key, value = fake.sent[-1]
    assert (topic, key.decode(), json.loads(value.decode("utf-8"))) == (sample[-1][0], sample[-1][1], sample[-1][2])
    assert [p[0] for p in progress] == [1000, 2000, 2500] and progress[-1][1] == 2500


def test_produce_events_paces_by_event_time(monkeypatch, events):
    from simulator import produce

    monkeypatch.setattr(produce, "AIOKafkaProducer", _FakeProducer)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    paced = []
    for hours in (0, 1, 2):
        topic, key, env = events[2008 + hours]
        paced.append((topic, key, {**env, "occurred_at": (start + timedelta(hours=hours)).isoformat()}))
    began = time.perf_counter()
    asyncio.run(produce.produce_events(paced, "127.0.0.1:9", speed=36_000))  # 10 simulated hours per second
    assert 0.18 <= time.perf_counter() - began < 2.0
    with pytest.raises(ValueError):
        asyncio.run(produce.produce_events(paced, "127.0.0.1:9", producer_config={"enable_idempotence": True}))
