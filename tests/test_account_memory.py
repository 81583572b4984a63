"""What each account costs a worker's memory: the intake's and the planner's tables keep each
account as one state object, holding the process's one copy of each field name, month and
area code, not one per account.

bench/load.py measures the memory itself (its "memory" part); these tests pin the layout
that figure depends on, with real snapshots from the intake.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timezone

from faust.utils import json as faust_json

from core.settings import Settings
from monitor.intake import Intake, Origin
from monitor.state import AccountState
from planner.session import PlanningSession


def _upsert(account_id: str, event_id: str, lat: float, lon: float) -> bytes:
    data = {"account_id": account_id, "lat": lat, "lon": lon, "industry": "retail", "employees": 40}
    data |= {"rep_id": "R1", "locked": False, "name": f"Account {account_id}"}
    envelope = {"event_id": event_id, "type": "account.upserted", "occurred_at": "2025-01-02T08:00:00+00:00"}
    return json.dumps({**envelope, "source": "test", "data": data}).encode()


def _order(account_id: str, event_id: str, day: int) -> bytes:
    data = {"order_id": event_id, "account_id": account_id, "amount": 100.0 + day, "currency": "EUR"}
    envelope = {"event_id": event_id, "type": "order.placed", "occurred_at": f"2025-03-{day:02d}T10:00:00+00:00"}
    return json.dumps({**envelope, "source": "test", "data": data}).encode()


def _intake(accounts: dict, sent: list[str]) -> Intake:
    """An intake over `accounts` that appends the JSON text of each snapshot to `sent`."""

    async def send_state(key: str, record: dict) -> None:
        sent.append(json.dumps(record))

    async def ignore(key: str, record: dict) -> None:
        pass

    return Intake(
        accounts=accounts,
        reps={},
        stream_times={},
        send_state=send_state,
        send_deadletter=ignore,
        on_outcome=_ignore_outcome,
    )


def _company(accounts: int = 3) -> tuple[dict, list[str]]:
    """Each account through the intake in a batch of its own: the intake's table (account id ->
    state) and the JSON texts of the snapshots it sent."""
    rows: dict = {}
    sent: list[str] = []
    intake = _intake(rows, sent)
    for n in range(accounts):
        account_id = f"A{n}"
        messages = [
            Origin("crm.accounts", 0, n, account_id.encode(), _upsert(account_id, f"u{n}", 52.5 + n / 100, 13.4)),
            Origin("sales.orders", 0, 2 * n, account_id.encode(), _order(account_id, f"o{n}a", 3)),
            Origin("sales.orders", 0, 2 * n + 1, account_id.encode(), _order(account_id, f"o{n}b", 4)),
        ]
        for message in messages:
            asyncio.run(intake.handle_batch([message]))
    return rows, sent


def _ignore_outcome(topic: str, outcome: str, field: str | None) -> None:
    pass


def _distinct_objects(strings) -> int:
    return len({id(s) for s in strings})


def test_the_planners_rows_share_their_field_names_months_and_areas():
    # Each snapshot is decoded on its own, and a JSON decoder makes new key strings for each
    # document: 25 field names and every month key again per account (1.5 kB each).
    _, texts = _company()
    session = PlanningSession(Settings(), accounts={}, reps={}, meta={})
    session.apply(json.loads(text) for text in texts)
    rows = [session.accounts[f"A{n}"].public_fields() for n in range(3)]
    for field in rows[0]:
        assert _distinct_objects(next(k for k in row if k == field) for row in rows) == 1, field
    assert all(list(row["monthly_sales"]) == ["2025-03"] for row in rows)
    assert _distinct_objects(next(iter(row["monthly_sales"])) for row in rows) == 1
    for field in ("region", "country", "admin1", "industry", "rep_id"):
        assert rows[0][field] is not None
        assert _distinct_objects(row[field] for row in rows) == 1, field


def test_the_intakes_rows_share_their_months_and_event_days():
    # The applied ids are grouped by topic and day in one flat mapping per row, whose keys are
    # the process's one copy of each "topic day".
    states, _ = _company()
    rows = {key: state.public_fields() | {"seen": state.seen} for key, state in states.items()}
    assert _distinct_objects(next(iter(row["monthly_sales"])) for row in rows.values()) == 1
    groups = [key for row in rows.values() for key in row["seen"]]  # "topic day"
    assert sorted(set(groups)) == ["crm.accounts 2025-01-02", "sales.orders 2025-03-03", "sales.orders 2025-03-04"]
    assert _distinct_objects(groups) == 3
    for field in ("region", "industry", "rep_id"):
        assert _distinct_objects(row[field] for row in rows.values()) == 1, field


def test_an_account_state_has_no_dictionary_of_its_own():
    # 25 fields in a per-instance dict cost about twice what slots do, per account and copy.
    state = AccountState("A1", lat=1.0, monthly_sales={"2025-01": 2.0})
    assert not hasattr(state, "__dict__")
    assert AccountState.from_dict(state.to_dict()) == state


def test_the_planner_keeps_each_account_once_and_logs_the_snapshots_fields():
    # The planner's table holds the state object its judgements read (no dict beside it);
    # Faust writes the table's changelog record from `__json__`: the snapshot's fields.
    states, texts = _company(accounts=1)
    session = PlanningSession(Settings(), accounts={}, reps={}, meta={})
    session.apply(json.loads(text) for text in texts)
    session.judge()
    public = states["A0"].public_dict()
    assert isinstance(session.accounts["A0"], AccountState)
    assert session._states is not None and session._states[0] is session.accounts["A0"]
    assert json.loads(faust_json.dumps(session.accounts["A0"])) == AccountState.from_dict(public).to_dict()
    assert datetime.fromisoformat(public["last_event_at"]) == datetime(2025, 3, 4, 10, tzinfo=timezone.utc)


def test_rows_recovered_from_the_changelog_are_judged_as_before():
    _, texts = _company()
    live = PlanningSession(Settings(), accounts={}, reps={}, meta={})
    live.apply(json.loads(text) for text in texts)
    recovered = {key: json.loads(faust_json.dumps(state)) for key, state in live.accounts.items()}
    restarted = PlanningSession(Settings(), accounts=recovered, reps={}, meta={})
    restarted.apply(json.loads(text) for text in texts[-1:])
    for session in (live, restarted):
        session.judge()
    assert restarted._states == live._states


def test_the_intake_reads_rows_a_changelog_gave_back_and_keeps_state_objects():
    # After a restart (or with the RocksDB store) the table holds the JSON rows again.
    states, _ = _company(accounts=2)
    recovered = {key: json.loads(faust_json.dumps(state)) for key, state in states.items()}
    intake = _intake(recovered, [])
    again = Origin("sales.orders", 0, 1, b"A0", _order("A0", "o0a", 3))  # applied before the restart
    later = Origin("sales.orders", 0, 9, b"A0", _order("A0", "o0c", 5))
    asyncio.run(intake.handle_batch([again, later]))
    assert isinstance(recovered["A0"], AccountState) and isinstance(recovered["A1"], dict)
    assert recovered["A0"].monthly_sales == {"2025-03": 103.0 + 104.0 + 105.0}
    assert sorted(key for key in recovered["A0"].seen if key.startswith("sales.orders ")) == [
        "sales.orders 2025-03-03",
        "sales.orders 2025-03-04",
        "sales.orders 2025-03-05",
    ]
    assert recovered["A1"] == json.loads(faust_json.dumps(states["A1"]))


def test_rows_written_before_the_flat_id_layout_still_recognise_their_duplicates():
    # A changelog written by the previous version holds {topic: {day: digests}}; a worker
    # restarted on this version reads it back, and an event it applied then is a duplicate now.
    states, _ = _company(accounts=1)
    row = json.loads(faust_json.dumps(states["A0"]))
    nested: dict = {}
    for key, ids in row["seen"].items():
        topic, _, day = key.partition(" ")
        nested.setdefault(topic, {})[day] = ids
    recovered = {"A0": {**row, "seen": nested}}
    outcomes: list[str] = []
    intake = _intake(recovered, [])
    intake.on_outcome = lambda topic, outcome, field: outcomes.append(outcome)
    again = Origin("sales.orders", 0, 1, b"A0", _order("A0", "o0a", 3))
    later = Origin("sales.orders", 0, 9, b"A0", _order("A0", "o0c", 5))
    asyncio.run(intake.handle_batch([again, later]))
    assert outcomes == ["duplicate", "applied"]
    assert recovered["A0"].monthly_sales == {"2025-03": 103.0 + 104.0 + 105.0}
    assert sorted(recovered["A0"].seen) == [
        "crm.accounts 2025-01-02",
        "sales.orders 2025-03-03",
        "sales.orders 2025-03-04",
        "sales.orders 2025-03-05",
    ]


def test_the_company_the_planner_judges_stays_in_id_order_through_additions_changes_and_erasures():
    """The planner keeps its accounts sorted by id between judgements (sorting a large company
    each day of a catch-up cost a second a day at a million accounts); whatever the batches
    add, change or erase, it must hold the table's accounts, in id order, and nothing else."""
    rng = random.Random(7)
    session = PlanningSession(Settings(), accounts={}, reps={}, meta={})
    stamp = {"source": "o:0", "occurred_at": "2025-03-04T10:00:00+00:00"}
    session.apply([{"kind": "account", "account_id": "seed", "known": True, **stamp}])
    session.judge()
    for _ in range(30):
        batch = []
        for _ in range(rng.randint(1, 40)):
            account_id = f"a{rng.randint(0, 120)}:{rng.choice('xyz')}"  # ids that sort unlike their arrival
            if rng.random() < 0.2:
                batch.append({"kind": "account_erased", "account_id": account_id, **stamp})
            else:
                batch.append({"kind": "account", "account_id": account_id, "employees": rng.randint(1, 99), **stamp})
        session.apply(batch)
        held = session._states
        assert held is not None
        assert [state.account_id for state in held] == sorted(session.accounts)
        assert all(state is session.accounts[state.account_id] for state in held)
