"""Any CSV, with the columns named on the command line: `--type` and `--map field=Column`.

Each contract field of the chosen type is read from the column `--map` names, else from a
column named like the field itself (`account_id`, `lat`, ... case-insensitive). Besides
the payload fields, `occurred_at` (event time) and `event_id` (your own idempotency key,
used as is instead of the computed one) can be mapped.

`--type order` and `--type activity` need an `occurred_at` column: sales and minutes are
bucketed by the month they happened, so the import time would be wrong for them.

    territory import orders.csv --format generic --type order \\
        --map order_id=OrderNo --map account_id=AcctNo --map amount=Total --map occurred_at=OrderDate
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.mapping import (
    EVENT_ID,
    OCCURRED_AT,
    FieldRule,
    Parser,
    Profile,
    as_boolean,
    as_fraction,
    as_integer,
    as_labels,
    as_number,
    as_timestamp,
    lower_text,
    text,
)
from core import topics

SOURCE = "csv"

# Per event type: the payload fields of docs/EVENTS.md and how their cells are read.
FIELDS: dict[str, dict[str, Parser]] = {
    "account.upserted": {
        "account_id": text,
        "lat": as_number,
        "lon": as_number,
        "postal_code": text,
        "country": text,
        "region": text,
        "industry": text,
        "employees": as_integer,
        "rep_id": text,
        "locked": as_boolean,
        "name": text,
        "segment": text,
    },
    "rep.upserted": {
        "rep_id": text,
        "home_lat": as_number,
        "home_lon": as_number,
        "capacity_fte": as_number,
        "active": as_boolean,
        "max_travel_km": as_number,
        "name": text,
        "segments": as_labels,  # ;-separated in a cell
        "district": text,
        "quota": as_number,
        "travel_factor": as_number,
        "min_accounts": as_integer,
        "max_accounts": as_integer,
        "min_workload": as_number,
        "max_workload": as_number,
        "sales_region": text,
        # Not in the contract yet: where the home base is when there are no coordinates.
        "city": text,
        "postal_code": text,
        "country": text,
    },
    "order.placed": {"order_id": text, "account_id": text, "amount": as_number, "currency": text},
    "opportunity.updated": {
        "opportunity_id": text,
        "account_id": text,
        "stage": lower_text,
        "amount": as_number,
        "probability": as_fraction,
    },
    "activity.logged": {
        "activity_id": text,
        "account_id": text,
        "rep_id": text,
        "kind": lower_text,
        "duration_min": as_number,
        "travel_min": as_number,
    },
}

# --type -> (event type, topic, record id field, key field)
TYPES: dict[str, tuple[str, str, str, str]] = {
    "account": ("account.upserted", topics.ACCOUNTS, "account_id", "account_id"),
    "rep": ("rep.upserted", topics.REPS, "rep_id", "rep_id"),
    "order": ("order.placed", topics.ORDERS, "order_id", "account_id"),
    "opportunity": ("opportunity.updated", topics.OPPORTUNITIES, "opportunity_id", "account_id"),
    "activity": ("activity.logged", topics.ACTIVITIES, "activity_id", "account_id"),
}

_NEED_EVENT_TIME = frozenset({"order", "activity"})


def profile(record_type: str) -> Profile:
    if record_type not in TYPES:
        raise ValueError(f"--type must be one of {', '.join(TYPES)}, got {record_type!r}")
    event_type, topic, id_field, key_field = TYPES[record_type]
    rules = [FieldRule(name, (name,), parser) for name, parser in FIELDS[event_type].items()]
    rules.append(FieldRule(OCCURRED_AT, (OCCURRED_AT,), as_timestamp))
    rules.append(FieldRule(EVENT_ID, (EVENT_ID,), text))
    required = tuple(dict.fromkeys((id_field, key_field)))
    if record_type in _NEED_EVENT_TIME:
        required += (OCCURRED_AT,)
    return Profile(
        name=f"generic {record_type}",
        source=SOURCE,
        event_type=event_type,
        topic=topic,
        id_field=id_field,
        key_field=key_field,
        rules=tuple(rules),
        required=required,
    )


def extra_fields(event_type: str) -> Mapping[str, Parser]:
    """Every payload field of `event_type`, for `--map` on the CRM formats."""
    return FIELDS[event_type]
