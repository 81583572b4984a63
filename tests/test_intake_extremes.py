"""Contract-valid extremes at the intake (issue: valid input must never stop the service).

Each test fed the intake of the previous version something a client may send, and showed
it stopping, blinding or lying: a held account row past Kafka's record limit, one date far
ahead moving a stream's time for good, an erasure moving it to today, names kept in dead
letters, control characters in ids.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.clock import ManualClock
from core.contract import ContractError, parse_event
from monitor.intake import ROW_SHARE
from core import topics
from tests.test_intake import Harness, order, upsert

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def harness(**rules: object) -> Harness:
    h = Harness(**rules)
    h.intake.clock = ManualClock(NOW)
    return h


def row_bytes(h: Harness, account_id: str) -> int:
    """Bytes of the row's changelog record (Faust writes compact JSON)."""
    return len(json.dumps(h.row(account_id), separators=(",", ":")))


def test_held_events_with_huge_extra_fields_do_not_grow_the_account_row():
    """Three orders for an unknown account, each with a 250 KB extra field: the row held their
    raw messages and grew past 1 MB (the broker refused the changelog record, the worker died)."""
    h = harness()
    for n in range(3):
        document = order("ghost", "2025-01-10T00:00:00Z", 10, f"o{n}")
        document["data"]["notes"] = "x" * 250_000  # extra fields are allowed
        h.send(topics.ORDERS, "ghost", document)
    assert h.intake.held_count == 3
    assert row_bytes(h, "ghost") < 10_000
    h.send(topics.ACCOUNTS, "ghost", upsert("ghost", "2025-01-12T00:00:00Z"))
    assert h.row("ghost")["monthly_sales"] == {"2025-01": 30.0} and h.outcomes == {"applied": 4}


def test_held_events_are_capped_by_bytes_and_the_excess_dead_lettered():
    h = harness(max_held_per_account=1000, max_held_bytes_per_account=20_000)
    for n in range(40):
        document = order("ghost", "2025-01-10T00:00:00Z", 1, f"o{n}")
        document["data"]["currency"] = "€" * 2000  # the longest text the contract allows
        h.send(topics.ORDERS, "ghost", document)
    held, dead = h.intake.held_count, len(h.dead)
    assert held + dead == 40 and dead > 0 and row_bytes(h, "ghost") <= 20_000 + 2_000
    assert {d["reason_code"] for d in h.dead} == {"unknown_account"}
    assert "bytes" in h.dead[0]["reason"]


def test_an_account_state_never_exceeds_the_record_limit():
    """Opportunities accumulate in the account's row: enough of them made it too large."""
    limit = 60_000
    h = harness(max_record_bytes=limit)
    h.send(topics.ACCOUNTS, "big", upsert("big", "2025-01-01T00:00:00Z"))
    sent = 2000
    for n in range(sent):
        h.send(
            topics.OPPORTUNITIES,
            "big",
            {
                "event_id": f"op-{n}",
                "type": "opportunity.updated",
                "occurred_at": "2025-02-01T00:00:00Z",
                "data": {
                    "opportunity_id": f"opportunity-{n:06d}",
                    "account_id": "big",
                    "stage": "open",
                    "amount": 100.0,
                },
            },
        )
    assert row_bytes(h, "big") <= limit * ROW_SHARE
    assert max(len(json.dumps(value, separators=(",", ":"))) for _, value in h.state_sent) <= limit
    too_large = [d for d in h.dead if d["reason_code"] == "state_too_large"]
    assert too_large and "opportunities" in too_large[0]["reason"]
    # Nothing lost: each message applied or dead-lettered with its reason.
    assert h.outcomes["applied"] + h.outcomes["deadlettered"] == sent + 1


def test_an_event_far_in_the_future_is_dead_lettered_and_moves_no_stream_time():
    """One order dated 2205 moved its partition's time there: every later order was `too_late`."""
    h = harness(future_margin=timedelta(days=3))
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))
    h.send(topics.ORDERS, "a1", order("a1", "2205-01-01T00:00:00Z", 5, "far"))
    assert [d["reason_code"] for d in h.dead] == ["in_the_future"] and h.dead[0]["field"] == "occurred_at"
    h.send(topics.ORDERS, "a1", order("a1", "2025-05-30T00:00:00Z", 7, "today"))
    h.send(topics.ORDERS, "a1", order("a1", "2025-06-03T12:00:00Z", 1, "within-margin"))
    assert h.row("a1")["monthly_sales"] == {"2025-05": 7.0, "2025-06": 1.0}
    assert h.outcomes == {"applied": 3, "deadlettered": 1}
    assert h.intake.stream_times[f"{topics.ORDERS}:0"].startswith("2025-06-03")


def test_an_erasure_moves_no_time_and_its_snapshot_has_none():
    h = harness()
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2024-01-01T00:00:00Z"))
    h.send(
        topics.ACCOUNTS,
        "a1",
        {"event_id": "erase", "type": "account.erased", "occurred_at": NOW.isoformat(), "data": {"account_id": "a1"}},
    )
    assert h.intake.stream_times[f"{topics.ACCOUNTS}:0"].startswith("2024-01-01")
    snapshot = h.state_sent[-1][1]
    assert snapshot["kind"] == "account_erased" and "occurred_at" not in snapshot


def test_dead_letters_keep_no_names():
    h = harness()
    document = upsert("a1", "2025-01-01T00:00:00Z", name="Erika Mustermann GmbH")
    document["data"]["lat"] = 123.0  # out of range: dead-lettered
    h.send(topics.ACCOUNTS, "a1", document)
    dead = h.dead[0]
    assert dead["field"] == "data.lat" and dead["value_pseudonymised"] is True
    assert "Mustermann" not in json.dumps(dead)
    kept = json.loads(dead["value"])
    assert kept["data"]["name"].startswith("pseudonym:") and kept["data"]["lat"] == 123.0


@pytest.mark.parametrize(
    "field, value",
    [
        ("account_id", "acct\r\nBcc: everyone@example.com"),
        ("account_id", "acct\x00"),
        ("account_id", "acct\u2028x"),
        ("rep_id", "R1\n"),
        ("name", "Evil\r\nX-Header: 1"),
        ("industry", "retail\x1b[31m"),
    ],
)
def test_control_characters_in_ids_and_text_are_refused_naming_the_field(field, value):
    document = upsert("acct", "2025-01-01T00:00:00Z")
    document["data"][field] = value
    key = document["data"]["account_id"]
    with pytest.raises(ContractError) as caught:
        parse_event(json.dumps(document).encode(), topic=topics.ACCOUNTS, key=key)
    assert caught.value.field == f"data.{field}" and "control character" in caught.value.reason


def test_tabs_stay_allowed_in_free_text():
    document = upsert("acct", "2025-01-01T00:00:00Z", name="Müller\tund Söhne")
    assert (
        parse_event(json.dumps(document).encode(), topic=topics.ACCOUNTS, key="acct").data["name"]
        == "Müller\tund Söhne"
    )


def test_the_intakes_bound_on_a_rows_size_holds_for_odd_characters_and_long_ids():
    """The intake checks a row against the record limit from an upper bound of its size and
    encodes the row only when that bound nears the limit. The bound must hold for the worst
    text: ids of 200 emoji, sent as raw UTF-8 (4 bytes each, 12 characters once escaped)."""
    h = harness()
    account = "😀" * 200

    def send(topic: str, document: dict) -> None:
        h.send(topic, account, json.dumps(document, ensure_ascii=False).encode())
        assert row_bytes(h, account) <= h.row(account)["row_bytes"]

    send(topics.ACCOUNTS, upsert(account, "2025-01-01T00:00:00Z", name="名前😀" * 600, event_id="😀" * 200))
    for n in range(40):
        when = f"2025-0{1 + n % 5}-{1 + n % 28:02d}T00:00:00Z"
        data = {"account_id": account, "stage": "open", "amount": 1e12 - n, "probability": 0.3}
        send(
            topics.OPPORTUNITIES,
            {
                "event_id": f"o{n}",
                "type": "opportunity.updated",
                "occurred_at": when,
                "data": {"opportunity_id": "😀" * 195 + f"{n}", **data},
            },
        )
    for n in range(40):
        send(topics.ORDERS, order(account, f"2025-0{1 + n % 5}-03T00:00:00Z", 1e9 + n, "€" * 190 + f"{n}"))
    assert h.outcomes == {"applied": 81}
