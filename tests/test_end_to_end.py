"""A scripted company through the real pipeline: broker -> worker -> signals, proposal, alert, store."""

from __future__ import annotations

import itertools

import pytest

from alerts.store import Store
from core import topics
from tests.kafka_io import produce, read_topic, wait_for

pytestmark = pytest.mark.slow

TOLERANCE, HYSTERESIS = 0.10, 0.8
REPS = {"A": (52.52, 13.40), "B": (53.55, 9.99), "C": (48.14, 11.58)}  # Berlin, Hamburg, Munich
# account -> (owner, potential, locked); A carries half the company, B and C too little.
ACCOUNTS = {
    "a1": ("A", 600.0, True),
    "a2": ("A", 500.0, False),
    "a3": ("A", 300.0, False),
    "a4": ("A", 100.0, False),
    "b1": ("B", 700.0, False),
    "c1": ("C", 500.0, False),
    "c2": ("C", 300.0, False),
}


def envelope(event_id: str, event_type: str, occurred_at: str, **data: object) -> dict:
    return {"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "source": "test", "data": data}


def scenario() -> list[tuple[str, str | None, object]]:
    messages: list[tuple[str, str | None, object]] = []
    for rep_id, (lat, lon) in REPS.items():
        messages.append(
            (
                topics.REPS,
                rep_id,
                envelope(
                    f"rep-{rep_id}",
                    "rep.upserted",
                    "2025-01-01T08:00:00+00:00",
                    rep_id=rep_id,
                    home_lat=lat,
                    home_lon=lon,
                ),
            )
        )
    for account_id, (owner, potential, locked) in ACCOUNTS.items():
        lat, lon = REPS[owner]
        messages.append(
            (
                topics.ACCOUNTS,
                account_id,
                envelope(
                    f"acc-{account_id}",
                    "account.upserted",
                    "2025-01-02T08:00:00+00:00",
                    account_id=account_id,
                    lat=lat + 0.05,
                    lon=lon + 0.05,
                    industry="retail",
                    employees=50,
                    rep_id=owner,
                    locked=locked,
                ),
            )
        )
        for month, share in (("01", 0.25), ("02", 0.75)):  # two orders per account
            messages.append(
                (
                    topics.ORDERS,
                    account_id,
                    envelope(
                        f"ord-{account_id}-{month}",
                        "order.placed",
                        f"2025-{month}-15T10:00:00+01:00",
                        order_id=f"o-{account_id}-{month}",
                        account_id=account_id,
                        amount=potential * share,
                    ),
                )
            )
    # The same order again (a CRM retry): recognised as a duplicate, not counted twice.
    messages.append(messages[-1])
    # Bad input: not JSON at all, and an order without its amount.
    messages.append((topics.ORDERS, "a2", b"{this is not json"))
    messages.append(
        (
            topics.ORDERS,
            "a2",
            envelope("ord-bad", "order.placed", "2025-02-20T10:00:00+00:00", order_id="o-bad", account_id="a2"),
        )
    )
    return messages


def brute_force_min_moves(tolerance: float) -> int:
    total = sum(potential for _, potential, _ in ACCOUNTS.values())
    fair = total / len(REPS)
    best = None
    for owners in itertools.product(REPS, repeat=len(ACCOUNTS)):
        if any(locked and owner != ACCOUNTS[a][0] for (a, (_, _, locked)), owner in zip(ACCOUNTS.items(), owners)):
            continue
        loads = {rep: 0.0 for rep in REPS}
        for (_, potential, _), owner in zip(ACCOUNTS.values(), owners):
            loads[owner] += potential
        if all(fair * (1 - tolerance) <= load <= fair * (1 + tolerance) for load in loads.values()):
            moves = sum(owner != ACCOUNTS[a][0] for a, owner in zip(ACCOUNTS, owners))
            best = moves if best is None else min(best, moves)
    assert best is not None
    return best


def test_scenario_reaches_signal_proposal_alert_and_store(broker, start_worker):
    # Trailing sales as the potential: the scenario's hand-made figures are the potentials exactly.
    worker = start_worker(
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_TOLERANCE=str(TOLERANCE),
        TERRITORY_HYSTERESIS=str(HYSTERESIS),
        TERRITORY_PLANNER_INTERVAL_S="0.3",
    )
    first_phase = scenario()
    produce(broker.bootstrap_servers, first_phase)
    wait_for(
        lambda: worker.metric("territory_intake_events_total") == len(first_phase),
        90,
        f"the worker to take all {len(first_phase)} messages",
    )
    assert worker.metric("territory_intake_events_total", {"outcome": "duplicate"}) == 1
    assert worker.metric("territory_intake_events_total", {"outcome": "deadlettered"}) == 2
    # Nothing judged yet: only six weeks of history, under the 60-day warm-up.
    assert worker.metric("territory_detector_signals_total") == 0

    # A later activity moves event time past the warm-up: now balance is judged.
    produce(broker.bootstrap_servers, [april_activity()])

    proposals = read_topic(broker.bootstrap_servers, topics.PROPOSALS, until=lambda found: len(found) >= 1)
    assert len(proposals) == 1, worker.log()[-3000:]
    proposal = proposals[0]
    signals = read_topic(broker.bootstrap_servers, topics.SIGNALS, until=lambda found: len(found) >= 3, timeout_s=10)

    # Signals: A over, B and C under the band, with the evidence that crossed it.
    states = {s["subject"]["id"]: s["state"] for s in signals if s["kind"] == "imbalance"}
    assert states == {"A": "over", "B": "under", "C": "under"}
    a_signal = next(s for s in signals if s["subject"]["id"] == "A")
    assert a_signal["evidence"]["share"] == pytest.approx(0.5)
    assert a_signal["evidence"]["fair_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(proposal["trigger_signals"]) == {s["signal_id"] for s in signals}

    # Before: the duplicate order was not counted twice.
    before = {row["rep_id"]: row["potential"] for row in proposal["before"]}
    assert before == pytest.approx({"A": 1500.0, "B": 700.0, "C": 800.0})

    # The proposal: minimal number of moves, the locked account stays, every rep inside the band.
    target = TOLERANCE * HYSTERESIS
    assert proposal["status"] == "optimal"
    assert len(proposal["moves"]) == brute_force_min_moves(target)
    assert "a1" not in {move["account_id"] for move in proposal["moves"]}
    for row in proposal["after"]:
        assert abs(row["share"] / row["fair_share"] - 1) <= target + 1e-6, proposal["after"]

    # The alert: on the topic, in the log one line per move, and stored.
    alerts = read_topic(broker.bootstrap_servers, topics.ALERTS, until=lambda found: len(found) >= 1, timeout_s=20)
    assert alerts[0]["proposal_id"] == proposal["proposal_id"]
    assert len(alerts[0]["lines"]) == len(proposal["moves"])
    wait_for(lambda: all(line in worker.log() for line in alerts[0]["lines"]), 10, "the move lines in the log")
    store = Store(worker.db_url)
    stored = store.proposals()
    assert [row.proposal_id for row in stored] == [proposal["proposal_id"]]
    assert stored[0].status == "pending"
    assert len(store.moves(proposal["proposal_id"])) == len(proposal["moves"])

    # Dead letters: both bad messages, unchanged, with a reason that names the field.
    dead = read_topic(broker.bootstrap_servers, topics.DEADLETTER, until=lambda found: len(found) >= 2, timeout_s=10)
    reasons = sorted(d["reason"] for d in dead)
    assert reasons[0].startswith("data.amount: required"), reasons
    assert reasons[1].startswith("value: not valid UTF-8 JSON"), reasons
    assert {d["value"] for d in dead} >= {"{this is not json"}
    assert all(d["topic"] == topics.ORDERS and d["offset"] >= 0 for d in dead)


# The same company with specialised reps: B serves only retail, C only industry, and A at
# most 3 accounts (it has 4). Segments and the cap arrive as events.
REP_PROFILES = {"A": {"max_accounts": 3}, "B": {"segments": ["retail"]}, "C": {"segments": [" industry"]}}
SEGMENTS = {"a1": "retail", "a2": "industry", "a3": "retail", "a4": "industry", "b1": "retail"}
SEGMENTS |= {"c1": "industry", "c2": "industry"}
SERVES = {"A": None, "B": {"retail"}, "C": {"industry"}}  # None: every segment


def brute_force_with_segments(tolerance: float, *, constrained: bool) -> int:
    """Fewest moves with every rep in band, the locked account kept and, when `constrained`,
    only moves to reps serving the account's segment and A's cap held."""
    fair = sum(potential for _, potential, _ in ACCOUNTS.values()) / len(REPS)
    best = None
    for owners in itertools.product(REPS, repeat=len(ACCOUNTS)):
        moved = [(a, owner) for a, owner in zip(ACCOUNTS, owners) if owner != ACCOUNTS[a][0]]
        if any(ACCOUNTS[a][2] for a, _ in moved):
            continue
        if constrained and (
            any(SERVES[owner] is not None and SEGMENTS[a] not in SERVES[owner] for a, owner in moved)
            or owners.count("A") > 3
        ):
            continue
        loads = dict.fromkeys(REPS, 0.0)
        for (_, potential, _), owner in zip(ACCOUNTS.values(), owners):
            loads[owner] += potential
        if all(fair * (1 - tolerance) <= load <= fair * (1 + tolerance) for load in loads.values()):
            best = len(moved) if best is None else min(best, len(moved))
    assert best is not None
    return best


def judged_scenario(broker, start_worker, shape, **env: str):
    """The scenario's well-formed messages, each changed in place by `shape(topic, value)`, and
    an activity in April that moves event time past the warm-up: the worker and its one proposal."""
    worker = start_worker(
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_TOLERANCE=str(TOLERANCE),
        TERRITORY_HYSTERESIS=str(HYSTERESIS),
        TERRITORY_PLANNER_INTERVAL_S="0.3",
        **env,
    )
    messages = [m for m in scenario() if isinstance(m[2], dict) and m[2].get("event_id") != "ord-bad"]
    for topic, _, value in messages:
        assert isinstance(value, dict)
        shape(topic, value)
    produce(broker.bootstrap_servers, [*messages, april_activity()])
    proposals = read_topic(broker.bootstrap_servers, topics.PROPOSALS, until=lambda found: len(found) >= 1)
    assert len(proposals) == 1, worker.log()[-3000:]
    return worker, proposals[0]


def april_activity() -> tuple[str, str, dict]:
    return (
        topics.ACTIVITIES,
        "b1",
        envelope(
            "act-1",
            "activity.logged",
            "2025-04-05T09:00:00+00:00",
            activity_id="v1",
            account_id="b1",
            rep_id="B",
            kind="visit",
            duration_min=60,
            travel_min=30,
        ),
    )


def test_segments_and_caps_sent_as_events_shape_the_proposal(broker, start_worker):
    def shape(topic: str, value: dict) -> None:
        if topic == topics.REPS:
            value["data"] |= REP_PROFILES[value["data"]["rep_id"]]
        elif value["type"] == "account.upserted":
            value["data"]["segment"] = SEGMENTS[value["data"]["account_id"]]

    _, proposal = judged_scenario(broker, start_worker, shape)

    target = TOLERANCE * HYSTERESIS
    fewest = brute_force_with_segments(target, constrained=True)
    # The segments cost a move here: without them the answer would be shorter.
    assert fewest > brute_force_with_segments(target, constrained=False)
    assert proposal["status"] == "optimal" and len(proposal["moves"]) == fewest
    owners = {a: owner for a, (owner, _, _) in ACCOUNTS.items()}
    for move in proposal["moves"]:
        serves = SERVES[move["to_rep"]]
        assert serves is None or SEGMENTS[move["account_id"]] in serves, move
        owners[move["account_id"]] = move["to_rep"]
    assert list(owners.values()).count("A") <= 3
    after = {row["rep_id"]: row for row in proposal["after"]}
    assert after["A"]["accounts"] <= 3
    for row in proposal["after"]:
        assert abs(row["share"] / row["fair_share"] - 1) <= target + 1e-6, proposal["after"]


def test_district_scope_and_a_quota_sent_as_events(broker, start_worker):
    # A and C form district East, B is alone in West and has a quota far above its sales.
    # Company-wide, B would be under the band and take accounts from A; by district, B is
    # balanced (alone), East rebalances inside itself, and B's quota pace is behind.
    district = {"A": "East", "B": "West", "C": "East"}

    def shape(topic: str, value: dict) -> None:
        if topic == topics.REPS:
            value["data"]["district"] = district[value["data"]["rep_id"]]
            if value["data"]["rep_id"] == "B":
                value["data"]["quota"] = 10_000.0  # 700 sold by the end of March: far behind pace

    worker, proposal = judged_scenario(broker, start_worker, shape, TERRITORY_REBALANCE_SCOPE="district")
    assert proposal["moves"] and all(district[m["to_rep"]] == "East" for m in proposal["moves"]), proposal
    assert {m["account_id"] for m in proposal["moves"]} <= {"a2", "a3", "a4"}  # East's, never to or from B
    signals = read_topic(
        broker.bootstrap_servers,
        topics.SIGNALS,
        until=lambda found: any(s["kind"] == "quota_pace" for s in found),
        timeout_s=30,
    )
    imbalanced = {s["subject"]["id"] for s in signals if s["kind"] == "imbalance"}
    assert imbalanced == {"A", "C"}  # B alone in West is its district's fair share
    pace = next(s for s in signals if s["kind"] == "quota_pace")
    assert (pace["subject"]["id"], pace["state"]) == ("B", "behind")
    assert pace["evidence"]["sales_to_date"] == pytest.approx(700.0)
    # Stored, and alerted (the log sink) in words.
    wait_for(
        lambda: pace["signal_id"] in {row.signal_id for row in Store(worker.db_url).signals()}, 20, "the stored signal"
    )
    wait_for(lambda: "B is behind quota pace" in worker.log(), 20, "the quota pace alert in the log")
    assert worker.metric("territory_rep_quota_pace_ratio", {"rep": "B"}) == pytest.approx(
        pace["evidence"]["pace"], rel=1e-3
    )
    assert worker.metric("territory_district_accounts", {"district": "East"}) == 6


def test_rep_leaving_gives_a_coverage_gap_and_a_placement_of_only_their_accounts(broker, start_worker):
    worker = start_worker(
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_PLANNER_INTERVAL_S="0.3",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_REBALANCE_COOLDOWN_S="0",
    )
    produce(broker.bootstrap_servers, scenario())
    wait_for(lambda: worker.metric("territory_intake_events_total") == len(scenario()), 90, "the scenario")
    lat, lon = REPS["C"]
    produce(
        broker.bootstrap_servers,
        [
            (
                topics.REPS,
                "C",
                envelope(
                    "rep-C-leaves",
                    "rep.upserted",
                    "2025-03-01T08:00:00+00:00",
                    rep_id="C",
                    home_lat=lat,
                    home_lon=lon,
                    active=False,
                ),
            )
        ],
    )

    def placement(found: list[dict]) -> bool:
        return any(p.get("mode") == "place" for p in found)

    proposals = read_topic(broker.bootstrap_servers, topics.PROPOSALS, until=placement, timeout_s=60)
    proposal = next(p for p in proposals if p["mode"] == "place")
    signals = read_topic(
        broker.bootstrap_servers,
        topics.SIGNALS,
        until=lambda found: any(s["kind"] == "coverage_gap" for s in found),
        timeout_s=10,
    )
    gap = next(s for s in signals if s["kind"] == "coverage_gap")
    assert gap["subject"]["id"] == "C" and gap["state"] == "open"
    assert gap["evidence"]["accounts_without_rep"] == 2 and gap["evidence"]["account_ids"] == ["c1", "c2"]
    assert proposal["trigger_signals"] == [gap["signal_id"]]
    # Only C's accounts move; everyone else stays put.
    assert sorted(move["account_id"] for move in proposal["moves"]) == ["c1", "c2"]
    assert {move["from_rep"] for move in proposal["moves"]} == {"C"}
    assert {move["to_rep"] for move in proposal["moves"]} <= {"A", "B"}
    assert all("inactive" in move["reason"] for move in proposal["moves"])
    assert {row["rep_id"] for row in proposal["after"]} == {"A", "B"}


def test_weekly_travel_proposal_when_territories_are_balanced_but_crossed(broker, start_worker):
    # A (Berlin) and B (Hamburg) hold four equal accounts each, in balance; but A serves one
    # account in Hamburg and B one in Berlin. With travel proposals on, the first judgement after
    # the warm-up offers the swap: no signal, an info alert, a pending proposal in the store.
    worker = start_worker(
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_PLANNER_INTERVAL_S="0.3",
        TERRITORY_TRAVEL_PROPOSAL_MOVES="3",
    )
    homes = {"A": REPS["A"], "B": REPS["B"]}
    messages = [
        (
            topics.REPS,
            rep,
            envelope(f"rep-{rep}", "rep.upserted", "2025-01-01T08:00:00+00:00", rep_id=rep, home_lat=lat, home_lon=lon),
        )
        for rep, (lat, lon) in homes.items()
    ]
    owners = {f"{city}{n}": ("A" if (city == "ber") != (n == 0) else "B") for city in ("ber", "ham") for n in range(4)}
    for account_id, owner in owners.items():
        lat, lon = homes["A" if account_id.startswith("ber") else "B"]
        messages.append(
            (
                topics.ACCOUNTS,
                account_id,
                envelope(
                    f"acc-{account_id}",
                    "account.upserted",
                    "2025-01-02T08:00:00+00:00",
                    account_id=account_id,
                    lat=lat + 0.01 * int(account_id[-1]),
                    lon=lon,
                    rep_id=owner,
                ),
            )
        )
        messages.append(
            (
                topics.ORDERS,
                account_id,
                envelope(
                    f"ord-{account_id}",
                    "order.placed",
                    "2025-02-15T10:00:00+00:00",
                    order_id=f"o-{account_id}",
                    account_id=account_id,
                    amount=250.0,
                ),
            )
        )
    messages.append(
        (
            topics.ACTIVITIES,
            "ber1",
            envelope(
                "act-1",
                "activity.logged",
                "2025-04-05T09:00:00+00:00",
                activity_id="v1",
                account_id="ber1",
                rep_id="A",
                kind="visit",
                duration_min=60,
                travel_min=10,
            ),
        )
    )
    produce(broker.bootstrap_servers, messages)

    proposals = read_topic(broker.bootstrap_servers, topics.PROPOSALS, until=lambda found: len(found) >= 1)
    assert len(proposals) == 1, worker.log()[-3000:]
    proposal = proposals[0]
    assert proposal["mode"] == "travel" and proposal["trigger_signals"] == [] and proposal["status"] == "optimal"
    assert sorted((m["account_id"], m["to_rep"]) for m in proposal["moves"]) == [("ber0", "A"), ("ham0", "B")]
    assert proposal["travel_km_before"] - proposal["travel_km_after"] == pytest.approx(2 * 255, rel=0.05)
    alerts = read_topic(broker.bootstrap_servers, topics.ALERTS, until=lambda found: len(found) >= 1, timeout_s=20)
    assert alerts[0]["proposal_id"] == proposal["proposal_id"] and alerts[0]["severity"] == "info"
    wait_for(lambda: Store(worker.db_url).proposals("pending"), 20, "the stored travel proposal")
    assert (
        read_topic(broker.bootstrap_servers, topics.SIGNALS, until=lambda found: bool(found), timeout_s=3) == []
    )  # nothing out of balance
