"""A rebalance request's solve runs beside the judging: what it reads is read at the request,
the event loop goes on while CP-SAT works, and a failed solve does not stop the next."""

from __future__ import annotations

import asyncio
import sys
import threading
from datetime import timedelta

from planner.agents import SolveInFlight
from planner.session import PlanningSession
from tests.test_planner_travel import WEDNESDAY, judge, planner, solved


def test_a_solve_made_at_the_request_proposes_for_that_moment_after_judging_went_on():
    p = planner(travel_proposal_moves=2)
    request = judge(p, WEDNESDAY).rebalance
    assert request is not None and request.mode == "travel"
    session = PlanningSession(p.settings, accounts={}, reps={}, meta={})
    session.planner, session.judged_at = p, WEDNESDAY
    solve = session.solver(request)
    session.judged_at = WEDNESDAY + timedelta(days=9)  # the planner judged on while it waited
    proposal = solve()
    reference = solved(planner(travel_proposal_moves=2), request)
    assert proposal is not None and reference is not None
    assert proposal.event_time == WEDNESDAY
    assert proposal.proposal_id == reference.proposal_id
    assert [m.account_id for m in proposal.moves] == [m.account_id for m in reference.moves]


def test_the_event_loop_runs_while_a_solve_works_and_the_proposal_follows():
    async def scenario() -> None:
        release, published, ticks = threading.Event(), [], 0

        async def publish(proposal) -> None:
            published.append(proposal)

        solves = SolveInFlight(publish)
        await solves.start(lambda: "proposal" if release.wait(10) else "timed out")
        for _ in range(5):  # judging goes on meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and solves.in_flight and published == []
        release.set()
        await solves.finish()
        assert published == ["proposal"] and not solves.in_flight

    asyncio.run(scenario())


def test_a_failed_solve_is_reported_and_the_next_one_is_solved():
    async def scenario() -> None:
        published, errors, done = [], [], []

        async def publish(proposal) -> None:
            published.append(proposal)

        solves = SolveInFlight(
            publish, on_error=lambda: errors.append(sys.exc_info()[0]), on_done=lambda: done.append(1)
        )
        await solves.start(lambda: 1 / 0)
        await solves.start(lambda: "next")  # waits for the failed one first
        await solves.finish()
        assert errors == [ZeroDivisionError] and published == ["next"] and len(done) == 2

    asyncio.run(scenario())
