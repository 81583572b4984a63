"""Intake decisions without Kafka: duplicates, late events, held events, erasure, pseudonyms."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

import pytest
from faust.utils import json as faust_json

from monitor.intake import Intake, IntakeRules
from core import topics


class Harness:
    def __init__(self, **rules: object) -> None:
        self.accounts: dict = {}
        self.state_sent: list[tuple[str, dict]] = []
        self.all_sent: list[tuple[str, dict]] = []
        self.dead: list[dict] = []
        self.outcomes: Counter = Counter()
        self.offset = 0

        async def send_state(key: str, value: dict) -> None:
            self.all_sent.append((key, value))
            if value["kind"] != "stream_times":  # the batch's event times, after its snapshots
                self.state_sent.append((key, value))

        async def send_deadletter(key: str, value: dict) -> None:
            self.dead.append(value)

        self.intake = Intake(
            accounts=self.accounts,
            reps={},
            stream_times={},
            send_state=send_state,
            send_deadletter=send_deadletter,
            on_outcome=lambda topic, outcome, field: self.outcomes.update([outcome]),
            rules=IntakeRules(**rules),
        )

    def row(self, account_id: str) -> dict:
        """The account's row as its changelog record holds it (the table keeps state objects)."""
        return json.loads(faust_json.dumps(self.accounts[account_id]))

    def send(self, topic: str, key: str, document: dict | bytes, partition: int = 0) -> None:
        self.offset += 1
        value = document if isinstance(document, bytes) else json.dumps(document).encode()
        asyncio.run(
            self.intake.handle(topic=topic, partition=partition, offset=self.offset, key=key.encode(), value=value)
        )


def upsert(account_id: str, when: str, name: str | None = None, event_id: str | None = None) -> dict:
    return {
        "event_id": event_id or f"up-{account_id}-{when}",
        "type": "account.upserted",
        "occurred_at": when,
        "data": {"account_id": account_id, "lat": 52.5, "lon": 13.4, "rep_id": "R1", "name": name},
    }


def order(account_id: str, when: str, amount: float, event_id: str) -> dict:
    return {
        "event_id": event_id,
        "type": "order.placed",
        "occurred_at": when,
        "data": {"order_id": event_id, "account_id": account_id, "amount": amount},
    }


def test_order_before_its_account_is_held_then_applied():
    h = Harness()
    h.send(topics.ORDERS, "a1", order("a1", "2025-01-10T00:00:00Z", 100, "o1"))
    assert h.intake.held_count == 1 and h.outcomes == {}
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-12T00:00:00Z"))
    assert h.intake.held_count == 0
    assert h.outcomes == {"applied": 2}
    assert h.row("a1")["monthly_sales"] == {"2025-01": 100.0} and h.row("a1")["held"] == []
    assert "held" not in h.state_sent[-1][1]  # the planner never sees raw held messages


def test_a_held_event_tells_the_planner_its_time_when_it_is_released():
    # The planner's watermark learns a stream's time only from stream_times records. An order
    # that waited for its account is applied inside the account's snapshot: its own stream's
    # time must go out with it, or a stream whose last event waited never moves the watermark.
    h = Harness()
    h.send(topics.ORDERS, "a1", order("a1", "2025-04-05T00:00:00Z", 100, "o1"), partition=1)
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-02T00:00:00Z"))
    times = [value["times"] for _, value in h.all_sent if value["kind"] == "stream_times"]
    assert times[-1][f"{topics.ORDERS}:1"] == ["2025-04-05T00:00:00+00:00", "2025-04-05T00:00:00+00:00"]
    assert times[-1][f"{topics.ACCOUNTS}:0"] == ["2025-01-02T00:00:00+00:00", "2025-01-02T00:00:00+00:00"]


def test_held_order_expires_into_the_dead_letter_topic_as_its_validated_event():
    h = Harness(hold_for=timedelta(days=30))
    original = order("ghost", "2025-01-10T00:00:00Z", 100, "o1")
    h.send(topics.ORDERS, "ghost", original)
    h.send(topics.ORDERS, "a2", order("a2", "2025-02-05T00:00:00Z", 5, "o2"))  # 26 days later: still waiting
    assert h.dead == []
    h.send(topics.ORDERS, "a3", order("a3", "2025-02-10T00:00:00Z", 5, "o3"))  # 31 days later: expired
    assert [d["reason_code"] for d in h.dead] == ["unknown_account"]
    assert h.dead[0]["reason"].startswith("data.account_id: unknown_account 'ghost'")
    # Held events are kept parsed (not as raw messages): the dead letter carries the validated event.
    dead = json.loads(h.dead[0]["value"])
    assert {k: dead[k] for k in ("event_id", "type")} == {"event_id": "o1", "type": "order.placed"}
    assert dead["data"]["amount"] == 100 and dead["data"]["account_id"] == "ghost" and h.dead[0]["offset"] == 1
    assert h.intake.held_count == 2  # o2 and o3 still wait for their accounts


def test_hold_is_bounded_per_account():
    h = Harness(max_held_per_account=2)
    for i in range(3):
        h.send(topics.ORDERS, "ghost", order("ghost", "2025-01-10T00:00:00Z", 1, f"o{i}"))
    assert h.intake.held_count == 2
    assert [d["reason"] for d in h.dead] == ["data.account_id: unknown_account 'ghost': 2 events already wait for it"]


def test_too_late_and_duplicates():
    h = Harness(late_horizon=timedelta(days=400))
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-06-01T00:00:00Z"))
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-06-01T00:00:00Z"))  # same event_id
    h.send(topics.ORDERS, "a1", order("a1", "2025-06-02T00:00:00Z", 5, "o-new"))
    h.send(topics.ORDERS, "a1", order("a1", "2024-01-01T00:00:00Z", 5, "o-old"))  # 518 days older
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2019-01-01T00:00:00Z", event_id="old-profile"))  # LWW, not late
    assert h.outcomes == {"applied": 3, "duplicate": 1, "deadlettered": 1}
    assert h.dead[0]["reason_code"] == "too_late" and h.dead[0]["field"] == "occurred_at"


def test_older_upsert_arriving_late_does_not_overwrite_newer_state():
    h = Harness()
    newer = upsert("a1", "2025-03-01T00:00:00Z")
    newer["data"]["lat"] = 48.1
    h.send(topics.ACCOUNTS, "a1", newer)
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-02-01T00:00:00Z"))
    assert h.row("a1")["lat"] == 48.1 and h.outcomes == {"applied": 2}


def test_names_are_pseudonymised_with_the_configured_key():
    first, other_key = Harness(pseudonym_key=b"k1"), Harness(pseudonym_key=b"k2")
    for h in (first, other_key):
        h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z", name="Bäckerei Müller GmbH"))
    stored = faust_json.dumps(first.accounts) + json.dumps(first.state_sent)
    assert "Müller" not in stored and "M\\u00fcller" not in stored
    assert first.row("a1")["name_hash"] and first.row("a1")["name_hash"] != other_key.row("a1")["name_hash"]


def test_erase_removes_the_account_and_tells_the_planner():
    h = Harness()
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))
    h.send(
        topics.ACCOUNTS,
        "a1",
        {
            "event_id": "erase-1",
            "type": "account.erased",
            "occurred_at": "2025-01-02T00:00:00Z",
            "data": {"account_id": "a1"},
        },
    )
    # Nothing about the account is left: only what it applied, so a replay cannot bring it back.
    kept = h.row("a1")
    assert kept["known"] is False and kept["lat"] is None and kept["monthly_sales"] == {} and kept["held"] == []
    assert h.state_sent[-1][1]["kind"] == "account_erased"
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))  # the old upsert again
    assert h.outcomes["duplicate"] == 1 and h.row("a1")["known"] is False


@pytest.mark.parametrize("raw", [b"", b"null", b"[]", b'{"event_id": 1}', b"\xff" * 10, b"{" * 5000])
def test_garbage_is_dead_lettered_never_raised(raw):
    h = Harness()
    h.send(topics.ORDERS, "a1", raw)
    assert h.outcomes == {"deadlettered": 1} and h.dead[0]["value_base64"] is not None


def test_held_orders_wait_for_an_accounts_stream_that_is_behind():
    h = Harness(hold_for=timedelta(days=30))
    h.intake.is_caught_up = lambda source: source != f"{topics.ACCOUNTS}:0"  # accounts partition still unread
    h.send(topics.ACCOUNTS, "other", upsert("other", "2025-01-01T00:00:00Z"))
    h.send(topics.ORDERS, "a1", order("a1", "2025-01-10T00:00:00Z", 100, "o1"))
    h.send(topics.ORDERS, "a9", order("a9", "2025-06-10T00:00:00Z", 5, "o9"))  # orders stream far ahead
    assert h.dead == [] and h.intake.held_count == 2  # accounts stream is at Jan 1
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-02T00:00:00Z"))
    assert h.row("a1")["monthly_sales"] == {"2025-01": 100.0}


def test_a_message_read_again_after_a_crash_is_a_duplicate_and_its_snapshot_is_sent_again():
    """The account row (with the ids and offsets it applied) is written before its snapshot:
    a worker killed between them leaves the effect without the snapshot. Read again, the
    message is a duplicate, and the snapshot goes out again."""
    h = Harness()
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))
    h.send(topics.ORDERS, "a1", order("a1", "2025-01-10T00:00:00Z", 100, "o1"))
    applied_at = h.offset
    asyncio.run(
        h.intake.handle(
            topic=topics.ORDERS,
            partition=0,
            offset=applied_at,
            key=b"a1",
            value=json.dumps(order("a1", "2025-01-10T00:00:00Z", 100, "o1")).encode(),
        )
    )
    assert h.row("a1")["monthly_sales"] == {"2025-01": 100.0}
    assert h.outcomes == {"applied": 2, "duplicate": 1}
    # Its snapshot is sent again (it may have been lost with the crash), with its order.
    key, resent = h.state_sent[-1]
    assert key == "account:a1" and resent["orders"] == [["2025-01-10", 100, "o1"]]
    # A later message on the same topic still applies; so does one at an earlier offset of another topic.
    h.send(topics.ORDERS, "a1", order("a1", "2025-01-11T00:00:00Z", 5, "o2"))
    assert h.row("a1")["monthly_sales"] == {"2025-01": 105.0}
    assert h.row("a1")["applied_offsets"] == {topics.ACCOUNTS: 1, topics.ORDERS: h.offset}


def test_a_message_at_an_earlier_offset_that_was_never_applied_is_applied():
    """Faust can hand a stream a record prefetched before a rebalance ahead of the records
    before it, which it reads again after seeking back to the committed offset. Only the
    event id says whether an event was applied: an earlier offset does not (these orders
    were lost as "duplicates" when the offset decided, in the crash and scale-out tests)."""
    h = Harness()
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))
    late_first = json.dumps(order("a1", "2025-01-12T00:00:00Z", 7, "o3")).encode()
    asyncio.run(h.intake.handle(topic=topics.ORDERS, partition=0, offset=30, key=b"a1", value=late_first))
    for offset, (day, amount, event_id) in enumerate([("10", 100, "o1"), ("11", 5, "o2"), ("12", 7, "o3")], start=28):
        value = json.dumps(order("a1", f"2025-01-{day}T00:00:00Z", amount, event_id)).encode()
        asyncio.run(h.intake.handle(topic=topics.ORDERS, partition=0, offset=offset, key=b"a1", value=value))
    assert h.row("a1")["monthly_sales"] == {"2025-01": pytest.approx(112.0)}
    assert h.outcomes == {"applied": 4, "duplicate": 1}
    # The row keeps the highest offset it applied, whatever the order of arrival.
    assert h.row("a1")["applied_offsets"][topics.ORDERS] == 30


def send_batch(h: Harness, messages: list[tuple[str, str, dict]]) -> None:
    from monitor.intake import Origin

    origins = []
    for topic, key, document in messages:
        h.offset += 1
        origins.append(Origin(topic, 0, h.offset, key.encode(), json.dumps(document).encode()))
    asyncio.run(h.intake.handle_batch(origins))


class CountingTable(dict):
    """A table that counts its writes (each is a changelog record in the worker)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter = Counter()

    def __setitem__(self, key, value) -> None:
        self.writes[key] += 1
        super().__setitem__(key, value)


def test_a_batch_writes_each_account_once_and_sends_one_snapshot_with_all_its_orders():
    h = Harness()
    h.intake.accounts = h.accounts = CountingTable()
    h.intake.stream_times = stream_times = CountingTable()
    send_batch(
        h,
        [
            (topics.ORDERS, "a1", order("a1", "2025-01-10T00:00:00Z", 100, "o1")),  # held: a1 comes later
            (topics.ACCOUNTS, "a1", upsert("a1", "2025-01-12T00:00:00Z")),
            (topics.ACCOUNTS, "a2", upsert("a2", "2025-01-02T00:00:00Z")),
            (topics.ORDERS, "a1", order("a1", "2025-01-20T00:00:00Z", 5, "o2")),
            (topics.ORDERS, "a1", order("a1", "2025-01-20T00:00:00Z", 5, "o2")),  # a duplicate in the batch
            (topics.ORDERS, "a2", order("a2", "2025-01-03T00:00:00Z", 7, "o3")),
        ],
    )
    assert h.outcomes == {"applied": 5, "duplicate": 1}
    assert h.accounts.writes == {"a1": 1, "a2": 1}
    assert stream_times.writes == {f"{topics.ORDERS}:0": 1, f"{topics.ACCOUNTS}:0": 1}
    assert [key for key, _ in h.all_sent] == ["account:a1", "account:a2", "stream-times"]
    a1 = h.state_sent[0][1]
    assert a1["monthly_sales"] == {"2025-01": 105.0}
    assert sorted(o[2] for o in a1["orders"]) == ["o1", "o2"]
    # After the snapshots, the batch's event times per input stream, for the planner's
    # watermark: earliest and newest of the messages applied (a held order counts with the
    # upsert that released it). Sent last, so no snapshot of the batch can come after them.
    assert h.all_sent[-1] == (
        "stream-times",
        {
            "kind": "stream_times",
            "times": {
                f"{topics.ORDERS}:0": ["2025-01-03T00:00:00+00:00", "2025-01-20T00:00:00+00:00"],
                f"{topics.ACCOUNTS}:0": ["2025-01-02T00:00:00+00:00", "2025-01-12T00:00:00+00:00"],
            },
        },
    )
    assert a1["stream_times_follow"] is True
    # The same messages in another batch: every one a duplicate, nothing written again.
    h.outcomes.clear()
    h.offset = 0
    send_batch(h, [(topics.ORDERS, "a2", order("a2", "2025-01-03T00:00:00Z", 7, "o3"))])
    assert h.outcomes == {"duplicate": 1} and h.accounts.writes == {"a1": 1, "a2": 1}


def test_an_erasure_in_a_batch_ends_the_accounts_snapshot_before_it():
    h = Harness()
    erase = {
        "event_id": "e1",
        "type": "account.erased",
        "occurred_at": "2025-02-01T00:00:00Z",
        "data": {"account_id": "a1"},
    }
    send_batch(
        h,
        [
            (topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z")),
            (topics.ORDERS, "a1", order("a1", "2025-01-10T00:00:00Z", 100, "o1")),
            (topics.ACCOUNTS, "a1", erase),
        ],
    )
    assert [(key, record["kind"]) for key, record in h.all_sent] == [
        ("account:a1", "account"),
        ("account:a1", "account_erased"),
        ("stream-times", "stream_times"),
    ]
    assert h.state_sent[0][1]["orders"] == [["2025-01-10", 100, "o1"]]


def test_event_ids_beyond_the_late_horizon_are_forgotten_and_their_events_dead_lettered_too_late():
    """Dedupe memory is bounded: an account's ids older than its stream's time less the late
    horizon are dropped. An old order sent again is then `too_late`, never applied twice."""
    h = Harness(late_horizon=timedelta(days=30))
    h.send(topics.ACCOUNTS, "a1", upsert("a1", "2025-01-01T00:00:00Z"))
    first = order("a1", "2025-01-02T00:00:00Z", 100, "o-first")
    h.send(topics.ORDERS, "a1", first)
    for day in range(1, 29):  # one order a day through February
        h.send(topics.ORDERS, "a1", order("a1", f"2025-02-{day:02d}T00:00:00Z", 1, f"o-feb-{day}"))
    seen = [key.partition(" ")[2] for key in h.row("a1")["seen"] if key.startswith(f"{topics.ORDERS} ")]
    assert "2025-01-02" not in seen and len(seen) <= 31  # ids of 30 days and a bit, not of the history
    h.send(topics.ORDERS, "a1", first)  # the very first order once more
    assert h.dead[-1]["reason_code"] == "too_late"
    assert h.row("a1")["monthly_sales"]["2025-01"] == 100.0
    # Within the horizon a copy is still a duplicate.
    h.send(topics.ORDERS, "a1", order("a1", "2025-02-20T00:00:00Z", 1, "o-feb-20"))
    assert h.outcomes["duplicate"] == 1 and h.row("a1")["monthly_sales"]["2025-02"] == 28.0


def test_a_rep_sent_twice_in_a_batch_is_a_duplicate_and_its_snapshot_goes_out_once():
    rep = {
        "event_id": "rep-1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R1", "home_lat": 52.5, "home_lon": 13.4},
    }
    h = Harness()
    send_batch(h, [(topics.REPS, "R1", rep), (topics.REPS, "R1", rep)])
    assert h.outcomes == {"applied": 1, "duplicate": 1}
    assert [(key, record["kind"]) for key, record in h.all_sent] == [
        ("rep:R1", "rep"),
        ("stream-times", "stream_times"),
    ]
    assert "seen" not in h.state_sent[0][1]


def test_a_failure_while_handling_one_message_dead_letters_it_and_the_batch_goes_on(monkeypatch):
    h = Harness()

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(h.intake, "_send_again", broken)
    first = upsert("a1", "2025-01-01T00:00:00Z")
    send_batch(
        h,
        [
            (topics.ACCOUNTS, "a1", first),
            (topics.ACCOUNTS, "a1", first),
            (topics.ACCOUNTS, "a2", upsert("a2", "2025-01-01T00:00:00Z")),
        ],
    )
    # Each message has exactly one outcome: the one that failed is dead-lettered, not also a duplicate.
    assert h.outcomes == {"applied": 2, "deadlettered": 1} and [d["reason_code"] for d in h.dead] == ["internal"]
    assert set(h.accounts) == {"a1", "a2"}
