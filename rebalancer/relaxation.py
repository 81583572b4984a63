"""The linear relaxation of the fewest-changes model (internal).

Solved with GLOP's dual simplex it takes well under a second at 20k accounts x 50 reps
(docs/ARCHITECTURE.md's naive CP-SAT model needs 12-17 s just to build there), and it
gives two things CP-SAT cannot hand back:

- a valid lower bound on the number of moves (or the moved potential): the rounded-up
  optimum of a relaxation;
- where the change happens: in practice nearly every account is integral in the LP
  optimum, and the few hundred accounts it moves (fully or partly) are the ones a
  good integer answer moves too. The reduced CP-SAT model starts from them.

Contiguity is left out: without it the LP is still a relaxation, so the bound holds.
The account caps are in, as in every CP-SAT model.

The travel objective (:func:`solve_travel_relaxation`) has its LP too, on the same
constraints plus the budget of moves: its optimum bounds the travel, and its answer is
integral but for a few accounts (a basic solution has at most as many fractional
accounts as binding band, cap and budget constraints), which is where the reduced
CP-SAT model of the travel objective looks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.linear_solver import pywraplp

from rebalancer.problem import UNPLACED, Problem

#: Scaled values (total 1e9) are divided by this in the LP to keep coefficients near 1.
_LP_SCALE = 1e6
#: Relative slack taken off the LP optimum before rounding up, against solver tolerances.
_BOUND_SLACK = 1e-6


@dataclass(frozen=True)
class Relaxation:
    bound: int  # valid lower bound on the objective
    moved: list[int]  # accounts the LP moves, fully or partly
    arcs: set[tuple[int, int]]  # (from rep, to rep) pairs along which the LP moves anything
    rounded: list[int]  # per account its rep with the largest LP value (may break bands)
    # GLOP found the LP infeasible (then the other fields are empty). A verdict within
    # floating-point tolerances, not a proof: GLOP has called feasible LPs infeasible
    # (google/or-tools#3850). The caller may act on it (try wider candidates) but does not
    # report it as the answer.
    infeasible: bool = False


@dataclass(frozen=True)
class TravelRelaxation:
    bound: int  # valid lower bound on the total travel for the budget, in cost units
    rounded: list[int]  # per account its rep with the largest LP value (may break bands)
    fractional: list[int]  # accounts the LP splits between reps
    infeasible: bool = False  # GLOP's verdict (see Relaxation.infeasible)


def solve_relaxation(problem: Problem, weights: Sequence[int], *, time_limit_s: float) -> Relaxation | None:
    """The LP optimum; a Relaxation with ``infeasible`` set when GLOP finds the LP
    infeasible; None when it is not solved in time (or fails otherwise)."""
    p = problem
    built = _assignment_lp(p, time_limit_s)
    if built is None:
        return None
    solver, x = built
    unit = max(max(weights, default=1), 1)  # objective coefficients in (0, 1]
    fixed = sum(w for w, cur in zip(weights, p.current) if cur == UNPLACED)
    solver.Minimize(
        solver.Sum([(weights[i] / unit) * (1 - x[i, cur]) for i, cur in enumerate(p.current) if cur != UNPLACED])
    )
    code = solver.Solve()
    if code == pywraplp.Solver.INFEASIBLE:
        return Relaxation(bound=0, moved=[], arcs=set(), rounded=[], infeasible=True)
    if code != pywraplp.Solver.OPTIMAL:
        return None
    optimum = fixed + solver.Objective().Value() * unit
    bound = max(0, math.ceil(optimum * (1 - _BOUND_SLACK) - 1e-6))
    moved = [i for i, cur in enumerate(p.current) if cur == UNPLACED or x[i, cur].solution_value() < 1 - 1e-6]
    rounded = [max(p.candidates[i], key=lambda r: x[i, r].solution_value()) for i in range(p.n_accounts)]
    arcs = {
        (p.current[i], r)
        for i in moved
        for r in p.candidates[i]
        if r != p.current[i] and x[i, r].solution_value() > 1e-6
    }
    return Relaxation(bound=bound, moved=moved, rounded=rounded, arcs=arcs)


def solve_travel_relaxation(
    problem: Problem, costs: NDArray[np.int64], budget: int, *, time_limit_s: float
) -> TravelRelaxation | None:
    """The LP of the least travel (``costs``: cpsat.travel_costs) with at most ``budget``
    moves; None when it is not solved in time (or fails otherwise)."""
    p = problem
    built = _assignment_lp(p, time_limit_s)
    if built is None:
        return None
    solver, x = built
    placed = [(i, cur) for i, cur in enumerate(p.current) if cur != UNPLACED]
    placements = p.n_accounts - len(placed)
    # At most `budget` moves: placements, and placed accounts leaving their rep.
    solver.Add(solver.Sum([x[i, cur] for i, cur in placed]) >= len(placed) - (budget - placements))
    unit = max(max((int(costs[pair]) for pair in x), default=1), 1)  # objective coefficients in [0, 1]
    solver.Minimize(solver.Sum([var * (int(costs[pair]) / unit) for pair, var in x.items()]))
    code = solver.Solve()
    if code == pywraplp.Solver.INFEASIBLE:
        return TravelRelaxation(bound=0, rounded=[], fractional=[], infeasible=True)
    if code != pywraplp.Solver.OPTIMAL:
        return None
    optimum = solver.Objective().Value() * unit
    bound = max(0, math.ceil(optimum * (1 - _BOUND_SLACK) - 1e-6))
    rounded = [max(p.candidates[i], key=lambda r: x[i, r].solution_value()) for i in range(p.n_accounts)]
    fractional = [i for i in range(p.n_accounts) if x[i, rounded[i]].solution_value() < 1 - 1e-6]
    return TravelRelaxation(bound=bound, rounded=rounded, fractional=fractional)


def _assignment_lp(
    problem: Problem, time_limit_s: float
) -> tuple[pywraplp.Solver, dict[tuple[int, int], pywraplp.Variable]] | None:
    """GLOP with the assignment's variables (one per account and candidate rep, in [0, 1])
    and constraints: one rep per account, locks, every band, the account caps."""
    p = problem
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # GLOP ships with OR-Tools; guard anyway
        return None
    solver.SetSolverSpecificParametersAsString("use_dual_simplex: true")
    solver.SetTimeLimit(max(1, int(time_limit_s * 1000)))

    x = {(i, r): solver.NumVar(0.0, 1.0, "") for i in range(p.n_accounts) for r in p.candidates[i]}
    for i in range(p.n_accounts):
        solver.Add(solver.Sum([x[i, r] for r in p.candidates[i]]) == 1)
        if p.locked[i]:
            x[i, p.current[i]].SetLb(1.0)
    for m in range(len(p.metrics)):
        for r in range(p.n_reps):
            load = solver.Sum([x[i, r] * (p.values[m][i] / _LP_SCALE) for i in p.reachable_by[r]])
            solver.Add(load >= p.los[m][r] / _LP_SCALE)
            solver.Add(load <= p.his[m][r] / _LP_SCALE)
    # The account caps, as in every CP-SAT model (cpsat.assignment_model).
    for r, rep in enumerate(p.reps):
        held = solver.Sum([x[i, r] for i in p.reachable_by[r]])
        if rep.min_accounts is not None:
            solver.Add(held >= rep.min_accounts)
        if rep.max_accounts is not None:
            solver.Add(held <= rep.max_accounts)
    # And the workload caps (scaled like the bands, to keep the LP well conditioned).
    for r, rep in enumerate(p.reps):
        if rep.min_workload is None and rep.max_workload is None:
            continue
        work = solver.Sum([x[i, r] * (p.work[i] / _LP_SCALE) for i in p.reachable_by[r]])
        if rep.min_workload is not None:
            solver.Add(work >= p.work_least[r] / _LP_SCALE)
        most = p.work_most[r]
        if most is not None:
            solver.Add(work <= most / _LP_SCALE)
    return solver, x
