"""Domain values and the minimal-move rebalancing model (OR-Tools CP-SAT).

Read :func:`minimal_moves` top to bottom: shortcuts that need no solver (already
balanced, provably infeasible), the greedy repair and lower bound, then
:func:`_solve_cp_sat`, which builds the model as data, variables, constraints,
objective, solve, read the solution.
"""

from __future__ import annotations

import math
import numbers
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ortools.sat.python import cp_model

from rebalancer.heuristics import Repair, explain_infeasible, greedy_repair, lower_bound, pcts, tightest_rep
from rebalancer.problem import UNPLACED, Problem, build_problem

__all__ = [
    "STATUSES",
    "Account",
    "Move",
    "RebalanceResult",
    "Rep",
    "RepBalance",
    "balance_of",
    "minimal_moves",
]

#: Values of :attr:`RebalanceResult.status`. "optimal" and "feasible" refer to the
#: number of moves (the primary objective); "balanced" means nothing had to be done.
STATUSES = ("optimal", "feasible", "infeasible", "unknown", "balanced")

#: Share of ``time_limit_s`` the search for the fewest moves may use; the rest (and
#: anything it leaves unused) goes to the travel tie-break.
_MOVES_TIME_SHARE = 0.8
#: Below this many seconds a solve is not worth starting.
_MIN_SOLVE_SECONDS = 0.05


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Account:
    """A customer account. ``rep_id`` None, or a rep not among the reps given to
    :func:`minimal_moves`, means the account must be placed."""

    account_id: str
    potential: float
    workload: float = 0.0
    lat: float = 0.0
    lon: float = 0.0
    rep_id: str | None = None
    locked: bool = False

    def __post_init__(self) -> None:
        where = f"account {self.account_id}"
        _require(
            _finite(self.potential) and self.potential >= 0,
            f"{where}: potential must be a finite number >= 0, got {self.potential!r}",
        )
        _require(
            _finite(self.workload) and self.workload >= 0,
            f"{where}: workload must be a finite number >= 0, got {self.workload!r}",
        )
        _require(
            _finite(self.lat) and -90 <= self.lat <= 90,
            f"{where}: lat must be in [-90, 90], got {self.lat!r}",
        )
        _require(
            _finite(self.lon) and -180 <= self.lon <= 180,
            f"{where}: lon must be in [-180, 180], got {self.lon!r}",
        )


@dataclass(frozen=True)
class Rep:
    """A sales rep: home base, capacity in FTE (fair share is proportional to it) and
    an optional travel limit for accounts newly assigned to them."""

    rep_id: str
    home_lat: float
    home_lon: float
    capacity_fte: float = 1.0
    max_travel_km: float | None = None

    def __post_init__(self) -> None:
        where = f"rep {self.rep_id}"
        _require(
            _finite(self.home_lat) and -90 <= self.home_lat <= 90,
            f"{where}: home_lat must be in [-90, 90], got {self.home_lat!r}",
        )
        _require(
            _finite(self.home_lon) and -180 <= self.home_lon <= 180,
            f"{where}: home_lon must be in [-180, 180], got {self.home_lon!r}",
        )
        _require(
            _finite(self.capacity_fte) and self.capacity_fte > 0,
            f"{where}: capacity_fte must be a finite number > 0 (leave a rep without capacity out of `reps`), "
            f"got {self.capacity_fte!r}",
        )
        _require(
            self.max_travel_km is None or (_finite(self.max_travel_km) and self.max_travel_km >= 0),
            f"{where}: max_travel_km must be None (no limit) or a finite number >= 0, got {self.max_travel_km!r}",
        )


@dataclass(frozen=True)
class Move:
    """One proposed change of rep for one account."""

    account_id: str
    from_rep: str | None
    to_rep: str
    potential: float
    workload: float
    distance_km: float  # from to_rep's home to the account
    reason: str


@dataclass(frozen=True)
class RepBalance:
    """A rep's load against their fair share. With zero total potential, share and
    deviation are 0."""

    rep_id: str
    accounts: int
    potential: float
    share: float  # potential / total potential of all accounts
    fair_share: float  # capacity_fte / total capacity
    deviation: float  # share / fair_share - 1


@dataclass(frozen=True)
class RebalanceResult:
    """A rebalancing proposal with its before/after balance and solver figures."""

    status: str  # one of STATUSES
    moves: tuple[Move, ...]
    before: tuple[RepBalance, ...]
    after: tuple[RepBalance, ...]  # equals before when there is no solution
    objective: float | None  # number of moves found
    bound: float | None  # best proven lower bound on the number of moves
    gap: float | None  # (objective - bound) / max(objective, 1)
    seconds: float
    tolerance: float
    explanation: str | None = None  # for "infeasible" / "unknown": which rep, which constraint

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists of dicts), for Kafka messages and storage."""
        return {
            "status": self.status,
            "moves": [asdict(m) for m in self.moves],
            "before": [asdict(b) for b in self.before],
            "after": [asdict(b) for b in self.after],
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "tolerance": self.tolerance,
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RebalanceResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=data["status"],
            moves=tuple(Move(**m) for m in data["moves"]),
            before=tuple(RepBalance(**b) for b in data["before"]),
            after=tuple(RepBalance(**b) for b in data["after"]),
            objective=data["objective"],
            bound=data["bound"],
            gap=data["gap"],
            seconds=data["seconds"],
            tolerance=data["tolerance"],
            explanation=data.get("explanation"),
        )


# --------------------------------------------------------------------------- balance


def balance_of(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    assignment: Mapping[str, str | None] | None = None,
) -> tuple[RepBalance, ...]:
    """Each rep's accounts, potential and deviation from their capacity-weighted fair
    share, in the order of ``reps``.

    ``assignment`` maps account_id to rep_id and overrides ``Account.rep_id``; accounts
    it does not mention keep their own rep. Accounts without a rep in ``reps`` serve no
    one but still count in the total potential, so shares then sum to less than 1.
    """
    total = math.fsum(a.potential for a in accounts)
    capacity = math.fsum(rep.capacity_fte for rep in reps)
    counts = {rep.rep_id: 0 for rep in reps}
    served: dict[str, list[float]] = {rep.rep_id: [] for rep in reps}
    for a in accounts:
        rep_id = assignment.get(a.account_id, a.rep_id) if assignment is not None else a.rep_id
        if rep_id in served:
            counts[rep_id] += 1
            served[rep_id].append(a.potential)

    balances = []
    for rep in reps:
        potential = math.fsum(served[rep.rep_id])
        share = potential / total if total > 0 else 0.0
        fair_share = rep.capacity_fte / capacity
        balances.append(
            RepBalance(
                rep_id=rep.rep_id,
                accounts=counts[rep.rep_id],
                potential=potential,
                share=share,
                fair_share=fair_share,
                deviation=share / fair_share - 1 if total > 0 else 0.0,
            )
        )
    return tuple(balances)


# --------------------------------------------------------------------------- solve


def minimal_moves(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float = 0.10,
    candidate_reps: int = 3,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
) -> RebalanceResult:
    """The fewest account moves that bring every rep within ``tolerance`` of their fair
    share of potential; among those, the least travel for the moved accounts.

    A rep's fair potential is ``total potential * capacity_fte / total capacity``; the
    band is ``fair * (1 ± tolerance)``. A move is an account whose rep changes; an
    account whose rep is None or not in ``reps`` must be placed, and each placement
    counts as a move. Locked accounts keep their current rep (if it is in ``reps``).
    An account may go to its current rep or to one of the ``candidate_reps`` reps
    nearest to it whose ``max_travel_km`` reaches it.

    Bands are checked on potentials scaled to integers (see ``rebalancer.problem``): a
    rep reported inside its band may lie outside the float band by at most
    ``0.5 * k / 1e9`` of the total potential, for a rep with ``k`` accounts.

    Parameters
    ----------
    accounts, reps
        The snapshot. Account and rep ids must be unique; ``reps`` must not be empty.
    tolerance
        Allowed relative deviation from fair share, e.g. 0.10 for ±10%.
    candidate_reps
        How many nearest other reps each account may move to.
    time_limit_s
        Wall-clock budget for the whole call, model building included. Up to 80% goes
        to finding the fewest moves, the rest to the travel tie-break.
    num_workers
        CP-SAT search workers; 2 beat 8 on the 2-core target machines.

    Returns
    -------
    RebalanceResult
        ``status`` is "balanced" (nothing to do, no solver run), "optimal" (fewest
        moves proven), "feasible" (a solution, not proven fewest; see ``gap``),
        "infeasible" or "unknown" (no solution within the time limit); the last two
        carry an ``explanation`` naming a rep and the constraint that fails.

    Examples
    --------
    >>> from rebalancer import Account, Rep, minimal_moves
    >>> reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 0.0)]
    >>> accounts = [
    ...     Account("A1", potential=50, rep_id="R1"),
    ...     Account("A2", potential=30, rep_id="R1"),
    ...     Account("A3", potential=20, rep_id="R2"),
    ... ]
    >>> result = minimal_moves(accounts, reps, tolerance=0.10)
    >>> result.status, result.objective, result.bound
    ('optimal', 1.0, 1.0)
    >>> [(m.account_id, m.from_rep, m.to_rep, m.reason) for m in result.moves]
    [('A2', 'R1', 'R2', 'R1 over fair share by 60%; R2 under by 60%')]
    >>> [(b.rep_id, b.potential, round(b.deviation, 2)) for b in result.after]
    [('R1', 50.0, 0.0), ('R2', 50.0, 0.0)]
    """
    start = time.perf_counter()
    _check_arguments(accounts, reps, tolerance, candidate_reps, time_limit_s, num_workers)
    before = balance_of(accounts, reps)
    problem = build_problem(accounts, reps, tolerance=tolerance, candidate_reps=candidate_reps)

    def result(
        status: str,
        assignment: Sequence[int] | None = None,
        *,
        bound: int | None = None,
        explanation: str | None = None,
    ) -> RebalanceResult:
        moves = _moves(problem, assignment, before) if assignment is not None else ()
        if assignment is None:
            after = before
        else:
            after = balance_of(accounts, reps, {m.account_id: m.to_rep for m in moves})
        objective = float(len(moves)) if assignment is not None else None
        return RebalanceResult(
            status=status,
            moves=moves,
            before=before,
            after=after,
            objective=objective,
            bound=float(bound) if bound is not None else None,
            gap=(objective - bound) / max(objective, 1.0) if objective is not None and bound is not None else None,
            seconds=time.perf_counter() - start,
            tolerance=tolerance,
            explanation=explanation,
        )

    # Nothing to do: every rep inside its band and no account waiting for a rep.
    if problem.is_balanced(problem.current):
        return result("balanced", problem.current, bound=0)

    # Provably impossible, whatever the solver would do: say which rep and why.
    explanation = explain_infeasible(problem)
    if explanation is not None:
        return result("infeasible", explanation=explanation)

    repair = greedy_repair(problem)
    bound = lower_bound(problem)
    outcome = _solve_cp_sat(
        problem,
        repair,
        bound,
        moves_deadline=start + _MOVES_TIME_SHARE * time_limit_s,
        deadline=start + time_limit_s,
        num_workers=num_workers,
    )
    if outcome.assignment is not None:
        return result(outcome.status, outcome.assignment, bound=outcome.bound)
    if outcome.status == "infeasible":
        compromise = _closest_compromise(
            problem,
            _current_with_placements(problem, repair),
            deadline=start + time_limit_s,
            num_workers=num_workers,
        )
        explanation = (
            f"no assignment keeps every rep within ±{tolerance:.0%} of fair share when each account "
            f"may only stay or move to one of its {candidate_reps} nearest reps within reach; "
            + (compromise or tightest_rep(problem))
        )
        return result("infeasible", explanation=explanation)
    stuck = repair.stuck_rep if repair.stuck_rep is not None else 0
    load = problem.relative(stuck, problem.loads(repair.assignment)[stuck])
    explanation = (
        f"no solution found within {time_limit_s:g} s; the greedy repair stalled with rep "
        f"{reps[stuck].rep_id} at {load:.0%} of fair share (band {1 - tolerance:.0%}-{1 + tolerance:.0%}); "
        "a longer time limit, a larger tolerance or more candidate_reps may help"
    )
    return result("unknown", bound=bound, explanation=explanation)


@dataclass(frozen=True)
class _Outcome:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    assignment: list[int] | None  # rep index per account when there is a solution
    bound: int | None  # proven lower bound on moves


def _solve_cp_sat(
    problem: Problem,
    repair: Repair,
    lower: int,
    *,
    moves_deadline: float,
    deadline: float,
    num_workers: int,
) -> _Outcome:
    """Fewest moves first, then least travel at that number of moves (two solves of
    one model, so the order of the objectives is strict)."""
    # Data.
    p = problem
    account_ids = [a.account_id for a in p.accounts]
    rep_ids = [rep.rep_id for rep in p.reps]
    greedy_moves = p.moves(repair.assignment) if repair.feasible else None

    # Variables, one served-by-exactly-one-candidate rule per account, locked accounts.
    model, x = _assignment_model(p)

    # Every rep's potential stays inside fair share * (1 ± tolerance).
    for r in range(p.n_reps):
        model.add_linear_constraint(_rep_potential(p, x, r), p.lo[r], p.hi[r])

    # An account is a move unless it stays with its (valid) current rep.
    stays = [x[a, rep_ids[p.current[i]]] for i, a in enumerate(account_ids) if p.current[i] != UNPLACED]
    moves = p.n_accounts - cp_model.LinearExpr.sum(stays)

    # Bounds proven before the search: they let CP-SAT stop as soon as it meets them.
    model.add(moves >= lower)
    if greedy_moves is not None:
        model.add(moves <= greedy_moves)

    # Travel of the moved accounts, in metres: the tie-break objective.
    moved_pairs = [(i, r) for i in range(p.n_accounts) for r in p.candidates[i] if r != p.current[i]]
    travel = cp_model.LinearExpr.weighted_sum(
        [x[account_ids[i], rep_ids[r]] for i, r in moved_pairs],
        [round(float(p.distance_km[i, r]) * 1000) for i, r in moved_pairs],
    )

    solver = _solver(num_workers)

    # Objective 1: fewest moves. Skipped when the greedy repair already meets the bound.
    if greedy_moves is not None and greedy_moves == lower:
        status, assignment, best, proven = "optimal", repair.assignment, greedy_moves, lower
    else:
        # Warm start: the greedy repair when it is feasible (it differs from the current
        # assignment only by its moves), else the current assignment with placements.
        _hint(model, p, x, repair.assignment if repair.feasible else _current_with_placements(p, repair))
        model.minimize(moves)
        solver.parameters.max_time_in_seconds = max(_MIN_SOLVE_SECONDS, moves_deadline - time.perf_counter())
        code = _solve(solver, model)
        solution = _read(solver, p, x) if code in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
        if code == cp_model.INFEASIBLE:
            return _Outcome("infeasible", None, None)
        if solution is not None and p.is_balanced(solution):
            assignment, best = solution, p.moves(solution)
            proven = max(lower, math.ceil(solver.best_objective_bound - 1e-6))
        elif greedy_moves is not None:  # no solution in time: the greedy one still stands
            assignment, best, proven = repair.assignment, greedy_moves, lower
        else:
            return _Outcome("unknown", None, lower)
        status = "optimal" if code == cp_model.OPTIMAL or best <= proven else "feasible"
        proven = min(proven, best)

    # Objective 2: least travel, keeping exactly that number of moves.
    remaining = deadline - time.perf_counter()
    if remaining >= _MIN_SOLVE_SECONDS and moved_pairs:
        model.add(moves == best)
        model.minimize(travel)
        _hint(model, p, x, assignment)
        solver.parameters.max_time_in_seconds = remaining
        if _solve(solver, model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solution = _read(solver, p, x)
            # Belt and braces: only a verified solution replaces the one we hold.
            if p.is_balanced(solution) and p.moves(solution) == best:
                assignment = solution

    return _Outcome(status, assignment, proven)


def _closest_compromise(
    problem: Problem, assignment: Sequence[int], *, deadline: float, num_workers: int
) -> str | None:
    """When the bands cannot all hold, find the assignment with the least total
    shortfall and name the rep it leaves furthest out of band. None if no answer in time."""
    p = problem
    model, x = _assignment_model(p)

    # Each rep may miss its band by short[rep] (scaled potential), either way.
    short = {}
    for r, rep in enumerate(p.reps):
        short[r] = model.new_int_var(0, sum(p.potential), f"short[{rep.rep_id}]")
        potential = _rep_potential(p, x, r)
        model.add(potential + short[r] >= p.lo[r])
        model.add(potential - short[r] <= p.hi[r])

    # Objective: the least total shortfall, starting from the given assignment.
    model.minimize(cp_model.LinearExpr.sum(list(short.values())))
    _hint(model, p, x, assignment)

    remaining = deadline - time.perf_counter()
    if remaining < _MIN_SOLVE_SECONDS:
        return None
    solver = _solver(num_workers)
    solver.parameters.max_time_in_seconds = remaining
    if _solve(solver, model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    loads = p.loads(_read(solver, p, x))
    worst = max(range(p.n_reps), key=lambda r: solver.value(short[r]) / max(p.fair[r], 1.0))
    if solver.value(short[worst]) == 0:
        return None
    tol = p.tolerance
    have, limit = pcts(p.relative(worst, loads[worst]), 1 + tol if loads[worst] > p.hi[worst] else 1 - tol)
    side = "at most" if loads[worst] > p.hi[worst] else "at least"
    return (
        f"the closest compromise still leaves rep {p.reps[worst].rep_id} at {have} of fair share "
        f"({side} {limit} required)"
    )


# --------------------------------------------------------------------------- CP-SAT building blocks


def _assignment_model(problem: Problem) -> tuple[cp_model.CpModel, dict[tuple[str, str], cp_model.IntVar]]:
    """Variables and the constraints shared by every model built here."""
    p = problem
    account_ids = [a.account_id for a in p.accounts]
    rep_ids = [rep.rep_id for rep in p.reps]
    model = cp_model.CpModel()

    # Variables: x[account_id, rep_id] is true when that rep serves that account. Only
    # candidate pairs get one; that is where travel limits and pruning take effect.
    x: dict[tuple[str, str], cp_model.IntVar] = {}
    for i, a in enumerate(account_ids):
        for r in p.candidates[i]:
            x[a, rep_ids[r]] = model.new_bool_var(f"x[{a},{rep_ids[r]}]")

    # Every account is served by exactly one of its candidate reps.
    for i, a in enumerate(account_ids):
        model.add_exactly_one(x[a, rep_ids[r]] for r in p.candidates[i])

    # Locked accounts stay with their current rep (also implied: it is their only candidate).
    for i, a in enumerate(account_ids):
        if p.locked[i]:
            model.add(x[a, rep_ids[p.current[i]]] == 1)

    return model, x


def _rep_potential(problem: Problem, x: Mapping[tuple[str, str], cp_model.IntVar], r: int) -> cp_model.LinearExpr:
    """Scaled potential served by rep ``r``."""
    p = problem
    rep_id = p.reps[r].rep_id
    served = p.reachable_by[r]
    return cp_model.LinearExpr.weighted_sum(
        [x[p.accounts[i].account_id, rep_id] for i in served], [p.potential[i] for i in served]
    )


def _hint(
    model: cp_model.CpModel,
    problem: Problem,
    x: Mapping[tuple[str, str], cp_model.IntVar],
    assignment: Sequence[int],
) -> None:
    """A complete hint (CP-SAT makes the most of those): every variable gets a value."""
    model.clear_hints()
    for i, account in enumerate(problem.accounts):
        for r in problem.candidates[i]:
            model.add_hint(x[account.account_id, problem.reps[r].rep_id], r == assignment[i])


def _read(solver: cp_model.CpSolver, problem: Problem, x: Mapping[tuple[str, str], cp_model.IntVar]) -> list[int]:
    """Rep index per account in the solver's solution (call only on OPTIMAL/FEASIBLE)."""
    return [
        next(r for r in problem.candidates[i] if solver.boolean_value(x[a.account_id, problem.reps[r].rep_id]))
        for i, a in enumerate(problem.accounts)
    ]


def _solver(num_workers: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = num_workers
    # OR-Tools 9.15 presolve ("inclusion" of at-most-one and linear constraints) can
    # certify a non-optimal solution as optimal on models of exactly this shape: seen
    # here in the brute-force tests with large coefficients, and reported upstream
    # (google/or-tools#5293). Switching that step off fixed every case we have.
    solver.parameters.presolve_inclusion_work_limit = 0
    return solver


def _solve(solver: cp_model.CpSolver, model: cp_model.CpModel) -> Any:
    code = solver.solve(model)
    if code == cp_model.MODEL_INVALID:
        raise RuntimeError(f"rebalancer built an invalid CP-SAT model: {model.validate()}")
    return code


# --------------------------------------------------------------------------- helpers


def _current_with_placements(problem: Problem, repair: Repair) -> list[int]:
    """The current assignment, with the greedy's rep for accounts that had none."""
    return [r if r != UNPLACED else g for r, g in zip(problem.current, repair.assignment)]


def _moves(problem: Problem, assignment: Sequence[int], before: Sequence[RepBalance]) -> tuple[Move, ...]:
    deviation = {b.rep_id: b.deviation for b in before}
    tol = problem.tolerance
    moves = []
    for i, (cur, new) in enumerate(zip(problem.current, assignment)):
        if cur != UNPLACED and cur == new:
            continue
        account = problem.accounts[i]
        to_rep = problem.reps[new].rep_id
        if cur != UNPLACED:
            from_rep = problem.reps[cur].rep_id
            reason = (
                f"{from_rep} {_deviation_phrase(deviation[from_rep], tol, 'fair share by')}; "
                f"{to_rep} {_deviation_phrase(deviation[to_rep], tol, 'by')}"
            )
        elif account.rep_id is None:
            reason = "no owner"
        else:
            reason = f"owner {account.rep_id} inactive"
        moves.append(
            Move(
                account_id=account.account_id,
                from_rep=account.rep_id,
                to_rep=to_rep,
                potential=account.potential,
                workload=account.workload,
                distance_km=float(problem.distance_km[i, new]),
                reason=reason,
            )
        )
    # Grouped as people read them: "move these accounts from A to C", biggest first.
    moves.sort(key=lambda m: (m.from_rep or "", m.to_rep, -m.potential, m.account_id))
    return tuple(moves)


def _deviation_phrase(deviation: float, tolerance: float, by: str) -> str:
    if deviation > tolerance:
        return f"over {by} {deviation:.0%}"
    if deviation < -tolerance:
        return f"under {by} {-deviation:.0%}"
    return f"within band ({deviation:+.0%})"


def _check_arguments(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    tolerance: float,
    candidate_reps: int,
    time_limit_s: float,
    num_workers: int,
) -> None:
    _require(len(reps) > 0, "reps must not be empty: there is no one to balance between")
    _require(
        _finite(tolerance) and tolerance >= 0,
        f"tolerance must be a finite number >= 0 (e.g. 0.10 for ±10%), got {tolerance!r}",
    )
    _require(_positive_int(candidate_reps), f"candidate_reps must be an int >= 1, got {candidate_reps!r}")
    _require(
        _finite(time_limit_s) and time_limit_s > 0,
        f"time_limit_s must be a finite number > 0, got {time_limit_s!r}",
    )
    _require(_positive_int(num_workers), f"num_workers must be an int >= 1, got {num_workers!r}")
    _require_unique([rep.rep_id for rep in reps], "rep_id")
    _require_unique([a.account_id for a in accounts], "account_id")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_unique(ids: list[str], what: str) -> None:
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    _require(not duplicates, f"{what} values must be unique; duplicated: {', '.join(duplicates[:5])}")


def _finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
