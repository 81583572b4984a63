"""The planner's checkpoint is data: a crafted one runs no code, a damaged one is refused and
the planner starts clean, and free-text categories cannot grow it past a Kafka record."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import random

import pytest

from core.river_codec import CheckpointError
from detectors import MarketShockDetector, ModelDriftDetector
from potential import MAX_LEVELS, PotentialModel
from planner.session import PlanningSession, saved_planner_state
from simulator import default_shock, generate_company, generate_events
from territory.backtest import run_backtest
from core.settings import Settings


class WritesAFile:
    """Unpickling this runs code: it creates the file named."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def trained_model() -> PotentialModel:
    model = PotentialModel()
    rng = random.Random(3)
    rows = [
        {
            "sales_12m": rng.uniform(0, 1e5),
            "sales_24m": rng.uniform(1, 1e5),
            "history_months": 24.0,
            "industry": rng.choice(["retail", "food", "metal"]),
            "region": "DE-01",
        }
        for _ in range(50)
    ]
    model.learn_many(rows, [row["sales_12m"] for row in rows])
    return model


@pytest.mark.parametrize(
    "make, key",
    [
        (lambda: trained_model().state_dict(), "river"),
        (lambda: ModelDriftDetector().state_dict(), "adwin"),
    ],
)
def test_a_pickle_in_a_checkpoint_is_refused_and_runs_no_code(tmp_path, make, key):
    marker = tmp_path / "pwned"
    state = make()
    state[key] = base64.b64encode(pickle.dumps(WritesAFile(str(marker)))).decode("ascii")
    loader = PotentialModel() if key == "river" else ModelDriftDetector()
    with pytest.raises(ValueError):
        loader.load_state_dict(json.loads(json.dumps(state)))
    assert not marker.exists(), "loading the checkpoint ran code"


@pytest.fixture(scope="module")
def backtest_meta() -> dict:
    company = generate_company(seed=5, n_reps=4, n_accounts=250)
    events = generate_events(company, months=15, shock=default_shock(company), seed=5)
    result = run_backtest(events, Settings(rebalance_cooldown_s=0, solver_time_limit_s=2, solver_workers=1))
    return json.loads(json.dumps(result.checkpoint))  # what a changelog gives back


def test_a_restored_checkpoint_equals_what_was_saved(backtest_meta):
    saved = saved_planner_state(backtest_meta)
    assert saved["model"] is not None and saved["detector.market_shock"]["regions"]
    assert any(part.startswith("orders.") and saved[part]["sales"] for part in saved), "days not judged yet"
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=dict(backtest_meta))
    assert session.restore()
    assert json.dumps(session.planner.state_dict(), sort_keys=True) == json.dumps(saved, sort_keys=True)
    assert session.judged_at is not None and session.watermark.first_event_at is not None


def test_a_class_outside_the_allowlist_is_refused(backtest_meta):
    state = json.loads(json.dumps(backtest_meta["planner.detector.market_shock"]))
    region = next(iter(state["regions"].values()))
    region["detectors"] = [{"$object": "subprocess.Popen", "attrs": {"args": "touch /tmp/x"}}] * 2
    with pytest.raises(CheckpointError, match="not allowed"):
        MarketShockDetector(measure=state["measure"]).load_state_dict(state)


@pytest.mark.parametrize("damage", ["truncated array", "foreign class", "not a mapping"])
def test_a_damaged_checkpoint_is_refused_with_a_log_line_and_the_planner_starts_clean(backtest_meta, damage, caplog):
    meta = json.loads(json.dumps(backtest_meta))
    model = meta["planner.model"]
    if damage == "truncated array":
        profile = model["river"]["profile"]["attrs"]
        profile["_ss_arr"]["$ndarray"]["zlib"] = profile["_ss_arr"]["$ndarray"]["zlib"][:40]
    elif damage == "foreign class":
        model["river"]["mae"] = {"$object": "builtins.eval", "attrs": {}}
    else:
        meta["planner.detector.market_shock"] = "garbage"
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=meta)
    with caplog.at_level(logging.ERROR, logger="planner.session"):
        assert not session.restore()
    assert "planner checkpoint refused, starting clean" in caplog.text
    assert session.judged_at is None and session.planner.state_dict()["judged_day"] is None


def test_free_text_industries_do_not_grow_the_model_checkpoint():
    """Each industry was a one-hot column of three square river matrices (and a segment
    prior): a few hundred distinct industries made the checkpoint megabytes."""
    model = PotentialModel()
    rng = random.Random(7)
    for batch in range(4):
        rows = [
            {
                "sales_12m": rng.uniform(0, 1e5),
                "sales_24m": rng.uniform(1, 1e5),
                "history_months": 24.0,
                "industry": f"industry {rng.randrange(400)}",
                "region": f"region {rng.randrange(100)}",
            }
            for _ in range(300)
        ]
        model.learn_many(rows, [row["sales_12m"] for row in rows])
    state = model.state_dict()
    assert all(len(values) <= MAX_LEVELS for values in state["levels"].values())
    assert len(json.dumps(state)) < 400_000
    # Values without a column of their own are still valued (as the shared "other" level).
    assert (
        model.predict_many(
            [
                {
                    "industry": "industry never seen",
                    "region": "region 1",
                    "sales_12m": 5.0,
                    "sales_24m": 5.0,
                    "history_months": 24.0,
                }
            ]
        )[0]
        >= 0
    )


def test_no_pickle_left_in_the_product():
    roots = ["core", "monitor", "detectors", "rebalancer", "alerts", "territory", "connectors"]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    offenders = [
        os.path.join(root, name)
        for top in roots
        for root, _, files in os.walk(os.path.join(here, top))
        for name in files
        if name.endswith(".py") and "import pickle" in open(os.path.join(root, name)).read()
    ]
    assert offenders == []


def test_a_part_larger_than_a_record_is_saved_in_pieces_and_restored_whole(backtest_meta):
    """A part over the broker's record limit was skipped, so a restart restored an older one."""
    limit = 3_000
    restored = PlanningSession(Settings(), accounts={}, reps={}, meta=dict(backtest_meta))
    assert restored.restore()
    meta: dict = {}
    session = PlanningSession(Settings(max_record_bytes=limit), accounts={}, reps={}, meta=meta)
    session.planner, session.watermark, session.judged_at = restored.planner, restored.watermark, restored.judged_at
    session.checkpoint()
    assert max(len(json.dumps(value)) for value in meta.values()) <= limit
    again = PlanningSession(Settings(), accounts={}, reps={}, meta=json.loads(json.dumps(meta)))
    assert again.restore()
    assert json.dumps(again.planner.state_dict(), sort_keys=True) == json.dumps(
        restored.planner.state_dict(), sort_keys=True
    )


def test_the_planner_judges_once_a_day_of_event_time_and_at_the_end_of_the_streams():
    """A batch that keeps the judged moment within the day is folded in, not judged; a new
    day is judged; so is any move once every stream is read to its end."""
    from datetime import datetime, timedelta, timezone

    settings = Settings()
    session = PlanningSession(settings, accounts={}, reps={}, meta={}, expected_sources=["o:0"])
    lateness = timedelta(days=settings.lateness_days)
    at = lambda day, hour: datetime(2025, 3, day, hour, tzinfo=timezone.utc) + lateness  # noqa: E731
    assert not session.due  # nothing seen yet
    session.watermark.observe("o:0", at(3, 9))
    assert session.due and session.judge() is not None
    session.watermark.observe("o:0", at(3, 15))
    assert not session.due  # same day
    session.watermark.observe("o:0", at(4, 1))
    assert session.due
    session.judge()
    session.watermark.observe("o:0", at(4, 2))
    session.watermark.caught_up("o:0")
    assert session.due  # all read: the last moment is judged


def test_a_planner_that_is_days_behind_judges_each_day_in_turn():
    from datetime import datetime, timedelta, timezone

    settings = Settings()
    session = PlanningSession(settings, accounts={}, reps={}, meta={}, expected_sources=["o:0"])
    lateness = timedelta(days=settings.lateness_days)
    session.watermark.observe("o:0", datetime(2025, 3, 1, 10, tzinfo=timezone.utc) + lateness)
    session.judge()
    session.watermark.observe("o:0", datetime(2025, 3, 4, 9, tzinfo=timezone.utc) + lateness)
    judged = []
    while session.behind:
        session.judge()
        judged.append(session.judged_at.isoformat())
    assert judged == [
        "2025-03-02T00:00:00+00:00",
        "2025-03-03T00:00:00+00:00",
        "2025-03-04T09:00:00+00:00",
    ]
    assert not session.due


def test_a_change_of_owner_within_the_day_is_judged_at_once():
    """An approved move arrives as an owner change with no newer event time: the planner
    judges it at once (its figures and alerts follow), while new sales alone wait for the day."""
    from datetime import datetime, timezone

    session = PlanningSession(Settings(), accounts={}, reps={}, meta={}, expected_sources=["o:0"])
    account = {"kind": "account", "account_id": "a1", "rep_id": "R1", "known": True, "closed": False}
    stamp = {"source": "o:0", "occurred_at": datetime(2025, 3, 5, 9, tzinfo=timezone.utc).isoformat()}
    session.apply([{**account, **stamp}])
    session.judge()
    session.apply([{**account, **stamp, "monthly_sales": {"2025-03": 10.0}}])
    assert not session.due
    session.apply([{**account, **stamp, "rep_id": "R2"}])
    assert session.due
    session.judge()
    assert not session.due


class RecordingMeta(dict):
    """A checkpoint table that remembers which records were written."""

    def __init__(self, *args):
        super().__init__(*args)
        self.written: list[str] = []

    def __setitem__(self, key, value):
        self.written.append(key)
        super().__setitem__(key, value)


def test_a_batch_folded_in_without_a_judgement_rewrites_only_the_daily_sales(backtest_meta):
    """Between judgements only the daily sales change: the checkpoint encodes and writes the day's
    (and the watermark), not every detector's state; what a restart reads is still whole."""
    from planner.planner import ORDER_PARTS

    meta = RecordingMeta(backtest_meta)
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=meta)
    assert session.restore()
    session.checkpoint()  # after a restore every part is written once
    day = session.judged_at.date().isoformat()
    order = {"kind": "account", "account_id": "A-new", "region": "DE-BY", "lat": 48.1, "lon": 11.6, "known": True}
    stamp = {"source": "orders:0", "occurred_at": session.judged_at.isoformat(), "stream_times_follow": True}
    meta.written.clear()
    encoded = []
    for detector in session.planner.detectors:
        detector.state_dict = lambda name=detector.name, whole=detector.state_dict: encoded.append(name) or whole()
    session.apply([{**order, **stamp, "orders": [[day, 125.0, "e-1"]]}])
    session.checkpoint()
    assert encoded == [], "no detector's state is encoded for a batch that was only folded in"
    written = {key.split("#")[0] for key in meta.written}
    assert written <= {f"planner.{part}" for part in ORDER_PARTS} | {f"planner.orders.{day}", "watermark", "planner"}
    assert f"planner.orders.{day}" in written
    restored = PlanningSession(Settings(), accounts={}, reps={}, meta=dict(meta))
    assert restored.restore()
    assert json.dumps(restored.planner.state_dict(), sort_keys=True) == json.dumps(
        session.planner.state_dict(), sort_keys=True
    )
    assert restored.planner.state_dict()[f"orders.{day}"]["sales"]["DE-BY"][1] >= 1


def test_a_planner_taken_over_without_new_input_still_knows_which_streams_are_read():
    """The intake tells the planner "caught up" once per change, not again: a planner restored
    by another worker from the checkpoint, with nothing new to read, must not wait for a
    report that never comes (its watermark stayed behind the last event for good)."""
    from datetime import datetime, timezone

    settings = Settings()
    meta: dict = {}
    session = PlanningSession(settings, accounts={}, reps={}, meta=meta, expected_sources=["o:0", "o:1"])
    session.watermark.observe("o:0", datetime(2025, 3, 5, 9, tzinfo=timezone.utc))
    session.watermark.observe("o:1", datetime(2025, 3, 1, 9, tzinfo=timezone.utc))
    session.watermark.caught_up("o:0")
    session.watermark.caught_up("o:1")
    before = session.watermark.current
    session.checkpoint()
    taken_over = PlanningSession(settings, accounts={}, reps={}, meta=json.loads(json.dumps(meta)))
    assert taken_over.restore()
    assert taken_over.watermark.all_caught_up
    assert taken_over.watermark.current == before


def test_the_input_offsets_applied_are_saved_and_restored_with_the_checkpoint(backtest_meta):
    """What the planner has applied of its input travels with the checkpoint: a restart reads
    on from there, not from wherever the consumer group's offset was left (planner.input_position)."""
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=dict(backtest_meta))
    assert session.restore()
    assert session.input_offsets == {}  # a backtest reads no topic
    session.input_offsets["territory.state:0"] = 1171
    session.checkpoint()
    again = PlanningSession(Settings(), accounts={}, reps={}, meta=json.loads(json.dumps(session.meta)))
    assert again.restore()
    assert again.input_offsets == {"territory.state:0": 1171}
    # No checkpoint at all: nothing was applied, so reading starts at the beginning.
    fresh = PlanningSession(Settings(), accounts={}, reps={}, meta={})
    assert not fresh.restore() and fresh.input_offsets.get("territory.state:0", 0) == 0


class ChangelogMeta(RecordingMeta):
    """A checkpoint table that also remembers the bytes written and the records deleted."""

    def __init__(self, *args):
        super().__init__(*args)
        self.bytes_written = 0
        self.deleted: list[str] = []

    def __setitem__(self, key, value):
        self.bytes_written += len(json.dumps(value))
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.deleted.append(key)
        super().__delitem__(key)

    def pop(self, key, *default):
        if key in self:
            self.deleted.append(key)
        return super().pop(key, *default)


def test_the_checkpoint_of_a_catch_up_grows_with_the_days_a_batch_touches_not_with_the_days_pending():
    """A worker catching up holds the orders of every day it has not judged yet. A batch must
    rewrite the days it touched, and judging a day must drop that day's record: rewriting every
    pending day on each batch and each judged day made a long catch-up quadratic."""
    from datetime import date, datetime, timedelta, timezone

    meta = ChangelogMeta()
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=meta, expected_sources=["o:0"])
    first = date(2025, 3, 3)
    account = {"kind": "account", "region": "DE-BY", "lat": 48.1, "lon": 11.6, "known": True, "rep_id": "R1"}
    history = [
        {
            **account,
            "account_id": f"a{n}",
            "source": "o:0",
            "occurred_at": datetime.combine(first + timedelta(days=n), datetime.min.time(), timezone.utc).isoformat(),
            "orders": [[(first + timedelta(days=n)).isoformat(), 100.0 + n, f"e-{n}-{k}"] for k in range(20)],
        }
        for n in range(120)
    ]
    session.apply(history[:1])
    session.judge()  # judged on the first day: the other 119 days wait
    session.apply(history[1:])
    session.checkpoint()
    meta.written.clear()
    meta.bytes_written = 0
    late = {**history[5], "orders": [[history[5]["orders"][0][0], 7.0, "e-late"]]}
    session.apply([late])
    session.checkpoint()
    written = {key.split("#")[0] for key in meta.written}
    assert written <= {f"planner.orders.{first + timedelta(days=5)}", "planner", "watermark", "planner.first_order_day"}
    assert meta.bytes_written < 20_000, "one day's orders, not the 120 days pending"

    while session.judged_at.date() <= first:  # day by day, until the first day with orders is complete
        session.judge()
        session.checkpoint()
    assert f"planner.orders.{first}" in meta.deleted, "a judged day's record is dropped"
    assert f"planner.orders.{first + timedelta(days=1)}" in meta, "a day not judged yet is kept"
    restored = PlanningSession(Settings(), accounts={}, reps={}, meta=json.loads(json.dumps(dict(meta))))
    assert restored.restore()
    days = sorted(restored.planner.pending_days())
    assert days == sorted(session.planner.pending_days()) and len(days) == 119
    assert json.dumps(
        restored.planner.state_dict(only=[f"orders.{day}" for day in days]), sort_keys=True
    ) == json.dumps(session.planner.state_dict(only=[f"orders.{day}" for day in days]), sort_keys=True)


def test_a_checkpoint_with_the_orders_in_whole_parts_is_read_and_rewritten_by_day(backtest_meta):
    """Checkpoints written before the orders were kept a day a record hold them in three whole
    parts: they are read, and the next checkpoint writes them by day and drops the old parts."""
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=dict(backtest_meta))
    assert session.restore()
    state = session.planner.state_dict()
    days = sorted(name for name in state if name.startswith("orders."))
    assert days, "the backtest leaves days not judged yet"
    legacy = dict(backtest_meta)
    daily_sales: dict = {}
    for name in days:
        day = name.removeprefix("orders.")
        for region, value in state[name]["sales"].items():
            daily_sales.setdefault(region, {})[day] = value
        del legacy[f"planner.{name}"]
    legacy["planner.daily_sales"] = daily_sales
    legacy["planner.daily_cells"] = {name.removeprefix("orders."): state[name]["cells"] for name in days}
    legacy["planner.observed_orders"] = {name.removeprefix("orders."): state[name]["ids"] for name in days}
    parts = [p for p in legacy["planner"]["parts"] if not p.startswith("orders.")]
    legacy["planner"] = {**legacy["planner"], "parts": parts + ["daily_cells", "daily_sales", "observed_orders"]}

    meta = ChangelogMeta(json.loads(json.dumps(legacy)))
    old = PlanningSession(Settings(), accounts={}, reps={}, meta=meta)
    assert old.restore()
    assert json.dumps(old.planner.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    old.checkpoint()
    assert {"planner.daily_sales", "planner.daily_cells", "planner.observed_orders"} <= set(meta.deleted)
    assert all(f"planner.{name}" in meta for name in days)
