"""A planner days behind catches up in slices: between days the event loop runs other work
(intake, rebalance callbacks), and one call ends after its time budget so the batch it
judges for can be acknowledged (a rebalance waits for unacknowledged batches)."""

from __future__ import annotations

import asyncio
import time

from planner.agents import catch_up


def test_catch_up_yields_between_days_and_stops_at_its_budget():
    days_left = [50]
    others_ran = []

    async def judge_one_day() -> None:
        time.sleep(0.01)  # a judgement is CPU work that does not await
        days_left[0] -= 1

    async def other_work() -> None:
        while days_left[0] > 0:
            others_ran.append(days_left[0])
            await asyncio.sleep(0)

    async def main() -> None:
        other = asyncio.ensure_future(other_work())
        await catch_up(judge_one_day, lambda: days_left[0] > 0, budget_s=0.1)
        other.cancel()

    asyncio.run(main())
    assert 0 < days_left[0] < 50, "one call judges some days, not all 50 at 10 ms each"
    assert len(set(others_ran)) >= 3, "other tasks ran between the days"


def test_catch_up_judges_at_least_once_and_stops_when_caught_up():
    calls = []

    async def judge_one_day() -> None:
        calls.append(1)

    asyncio.run(catch_up(judge_one_day, lambda: len(calls) < 3, budget_s=60))
    assert len(calls) == 3
    asyncio.run(catch_up(judge_one_day, lambda: False, budget_s=0))
    assert len(calls) == 4, "the judgement the caller asked for happens even with no budget"
