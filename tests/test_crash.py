"""Crash safety: SIGKILL the worker five times at random moments during a
stream of more than 100k events, restart it each time, and end in the state of a clean run
with no signal, proposal or alert lost or sent twice.

The clean run is the same intake and planner code over the same events without Kafka
(`territory.backtest.run_backtest`), which `tests/test_backtest.py` shows finds what a
live worker finds. The crashing run is a real worker on the embedded broker, alerting to
the `territory.alerts` topic and to a signed webhook.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from alerts.alert import alert_from_signal
from simulator import default_shock, generate_company, generate_events
from core import topics
from core.river_codec import load_array
from planner.session import saved_planner_state
from territory.backtest import BacktestResult, run_backtest
from core.settings import Settings
from tests.kafka_io import TOMBSTONE, metric_samples, produce, read_all, wait_for
from tests.services import in_own_process, webhook_receiver
from tests import records

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

APP_ID = "crash"
KILLS = 5
SECRET = "crash-test-webhook-secret"
# Cooldown 0: every judgement with open signals proposes, in the worker as in the clean run
# (the cooldown is wall-clock time live but event time offline). Throttle 0: every change
# of an incident goes out, so a repeat would show at the receiver.
PLANNING = {
    "TERRITORY_REBALANCE_COOLDOWN_S": "0",
    "TERRITORY_SOLVER_TIME_LIMIT_S": "3",
    "TERRITORY_SOLVER_WORKERS": "1",
}
# The learned potential of a month depends a little on how much later data the planner
# already holds when it learns that month (an opportunity's last update or a closure that
# arrives afterwards changes the features it was learned with), and that differs between a
# backtest, a live run and a live run with restarts: measured under 1 % per rep.
POTENTIAL_TOLERANCE = 0.02
# Volatile fields of a snapshot: where and when it was produced, not what the account is.
VOLATILE = ("kind", "occurred_at", "source", "orders", "times")


def stream() -> list[tuple[str, str, dict]]:
    company = generate_company(seed=21, n_reps=8, n_accounts=3300)
    events = generate_events(company, months=20, shock=default_shock(company), seed=21)
    assert len(events) >= 100_000
    return events


def account_states(snapshots) -> dict[str, dict]:
    final: dict[str, dict] = {}
    for value in snapshots:
        if value.get("kind") == "account":
            final[value["account_id"]] = {k: v for k, v in value.items() if k not in VOLATILE}
    return final


def changelog_table(bootstrap: str, topic: str) -> dict:
    """The newest value of every key on a Faust table's changelog (what a restart recovers; a
    tombstone deletes the key)."""
    table = {json.loads(raw_key): value for raw_key, value in read_all(bootstrap, topic)}
    return {key: value for key, value in table.items() if value is not TOMBSTONE}


def assert_same_state(live, clean, path: str) -> None:
    """Equal JSON state, floats within 1e-9 relative (sums of the same orders in another order),
    also inside the arrays a detector saves as bytes."""
    if isinstance(clean, dict) and "$ndarray" in clean and isinstance(live, dict) and "$ndarray" in live:
        live, clean = load_array(live).tolist(), load_array(clean).tolist()
    if isinstance(clean, float) or isinstance(live, float):
        assert live == pytest.approx(clean, rel=1e-9, abs=1e-9), path
    elif isinstance(clean, dict):
        assert isinstance(live, dict) and live.keys() == clean.keys(), f"{path}: {sorted(live)} != {sorted(clean)}"
        for key in clean:
            assert_same_state(live[key], clean[key], f"{path}.{key}")
    elif isinstance(clean, (list, tuple)):
        assert isinstance(live, (list, tuple)) and len(live) == len(clean), path
        for n, (a, b) in enumerate(zip(live, clean)):
            assert_same_state(a, b, f"{path}[{n}]")
    else:
        assert live == clean, path


def planning_settings() -> Settings:
    """The workers' PLANNING, for the fault tests' clean runs."""
    return Settings.from_env(PLANNING)


def clean_run() -> BacktestResult:
    """The stream without Kafka or crashes (run in a process of its own, beside the live run)."""
    return run_backtest(stream(), planning_settings())


def test_sigkill_five_times_ends_as_a_clean_run(broker, start_worker, tmp_path):
    events = stream()
    settings = planning_settings()
    rng = random.Random(8)
    with in_own_process(clean_run) as clean_future, webhook_receiver(SECRET) as receiver:
        env = {
            "TERRITORY_APP_ID": APP_ID,
            "TERRITORY_ALERT_SINKS": "kafka,webhook",
            "TERRITORY_WEBHOOK_URL": receiver.url,
            "TERRITORY_WEBHOOK_SECRET": SECRET,
            "TERRITORY_ALERT_THROTTLE_S": "0",
            **PLANNING,
        }
        # The whole stream is on the broker before the worker starts, and the worker is killed
        # while it works through it. (Produced while it is consumed, a partition the intake has
        # momentarily read to its end stops holding the planner's watermark back, so a day can
        # be judged before that partition's next orders of the day arrive: a known limit of
        # the caught-up rule, in the session note; it would make this comparison flaky.)
        produce(broker.bootstrap_servers, events)
        worker = start_worker(**env)
        kills: list[float] = []
        started = time.monotonic()
        for _ in range(KILLS):
            # A random moment once the worker is busy: mid-batch, mid-judgement or mid-solve.
            wait_for(lambda: worker.metric("territory_intake_events_total") > 0, 120, "the worker to consume")
            time.sleep(rng.uniform(1.0, 12.0))
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(10)
            kills.append(round(time.monotonic() - started, 1))
            worker = start_worker(**env)

        bootstrap = broker.bootstrap_servers
        # Read to the end: every input partition reports no lag. (Not the group's committed
        # offsets: after a rebalance in the middle of a commit Faust can leave a partition's
        # committed offset behind; the events it re-reads later are duplicates, nothing is lost.)
        input_partitions = broker.partitions * len(topics.INPUT_TOPICS)
        wait_for(
            lambda: metric_samples(worker.metrics_port, "territory_intake_lag_messages") == [0.0] * input_partitions,
            600,
            "the last worker to read every input",
        )
        last = datetime.fromisoformat(max(envelope["occurred_at"] for _, _, envelope in events))
        judged_last = (last - timedelta(days=settings.lateness_days)).timestamp()
        # The planner judges its way day by day (a 3 s solve per proposal): over 180 s when
        # another broker test shares the two cores.
        wait_for(
            lambda: worker.metric("territory_planner_event_time_watermark_seconds") >= judged_last,
            420,
            "the planner to judge the last event time",
        )
        clean = clean_future.result(timeout=600)
        assert clean.proposals and any(s["kind"] == "imbalance" for s in clean.signals), "the stream must alert"
        wait_for(
            lambda: (
                worker.metric("territory_alerts_outbox_pending") == 0
                and worker.metric("territory_store_proposals", {"state": "pending"})
                + worker.metric("territory_store_proposals", {"state": "superseded"})
                >= len(clean.proposals)
            ),
            120,
            "every alert delivered",
        )

        # Accounts (profile, owner, rolling sales, minutes) equal the clean run's.
        live_accounts = account_states(value for _, value in read_all(bootstrap, topics.STATE))
        clean_accounts = account_states(clean.snapshots.values())
        assert live_accounts.keys() == clean_accounts.keys()
        differences = {
            account_id: {
                field: (value, clean_accounts[account_id].get(field))
                for field, value in state.items()
                if value != clean_accounts[account_id].get(field)
            }
            for account_id, state in live_accounts.items()
            if state != clean_accounts[account_id]
        }
        assert not differences, f"{len(differences)} accounts differ (live, clean): {list(differences.items())[:3]}"
        assert worker.metric("territory_intake_events_total", {"outcome": "deadlettered"}) == 0

        # Per-rep aggregates of the last judgement equal the clean run's: accounts, workload and
        # fair share exactly; the learned potential within POTENTIAL_TOLERANCE (see there).
        for rep_id, aggregate in clean.aggregates.items():
            assert worker.metric("territory_rep_accounts", {"rep": rep_id}) == aggregate.accounts
            assert worker.metric("territory_rep_workload_minutes", {"rep": rep_id}) == pytest.approx(
                aggregate.workload_min
            )
            assert worker.metric("territory_rep_fair_share_ratio", {"rep": rep_id}) == pytest.approx(
                aggregate.fair_share
            )
            assert worker.metric("territory_rep_potential", {"rep": rep_id}) == pytest.approx(
                aggregate.potential, rel=POTENTIAL_TOLERANCE
            )
            assert worker.metric("territory_rep_potential_share_ratio", {"rep": rep_id}) == pytest.approx(
                aggregate.share, rel=POTENTIAL_TOLERANCE
            )

        # The planner's checkpoint (what a restart recovers, and what every restart above did
        # recover) equals the clean run's: the detectors' saved states and the regional daily
        # sales themselves, not only figures recomputed from the accounts. Sums of orders may
        # differ in the last bits (batches add in another order); the model and its drift
        # detector learn from potentials that differ within POTENTIAL_TOLERANCE.
        changelog = f"{APP_ID}-plan-meta-changelog"
        clean_state = saved_planner_state(clean.checkpoint)
        live_meta = changelog_table(bootstrap, changelog)
        live_state = saved_planner_state(live_meta)
        assert sorted(live_state) == sorted(clean_state)
        for part, live in live_state.items():
            # The model and its drift detector learn from potentials that differ within
            # POTENTIAL_TOLERANCE: the same version is all that is compared.
            if part in ("model", "detector.model_drift"):
                assert live["version"] == clean_state[part]["version"], part
                continue
            assert_same_state(live, clean_state[part], part)
        assert live_meta["watermark"]["first_event_at"] == clean.checkpoint["watermark"]["first_event_at"]

        # Signals: the same ones, each stored once (ids name what they say).
        engine = create_engine(worker.db_url)
        with engine.connect() as connection:
            stored_signals = [row[0] for row in connection.execute(text("SELECT signal_id FROM signals"))]
            stored_proposals = dict(connection.execute(text("SELECT proposal_id, alerted_at FROM proposals")).all())
        engine.dispose()
        assert sorted(stored_signals) == sorted(s["signal_id"] for s in clean.signals)
        # Proposals: the same ones, each stored and alerted once.
        assert set(stored_proposals) == {p["proposal_id"] for p in clean.proposals}
        assert all(alerted_at is not None for alerted_at in stored_proposals.values())
        kafka_alerts = Counter(key for key, _ in read_all(bootstrap, topics.ALERTS))
        assert kafka_alerts == Counter(p.encode() for p in stored_proposals)

        # Webhook: every incident arrived, none twice with the same content, and each one's
        # last word is the clean run's last signal for it.
        assert not receiver.rejected
        last_clean = {}
        for clean_signal in clean.signals:
            alert = alert_from_signal(records.signal(clean_signal))
            last_clean[alert.key] = alert.status
        delivered: dict[str, list[dict]] = {}
        for body in receiver.received:
            delivered.setdefault(body["key"], []).append(body)
        for key, status in last_clean.items():
            assert key in delivered, f"incident {key} never delivered"
            assert delivered[key][-1]["status"] == status, key
        for key, bodies in delivered.items():
            contents = [
                json.dumps({k: b[k] for k in ("status", "severity", "summary", "description")}, sort_keys=True)
                for b in bodies
            ]
            assert all(a != b for a, b in zip(contents, contents[1:])), f"{key} delivered twice: {contents}"
    print(
        f"\n{len(events)} events, SIGKILL at {kills} s; {len(stored_signals)} signals, "
        f"{len(stored_proposals)} proposals, {len(receiver.received)} webhook deliveries"
    )
