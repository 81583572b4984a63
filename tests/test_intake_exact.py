"""Exactly-once effect on a real broker: a messy stream ends in the state of a clean one.

The messy stream has duplicates, out-of-order and late events, orders before their
account, unknown types, wrong types, out-of-range coordinates, negative amounts, an
event past the late horizon and non-JSON bytes. Afterwards applied + duplicate +
dead-lettered equals what was produced, and every account's state equals the state
a clean, ordered, duplicate-free run of the same good events produces; also when the
worker is restarted in the middle.
"""

from __future__ import annotations

import random

import pytest

from simulator import generate_company, generate_events
from core import topics
from tests.kafka_io import committed_offsets, end_offsets, produce, read_all, wait_for

pytestmark = pytest.mark.slow

WORKER_ENV = {"TERRITORY_HOLD_DAYS": "3650", "TERRITORY_LATE_HORIZON_DAYS": "400", "TERRITORY_APP_ID": "exact"}


def good_events() -> list[tuple[str, str, dict]]:
    company = generate_company(seed=11, n_reps=4, n_accounts=150)
    events = generate_events(company, months=5, seed=11)
    # A last zero-minute touch per account, so every account emits its final state
    # (after a restart too) and a stale table value would show.
    last = max(envelope["occurred_at"] for _, _, envelope in events)
    for account in company.accounts:
        events.append(
            (
                topics.ACTIVITIES,
                account.account_id,
                {
                    "event_id": f"touch-{account.account_id}",
                    "type": "activity.logged",
                    "occurred_at": last,
                    "source": "test",
                    "data": {
                        "activity_id": f"touch-{account.account_id}",
                        "account_id": account.account_id,
                        "rep_id": account.rep_id,
                        "kind": "call",
                        "duration_min": 0,
                    },
                },
            )
        )
    return events


def bad_messages(rng: random.Random) -> list[tuple[str, str | None, object]]:
    def order(i: int, **data: object) -> dict:
        payload = {"order_id": f"bad-{i}", "account_id": "A00001", "amount": 10.0, **data}
        return {
            "event_id": f"bad-{i}",
            "type": "order.placed",
            "occurred_at": "2024-03-01T10:00:00+00:00",
            "data": payload,
        }

    bad: list[tuple[str, str | None, object]] = [
        (topics.ORDERS, "A00001", b"\x00\x01 definitely not json"),
        (topics.ORDERS, "A00001", b'{"event_id": "trunc'),
        (topics.ORDERS, "A00001", {**order(1), "type": "order.refunded"}),
        (topics.ORDERS, "A00001", order(2, amount="ten")),
        (topics.ORDERS, "A00001", order(3, amount=-5)),
        (topics.ORDERS, "A00001", order(4, account_id=None)),
        (
            topics.ACCOUNTS,
            "A99999",
            {
                "event_id": "bad-5",
                "type": "account.upserted",
                "occurred_at": "2024-01-02T00:00:00Z",
                "data": {"account_id": "A99999", "lat": 123.0, "lon": 10.0},
            },
        ),
        (
            topics.ACCOUNTS,
            "A99998",
            {
                "event_id": "bad-6",
                "type": "account.upserted",
                "occurred_at": "2024-01-02T00:00:00Z",
                "data": {"account_id": "A99998", "lat": 50.0, "lon": "east"},
            },
        ),
    ]
    return bad


def messy(events: list[tuple[str, str, dict]], rng: random.Random) -> tuple[list, dict[str, int]]:
    stream: list[tuple[str, str | None, object]] = list(events[:-150])  # touches stay last
    # Orders before their account: some account upserts go to the end of the stream.
    upserts = [i for i, (_, _, e) in enumerate(stream) if e["type"] == "account.upserted"]
    late_accounts = [stream[i] for i in rng.sample(upserts, 15)]
    stream = [m for i, m in enumerate(stream) if i not in set(rng.sample(upserts, 0))]
    stream = [m for m in stream if m not in late_accounts] + late_accounts
    # Out of order: shuffle inside blocks of 400 messages.
    blocks = [stream[i : i + 400] for i in range(0, len(stream), 400)]
    for block in blocks:
        rng.shuffle(block)
    stream = [m for block in blocks for m in block]
    # Duplicates: 8% sent twice, the copy somewhere later.
    duplicates = rng.sample(range(len(stream)), len(stream) * 8 // 100)
    for index in sorted(duplicates, reverse=True):
        stream.insert(rng.randrange(index, len(stream) + 1), stream[index])
    bad = bad_messages(rng)
    # Past the horizon: more than 400 days older than what its stream has seen.
    too_late = (
        topics.ORDERS,
        "A00002",
        {
            "event_id": "ancient",
            "type": "order.placed",
            "occurred_at": "2019-01-01T00:00:00+00:00",
            "data": {"order_id": "ancient", "account_id": "A00002", "amount": 1.0},
        },
    )
    for message in bad:
        stream.insert(rng.randrange(len(stream) // 2, len(stream)), message)
    stream.append(too_late)
    stream += events[-150:]
    return stream, {"duplicate": len(duplicates), "deadlettered": len(bad) + 1}


def run_stream(broker, start_worker, messages, *, restart_after: int | None = None) -> dict[str, dict]:
    worker = start_worker(**WORKER_ENV)
    if restart_after is None:
        produce(broker.bootstrap_servers, messages)
    else:
        produce(broker.bootstrap_servers, messages[:restart_after])
        wait_for(
            lambda: worker.metric("territory_intake_events_total") >= restart_after // 2,
            120,
            "the worker to be half way",
        )
        worker.stop()  # SIGTERM in the middle of the stream
        worker = start_worker(**WORKER_ENV)
        produce(broker.bootstrap_servers, messages[restart_after:])
    input_ends = end_offsets(broker.bootstrap_servers, {t: broker.partitions for t in topics.INPUT_TOPICS})
    wait_for(
        lambda: all(
            committed >= input_ends[tp]
            for tp, committed in committed_offsets(broker.bootstrap_servers, "exact", input_ends).items()
        ),
        180,
        "the worker to commit every input message",
    )
    wait_for(lambda: worker.metric("territory_planner_updates_total") > 0, 30, "the planner")
    final: dict[str, dict] = {}
    for key, value in read_all(broker.bootstrap_servers, topics.STATE):
        if value["kind"] == "account":
            value = {k: v for k, v in value.items() if k not in ("kind", "occurred_at", "source", "orders", "times")}
            final[value["account_id"]] = value
    return final, worker


@pytest.fixture(scope="module")
def clean_state(tmp_path_factory):
    """The reference: good events in order, once, on a broker of its own."""
    from territory.broker import EmbeddedBroker
    from tests.conftest import WorkerProcess  # noqa: F401 - same worker start-up as the fixture

    path = tmp_path_factory.mktemp("clean")
    broker = EmbeddedBroker(partitions=2, log_path=path / "broker.log").start()
    try:
        starter = _starter(broker, path)
        state, worker = run_stream(broker, starter, good_events())
        assert worker.metric("territory_intake_events_total", {"outcome": "applied"}) == len(good_events())
        yield state
    finally:
        for started in starter.started:
            started.stop()
        broker.stop()


def _starter(broker, path):
    import os
    import subprocess
    import sys

    from territory.broker import die_with_parent, free_port
    from tests.conftest import WorkerProcess

    started: list[WorkerProcess] = []

    def start(**env_overrides: str) -> WorkerProcess:
        port, index = free_port(), len(started)
        env = {
            **os.environ,
            "TERRITORY_KAFKA_URL": broker.url,
            "TERRITORY_PARTITIONS": str(broker.partitions),
            "TERRITORY_DB_URL": f"sqlite:///{path / 'territory.db'}",
            "TERRITORY_METRICS_PORT": str(port),
            "TERRITORY_DATA_DIR": str(path / f"worker{index}"),
            **env_overrides,
        }
        log_path = path / f"worker{index}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "territory.cli", "worker"],
            env=env,
            stdout=open(log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        started.append(WorkerProcess(process, port, env["TERRITORY_DB_URL"], log_path))
        return started[-1]

    start.started = started
    return start


def test_messy_stream_counts_add_up_and_state_equals_clean_run(broker, start_worker, clean_state):
    rng = random.Random(5)
    stream, expected = messy(good_events(), rng)
    state, worker = run_stream(broker, start_worker, stream)

    count = lambda outcome: worker.metric("territory_intake_events_total", {"outcome": outcome})  # noqa: E731
    assert count("applied") + count("duplicate") + count("deadlettered") == len(stream)
    assert count("duplicate") == expected["duplicate"]
    assert count("deadlettered") == expected["deadlettered"]
    assert worker.metric("territory_intake_held_events") == 0
    dead = [value for _, value in read_all(broker.bootstrap_servers, topics.DEADLETTER)]
    assert len(dead) == expected["deadlettered"]
    assert {d["reason_code"] for d in dead} == {"invalid", "too_late"}
    assert any(d["reason"].startswith("data.lat: must be <= 90") for d in dead)
    assert any(d["reason"].startswith("data.amount: must be >= 0") for d in dead)
    assert any(d["reason"].startswith("type: unknown event type") for d in dead)
    assert any(d["reason"].startswith("occurred_at: too_late") for d in dead)

    assert state.keys() == clean_state.keys()
    assert state == clean_state

    # A replay of the whole stream changes nothing: every good event is now a duplicate.
    before = {outcome: count(outcome) for outcome in ("applied", "duplicate", "deadlettered")}
    replayed, _ = run_stream(broker, lambda **_: worker, stream)
    assert count("applied") == before["applied"]
    assert count("duplicate") - before["duplicate"] == len(stream) - expected["deadlettered"]
    assert replayed == clean_state


def test_restart_in_the_middle_changes_nothing(broker, start_worker, clean_state):
    rng = random.Random(6)
    stream, _ = messy(good_events(), rng)
    state, _ = run_stream(broker, start_worker, stream, restart_after=len(stream) // 2)
    assert state == clean_state
