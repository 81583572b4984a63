"""CP-SAT building blocks shared by every model in the package (internal).

All models are the same assignment model: a boolean ``x[i, r]`` per account ``i`` and
candidate rep ``r``, exactly one true per account. What differs is the objective and
which side constraints are added: bands, a worst-deviation variable, contiguity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from rebalancer.problem import UNPLACED, Problem

#: Deviations from fair share are optimised in millionths of fair share.
#: Constraint coefficients reach DEVIATION_RESOLUTION * RESOLUTION = 1e15 < 2**53.
DEVIATION_RESOLUTION = 10**6
#: Below this many seconds a solve is not worth starting.
MIN_SOLVE_SECONDS = 0.05
#: The travel objective counts metres (times each rep's travel_factor) ...
TRAVEL_UNITS_PER_KM = 1000
#: ... unless the largest total it could reach would pass this many units (huge factors):
#: then coarser units keep every sum of coefficients far below 2**63.
_TRAVEL_TOTAL_LIMIT = 10**15

Assignment = dict[tuple[int, int], cp_model.IntVar]


def assignment_model(problem: Problem) -> tuple[cp_model.CpModel, Assignment]:
    """Variables, exactly one candidate rep per account, locked accounts kept, every rep
    within its account caps (min_accounts, max_accounts) and workload caps (min_workload,
    max_workload)."""
    p = problem
    model = cp_model.CpModel()
    # Only candidate pairs get a variable: that is where travel limits, segments and
    # pruning act.
    x: Assignment = {}
    for i, account in enumerate(p.accounts):
        for r in p.candidates[i]:
            x[i, r] = model.new_bool_var(f"x[{account.account_id},{p.reps[r].rep_id}]")
    for i in range(p.n_accounts):
        model.add_exactly_one(x[i, r] for r in p.candidates[i])
        if p.locked[i]:
            model.add(x[i, p.current[i]] == 1)
    # The caps are here so that every model (fewest moves, curve, placement, best balance
    # at M moves, compromise) respects them; reps without caps get no constraint.
    for r, rep in enumerate(p.reps):
        if rep.min_accounts is None and rep.max_accounts is None:
            continue
        held = p.reachable_by[r]
        least = rep.min_accounts or 0
        most = rep.max_accounts if rep.max_accounts is not None else max(len(held), least)
        model.add_linear_constraint(cp_model.LinearExpr.sum([x[i, r] for i in held]), least, most)
    for r, rep in enumerate(p.reps):
        if rep.min_workload is None and rep.max_workload is None:
            continue
        held = p.reachable_by[r]
        work_least, work_most = p.work_least[r], p.work_most[r]
        work = cp_model.LinearExpr.weighted_sum([x[i, r] for i in held], [p.work[i] for i in held])
        if work_most is None:
            model.add(work >= work_least)
        elif work_least > work_most:  # a min equal to the max, rounded inwards past it: nothing fits
            model.add_bool_or([])
        else:
            model.add_linear_constraint(work, work_least, work_most)
    return model, x


def rep_load(problem: Problem, x: Mapping[tuple[int, int], cp_model.IntVar], r: int, m: int = 0) -> Any:
    """Scaled load of metric ``m`` served by rep ``r``."""
    served = problem.reachable_by[r]
    return cp_model.LinearExpr.weighted_sum([x[i, r] for i in served], [problem.values[m][i] for i in served])


def add_bands(model: cp_model.CpModel, problem: Problem, x: Assignment) -> None:
    """Every rep inside fair share * (1 ± tolerance) on every metric."""
    for m in range(len(problem.metrics)):
        for r in range(problem.n_reps):
            model.add_linear_constraint(rep_load(problem, x, r, m), problem.los[m][r], problem.his[m][r])


def moves_expr(problem: Problem, x: Assignment) -> Any:
    """Number of accounts whose rep changes (placements included)."""
    stays = [x[i, cur] for i, cur in enumerate(problem.current) if cur != UNPLACED]
    return problem.n_accounts - cp_model.LinearExpr.sum(stays)


def moved_value_expr(problem: Problem, x: Assignment, weights: Sequence[int]) -> Any:
    """Total ``weights`` of the accounts whose rep changes."""
    placed = [i for i, cur in enumerate(problem.current) if cur != UNPLACED]
    unplaced_total = sum(weights[i] for i, cur in enumerate(problem.current) if cur == UNPLACED)
    return unplaced_total + cp_model.LinearExpr.weighted_sum(
        [1 - x[i, problem.current[i]] for i in placed], [weights[i] for i in placed]
    )


def travel_expr(problem: Problem, x: Assignment) -> Any:
    """Metres from the new reps' homes to the accounts they take: the tie-break."""
    pairs = [(i, r) for i in range(problem.n_accounts) for r in problem.candidates[i] if r != problem.current[i]]
    return cp_model.LinearExpr.weighted_sum(
        [x[i, r] for i, r in pairs], [round(float(problem.distance_km[i, r]) * 1000) for i, r in pairs]
    )


def travel_costs(problem: Problem) -> tuple[NDArray[np.int64], float]:
    """Accounts x reps: what serving the account costs the rep in the travel objective,
    straight-line km from the rep's home times the rep's ``travel_factor``, in integer
    units (metres, see ``_TRAVEL_TOTAL_LIMIT``); and the units per km. The model and every
    check read this one matrix, so they agree to the unit."""
    factors = np.array([rep.travel_factor for rep in problem.reps], dtype=np.float64)
    weighted = problem.distance_km * factors[None, :]
    largest = float(weighted.max(axis=1).sum()) if weighted.size else 0.0
    units = float(TRAVEL_UNITS_PER_KM)
    if largest * units > _TRAVEL_TOTAL_LIMIT:
        units = _TRAVEL_TOTAL_LIMIT / largest
    costs: NDArray[np.int64] = np.rint(weighted * units).astype(np.int64)
    return costs, units


def total_travel_expr(problem: Problem, x: Assignment, costs: NDArray[np.int64]) -> Any:
    """Total travel of every account (staying or not) in ``costs`` units: the travel objective."""
    pairs = list(x)
    return cp_model.LinearExpr.weighted_sum([x[pair] for pair in pairs], [int(costs[pair]) for pair in pairs])


def total_travel(costs: NDArray[np.int64], assignment: Sequence[int]) -> int:
    """:func:`total_travel_expr`'s value for ``assignment``; accounts without a rep
    (UNPLACED) count nothing."""
    rows = [i for i, r in enumerate(assignment) if r != UNPLACED]
    if not rows:
        return 0
    return int(costs[rows, [assignment[i] for i in rows]].sum())


def add_worst_deviation(model: cp_model.CpModel, problem: Problem, x: Assignment) -> cp_model.IntVar:
    """A variable bounding every rep's ``|load / fair - 1|`` on every metric, in
    millionths (see :func:`worst_deviation`)."""
    p = problem
    bound = 0
    for m in range(len(p.metrics)):
        total = sum(p.values[m])
        for f in p.fairs[m]:
            if round(f) > 0:
                bound = max(bound, _deviation_units(round(f), max(round(f), total - round(f))))
    worst = model.new_int_var(0, bound, "worst")
    for m in range(len(p.metrics)):
        for r in range(p.n_reps):
            fair = round(p.fairs[m][r])
            if fair > 0:
                scaled = DEVIATION_RESOLUTION * rep_load(p, x, r, m)
                model.add(scaled - fair * worst <= DEVIATION_RESOLUTION * fair)
                model.add(scaled + fair * worst >= DEVIATION_RESOLUTION * fair)
    return worst


def worst_deviation(problem: Problem, assignment: Sequence[int]) -> int:
    """The largest ``|load / fair - 1|`` over reps and metrics, in millionths, rounded
    up: the value :func:`add_worst_deviation` gives ``assignment``."""
    worst = 0
    for m, loads in enumerate(problem.metric_loads(assignment)):
        for f, load in zip(problem.fairs[m], loads):
            fair = round(f)
            if fair > 0:
                worst = max(worst, _deviation_units(fair, abs(load - fair)))
    return worst


def _deviation_units(fair: int, off: int) -> int:
    return -(-DEVIATION_RESOLUTION * off // fair)


def hint(model: cp_model.CpModel, problem: Problem, x: Assignment, assignment: Sequence[int]) -> None:
    """A complete hint (CP-SAT makes the most of those): every variable gets a value."""
    model.clear_hints()
    for (i, r), var in x.items():
        model.add_hint(var, r == assignment[i])


def read(solver: cp_model.CpSolver, problem: Problem, x: Assignment) -> list[int]:
    """Rep index per account in the solver's solution (call only on OPTIMAL/FEASIBLE)."""
    return [next(r for r in problem.candidates[i] if solver.boolean_value(x[i, r])) for i in range(problem.n_accounts)]


def solver(num_workers: int, seconds: float) -> cp_model.CpSolver:
    """A solver with the worker count and time limit always set."""
    s = cp_model.CpSolver()
    s.parameters.num_workers = num_workers
    s.parameters.max_time_in_seconds = max(MIN_SOLVE_SECONDS, seconds)
    # OR-Tools 9.15 presolve ("inclusion" of at-most-one and linear constraints) can
    # certify a non-optimal solution as optimal on models of exactly this shape: seen
    # here in the brute-force tests with large coefficients, and reported upstream
    # (google/or-tools#5293). Switching that step off fixed every case we have.
    s.parameters.presolve_inclusion_work_limit = 0
    return s


def solve(s: cp_model.CpSolver, model: cp_model.CpModel) -> Any:
    code = s.solve(model)
    if code == cp_model.MODEL_INVALID:
        raise RuntimeError(f"rebalancer built an invalid CP-SAT model: {model.validate()}")
    return code


def found(code: Any) -> bool:
    return code in (cp_model.OPTIMAL, cp_model.FEASIBLE)
