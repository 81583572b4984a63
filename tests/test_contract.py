"""The event contract: what is accepted, and the reason given for what is not."""

from __future__ import annotations

import json

import pytest

from core.contract import ContractError, parse_event
from core import topics


def message(event_type: str = "order.placed", **data: object) -> dict:
    payload = {"order_id": "o1", "account_id": "acc-1", "amount": 120.5}
    payload.update(data)
    return {"event_id": "e1", "type": event_type, "occurred_at": "2025-03-01T09:00:00+01:00", "data": payload}


def parse(document: object, topic: str = topics.ORDERS, key: str | None = "acc-1"):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_event(raw, topic=topic, key=key.encode() if key else None)


def reason(document: object, **kw: object) -> str:
    with pytest.raises(ContractError) as caught:
        parse(document, **kw)
    return str(caught.value)


def test_valid_order_is_typed_and_defaulted():
    event = parse(message())
    assert event.type == "order.placed"
    assert event.data["amount"] == 120.5 and event.data["currency"] == "EUR"
    assert event.occurred_at.utcoffset().total_seconds() == 3600
    assert event.subject_id == "acc-1"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"\xff\xfe not json", "value: not valid UTF-8 JSON"),
        ([1, 2], "value: must be a JSON object"),
        ({**message(), "event_id": ""}, "event_id: must be a non-empty string"),
        ({**message(), "type": "order.cancelled"}, "type: unknown event type"),
        ({**message(), "occurred_at": "2025-03-01T09:00:00"}, "occurred_at: needs a UTC offset"),
        ({**message(), "occurred_at": "yesterday"}, "occurred_at: not an ISO 8601 timestamp"),
        ({**message(), "data": "x"}, "data: must be an object"),
        (message(amount=None), "data.amount: required for order.placed"),
        (message(amount=-5), "data.amount: must be >= 0"),
        (message(amount="12"), "data.amount: must be a number"),
        (message(amount=True), "data.amount: must be a number"),
        (message(order_id=7), "data.order_id: must be a non-empty string"),
    ],
)
def test_bad_input_names_the_field(document, expected):
    assert reason(document).startswith(expected)


def test_coordinates_out_of_range_are_refused():
    upsert = {
        "event_id": "e2",
        "type": "account.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"account_id": "acc-1", "lat": 91.0, "lon": 10.0},
    }
    assert reason(upsert, topic=topics.ACCOUNTS).startswith("data.lat: must be <= 90")


def test_account_without_location_is_refused_not_placed_at_zero():
    upsert = {
        "event_id": "e3",
        "type": "account.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"account_id": "acc-1", "industry": "retail"},
    }
    assert reason(upsert, topic=topics.ACCOUNTS).startswith("data.lat: required")


def test_postal_code_is_resolved_offline_or_refused_with_the_reason():
    upsert = {
        "event_id": "e4",
        "type": "account.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"account_id": "acc-1", "postal_code": "10115", "country": "DE"},
    }
    event = parse(upsert, topic=topics.ACCOUNTS)
    assert abs(event.data["lat"] - 52.53) < 0.05 and abs(event.data["lon"] - 13.38) < 0.05
    upsert["data"]["postal_code"] = "99999"
    assert reason(upsert, topic=topics.ACCOUNTS) == "data.postal_code: unknown postal code 99999 for DE"
    upsert["data"]["country"] = "Narnia"
    assert reason(upsert, topic=topics.ACCOUNTS).startswith("data.postal_code: unrecognised country")


def test_type_must_match_topic_and_key_must_match_subject():
    assert "does not belong on topic crm.accounts" in reason(message(), topic=topics.ACCOUNTS)
    assert reason(message(), key="other").startswith("key: message key")
    assert reason(message(), key=None).startswith("key: message key")


def test_rep_event_is_keyed_by_rep():
    rep = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R1", "home_lat": 52.5, "home_lon": 13.4},
    }
    event = parse(rep, topic=topics.REPS, key="R1")
    assert event.data["capacity_fte"] == 1.0 and event.data["active"] is True


def test_activity_kind_is_checked():
    activity = {
        "event_id": "v1",
        "type": "activity.logged",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"activity_id": "v1", "account_id": "acc-1", "rep_id": "R1", "kind": "lunch", "duration_min": 30},
    }
    assert reason(activity, topic=topics.ACTIVITIES).startswith("data.kind: must be one of visit, call, video")


def test_rep_home_from_postal_code_and_lock_left_unchanged_when_absent():
    rep = {
        "event_id": "r2",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R2", "postal_code": "80331", "country": "DE"},
    }
    event = parse(rep, topic=topics.REPS, key="R2")
    assert abs(event.data["home_lat"] - 48.14) < 0.05
    rep["data"] = {"rep_id": "R2"}
    assert reason(rep, topic=topics.REPS, key="R2").startswith("data.home_lat: required for rep.upserted")
    upsert = {
        "event_id": "e5",
        "type": "account.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"account_id": "acc-1", "lat": 50.0, "lon": 8.0, "rep_id": "R1"},
    }
    assert parse(upsert, topic=topics.ACCOUNTS).data["locked"] is None


def rep_message(**data: object) -> dict:
    return {
        "event_id": "r9",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R9", "home_lat": 48.1, "home_lon": 11.6, **data},
    }


def test_segments_and_caps_are_typed_and_default_to_none():
    event = parse(rep_message(), topic=topics.REPS, key="R9")
    assert event.data["segments"] == [] and event.data["min_accounts"] is None and event.data["max_accounts"] is None
    assert event.data["travel_factor"] == 1.0
    assert parse(rep_message(travel_factor=1.3), topic=topics.REPS, key="R9").data["travel_factor"] == 1.3
    event = parse(
        rep_message(segments=["key account", " retail ", "Ünïcode 小売"], min_accounts=3, max_accounts=40.0),
        topic=topics.REPS,
        key="R9",
    )
    # Labels are compared as given but for surrounding spaces; duplicates collapse in order.
    assert event.data["segments"] == ["key account", "retail", "Ünïcode 小売"]
    assert (event.data["min_accounts"], event.data["max_accounts"]) == (3, 40)
    account = {
        "event_id": "a9",
        "type": "account.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"account_id": "acc-1", "lat": 48.1, "lon": 11.6, "segment": " key account "},
    }
    assert parse(account, topic=topics.ACCOUNTS, key="acc-1").data["segment"] == "key account"
    del account["data"]["segment"]
    assert parse(account, topic=topics.ACCOUNTS, key="acc-1").data["segment"] is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"segments": "retail"}, "data.segments: must be a list of segment labels"),
        ({"segments": ["retail", ""]}, "data.segments[1]: must be a non-empty string"),
        ({"segments": ["retail", 7]}, "data.segments[1]: must be a non-empty string"),
        ({"segments": ["a\nb"]}, "data.segments[0]: contains a control character"),
        ({"segments": ["x" * 65]}, "data.segments[0]: longer than 64 characters"),
        ({"segments": [f"s{i}" for i in range(201)]}, "data.segments: more than 200 segments"),
        ({"min_accounts": -1}, "data.min_accounts: must be >= 0"),
        ({"travel_factor": 0}, "data.travel_factor: must be >= 0.01"),
        ({"max_accounts": 2.5}, "data.max_accounts: must be an integer"),
        ({"min_accounts": 5, "max_accounts": 4}, "data.min_accounts: must be <= max_accounts (4), got 5"),
    ],
)
def test_bad_segments_and_caps_name_the_field(data, expected):
    assert reason(rep_message(**data), topic=topics.REPS, key="R9").startswith(expected)


def test_workload_caps_and_sales_region_are_typed_and_default_to_none():
    event = parse(rep_message(), topic=topics.REPS, key="R9")
    assert (event.data["min_workload"], event.data["max_workload"], event.data["sales_region"]) == (None, None, None)
    event = parse(
        rep_message(min_workload=600, max_workload=2400.5, district="Nord", sales_region=" North "),
        topic=topics.REPS,
        key="R9",
    )
    assert (event.data["min_workload"], event.data["max_workload"]) == (600.0, 2400.5)
    assert (event.data["district"], event.data["sales_region"]) == ("Nord", "North")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"min_workload": -1}, "data.min_workload: must be >= 0"),
        ({"max_workload": "a lot"}, "data.max_workload: must be a number"),
        ({"max_workload": 1e13}, "data.max_workload: must be <= "),
        ({"min_workload": 500, "max_workload": 400}, "data.min_workload: must be <= max_workload (400), got 500"),
        ({"sales_region": ""}, "data.sales_region: must be a non-empty string"),
        ({"sales_region": "x" * 65}, "data.sales_region: longer than 64 characters"),
    ],
)
def test_bad_workload_caps_and_sales_region_name_the_field(data, expected):
    assert reason(rep_message(**data), topic=topics.REPS, key="R9").startswith(expected)


def test_quota_is_a_yearly_target_or_none():
    assert parse(rep_message(), topic=topics.REPS, key="R9").data["quota"] is None
    assert parse(rep_message(quota=1_250_000), topic=topics.REPS, key="R9").data["quota"] == 1_250_000.0
    assert parse(rep_message(quota=0), topic=topics.REPS, key="R9").data["quota"] == 0.0
    assert parse(rep_message(quota=None), topic=topics.REPS, key="R9").data["quota"] is None


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        (-1, "data.quota: must be >= 0, got -1"),
        (2e12, "data.quota: must be <= 1e+12"),
        ("1000", "data.quota: must be a number"),
        (True, "data.quota: must be a number"),
        (float("inf"), "data.quota: must be a finite number"),
    ],
)
def test_a_bad_quota_names_the_field(quota, expected):
    assert reason(rep_message(quota=quota), topic=topics.REPS, key="R9").startswith(expected)
