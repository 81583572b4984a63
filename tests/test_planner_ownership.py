"""Who owns what changed (an approval, a new account, a rep gone): judged at once, but never
more than half of the planner's time. Loading a large company adds new accounts in every
batch, and each judgement reads the whole company: judging each batch at once left the
planner judging most of the time and applying little (a million accounts: 170 snapshots a
second against the intake's 1,900)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.clock import ManualClock
from core.settings import Settings
from planner.session import PlanningSession

AT = datetime(2025, 4, 1, 9, tzinfo=timezone.utc)


def snapshot(account_id: str, rep_id: str) -> dict:
    return {
        "kind": "account",
        "source": "crm.accounts:0",
        "occurred_at": AT.isoformat(),
        "account_id": account_id,
        "lat": 52.5,
        "lon": 13.4,
        "rep_id": rep_id,
        "known": True,
    }


def rep(rep_id: str) -> dict:
    row = {"rep_id": rep_id, "home_lat": 52.5, "home_lon": 13.4, "active": True, "updated_at": AT.isoformat()}
    return {"kind": "rep", "source": "crm.reps:0", "occurred_at": AT.isoformat(), **row}


def test_an_ownership_change_waits_while_the_planner_has_applied_for_less_time_than_it_judged():
    clock = ManualClock(AT)
    session = PlanningSession(Settings(), accounts={}, reps={}, meta={}, clock=clock)
    session.apply([rep("R1"), rep("R2"), snapshot("a1", "R1")])
    evaluate = session.planner.evaluate

    def slow_evaluate(*args, **kwargs):  # a judgement of a large company takes its time
        clock.advance(timedelta(seconds=5))
        return evaluate(*args, **kwargs)

    session.planner.evaluate = slow_evaluate  # type: ignore[method-assign]
    assert session.due
    session.judge()
    session.apply([snapshot("a2", "R2")])  # a new account: who owns what changed
    assert session.territories_changed and not session.due
    clock.advance(timedelta(seconds=4))
    assert not session.due
    clock.advance(timedelta(seconds=1))  # as long applying (or idle) as the last judgement took
    assert session.due
    session.judge()
    assert not session.territories_changed and not session.due


def test_an_ownership_change_is_judged_at_once_when_judging_is_quick():
    clock = ManualClock(AT)
    session = PlanningSession(Settings(), accounts={}, reps={}, meta={}, clock=clock)
    session.apply([rep("R1"), rep("R2"), snapshot("a1", "R1")])
    session.judge()
    session.apply([snapshot("a1", "R2")])  # an approval moved it
    assert session.due
