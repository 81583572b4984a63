"""Contract-valid input that stopped or blinded a real worker, on the embedded broker.

- Orders for an unknown account with 250 KB extra fields: the account's held row grew
  past the broker's record limit, the producer failed, the worker died and died again on
  every restart (it re-read the same uncommitted messages).
- One order dated 2205 moved its partition's stream time: every later order on it was
  dead-lettered `too_late`, also after a restart.
- A restarted worker's planner forgot its checkpoint (read before Faust recovered the
  tables), and held events were no longer tracked.
"""

from __future__ import annotations

import json

import pytest

from simulator import generate_company, generate_events
from core import topics
from tests.kafka_io import produce, read_all, wait_for

pytestmark = pytest.mark.slow


def order(account_id: str, when: str, event_id: str, **extra: object) -> tuple[str, str, dict]:
    return (
        topics.ORDERS,
        account_id,
        {
            "event_id": event_id,
            "type": "order.placed",
            "occurred_at": when,
            "data": {"order_id": event_id, "account_id": account_id, "amount": 10.0, **extra},
        },
    )


def upsert(account_id: str, when: str) -> tuple[str, str, dict]:
    return (
        topics.ACCOUNTS,
        account_id,
        {
            "event_id": f"up-{account_id}",
            "type": "account.upserted",
            "occurred_at": when,
            "data": {"account_id": account_id, "lat": 52.5, "lon": 13.4, "rep_id": "R1"},
        },
    )


def outcomes(worker) -> dict[str, float]:
    return {
        outcome: worker.metric("territory_intake_events_total", {"outcome": outcome})
        for outcome in ("applied", "duplicate", "deadlettered")
    }


def test_poison_pill_and_far_future_date_neither_stop_nor_blind_the_worker(broker, start_worker):
    env = {"TERRITORY_APP_ID": "poison", "TERRITORY_HOLD_DAYS": "3650"}
    worker = start_worker(**env)
    filler = "x" * 250_000  # extra fields are allowed; the message stays under the 256 KB limit
    produce(
        broker.bootstrap_servers,
        [
            *(order("ghost", "2025-01-10T00:00:00Z", f"pill-{n}", notes=filler) for n in range(3)),
            upsert("a1", "2025-01-01T00:00:00Z"),
            order("a1", "2205-01-01T00:00:00Z", "far-ahead"),
            order("a1", "2025-01-11T00:00:00Z", "after-the-far-one"),
        ],
    )
    wait_for(lambda: sum(outcomes(worker).values()) == 3, 90, "the worker to decide on the readable messages")
    assert worker.metric("territory_intake_held_events") == 3
    assert outcomes(worker) == {"applied": 2, "duplicate": 0, "deadlettered": 1}
    dead = [value for _, value in read_all(broker.bootstrap_servers, topics.DEADLETTER)]
    assert [(d["reason_code"], d["field"]) for d in dead] == [("in_the_future", "occurred_at")]

    # A restart in the middle: held events are found again and nothing is re-decided.
    worker.stop()
    worker = start_worker(**env)
    wait_for(lambda: worker.metric("territory_worker_ready") == 1, 90, "the restarted worker to be ready")
    wait_for(lambda: worker.metric("territory_intake_held_events") == 3, 30, "held events tracked after the restart")
    produce(
        broker.bootstrap_servers,
        [upsert("ghost", "2025-01-12T00:00:00Z"), order("a1", "2025-01-13T00:00:00Z", "after-the-restart")],
    )
    wait_for(
        lambda: worker.metric("territory_intake_events_total", {"outcome": "applied"}) == 5,
        60,
        "the account and its held orders to be applied",
    )
    assert worker.metric("territory_intake_held_events") == 0
    assert worker.metric("territory_intake_events_total", {"outcome": "deadlettered"}) == 0  # new process: none since
    assert worker.process.poll() is None and "Crashed reason=" not in worker.log()
    states = {
        value["account_id"]: value
        for _, value in read_all(broker.bootstrap_servers, topics.STATE)
        if value.get("kind") == "account"
    }
    assert states["ghost"]["monthly_sales"] == {"2025-01": 30.0}
    assert states["a1"]["monthly_sales"] == {"2025-01": 20.0}
    assert (
        max(
            len(json.dumps(value, separators=(",", ":")))
            for _, value in read_all(broker.bootstrap_servers, "poison-accounts-changelog")
        )
        < 20_000
    )


@pytest.mark.parametrize("table_store", ["memory", "rocksdb"])
def test_a_restarted_planner_resumes_from_its_checkpoint(broker, start_worker, table_store):
    company = generate_company(seed=4, n_reps=4, n_accounts=120)
    events = generate_events(company, months=14, seed=4)
    env = {"TERRITORY_APP_ID": "resume", "TERRITORY_TABLE_STORE": table_store}
    worker = start_worker(**env)
    produce(broker.bootstrap_servers, events)
    last = max(envelope["occurred_at"] for _, _, envelope in events)
    from datetime import datetime, timedelta

    judged_last = (datetime.fromisoformat(last) - timedelta(days=2)).timestamp()
    # Settled: the last judgement's proposal out and its checkpoint written (the gauge drops then).
    wait_for(
        lambda: (
            worker.metric("territory_planner_event_time_watermark_seconds") >= judged_last
            and worker.metric("territory_rebalancer_solving") == 0
        ),
        240,
        "the planner to judge the last event time",
    )
    judged = worker.metric("territory_planner_event_time_watermark_seconds")
    worker.stop()

    worker = start_worker(**env)
    wait_for(lambda: worker.metric("territory_worker_ready") == 1, 90, "the restarted worker to be ready")
    # No new input: what the planner knows now comes from its checkpoint alone.
    wait_for(
        lambda: worker.metric("territory_planner_event_time_watermark_seconds") == judged,
        60,
        "the restored judgement time",
    )
    assert "planner checkpoint restored" in worker.log()
    if table_store == "rocksdb":  # the tables live on disk, in the worker's data directory
        assert any(worker_data_dir(worker).glob("**/CURRENT")), "no RocksDB database in the data directory"


def worker_data_dir(worker):
    return worker.log_path.parent / worker.log_path.stem  # start_worker: log workerN.log, data dir workerN
