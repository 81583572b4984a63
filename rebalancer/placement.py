"""Placement-only rebalancing: when a rep leaves, place their accounts and nothing else.

:func:`minimal_moves` may move any account to restore the band. When a rep leaves,
the first question is narrower: where do the *orphaned* accounts go, if everyone else
stays put? :func:`place_accounts` answers it with a small CP-SAT model that shares the
package's scaling, candidates, building blocks and result type: the least possible
worst deviation from fair share first, then the least travel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

from ortools.sat.python import cp_model

from core.formatting import distinct_percents
from rebalancer import cpsat
from rebalancer.heuristics import greedy_placement
from rebalancer.model import _PRIMARY_TIME_SHARE, _check_arguments, _moves
from rebalancer.problem import UNPLACED, Problem, build_problem, placement_only
from rebalancer.values import Account, RebalanceResult, Rep, balance_of

__all__ = ["place_accounts"]

#: Deviations from fair share are optimised in millionths of fair share: distinct
#: placements closer than that in worst deviation count as equal (travel decides).
DEVIATION_RESOLUTION = cpsat.DEVIATION_RESOLUTION


def place_accounts(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float = 0.10,
    candidate_reps: int = 3,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
) -> RebalanceResult:
    """Place the orphaned accounts (those whose rep left) and move nothing else.

    An account is orphaned when its ``rep_id`` is None or not among ``reps`` (leave
    inactive reps out of ``reps``). Every other account keeps its rep, locked or not.
    Each orphan goes to one of the ``candidate_reps`` reps nearest to it whose
    ``max_travel_km`` reaches it or, if none does, to the nearest rep (its move's
    reason says so).

    The placement minimises, in this order: the largest relative deviation from fair
    share over all reps, ``max |potential / fair - 1|`` (fair share weighted by
    ``capacity_fte`` as in :func:`minimal_moves`, deviations resolved to 1e-6), then
    the total travel from the chosen reps' homes to the placed accounts.

    Parameters
    ----------
    accounts, reps
        The snapshot. Account and rep ids must be unique; ``reps`` must not be empty.
    tolerance
        Allowed relative deviation from fair share, e.g. 0.10 for ±10%. It does not
        constrain the placement; it decides whether the result needs an explanation.
    candidate_reps
        How many nearest reps within reach each orphan may go to.
    time_limit_s
        Wall-clock budget for the whole call. Up to 80% goes to the worst deviation,
        the rest (and whatever that leaves unused) to the travel tie-break.
    num_workers
        CP-SAT search workers.

    Returns
    -------
    RebalanceResult
        ``status`` is "balanced" when there is nothing to place (no moves, no solver
        run), else "optimal" (least worst deviation proven) or "feasible" (not proven
        within the time limit; the explanation gives the proven bound). A placement is
        always returned. ``objective`` and ``bound`` are the number of moves, which is
        the number of orphans, so ``gap`` is 0. When some rep stays outside
        ``fair * (1 ± tolerance)``, ``explanation`` names the worst such rep and by how
        much it misses its band, and says a full rebalance (:func:`minimal_moves`)
        would be needed: whether to run one is the caller's decision.

    Examples
    --------
    R9 left. A3 and A4 are both nearest to R1, but R1 can only take A3 without going
    over its fair share, so A4 goes to R2:

    >>> from rebalancer import Account, Rep, place_accounts
    >>> reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.5, 5.0)]
    >>> accounts = [
    ...     Account("A1", 40, rep_id="R1", lat=45.0, lon=5.0),
    ...     Account("A2", 30, rep_id="R2", lat=45.5, lon=5.0),
    ...     Account("A3", 10, rep_id="R9", lat=45.1, lon=5.0),
    ...     Account("A4", 20, rep_id="R9", lat=45.2, lon=5.0),
    ... ]
    >>> result = place_accounts(accounts, reps, tolerance=0.10)
    >>> result.status, result.objective, result.bound, result.gap, result.explanation
    ('optimal', 2.0, 2.0, 0.0, None)
    >>> for m in result.moves:
    ...     print(m.account_id, m.from_rep, "->", m.to_rep, "|", m.reason)
    A3 R9 -> R1 | owner R9 inactive; nearest reps R1 (11 km), R2 (44 km)
    A4 R9 -> R2 | owner R9 inactive; nearest reps R1 (22 km), R2 (33 km)
    >>> [(b.rep_id, b.potential, round(b.deviation, 2)) for b in result.after]
    [('R1', 50.0, 0.0), ('R2', 50.0, 0.0)]
    """
    start = time.perf_counter()
    _check_arguments(
        accounts, reps, tolerance, ("potential",), "moves", None, candidate_reps, time_limit_s, num_workers
    )
    before = balance_of(accounts, reps)
    full = build_problem(accounts, reps, tolerance=tolerance, candidate_reps=candidate_reps)
    problem = placement_only(full)
    orphans = [i for i, cur in enumerate(problem.current) if cur == UNPLACED]

    if not orphans:
        return RebalanceResult(
            status="balanced",
            moves=(),
            before=before,
            after=before,
            objective=0.0,
            bound=0.0,
            gap=0.0,
            seconds=time.perf_counter() - start,
            tolerance=tolerance,
            explanation=_out_of_band(
                problem, problem.current, "there are no orphaned accounts to place", "rep {rep} is at"
            ),
        )

    # The greedy placement is complete: every orphan has at least one candidate here.
    greedy = greedy_placement(problem)
    assert greedy is not None
    status, assignment, proven = _solve_placement(
        problem,
        greedy,
        worst_deadline=start + _PRIMARY_TIME_SHARE * time_limit_s,
        deadline=start + time_limit_s,
        num_workers=num_workers,
    )

    reasons = {problem.accounts[i].account_id: _where(full, i) for i in orphans}
    moves = tuple(
        replace(m, reason=f"{m.reason}; {reasons[m.account_id]}") for m in _moves(problem, assignment, before)
    )
    n = len(orphans)
    notes = [
        _out_of_band(
            problem,
            assignment,
            f"no placement of the {n} orphaned account{'s' if n > 1 else ''} keeps every rep "
            f"within ±{tolerance:.0%} of fair share",
            "even the best placement leaves rep {rep} at"
            if status == "optimal"
            else "the best placement found leaves rep {rep} at",
        )
    ]
    if status == "feasible":
        found = cpsat.worst_deviation(problem, assignment) / DEVIATION_RESOLUTION
        notes.append(
            f"the largest deviation from fair share found, {found:.2%}, is not proven the least "
            f"possible within {time_limit_s:g} s"
            + (f" (proven at least {proven / DEVIATION_RESOLUTION:.2%})" if proven > 0 else "")
        )
    return RebalanceResult(
        status=status,
        moves=moves,
        before=before,
        after=balance_of(accounts, reps, {m.account_id: m.to_rep for m in moves}),
        objective=float(n),
        bound=float(n),
        gap=0.0,
        seconds=time.perf_counter() - start,
        tolerance=tolerance,
        explanation="; ".join(note for note in notes if note) or None,
    )


def _solve_placement(
    problem: Problem,
    greedy: list[int],
    *,
    worst_deadline: float,
    deadline: float,
    num_workers: int,
) -> tuple[str, list[int], int]:
    """Least worst deviation first, then least travel keeping it (two solves of one
    model, so the order of the objectives is strict). Returns the status of the first
    objective, the assignment (rep index per account) and the proven lower bound on
    the worst deviation, in millionths of fair share."""
    p = problem
    model, x = cpsat.assignment_model(p)
    # worst: the largest deviation from fair share over reps, in millionths of fair share.
    worst = cpsat.add_worst_deviation(model, p, x)
    # Travel of the placed accounts (everyone else has only their current rep).
    travel = cpsat.travel_expr(p, x)

    # Objective 1: the least worst deviation, warm-started from the greedy placement.
    model.minimize(worst)
    cpsat.hint(model, p, x, greedy)
    model.add_hint(worst, cpsat.worst_deviation(p, greedy))
    solver = cpsat.solver(num_workers, worst_deadline - time.perf_counter())
    code = cpsat.solve(solver, model)
    if cpsat.found(code):
        assignment = cpsat.read(solver, p, x)
        proven = min(math.ceil(solver.best_objective_bound - 1e-6), cpsat.worst_deviation(p, assignment))
    else:  # no solution in time: the greedy placement still stands
        assignment, proven = greedy, 0
    best = cpsat.worst_deviation(p, assignment)
    status = "optimal" if code == cp_model.OPTIMAL or proven >= best else "feasible"

    # Objective 2: least travel, keeping the worst deviation at that value.
    remaining = deadline - time.perf_counter()
    if remaining >= cpsat.MIN_SOLVE_SECONDS:
        model.add(worst <= best)
        model.minimize(travel)
        cpsat.hint(model, p, x, assignment)
        model.add_hint(worst, best)
        solver = cpsat.solver(num_workers, remaining)
        if cpsat.found(cpsat.solve(solver, model)):
            solution = cpsat.read(solver, p, x)
            # Belt and braces: only a verified solution replaces the one we hold.
            if cpsat.worst_deviation(p, solution) <= best:
                assignment = solution

    return status, assignment, proven


# --------------------------------------------------------------------------- helpers


def _where(problem: Problem, i: int) -> str:
    """Where orphan ``i`` may go, for its move's reason; ``problem`` is the full one,
    whose candidates respect every rep's max_travel_km."""
    p = problem
    reps = p.reps
    if not p.candidates[i]:
        r = int(p.distance_km[i].argmin())
        return f"no rep within max_travel_km; placed with the nearest, {reps[r].rep_id} ({p.distance_km[i, r]:.0f} km)"
    near = ", ".join(f"{reps[r].rep_id} ({p.distance_km[i, r]:.0f} km)" for r in p.candidates[i])
    return f"nearest rep{'s' if len(p.candidates[i]) > 1 else ''} {near}"


def _out_of_band(problem: Problem, assignment: Sequence[int], context: str, subject: str) -> str | None:
    """``context``, then ``subject`` (with ``{rep}``) naming the rep furthest out of band
    under ``assignment`` and by how much; None when every rep is within band."""
    p = problem
    loads = p.loads(assignment)
    outside = [r for r in range(p.n_reps) if p.violation(r, loads[r]) > 0]
    if not outside:
        return None
    # The largest deviation; on a tie (up to float noise) the first rep in `reps`.
    r = max(outside, key=lambda r: round(abs(p.relative(r, loads[r]) - 1), 9))
    share = p.relative(r, loads[r])
    over = loads[r] > p.hi[r]
    limit = 1 + p.tolerance if over else 1 - p.tolerance
    have, need = distinct_percents(share, limit)
    others = len(outside) - 1
    more = f"; {others} more rep{'s are' if others > 1 else ' is'} out of band" if others else ""
    return (
        f"{context}: {subject.format(rep=p.reps[r].rep_id)} {have} of fair share "
        f"({'at most' if over else 'at least'} {need} allowed), "
        f"{abs(share - limit) * 100:.1f} percentage points {'over' if over else 'under'} its band{more}; "
        "a full rebalance (minimal_moves) would be needed to bring every rep within band"
    )
