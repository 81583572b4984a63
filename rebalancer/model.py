"""The rebalancing model: fewest changes, best balance for a budget, and the curve.

Read :func:`minimal_moves` top to bottom: shortcuts that need no solver (already
balanced, provably infeasible), the greedy repair and lower bound, then
:func:`_fewest_changes`, which solves a smaller model first on large cases and then
the full one, each as a strict sequence of objectives (:func:`_lexicographic`).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

from ortools.sat.python import cp_model

from core.formatting import distinct_percents, signed_percent
from rebalancer import cpsat
from rebalancer.contiguity import Contiguity
from rebalancer.heuristics import (
    Repair,
    explain_caps_anywhere,
    explain_infeasible,
    explain_infeasible_anywhere,
    explain_unreachable,
    greedy_repair,
    lower_bound,
    tightest_rep,
)
from rebalancer.problem import (
    RESOLUTION,
    UNPLACED,
    Problem,
    _reachable_by,
    build_problem,
    candidate_pairs,
    reach_counts,
    widening,
    with_candidates,
)
from rebalancer.relaxation import Relaxation, TravelRelaxation, solve_relaxation, solve_travel_relaxation
from rebalancer.values import (
    METRICS,
    OBJECTIVES,
    Account,
    CurvePoint,
    Move,
    RebalanceResult,
    Rep,
    RepBalance,
    TravelPoint,
    _finite,
    _positive_int,
    _require,
    _require_unique,
    balance_of,
    imbalance_of,
)

__all__ = ["CURVE_KINDS", "minimal_moves", "trade_off_curve"]

#: What :func:`trade_off_curve` can trace against the number of moves.
CURVE_KINDS = ("imbalance", "travel")

#: Share of ``time_limit_s`` the primary objective may use; the rest (and anything it
#: leaves unused) goes to the tie-breaks.
_PRIMARY_TIME_SHARE = 0.8
#: Seconds kept at the end of the time limit for reading, checking and reporting the answer.
_WRAP_UP_SECONDS = 1.0
#: Tie-breaks stop within this relative gap of their optimum, on models with more than
#: this many variables (smaller ones are solved exactly).
_TIE_BREAK_GAP = 0.005
_EXACT_TIE_BREAK_VARIABLES = 5_000
#: Share of the primary objective's time the LP relaxation may use (dual simplex needs
#: about 10 s at 50k accounts x 25 reps, under 1 s at 20k x 50).
_LP_TIME_SHARE = 0.35
#: Above this many assignment variables the search starts on a reduced model (see
#: :func:`_reduced`): CP-SAT finds good solutions there much sooner.
_REDUCE_ABOVE_VARIABLES = 10_000
#: Accounts kept movable per pair of reps in the reduced model, largest first.
_REDUCED_PER_ARC = 20
#: Pairs of reps the LP moves nothing between keep this many times fewer accounts.
_QUIET_ARC_DIVISOR = 8
#: Share of the primary objective's time the reduced model may use.
_REDUCED_TIME_SHARE = 0.8
#: Widening the candidates (see :func:`_widening_solve`): a wider model that is not the
#: last one tried gets this share of the time left; the last one gets all of it.
_WIDER_TIME_SHARE = 0.5
#: A wider model is tried only if it has at most this many assignment variables per
#: second left: building the CP-SAT model and the LP takes about 10 us per variable
#: each (docs/ARCHITECTURE.md: 12-17 s for a million), and the search needs the rest.
_WIDER_VARIABLES_PER_SECOND = 25_000


def minimal_moves(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float | Mapping[str, float] = 0.10,
    metrics: Sequence[str] = ("potential",),
    objective: str = "moves",
    max_moves: int | None = None,
    adjacency: Sequence[tuple[str, str]] | None = None,
    candidate_reps: int = 3,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
) -> RebalanceResult:
    """The fewest account moves that bring every rep within ``tolerance`` of their fair
    share on every metric; among those, the least travel for the moved accounts.

    A rep's fair share of a metric is ``total * capacity_fte / total capacity``; the
    band is ``fair * (1 ± tolerance)``. A move is an account whose rep changes; an
    account whose rep is None or not in ``reps`` must be placed, and each placement
    counts as a move. Locked accounts keep their current rep (if it is in ``reps``).
    An account may go to its current rep or to one of the ``candidate_reps`` reps
    nearest to it whose ``max_travel_km`` reaches it and that serve its segment
    (``Account.segment``, ``Rep.segments``; staying is always allowed). Every rep ends
    with between its ``min_accounts`` and ``max_accounts`` accounts (hard caps). Fair
    shares stay company-wide, whatever the segments.

    Bands are checked on values scaled to integers (see ``rebalancer.problem``): a
    rep reported inside its band may lie outside the float band by at most
    ``0.5 * k / 1e9`` of the total, for a rep with ``k`` accounts.

    Parameters
    ----------
    accounts, reps
        The snapshot. Account and rep ids must be unique; ``reps`` must not be empty.
    tolerance
        Allowed relative deviation from fair share, e.g. 0.10 for ±10%: one value for
        every metric or a mapping metric -> tolerance.
    metrics
        What must be balanced: "potential", "workload" or both.
    objective
        "moves" (fewest moved accounts), "moved_potential" (least potential moved) or
        "travel" (least total travel with at most ``max_moves`` moves, every rep in band:
        see below; ``max_moves`` is required).
    max_moves
        When given, the question changes: the best balance (least largest deviation
        from fair share over reps and metrics) with at most this many moves, then the
        fewest moves for it. Bands are not required then; ``objective_kind`` is
        "imbalance". With ``objective="travel"``: the least total travel (straight-line km
        from each account's rep's home, times the rep's ``travel_factor``, summed over
        every account) with every rep in band and at most this many moves, then the
        fewest moves for it; ``objective_kind`` is "travel", ``objective`` and ``bound``
        are in km x factor, ``travel_km_before`` / ``travel_km_after`` are set. Too small a
        budget is "infeasible", naming the moves the band needs.
    adjacency
        Pairs of account ids that touch (area units): every territory that is connected
        now stays connected. Each such rep keeps the unit nearest their home.
    candidate_reps
        How many nearest other reps each account may move to. When that model has no
        answer (the bands cannot all hold, or no solution is found in time), the
        candidates are widened (twice as many each time, up to every rep within reach;
        ``max_travel_km`` and segments always hold) within the same time limit, the first wider
        model that has an answer gives it, and ``notes`` say so. With ``max_moves`` the
        candidates are not widened: every budget has an answer.
    time_limit_s
        Wall-clock budget for the whole call, model building included. Up to 80% goes
        to the primary objective, the rest to the tie-breaks; when the first model has
        no answer, what is left goes to the wider ones.
    num_workers
        CP-SAT search workers; 2 beat 8 on the 2-core target machines.

    Returns
    -------
    RebalanceResult
        ``status`` is "balanced" (nothing to do, no solver run), "optimal" (proven),
        "feasible" (a solution, not proven best; see ``bound`` and ``gap``),
        "infeasible" or "unknown" (no solution within the time limit); the last two
        carry an ``explanation`` naming a rep (or an account cap, or an account whose
        segment no rep serves) and the constraint that fails. An
        infeasible answer's explanation starts with which case it is: "infeasible under
        any assignment" (whichever rep serves each unlocked account, travel limits
        aside: e.g. locked accounts that alone exceed a band) or "infeasible for the
        reps within reach" (the travel limits, with the locks, leave no way).

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
    tolerances = _check_arguments(
        accounts, reps, tolerance, metrics, objective, max_moves, candidate_reps, time_limit_s, num_workers
    )
    setup = _Setup.build(accounts, reps, tolerances, metrics, adjacency, candidate_reps, start, time_limit_s)
    if objective == "travel":
        assert max_moves is not None  # checked above
        return _least_travel_result(setup, max_moves, num_workers)
    if max_moves is not None:
        return _best_balance_result(setup, max_moves, num_workers)
    return _widening_solve(setup, objective, num_workers)[0]


@overload
def trade_off_curve(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float | Mapping[str, float] = ...,
    metrics: Sequence[str] = ...,
    adjacency: Sequence[tuple[str, str]] | None = ...,
    candidate_reps: int = ...,
    time_limit_s: float = ...,
    num_workers: int = ...,
    max_points: int = ...,
    kind: Literal["imbalance"] = ...,
) -> tuple[CurvePoint, ...]: ...


@overload
def trade_off_curve(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float | Mapping[str, float] = ...,
    metrics: Sequence[str] = ...,
    adjacency: Sequence[tuple[str, str]] | None = ...,
    candidate_reps: int = ...,
    time_limit_s: float = ...,
    num_workers: int = ...,
    max_points: int = ...,
    kind: Literal["travel"],
) -> tuple[TravelPoint, ...]: ...


def trade_off_curve(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float | Mapping[str, float] = 0.10,
    metrics: Sequence[str] = ("potential",),
    adjacency: Sequence[tuple[str, str]] | None = None,
    candidate_reps: int = 3,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    max_points: int = 25,
    kind: str = "imbalance",
) -> tuple[CurvePoint, ...] | tuple[TravelPoint, ...]:
    """What each extra move buys: for M = 0, 1, 2, ... up to the fewest moves that
    restore the band, the least imbalance (largest |deviation from fair share| over
    reps and metrics) reachable with at most M moves.

    With ``kind="travel"`` the other end of the same trade-off: for M from the fewest
    moves that restore the band up to the moves of the least-travel assignment, the
    least total travel (see :func:`minimal_moves`, ``objective="travel"``) with every
    rep in band and at most M moves, as :class:`TravelPoint` records. Each budget starts
    from the previous budget's answer, so the travel never rises along the curve (a
    budget whose search ends worse keeps the previous answer, status "feasible"). The
    candidates are those the fewest moves needed (widened like :func:`minimal_moves`);
    no band, no curve: ``()``.

    Accounts waiting for a rep must be placed, so the curve starts at M = their
    number. Accounts may go to the candidate reps :func:`minimal_moves` needs to restore
    the band: ``candidate_reps``, or more when it has to widen them. When the fewest
    moves exceed ``max_points``, M is sampled evenly (first and last always included).
    Each budget's search starts from the previous budget's answer, so the imbalance
    never rises along the curve. When the band cannot be restored at all, the curve
    runs to twice the per-rep lower bound on moves.

    Examples
    --------
    >>> from rebalancer import Account, Rep, trade_off_curve
    >>> reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 0.0)]
    >>> accounts = [Account(f"A{i}", 10, rep_id="R1") for i in range(4)]
    >>> [(pt.moves, round(pt.imbalance, 2)) for pt in trade_off_curve(accounts, reps, time_limit_s=5)]
    [(0, 1.0), (1, 0.5), (2, 0.0)]
    """
    start = time.perf_counter()
    tolerances = _check_arguments(
        accounts, reps, tolerance, metrics, "moves", None, candidate_reps, time_limit_s, num_workers
    )
    _require(_positive_int(max_points) and max_points >= 2, f"max_points must be an int >= 2, got {max_points!r}")
    _require(kind in CURVE_KINDS, f"kind must be one of {CURVE_KINDS}, got {kind!r}")
    if kind == "travel":
        setup = _Setup.build(accounts, reps, tolerances, metrics, adjacency, candidate_reps, start, time_limit_s)
        return _travel_curve(setup, num_workers, max_points)
    # The curve's last point restores the band: with the candidates minimal_moves needed
    # for it (widened when the pruned model has no answer).
    target_setup = _Setup.build(
        accounts, reps, tolerances, metrics, adjacency, candidate_reps, time.perf_counter(), 0.3 * time_limit_s
    )
    target, used_candidates = _widening_solve(target_setup, "moves", num_workers)
    setup = _Setup.build(accounts, reps, tolerances, metrics, adjacency, used_candidates, start, time_limit_s)
    p = setup.problem
    placements = sum(1 for r in p.current if r == UNPLACED)
    # Budgets too small to meet the account caps have no point: start where they can.
    first = max(placements, _cap_moves(p))
    if target.objective is not None:
        last = int(target.objective)
    else:
        last = placements + 2 * max(lower_bound(p.view(m)) for m in range(len(p.metrics)))
    if explain_unreachable(p) is not None:
        return ()  # no assignment at all: minimal_moves explains why
    budgets = _sample(first, max(last, first), max_points)
    repair = greedy_repair(p)
    return tuple(point for point, _ in _curve(setup, budgets, _current_with_placements(p, repair), num_workers))


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class _Setup:
    """What every solve of one call shares: the problem, the contiguity rule, the
    clock, and how to turn an assignment into a :class:`RebalanceResult`."""

    accounts: Sequence[Account]
    reps: Sequence[Rep]
    problem: Problem
    contiguity: Contiguity | None
    before: tuple[RepBalance, ...]
    tolerances: dict[str, float]
    start: float  # when the call began (the result's seconds)
    deadline: float  # of this setup's solves
    time_limit_s: float
    candidate_reps: int  # the problem's candidate rule
    edges: list[tuple[int, int]] | None  # adjacency by account position
    begun: float  # when this setup's solves began: time shares are of begun..deadline
    extra_notes: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        accounts: Sequence[Account],
        reps: Sequence[Rep],
        tolerances: dict[str, float],
        metrics: Sequence[str],
        adjacency: Sequence[tuple[str, str]] | None,
        candidate_reps: int,
        start: float,
        time_limit_s: float,
    ) -> _Setup:
        problem = build_problem(accounts, reps, tolerance=tolerances, candidate_reps=candidate_reps, metrics=metrics)
        edges = _edges(accounts, adjacency) if adjacency is not None else None
        return cls(
            accounts=accounts,
            reps=reps,
            problem=problem,
            contiguity=Contiguity(problem, edges) if edges is not None else None,
            before=balance_of(accounts, reps),
            tolerances=tolerances,
            start=start,
            # Reading and checking the answer comes after the last solve: keep time for it.
            deadline=start + time_limit_s - min(_WRAP_UP_SECONDS, 0.05 * time_limit_s),
            time_limit_s=time_limit_s,
            candidate_reps=candidate_reps,
            edges=edges,
            begun=start,
        )

    def widened(self, candidate_reps: int, deadline: float, *, travel_limits: bool = True) -> _Setup:
        """The same call with another candidate rule (``travel_limits=False``: every rep
        counts as within reach), solved from now until ``deadline``."""
        problem = with_candidates(self.problem, candidate_reps, travel_limits=travel_limits)
        return replace(
            self,
            problem=problem,
            contiguity=Contiguity(problem, self.edges) if self.edges is not None else None,
            candidate_reps=candidate_reps,
            begun=time.perf_counter(),
            deadline=deadline,
        )

    def holds(self, assignment: Sequence[int]) -> bool:
        """Every band and, with adjacency, every anchored territory connected."""
        if not self.problem.is_balanced(assignment):
            return False
        return self.contiguity is None or not self.contiguity.broken_reps(assignment)

    def imbalance(self, assignment: Sequence[int]) -> float:
        """Largest |deviation from fair share| under ``assignment``, from the float values."""
        reps = self.problem.reps
        mapping = {a.account_id: reps[r].rep_id for a, r in zip(self.accounts, assignment) if r != UNPLACED}
        return imbalance_of(balance_of(self.accounts, self.reps, mapping), self.problem.metrics)

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    @cached_property
    def travel(self) -> tuple[NDArray[np.int64], float]:
        """The travel objective's cost matrix and its units per km (cpsat.travel_costs)."""
        return cpsat.travel_costs(self.problem)

    def notes(self) -> tuple[str, ...]:
        if self.contiguity is None or not self.contiguity.split_reps:
            return self.extra_notes
        split = ", ".join(self.contiguity.split_reps)
        return (f"territories of {split} are already in pieces; contiguity is not enforced for them", *self.extra_notes)

    def result(
        self,
        status: str,
        assignment: Sequence[int] | None = None,
        *,
        objective_kind: str,
        value: float | None = None,
        bound: float | None = None,
        explanation: str | None = None,
    ) -> RebalanceResult:
        p = self.problem
        moves = _moves(p, assignment, self.before) if assignment is not None else ()
        after = (
            balance_of(self.accounts, self.reps, {m.account_id: m.to_rep for m in moves})
            if assignment is not None
            else self.before
        )
        # Report in the caller's units: moved potential in potential, imbalance as a fraction,
        # travel in km (x travel_factor).
        travel_before = travel_after = None
        if objective_kind == "travel":
            costs, units = self.travel
            scale = 1.0 / units
            travel_before = cpsat.total_travel(costs, p.current) * scale
            travel_after = cpsat.total_travel(costs, assignment) * scale if assignment is not None else travel_before
        else:
            scale = {
                "moves": 1.0,
                "moved_potential": math.fsum(a.potential for a in self.accounts) / RESOLUTION,
                "imbalance": 1.0 / cpsat.DEVIATION_RESOLUTION,
            }[objective_kind]
        objective = value * scale if value is not None and assignment is not None else None
        bound_value = bound * scale if bound is not None else None
        gap = None
        if objective is not None and bound_value is not None:
            gap = (objective - bound_value) / (
                max(objective, 1.0) if objective_kind == "moves" else max(objective, 1e-12)
            )
            gap = max(0.0, gap) if objective > 0 else 0.0
        metrics = p.metrics
        return RebalanceResult(
            status=status,
            moves=moves,
            before=self.before,
            after=after,
            objective=objective,
            bound=bound_value,
            gap=gap,
            seconds=time.perf_counter() - self.start,
            tolerance=self.tolerances[metrics[0]],
            explanation=explanation,
            metrics=metrics,
            tolerances=dict(self.tolerances),
            objective_kind=objective_kind,
            imbalance_before=imbalance_of(self.before, metrics),
            imbalance_after=imbalance_of(after, metrics),
            notes=self.notes(),
            travel_km_before=travel_before,
            travel_km_after=travel_after,
        )


# --------------------------------------------------------------------------- widening


@dataclass(frozen=True)
class _Attempt:
    """One candidate rule's try at the fewest changes."""

    setup: _Setup
    outcome: _Outcome
    repair: Repair | None  # None when a shortcut proved the bands cannot hold
    lower: int
    seconds: float  # how long the try took
    proof: str | None = None  # the shortcut's sentence (explain_infeasible)

    def why(self) -> str:
        """Why this try gave no proposal, for the notes."""
        if self.proof is not None:
            return self.proof
        if self.outcome.by_lp:
            return "the bands cannot all hold (already in the linear relaxation)"
        if self.outcome.status == "infeasible":
            return "the bands cannot all hold"
        return f"no solution found in {self.seconds:.1f} s"


def _widening_solve(setup: _Setup, objective: str, num_workers: int) -> tuple[RebalanceResult, int]:
    """Fewest changes with ``setup``'s candidates; when that model has no answer, the
    same with more candidates (twice as many each time, then every rep within reach)
    until one has, in the time left. Returns the result and the candidate count it used.

    The first try keeps the whole time limit, so a case that needs no widening runs as
    before; a try without an answer either ends early (a shortcut or the LP relaxation
    shows the bands cannot hold, or CP-SAT proves it) or at its primary objective's share
    of the time, and the rest goes to the wider tries: half of what is left to each but
    the last. Widening stops at the first candidate count with an answer: the narrowest
    candidates keep proposals local (wider ones might need fewer moves, far afield).
    """
    p = setup.problem
    # Nothing to do: every rep inside its band and no account waiting for a rep.
    if p.is_balanced(p.current):
        return setup.result("balanced", p.current, objective_kind=objective, value=0, bound=0), setup.candidate_reps

    # Impossible whoever serves what (locks, or an account larger than any band): no
    # candidate rule can help, so none is tried.
    proof = next((e for m in range(len(p.metrics)) if (e := explain_infeasible_anywhere(p.view(m)))), None)
    if proof is not None:
        return setup.result(
            "infeasible", explanation=f"{_anywhere_context(setup)}; {proof}", objective_kind=objective
        ), setup.candidate_reps

    counts = reach_counts(p)
    widest = int(counts.max(initial=0))
    placed = sum(1 for r in p.current if r != UNPLACED)
    unlocked = ~np.array(p.locked, dtype=bool)
    # Every rep serving the account's segment (segments are never widened away).
    everyone = reach_counts(p, travel_limits=False)
    travel_binds = bool((counts[unlocked] < everyone[unlocked]).any())
    # Candidate counts beyond `widest` add nothing: every rep within reach.
    levels = [k for k in widening(setup.candidate_reps, max(p.n_reps, 1)) if k <= widest or k == setup.candidate_reps]
    if levels[-1] < widest:
        levels.append(widest)
    attempts: list[_Attempt] = []
    level = setup
    too_large = False
    for index, k in enumerate(levels):
        complete = k >= widest  # every rep within reach
        if index > 0:
            remaining = setup.deadline - time.perf_counter()
            pairs = int(np.minimum(counts, k).sum()) + placed
            if remaining < cpsat.MIN_SOLVE_SECONDS or pairs > _WIDER_VARIABLES_PER_SECOND * remaining:
                too_large = remaining >= cpsat.MIN_SOLVE_SECONDS
                break
            share = 1.0 if complete else _WIDER_TIME_SHARE
            level = setup.widened(k, time.perf_counter() + share * remaining)
        attempt = _attempt(level, objective, num_workers, lp_verdict=not complete, lp_first=index > 0)
        if index > 0 and attempt.outcome.assignment is not None and not complete:
            # An answer from a try that had only part of the time left: the rest goes to
            # improving it (fewer changes if not proven, else less travel).
            attempt = _improve(attempt, setup.deadline, objective, num_workers)
        attempts.append(attempt)
        outcome = attempt.outcome
        if outcome.assignment is not None:
            done = replace(level, extra_notes=_widened_notes(attempts, widest)) if index > 0 else level
            result = done.result(
                outcome.status, outcome.assignment, objective_kind=objective, value=outcome.value, bound=outcome.bound
            )
            return result, k
    reach = _Reach(widest, too_large, travel_binds)
    return _no_answer(attempts, reach, objective, num_workers), attempts[-1].setup.candidate_reps


def _attempt(setup: _Setup, objective: str, num_workers: int, *, lp_verdict: bool, lp_first: bool) -> _Attempt:
    """Shortcut proofs, greedy repair and lower bound, then the fewest changes.

    ``lp_first`` (wider tries): the LP relaxation before the greedy repair, whose
    seconds on a model with no answer are better spent on the next try when the LP
    already says the bands cannot hold. The first try keeps the usual order, in which
    a greedy answer that meets the lower bound needs no LP at all."""
    began = time.perf_counter()
    p = setup.problem
    # Provably impossible, whatever the solver would do: say which rep and why.
    proof = next((e for m in range(len(p.metrics)) if (e := explain_infeasible(p.view(m)))), None)
    if proof is not None:
        outcome = _Outcome("infeasible", None, None, None)
        return _Attempt(setup, outcome, None, 0, time.perf_counter() - began, proof)
    weights = _weights(p, objective)
    relaxation = None
    if lp_first:
        lp_seconds = max(0.1, _LP_TIME_SHARE * _PRIMARY_TIME_SHARE * setup.remaining())
        relaxation = solve_relaxation(p, weights, time_limit_s=lp_seconds)
        if relaxation is not None and relaxation.infeasible and lp_verdict:
            outcome = _Outcome("infeasible", None, None, None, by_lp=True)
            return _Attempt(setup, outcome, None, 0, time.perf_counter() - began)
    repair = greedy_repair(p)
    greedy_ok = repair.feasible and setup.holds(repair.assignment)
    lower = max(lower_bound(p.view(m)) for m in range(len(p.metrics))) if objective == "moves" else 0
    outcome = _fewest_changes(
        setup,
        weights,
        repair.assignment if greedy_ok else None,
        _current_with_placements(p, repair),
        lower,
        num_workers,
        lp_verdict=lp_verdict,
        relaxation=relaxation,
    )
    return _Attempt(setup, outcome, repair, lower, time.perf_counter() - began)


def _improve(attempt: _Attempt, deadline: float, objective: str, num_workers: int) -> _Attempt:
    """The same try again until ``deadline``, starting from its answer and bound: the
    search for fewer changes goes on, or, when they are proven the fewest, the travel
    tie-break does."""
    setup, outcome = attempt.setup, attempt.outcome
    if outcome.assignment is None or deadline - time.perf_counter() < 10 * cpsat.MIN_SOLVE_SECONDS:
        return attempt
    more = replace(setup, begun=time.perf_counter(), deadline=deadline)
    p = setup.problem
    lower = max(attempt.lower, outcome.bound or 0)
    if outcome.status == "optimal" and outcome.value is not None:
        lower = outcome.value
    start_from = _current_with_placements(p, attempt.repair) if attempt.repair is not None else outcome.assignment
    again = _fewest_changes(more, _weights(p, objective), outcome.assignment, start_from, lower, num_workers)
    if again.assignment is None or again.value is None or outcome.value is None or again.value > outcome.value:
        return attempt
    bound = max(again.bound or 0, outcome.bound or 0)
    status = "optimal" if again.value <= bound else "feasible"
    return replace(attempt, setup=more, outcome=replace(again, status=status, bound=min(bound, again.value)))


def _reach_label(k: int, widest: int) -> str:
    return "every rep within reach" if k >= widest else f"{k} nearest reps within reach"


def _widened_notes(attempts: Sequence[_Attempt], widest: int) -> tuple[str, ...]:
    """What the notes say when the candidates were widened."""
    first, last = attempts[0].setup.candidate_reps, attempts[-1].setup.candidate_reps
    tried = "; ".join(f"with {a.setup.candidate_reps}: {a.why()}" for a in attempts if a.outcome.assignment is None)
    answer = "a proposal" if attempts[-1].outcome.assignment is not None else "no proposal either"
    return (f"candidates widened from {first} to {_reach_label(last, widest)} ({answer}); {tried}",)


@dataclass(frozen=True)
class _Reach:
    """How far widening went: the candidate count that means every rep within reach,
    whether a wider model was left out for lack of time, and whether travel limits keep
    any unlocked account from some rep."""

    widest: int
    too_large: bool
    travel_binds: bool


def _no_answer(attempts: Sequence[_Attempt], reach: _Reach, objective: str, num_workers: int) -> RebalanceResult:
    """No candidate rule tried gave an answer: say which case it is, naming the rep."""
    last = attempts[-1]
    setup, p = last.setup, last.setup.problem
    widest = reach.widest
    notes = _widened_notes(attempts, widest) if len(attempts) > 1 else ()
    done = replace(setup, extra_notes=notes)
    if last.outcome.status == "infeasible":
        explanation = _explain_infeasible(last, reach, num_workers)
        return done.result("infeasible", explanation=explanation, objective_kind=objective)
    repair = last.repair
    assert repair is not None  # no shortcut proof: the greedy ran
    stuck = repair.stuck_rep if repair.stuck_rep is not None else 0
    load = p.relative(stuck, p.loads(repair.assignment)[stuck])
    more = "" if setup.candidate_reps >= widest else " or more candidate_reps"
    held = p.counts(repair.assignment)[stuck]
    work = p.work_loads(repair.assignment)[stuck]
    broken = p.broken_cap(stuck, held, work)
    if broken is not None:  # the greedy kept the bands but not this rep's caps
        rep = p.reps[stuck]
        if broken[0].endswith("_accounts"):
            where = f"holding {held} accounts ({_caps_text(rep, 'accounts')})"
        else:
            where = f"holding a workload of {work / p.work_units:g} ({_caps_text(rep, 'workload')})"
    else:
        where = f"at {load:.0%} of fair share{_of(p.metrics[0])} (band {1 - p.tolerance:.0%}-{1 + p.tolerance:.0%})"
    explanation = (
        f"no solution found within {setup.time_limit_s:g} s with {_reach_label(setup.candidate_reps, widest)}; "
        f"the greedy repair stalled with rep {p.reps[stuck].rep_id} {where}; a longer time limit, "
        f"a larger tolerance{more} may help"
    )
    return done.result("unknown", bound=last.lower, explanation=explanation, objective_kind=objective)


def _explain_infeasible(last: _Attempt, reach: _Reach, num_workers: int) -> str:
    """Which case it is, then the rep and the constraint.

    - "infeasible under any assignment": even if any rep could serve any unlocked
      account (travel limits aside) the bands cannot all hold: a per-rep proof on
      that model, or the candidates tried were already every rep and the solver proved
      it, or CP-SAT proves that model infeasible (when it is small enough to try);
    - "infeasible for the reps within reach": otherwise; the travel limits, with the
      locks, leave no way (said outright when the model without them has a solution);
    - "infeasible with the candidates tried" when widening stopped before every rep
      within reach (no time left, or the model too large for it).
    """
    setup, p = last.setup, last.setup.problem
    bands, connected = _bands(p), _side_constraints(setup)
    anywhere = _anywhere_context(setup)
    complete = setup.candidate_reps >= reach.widest
    proven = not last.outcome.by_lp  # CP-SAT or a per-rep proof showed `last` infeasible
    if complete and proven and not reach.travel_binds:
        return f"{anywhere}; " + (_closest_compromise(setup, _start(last), num_workers) or tightest_rep(p))
    free_verdict: bool | None = None
    if complete and proven and p.n_accounts * p.n_reps <= _WIDER_VARIABLES_PER_SECOND * setup.remaining():
        free = setup.widened(p.n_reps, setup.deadline, travel_limits=False)
        free_verdict = _feasible(free, num_workers)
        if free_verdict is False:
            compromise = _closest_compromise(free, _start_of(free), num_workers)
            return f"{anywhere}; " + (compromise or tightest_rep(free.problem))
    serving = " serving its segment" if p.has_segments else ""
    if complete:
        case = "infeasible for the reps within reach"
        where = f"when each account may only stay or move to a rep{serving} whose max_travel_km reaches it"
    else:  # widening stopped short of every rep within reach
        case = "infeasible with the candidates tried"
        cut = "did not fit in the time limit" if reach.too_large else "were not tried in the time limit"
        where = (
            f"when each account may only stay or move to one of its {setup.candidate_reps} nearest reps{serving} "
            f"within reach (more candidates {cut})"
        )
    lp = " (already in the linear relaxation)" if last.outcome.by_lp else ""
    reason = last.proof or _closest_compromise(setup, _start(last), num_workers) or tightest_rep(p)
    text = f"{case}: no assignment keeps every rep within {bands} of fair share{connected} {where}{lp}; {reason}"
    if free_verdict:
        text += f"; without the travel limits the bands{' and caps' if p.has_caps else ''} could hold"
    return text


def _side_constraints(setup: _Setup) -> str:
    """What an assignment must also keep besides the bands, for the explanations."""
    p = setup.problem
    connected = " and every territory stays connected" if setup.contiguity else ""
    return connected + _caps_kept(p)


def _caps_text(rep: Rep, of: str) -> str:
    """A rep's caps on `of` ("accounts" or "workload") as set, e.g. "min_accounts 3, max_accounts 9"."""
    caps = ((f"min_{of}", getattr(rep, f"min_{of}")), (f"max_{of}", getattr(rep, f"max_{of}")))
    return ", ".join(f"{name} {cap:g}" for name, cap in caps if cap is not None)


def _caps_kept(problem: Problem) -> str:
    """ " and every rep within its min_accounts and max_accounts" (and workload caps), or
    "" without caps."""
    names = []
    if any(rep.min_accounts is not None or rep.max_accounts is not None for rep in problem.reps):
        names.append("min_accounts and max_accounts")
    if problem.has_workload_caps:
        names.append("min_workload and max_workload")
    return f" and every rep within its {' and its '.join(names)}" if names else ""


def _anywhere_context(setup: _Setup) -> str:
    # Segments, unlike travel limits, hold even "under any assignment".
    who = "a rep serving its segment" if setup.problem.has_segments else "whichever rep"
    return (
        f"infeasible under any assignment: no assignment keeps every rep within {_bands(setup.problem)} of fair "
        f"share{_side_constraints(setup)}, {who} serves each unlocked account (travel limits aside)"
    )


def _start(attempt: _Attempt) -> list[int]:
    """The current assignment with placements, for a compromise's hint."""
    if attempt.repair is not None:
        return _current_with_placements(attempt.setup.problem, attempt.repair)
    return _start_of(attempt.setup)


def _start_of(setup: _Setup) -> list[int]:
    return _current_with_placements(setup.problem, greedy_repair(setup.problem))


def _feasible(setup: _Setup, num_workers: int) -> bool | None:
    """Whether ``setup``'s bands (and contiguity) can all hold: True, False (proven), or
    None when not settled in half the time left or the model is too large for it."""
    p = setup.problem
    remaining = setup.remaining()
    if remaining < 2 * cpsat.MIN_SOLVE_SECONDS or candidate_pairs(p) > _WIDER_VARIABLES_PER_SECOND * remaining:
        return None
    repair = greedy_repair(p)
    if repair.feasible and setup.holds(repair.assignment):
        return True
    model, x = cpsat.assignment_model(p)
    cpsat.add_bands(model, p, x)
    if setup.contiguity is not None:
        setup.contiguity.add_to(model, x)
    cpsat.hint(model, p, x, _current_with_placements(p, repair))
    code = cpsat.solve(cpsat.solver(num_workers, remaining / 2), model)
    if code == cp_model.INFEASIBLE:
        return False
    return True if cpsat.found(code) else None


# --------------------------------------------------------------------------- fewest changes


@dataclass(frozen=True)
class _Outcome:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    assignment: list[int] | None  # rep index per account when there is a solution
    value: int | None  # primary objective of that assignment
    bound: int | None  # proven lower bound on the primary objective
    by_lp: bool = False  # "infeasible" on the LP relaxation's word only (see lp_verdict)


def _weights(problem: Problem, objective: str) -> list[int]:
    """What one moved account costs: 1, or its potential scaled like the bands."""
    if objective == "moves":
        return [1] * problem.n_accounts
    if "potential" in problem.metrics:
        return problem.values[problem.metrics.index("potential")]
    total = math.fsum(a.potential for a in problem.accounts)
    scale = RESOLUTION / total if total > 0 else 1.0
    return [round(a.potential * scale) for a in problem.accounts]


def _fewest_changes(
    setup: _Setup,
    weights: Sequence[int],
    incumbent: list[int] | None,
    start_from: list[int],
    lower: int,
    num_workers: int,
    *,
    lp_verdict: bool = False,
    relaxation: Relaxation | None = None,
) -> _Outcome:
    """The primary objective (fewest moves or least moved potential), then least
    travel. On large cases a reduced model finds a good incumbent first; the full
    model then improves it and proves the bound.

    With ``lp_verdict``, an infeasible LP relaxation ends the search at once (status
    "infeasible", ``by_lp``): wider candidates are tried next, and CP-SAT could spend
    seconds proving what the LP says in a fraction of one. A ``relaxation`` already solved
    is not solved again."""
    p = setup.problem
    cost = _primary(weights, 0, None).value
    primary_deadline = setup.begun + _PRIMARY_TIME_SHARE * (setup.deadline - setup.begun)

    def proven(assignment: list[int] | None) -> bool:
        return assignment is not None and cost(p, assignment) <= lower

    if not proven(incumbent):
        # The LP relaxation: a bound, and where the change happens (see relaxation.py).
        if relaxation is None:
            lp_seconds = max(0.1, _LP_TIME_SHARE * (primary_deadline - time.perf_counter()))
            relaxation = solve_relaxation(p, weights, time_limit_s=lp_seconds)
        if relaxation is not None and relaxation.infeasible:
            if lp_verdict and incumbent is None:
                return _Outcome("infeasible", None, None, None, by_lp=True)
            relaxation = None  # a verdict, not a proof: CP-SAT decides
        if relaxation is not None:
            lower = max(lower, relaxation.bound)
        if not proven(incumbent) and sum(len(c) for c in p.candidates) > _REDUCE_ABOVE_VARIABLES:
            reduced_deadline = time.perf_counter() + _REDUCED_TIME_SHARE * (primary_deadline - time.perf_counter())
            found = _solve_reduced(
                setup,
                weights,
                incumbent or (relaxation.rounded if relaxation is not None else start_from),
                relaxation.moved if relaxation is not None else [],
                relaxation.arcs if relaxation is not None else None,
                lower,
                reduced_deadline,
                num_workers,
            )
            if found is not None and (incumbent is None or cost(p, found) < cost(p, incumbent)):
                incumbent = found

    if incumbent is not None and proven(incumbent):
        # The fewest changes are known: only the travel is left to do.
        value = cost(p, incumbent)
        stage = _lexicographic(
            setup,
            p,
            [_primary(weights, 0, incumbent), _travel()],
            incumbent,
            True,
            [setup.deadline, setup.deadline],
            num_workers,
            skip_first=True,
        )
        return _Outcome("optimal", stage.assignment or incumbent, value, value)

    stage = _lexicographic(
        setup,
        p,
        [_primary(weights, lower, incumbent), _travel()],
        incumbent if incumbent is not None else start_from,
        incumbent is not None,
        [primary_deadline, setup.deadline],
        num_workers,
    )
    if stage.assignment is None:
        return _Outcome(stage.status, None, None, lower)
    value = cost(p, stage.assignment)
    bound = min(value, max(lower, stage.bound or 0))
    return _Outcome("optimal" if value <= bound else "feasible", stage.assignment, value, bound)


def _solve_reduced(
    setup: _Setup,
    weights: Sequence[int],
    start_from: list[int],
    movable: Sequence[int],
    busy_arcs: set[tuple[int, int]] | None,
    lower: int,
    deadline: float,
    num_workers: int,
) -> list[int] | None:
    """A good assignment from models where only ``movable`` accounts and the largest
    accounts between each pair of reps may move. Each time a model is solved to the
    end (optimal, or infeasible: too few accounts) it grows: twice as many per pair,
    starting from the best answer so far."""
    p = setup.problem
    per_arc, best = _REDUCED_PER_ARC, None
    widest = max(Counter(p.current).values(), default=0)
    while deadline - time.perf_counter() > cpsat.MIN_SOLVE_SECONDS:
        reduced = _reduced(p, per_arc, movable, busy_arcs)
        start = best or [
            r if r in reduced.candidates[i] else reduced.candidates[i][0] for i, r in enumerate(start_from)
        ]
        stage = _lexicographic(
            setup, reduced, [_primary(weights, lower, best)], start, best is not None, [deadline], num_workers
        )
        if stage.assignment is not None and setup.holds(stage.assignment):
            best = stage.assignment
        if stage.status not in ("optimal", "infeasible") or per_arc >= widest:
            break  # out of time, or nothing more to add
        if best is not None and _primary(weights, 0, None).value(p, best) <= lower:
            break  # meets the bound: nothing to gain
        per_arc *= 2
    return best


def _reduced(
    problem: Problem, per_arc: int, movable: Sequence[int] = (), busy_arcs: set[tuple[int, int]] | None = None
) -> Problem:
    """``problem`` where an account may only move along an arc (its rep -> another)
    if it is among the ``per_arc`` largest on that arc (primary metric); the others
    stay. Placements and ``movable`` accounts keep all their candidates."""
    p = problem
    arcs: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, cands in enumerate(p.candidates):
        if p.current[i] != UNPLACED:
            for t in cands[1:]:
                arcs[p.current[i], t].append(i)
    allowed: dict[int, set[int]] = defaultdict(set)
    for (d, t), members in arcs.items():
        # Pairs the LP moves nothing between get a few accounts only.
        keep = per_arc if busy_arcs is None or (d, t) in busy_arcs else per_arc // _QUIET_ARC_DIVISOR
        for i in sorted(members, key=lambda i: -p.potential[i])[:keep]:
            allowed[i].add(t)
    for i in movable:
        allowed[i].update(p.candidates[i])
    candidates = [
        cands if p.current[i] == UNPLACED else (cands[0], *(t for t in cands[1:] if t in allowed[i]))
        for i, cands in enumerate(p.candidates)
    ]
    return replace(p, candidates=candidates, reachable_by=_reachable_by(candidates, p.n_reps))


# --------------------------------------------------------------------------- best balance and curve


def _best_balance_result(setup: _Setup, max_moves: int, num_workers: int) -> RebalanceResult:
    """The least worst deviation with at most ``max_moves`` moves, then the fewest
    moves for it."""
    p = setup.problem
    unreachable = explain_unreachable(p)
    if unreachable is not None:
        return setup.result("infeasible", objective_kind="imbalance", explanation=unreachable)
    placements = sum(1 for r in p.current if r == UNPLACED)
    if max_moves < placements:
        return setup.result(
            "infeasible",
            objective_kind="imbalance",
            explanation=f"{placements} accounts wait for a rep and each placement is a move; "
            f"max_moves={max_moves} is too few",
        )
    start_from = _current_with_placements(p, greedy_repair(p))
    points = list(_curve(setup, [max_moves], start_from, num_workers, fewest_moves=True))
    if not points:
        # Only contiguity and the account caps can leave a budget without an assignment.
        kept = [
            *(["keeps every territory connected"] if setup.contiguity is not None else []),
            *([f"keeps{_caps_kept(p)[4:]}"] if p.has_caps else []),
        ]
        explanation = f"no assignment with at most {max_moves} moves {' and '.join(kept)}"
        caps = explain_caps_anywhere(p)
        if caps:
            explanation += f"; {caps[0]}"
        elif max_moves < _cap_moves(p):
            explanation += f"; the caps alone need at least {_cap_moves(p)} moves"
        return setup.result("infeasible", objective_kind="imbalance", explanation=explanation)
    point, assignment = points[0]
    return setup.result(
        point.status,
        assignment,
        objective_kind="imbalance",
        value=cpsat.worst_deviation(p, assignment),
        bound=point.bound * cpsat.DEVIATION_RESOLUTION if point.bound is not None else None,
    )


def _curve(
    setup: _Setup, budgets: Sequence[int], start_from: list[int], num_workers: int, *, fewest_moves: bool = False
) -> Iterator[tuple[CurvePoint, list[int]]]:
    """Best balance for each budget, in increasing order, each search starting from
    the previous answer (valid for a larger budget too). Budgets with no valid
    assignment (contiguity) are left out. With ``fewest_moves``, each answer then
    makes as few moves as that balance allows."""
    p = setup.problem
    model, x = cpsat.assignment_model(p)
    if setup.contiguity is not None:
        setup.contiguity.add_to(model, x)
    worst = cpsat.add_worst_deviation(model, p, x)
    moves = cpsat.moves_expr(p, x)
    budget = model.new_int_var(0, p.n_accounts, "budget")
    model.add(moves <= budget)

    def valid(assignment: Sequence[int], limit: int) -> bool:
        return (
            UNPLACED not in assignment
            and p.moves(assignment) <= limit
            and p.caps_hold(assignment)
            and (setup.contiguity is None or not setup.contiguity.broken_reps(assignment))
        )

    best: list[int] | None = None
    hint = start_from
    for k, budget_value in enumerate(budgets):
        domain = budget.proto.domain  # narrowed in place: one model serves every budget
        domain[0], domain[1] = budget_value, budget_value
        if best is None and valid(start_from, budget_value):
            best = list(start_from)
        model.minimize(worst)
        cpsat.hint(model, p, x, best or hint)
        solver = cpsat.solver(num_workers, setup.remaining() / (len(budgets) - k))
        code = cpsat.solve(solver, model)
        proven = None
        if cpsat.found(code):
            solution = cpsat.read(solver, p, x)
            if valid(solution, budget_value) and (
                best is None or cpsat.worst_deviation(p, solution) <= cpsat.worst_deviation(p, best)
            ):
                best = solution
            proven = math.ceil(solver.best_objective_bound - 1e-6)
        if best is None:
            continue  # nothing valid for this budget (yet)
        value = cpsat.worst_deviation(p, best)
        status = "optimal" if code == cp_model.OPTIMAL or (proven is not None and proven >= value) else "feasible"
        if fewest_moves and setup.remaining() > cpsat.MIN_SOLVE_SECONDS:
            best = _fewest_moves_at(setup, model, x, worst, moves, value, best, num_workers)
        point = CurvePoint(
            moves=budget_value,
            imbalance=setup.imbalance(best),
            status=status,
            moves_used=p.moves(best),
            bound=min(value, proven) / cpsat.DEVIATION_RESOLUTION if proven is not None else None,
        )
        yield point, best


def _fewest_moves_at(
    setup: _Setup,
    model: cp_model.CpModel,
    x: cpsat.Assignment,
    worst: cp_model.IntVar,
    moves: cp_model.LinearExpr,
    value: int,
    best: list[int],
    num_workers: int,
) -> list[int]:
    """Among assignments as balanced as ``best`` (worst deviation <= value), one
    with the fewest moves (the model is spent afterwards: it keeps the bound)."""
    p = setup.problem
    model.add(worst <= value)
    model.minimize(moves)
    cpsat.hint(model, p, x, best)
    solver = cpsat.solver(num_workers, setup.remaining())
    if cpsat.found(cpsat.solve(solver, model)):
        solution = cpsat.read(solver, p, x)
        if (
            cpsat.worst_deviation(p, solution) <= value
            and p.moves(solution) < p.moves(best)
            and p.caps_hold(solution)
            and (setup.contiguity is None or not setup.contiguity.broken_reps(solution))
        ):
            return solution
    return best


def _sample(first: int, last: int, max_points: int) -> list[int]:
    """``first..last``, every value when they fit in ``max_points``, else evenly spaced."""
    if last - first + 1 <= max_points:
        return list(range(first, last + 1))
    step = (last - first) / (max_points - 1)
    return sorted({first + round(k * step) for k in range(max_points)})


# --------------------------------------------------------------------------- least travel

#: Share of the time limit the fewest moves get before any travel solve: they say whether
#: the band can hold, how many moves it needs, and give the first answer. The curve, with
#: many budgets to solve, gives them less.
_TRAVEL_MOVES_SHARE = 0.3
_TRAVEL_CURVE_MOVES_SHARE = 0.2
#: The travel curve: share of the time then left for its far end (the least travel with
#: no budget); the budgets in between share the rest equally.
_TRAVEL_END_SHARE = 0.2
#: The travel LP is tried when there is at least a second per this many assignment variables
#: (building it in Python is most of its time: ~0.2 s at 12k variables, ~3 s at 80k).
_TRAVEL_LP_VARIABLES_PER_SECOND = 50_000
#: Share of a budget's time GLOP may take on the travel LP (the LP's answer is what the
#: reduced model, and so the answer on large cases, is built from).
_TRAVEL_LP_TIME_SHARE = 0.5
#: Share of one budget's time for the least travel; the rest (and what it leaves unused)
#: for the fewest moves at that travel.
_TRAVEL_PRIMARY_SHARE = 0.8
#: Statuses of a fewest-moves result that carry an assignment.
_ANSWERED = ("optimal", "feasible", "balanced")


@dataclass(frozen=True)
class _TravelAnswer:
    """The least travel found for one budget of moves."""

    budget: int
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    assignment: list[int] | None
    value: int | None  # total travel of `assignment`, in cost units (Setup.travel)
    bound: int | None  # proven lower bound on the travel for this budget, in cost units


def _least_travel_result(setup: _Setup, max_moves: int, num_workers: int) -> RebalanceResult:
    """The least total travel with every rep in band and at most ``max_moves`` moves,
    then the fewest moves for it (``minimal_moves(objective="travel")``)."""
    unreachable = explain_unreachable(setup.problem)
    if unreachable is not None:
        return setup.result("infeasible", objective_kind="travel", explanation=unreachable)
    fewest, travel_setup, start = _fewest_for_travel(setup, num_workers)
    if start is None:  # the band cannot hold (or no way was found): the fewest moves say why
        return travel_setup.result(fewest.status, objective_kind="travel", explanation=fewest.explanation)
    needed = round(fewest.bound) if fewest.bound is not None else 0
    found = round(fewest.objective) if fewest.objective is not None else len(fewest.moves)
    if max_moves < needed:
        explanation = _too_few_moves(travel_setup, max_moves, needed, found)
        return travel_setup.result("infeasible", objective_kind="travel", explanation=explanation)
    answer = next(_least_travel(travel_setup, [max_moves], [start], num_workers))
    if answer.assignment is None:
        if answer.status == "infeasible":
            explanation = _too_few_moves(travel_setup, max_moves, max_moves + 1, found, by_solver=True)
        else:
            explanation = (
                f"no assignment with at most {_n_moves(max_moves)} that keeps every rep within "
                f"{_bands(travel_setup.problem)} "
                f"of fair share found within {setup.time_limit_s:g} s (the fewest moves found that do: {found}); "
                "a longer time limit or a larger max_moves may help"
            )
        return travel_setup.result(answer.status, objective_kind="travel", explanation=explanation)
    answered = replace(travel_setup, extra_notes=(*travel_setup.extra_notes, *_pruned_note(travel_setup)))
    return answered.result(
        answer.status, answer.assignment, objective_kind="travel", value=answer.value, bound=answer.bound
    )


def _fewest_for_travel(
    setup: _Setup, num_workers: int, share: float = _TRAVEL_MOVES_SHARE
) -> tuple[RebalanceResult, _Setup, list[int] | None]:
    """The fewest moves that restore the band, widening the candidates as usual, in
    ``share`` of ``setup``'s time. Returns that result, the setup the travel solves use
    (the same candidates, the time left, notes on widening and pruning) and the answer's
    assignment (None without one)."""
    share *= setup.deadline - setup.begun
    fewest, used = _widening_solve(replace(setup, deadline=setup.begun + share), "moves", num_workers)
    widened_notes = tuple(note for note in fewest.notes if note not in setup.notes())
    if used != setup.candidate_reps:
        travel_setup = setup.widened(used, setup.deadline)
    else:
        travel_setup = replace(setup, begun=time.perf_counter())
    travel_setup = replace(travel_setup, extra_notes=(*setup.extra_notes, *widened_notes))
    start = _assignment_of(travel_setup.problem, fewest) if fewest.status in _ANSWERED else None
    return fewest, travel_setup, start


def _pruned_note(setup: _Setup) -> tuple[str, ...]:
    """Says when the travel is least over pruned candidates only (some account has more
    reps within reach than it may move to)."""
    widest = int(reach_counts(setup.problem).max(initial=0))
    if setup.candidate_reps >= widest:
        return ()
    return (
        f"travel is least over each account's current rep and its {setup.candidate_reps} nearest other reps "
        f"within reach (up to {widest} are within reach): the bound and 'optimal' are proven over those; "
        "more candidate_reps may save more travel",
    )


def _too_few_moves(setup: _Setup, budget: int, needed: int, found: int, *, by_solver: bool = False) -> str:
    """Why no assignment keeps the band within ``budget`` moves: the moves it needs (at
    least ``needed``; ``found``: the fewest found), placements and caps when they say more."""
    p = setup.problem
    widest = int(reach_counts(p).max(initial=0))
    where = (
        ""
        if setup.candidate_reps >= widest
        else f" when each account may only stay or move to one of its {setup.candidate_reps} nearest reps within reach"
    )
    fewest = f"the fewest found: {found}"
    if by_solver:
        need = f"the band needs more than {_n_moves(budget)}{where} (proven by the solver; {fewest})"
    else:
        proven = "" if found <= needed else f" ({fewest})"
        need = f"the band needs at least {_n_moves(needed)}{where}{proven}"
    text = (
        f"no assignment keeps every rep within {_bands(p)} of fair share{_side_constraints(setup)} "
        f"with at most {_n_moves(budget)}: {need}; max_moves={budget} is too few"
    )
    placements = sum(1 for r in p.current if r == UNPLACED)
    if budget < placements:
        text += f"; {placements} accounts wait for a rep and each placement is a move"
    elif budget < _cap_moves(p):
        text += f"; the caps alone need at least {_cap_moves(p)} moves"
    return text


def _n_moves(n: int) -> str:
    return f"{n} move{'' if n == 1 else 's'}"


def _assignment_of(problem: Problem, result: RebalanceResult) -> list[int]:
    """Rep index per account after ``result``'s moves."""
    index = {rep.rep_id: r for r, rep in enumerate(problem.reps)}
    assignment = list(problem.current)
    position = {a.account_id: i for i, a in enumerate(problem.accounts)}
    for move in result.moves:
        assignment[position[move.account_id]] = index[move.to_rep]
    return assignment


def _least_travel(
    setup: _Setup,
    budgets: Sequence[int],
    known: Sequence[Sequence[int]],
    num_workers: int,
) -> Iterator[_TravelAnswer]:
    """The least travel for each budget, in increasing order, then the fewest moves for
    it. One model serves every budget (its domain narrowed in place, like :func:`_curve`).
    Each budget starts from the best of the previous budget's answer (valid for a larger
    budget too) and the ``known`` assignments within it, and keeps it unless the search
    finds less travel: the travel never rises from one budget to the next."""
    p = setup.problem
    costs, _ = setup.travel
    model, x = cpsat.assignment_model(p)
    cpsat.add_bands(model, p, x)
    if setup.contiguity is not None:
        setup.contiguity.add_to(model, x)
    travel = cpsat.total_travel_expr(p, x, costs)
    moves = cpsat.moves_expr(p, x)
    budget = model.new_int_var(0, p.n_accounts, "budget")
    model.add(moves <= budget)
    # The fewest moves at a travel: the travel capped by a variable whose domain, like the
    # budget's, is narrowed in place and opened again for the next budget.
    most = sum(max((int(costs[i, r]) for r in cands), default=0) for i, cands in enumerate(p.candidates))
    cap = model.new_int_var(0, most, "travel_cap")
    model.add(travel <= cap)

    def valid(assignment: Sequence[int], limit: int) -> bool:
        return p.moves(assignment) <= limit and setup.holds(assignment)

    def key(assignment: Sequence[int]) -> tuple[int, int]:
        return cpsat.total_travel(costs, assignment), p.moves(assignment)

    best: list[int] | None = None
    start_from = list(known[0]) if known else _start_of(setup)
    for k, budget_value in enumerate(budgets):
        budget.proto.domain[0], budget.proto.domain[1] = budget_value, budget_value
        cap.proto.domain[0], cap.proto.domain[1] = 0, most
        for assignment in known:
            if valid(assignment, budget_value) and (best is None or key(assignment) < key(best)):
                best = list(assignment)
        point_deadline = time.perf_counter() + setup.remaining() / (len(budgets) - k)
        # The LP: a bound, and a reduced model around its answer that finds good
        # assignments long before the full model does on large cases.
        lower: int | None = None
        relaxation = _travel_relaxation(setup, budget_value, point_deadline)
        if relaxation is not None:
            lower = relaxation.bound
            if best is None or cpsat.total_travel(costs, best) > lower:
                reduced_deadline = time.perf_counter() + _REDUCED_TIME_SHARE * _TRAVEL_PRIMARY_SHARE * (
                    point_deadline - time.perf_counter()
                )
                found = _reduced_travel(setup, relaxation, best, budget_value, reduced_deadline, num_workers)
                if found is not None and valid(found, budget_value) and (best is None or key(found) < key(best)):
                    best = found
        code = None
        if best is None or lower is None or cpsat.total_travel(costs, best) > lower:
            model.minimize(travel)
            cpsat.hint(model, p, x, best or start_from)
            solver = cpsat.solver(num_workers, _TRAVEL_PRIMARY_SHARE * (point_deadline - time.perf_counter()))
            code = cpsat.solve(solver, model)
            if cpsat.found(code):
                solution = cpsat.read(solver, p, x)
                if valid(solution, budget_value) and (best is None or key(solution) < key(best)):
                    best = solution
                proven = math.ceil(solver.best_objective_bound - 1e-6)
                lower = proven if lower is None else max(lower, proven)
        if best is None:
            status = "infeasible" if code == cp_model.INFEASIBLE else "unknown"
            yield _TravelAnswer(budget_value, status, None, None, None)
            continue
        value = cpsat.total_travel(costs, best)
        status = "optimal" if lower is not None and lower >= value else "feasible"
        if p.moves(best) > 0 and point_deadline - time.perf_counter() >= cpsat.MIN_SOLVE_SECONDS:
            cap.proto.domain[1] = value
            model.minimize(moves)
            cpsat.hint(model, p, x, best)
            solver = cpsat.solver(num_workers, point_deadline - time.perf_counter())
            if cpsat.found(cpsat.solve(solver, model)):
                solution = cpsat.read(solver, p, x)
                if valid(solution, budget_value) and key(solution) < key(best):
                    best = solution
            value = cpsat.total_travel(costs, best)
        yield _TravelAnswer(budget_value, status, best, value, min(lower, value) if lower is not None else None)


def _travel_relaxation(setup: _Setup, budget: int, deadline: float) -> TravelRelaxation | None:
    """The LP of the least travel for ``budget`` when there is time to build and solve
    it; None otherwise, or when GLOP calls it infeasible (a verdict, not a proof: CP-SAT
    decides)."""
    p = setup.problem
    remaining = deadline - time.perf_counter()
    if remaining < cpsat.MIN_SOLVE_SECONDS or candidate_pairs(p) > _TRAVEL_LP_VARIABLES_PER_SECOND * remaining:
        return None
    costs, _ = setup.travel
    relaxation = solve_travel_relaxation(p, costs, budget, time_limit_s=max(0.1, _TRAVEL_LP_TIME_SHARE * remaining))
    return relaxation if relaxation is not None and not relaxation.infeasible else None


def _reduced_travel(
    setup: _Setup,
    relaxation: TravelRelaxation,
    best: Sequence[int] | None,
    budget: int,
    deadline: float,
    num_workers: int,
) -> list[int] | None:
    """The least travel for ``budget`` on a model where each account may only stay, take
    the LP's rep or keep ``best``'s; accounts the LP splits (and placements) keep every
    candidate. None when nothing valid was found by ``deadline``."""
    p = setup.problem
    if deadline - time.perf_counter() < cpsat.MIN_SOLVE_SECONDS:
        return None
    split = set(relaxation.fractional)
    candidates: list[tuple[int, ...]] = []
    for i, cands in enumerate(p.candidates):
        if p.locked[i] or i in split or p.current[i] == UNPLACED:
            candidates.append(cands)
        else:
            keep = {p.current[i], relaxation.rounded[i], *([best[i]] if best is not None else [])}
            candidates.append(tuple(r for r in cands if r in keep))
    reduced = replace(p, candidates=candidates, reachable_by=_reachable_by(candidates, p.n_reps))
    costs, _ = setup.travel
    model, x = cpsat.assignment_model(reduced)
    cpsat.add_bands(model, reduced, x)
    if setup.edges is not None:
        Contiguity(reduced, setup.edges).add_to(model, x)
    model.add(cpsat.moves_expr(reduced, x) <= budget)
    model.minimize(cpsat.total_travel_expr(reduced, x, costs))
    # The LP's answer (bands broken by its few split accounts at most) is a better start
    # than ``best`` on large cases, whose moves CP-SAT would have to undo one by one.
    cpsat.hint(model, reduced, x, relaxation.rounded)
    solver = cpsat.solver(num_workers, deadline - time.perf_counter())
    if not cpsat.found(cpsat.solve(solver, model)):
        return None
    solution = cpsat.read(solver, reduced, x)
    return solution if p.moves(solution) <= budget and setup.holds(solution) else None


def _travel_curve(setup: _Setup, num_workers: int, max_points: int) -> tuple[TravelPoint, ...]:
    """``trade_off_curve(kind="travel")``: the fewest moves (the curve's first budget), the
    least travel without a budget (its last: the moves that answer makes), then the
    budgets in between, sampled like the imbalance curve."""
    if explain_unreachable(setup.problem) is not None:
        return ()
    _, travel_setup, start = _fewest_for_travel(setup, num_workers, _TRAVEL_CURVE_MOVES_SHARE)
    if start is None:
        return ()
    p = travel_setup.problem
    end_deadline = time.perf_counter() + _TRAVEL_END_SHARE * travel_setup.remaining()
    end = next(_least_travel(replace(travel_setup, deadline=end_deadline), [p.n_accounts], [start], num_workers))
    known = [start] if end.assignment is None else [start, end.assignment]
    last = p.moves(known[-1])
    first = min(p.moves(start), last)
    answers = list(_least_travel(travel_setup, _sample(first, last, max_points), known, num_workers))
    # A bound for a budget holds for every smaller one (fewer moves never travel less), and
    # the bound without a budget holds for all.
    floor = end.bound if end.bound is not None else 0
    costs, units = travel_setup.travel
    points: list[TravelPoint] = []
    for answer in reversed(answers):
        if answer.assignment is None or answer.value is None:
            continue
        floor = max(floor, answer.bound or 0)
        bound = min(floor, answer.value)
        points.append(
            TravelPoint(
                moves=answer.budget,
                travel_km=answer.value / units,
                status="optimal" if bound >= answer.value else answer.status,
                moves_used=p.moves(answer.assignment),
                bound_km=bound / units,
                imbalance=travel_setup.imbalance(answer.assignment),
            )
        )
    points.reverse()
    assert all(b.travel_km <= a.travel_km for a, b in zip(points, points[1:])), "travel rose with the budget"
    return tuple(points)


# --------------------------------------------------------------------------- lexicographic solves


@dataclass(frozen=True)
class _Stage:
    status: str  # of the first objective
    assignment: list[int] | None
    bound: int | None  # proven bound on the first objective


@dataclass(frozen=True)
class _Objective:
    """An expression to minimise (built on a model) and its value for an assignment."""

    build: Callable[[cp_model.CpModel, Problem, cpsat.Assignment], cp_model.LinearExpr]
    value: Callable[[Problem, Sequence[int]], int]
    # Constraints known before this objective's solve (bounds on its value).
    bounds: Callable[[cp_model.CpModel, Problem, cp_model.LinearExpr], None] | None = None


def _primary(weights: Sequence[int], lower: int, incumbent: Sequence[int] | None) -> _Objective:
    """Fewest changes: the total weight of moved accounts (1 each, or their potential)."""

    def value(problem: Problem, assignment: Sequence[int]) -> int:
        return sum(w for w, cur, new in zip(weights, problem.current, assignment) if cur == UNPLACED or cur != new)

    def bounds(model: cp_model.CpModel, problem: Problem, expr: cp_model.LinearExpr) -> None:
        # Bounds known before the search let CP-SAT stop as soon as it meets them.
        if lower > 0:
            model.add(expr >= lower)
        if incumbent is not None:
            model.add(expr <= value(problem, incumbent))

    return _Objective(
        build=lambda model, problem, x: cpsat.moved_value_expr(problem, x, weights), value=value, bounds=bounds
    )


def _travel() -> _Objective:
    def value(problem: Problem, assignment: Sequence[int]) -> int:
        return sum(
            round(float(problem.distance_km[i, r]) * 1000) for i, r in enumerate(assignment) if r != problem.current[i]
        )

    return _Objective(build=lambda model, problem, x: cpsat.travel_expr(problem, x), value=value)


def _lexicographic(
    setup: _Setup,
    problem: Problem,
    objectives: Sequence[_Objective],
    start_from: Sequence[int],
    start_is_feasible: bool,
    deadlines: Sequence[float],
    num_workers: int,
    *,
    skip_first: bool = False,
) -> _Stage:
    """Minimise ``objectives`` in order on one model (bands and contiguity), each
    kept at its best value while the next one is minimised. Only verified solutions
    (bands, contiguity, no worse on earlier objectives) replace the one held."""
    model, x = cpsat.assignment_model(problem)
    cpsat.add_bands(model, problem, x)
    if setup.contiguity is not None:
        setup.contiguity.add_to(model, x)
    best = list(start_from) if start_is_feasible else None
    status, bound = ("optimal" if skip_first else "unknown"), None
    for k, objective in enumerate(objectives):
        expr = objective.build(model, problem, x)
        if k == 0 and skip_first:
            assert best is not None, "skip_first needs a feasible start"
            model.add(expr <= objective.value(problem, best))
            continue
        remaining = deadlines[k] - time.perf_counter()
        if remaining < cpsat.MIN_SOLVE_SECONDS and not (k == 0 and best is None):
            if best is None:
                break
            model.add(expr <= objective.value(problem, best))
            continue
        if objective.bounds is not None:
            objective.bounds(model, problem, expr)
        model.minimize(expr)
        cpsat.hint(model, problem, x, best if best is not None else start_from)
        solver = cpsat.solver(num_workers, remaining)
        if k > 0 and len(x) > _EXACT_TIE_BREAK_VARIABLES:
            # On large cases tie-breaks (travel) need not be proven to the last metre.
            solver.parameters.relative_gap_limit = _TIE_BREAK_GAP
        code = cpsat.solve(solver, model)
        if cpsat.found(code):
            solution = cpsat.read(solver, problem, x)
            earlier_ok = best is None or all(
                o.value(problem, solution) <= o.value(problem, best) for o in objectives[:k]
            )
            if (
                setup.holds(solution)
                and earlier_ok
                and (best is None or objective.value(problem, solution) <= objective.value(problem, best))
            ):
                best = solution
        if k == 0:
            if code == cp_model.INFEASIBLE and best is None:
                return _Stage("infeasible", None, None)
            if best is None:
                return _Stage("unknown", None, None)
            bound = math.ceil(solver.best_objective_bound - 1e-6) if cpsat.found(code) else None
            status = "optimal" if code == cp_model.OPTIMAL else "feasible"
        if best is None:
            break
        model.add(expr <= objective.value(problem, best))
    return _Stage(status, best, bound)


# --------------------------------------------------------------------------- explanations


def _closest_compromise(setup: _Setup, start_from: Sequence[int], num_workers: int) -> str | None:
    """When the bands cannot all hold, find the assignment with the least total
    shortfall (relative to fair share, over reps and metrics) and name the rep it
    leaves furthest out of band. None if no answer in time."""
    p = setup.problem
    model, x = cpsat.assignment_model(p)
    if setup.contiguity is not None:
        setup.contiguity.add_to(model, x)

    # Each rep may miss its band by short[m, r] (scaled), either way.
    short = {}
    for m in range(len(p.metrics)):
        for r, rep in enumerate(p.reps):
            short[m, r] = model.new_int_var(0, sum(p.values[m]), f"short[{p.metrics[m]},{rep.rep_id}]")
            load = cpsat.rep_load(p, x, r, m)
            model.add(load + short[m, r] >= p.los[m][r])
            model.add(load - short[m, r] <= p.his[m][r])
    model.minimize(cp_model.LinearExpr.sum(list(short.values())))
    cpsat.hint(model, p, x, start_from)

    if setup.remaining() < cpsat.MIN_SOLVE_SECONDS:
        return None
    solver = cpsat.solver(num_workers, setup.remaining())
    code = cpsat.solve(solver, model)
    if code == cp_model.INFEASIBLE and p.has_caps:
        # Without bands only the caps (and contiguity) can make this model infeasible.
        connected = " with every territory connected" if setup.contiguity is not None else ""
        which = "account and workload caps" if p.has_workload_caps else "account caps"
        return (
            f"the {which} cannot all hold, whatever the bands: no assignment of the accounts to reps "
            f"serving and reaching them{connected} keeps{_caps_kept(p)[4:]}"
        )
    if not cpsat.found(code):
        return None
    loads = p.metric_loads(cpsat.read(solver, p, x))
    m, worst = max(short, key=lambda key: solver.value(short[key]) / max(p.fairs[key[0]][key[1]], 1.0))
    if solver.value(short[m, worst]) == 0:
        return None
    tol = p.tolerances[m]
    load, fair = loads[m][worst], p.fairs[m][worst]
    over = load > p.his[m][worst]
    have, limit = distinct_percents(load / fair if fair > 0 else 1.0, 1 + tol if over else 1 - tol)
    return (
        f"the closest compromise still leaves rep {p.reps[worst].rep_id} at {have} of fair share{_of(p.metrics[m])} "
        f"({'at most' if over else 'at least'} {limit} required)"
    )


def _of(metric: str) -> str:
    """Names the metric when it is not the default one: " of workload"."""
    return "" if metric == "potential" else f" of {metric}"


def _bands(problem: Problem) -> str:
    parts = [f"±{tol:.0%} ({metric})" for metric, tol in zip(problem.metrics, problem.tolerances)]
    return parts[0].split(" ")[0] if len(parts) == 1 else " and ".join(parts)


# --------------------------------------------------------------------------- helpers


def _cap_moves(problem: Problem) -> int:
    """Fewest moves the account caps alone need (placements included): accounts that must
    leave reps above their max_accounts plus placements, or that must enter reps below
    their min_accounts, whichever is more; a rep above its max_workload loses at least the
    fewest of its accounts covering the excess, one below its min_workload gains at least
    the fewest other accounts covering the shortfall. 0 without caps."""
    p = problem
    if not p.has_caps:
        return 0
    counts = p.counts(p.current)
    work = p.work_loads(p.current)
    leaving = entering = 0
    for r, rep in enumerate(p.reps):
        out = max(0, counts[r] - rep.max_accounts) if rep.max_accounts is not None else 0
        into = max(0, rep.min_accounts - counts[r]) if rep.min_accounts is not None else 0
        most = p.work_most[r]
        if most is not None and work[r] > most:
            held = sorted((p.work[i] for i, cur in enumerate(p.current) if cur == r), reverse=True)
            out = max(out, _fewest_summing_to(held, work[r] - most))
        if work[r] < p.work_least[r]:
            others = sorted((p.work[i] for i, cur in enumerate(p.current) if cur != r), reverse=True)
            into = max(into, _fewest_summing_to(others, p.work_least[r] - work[r]))
        leaving += out
        entering += into
    return max(sum(1 for r in p.current if r == UNPLACED) + leaving, entering)


def _fewest_summing_to(largest_first: Sequence[int], amount: int) -> int:
    """Fewest of the sizes (sorted largest first) that sum to at least ``amount`` (all of
    them if none do)."""
    total = count = 0
    for size in largest_first:
        if total >= amount:
            break
        total += size
        count += 1
    return count


def _current_with_placements(problem: Problem, repair: Repair) -> list[int]:
    """The current assignment, with the greedy's rep for accounts that had none."""
    return [r if r != UNPLACED else g for r, g in zip(problem.current, repair.assignment)]


def _moves(problem: Problem, assignment: Sequence[int], before: Sequence[RepBalance]) -> tuple[Move, ...]:
    by_rep = {b.rep_id: b for b in before}
    counts = problem.counts(problem.current) if problem.has_caps else []
    work = problem.work_loads(problem.current) if problem.has_caps else []
    moves = []
    for i, (cur, new) in enumerate(zip(problem.current, assignment)):
        if cur != UNPLACED and cur == new:
            continue
        account = problem.accounts[i]
        to_rep = problem.reps[new].rep_id
        if cur != UNPLACED:
            from_rep = problem.reps[cur].rep_id
            reason = (
                f"{from_rep} {_deviation_phrase(by_rep[from_rep], problem, 'fair share by')}"
                f"{_cap_phrase(problem, cur, counts, work)}; "
                f"{to_rep} {_deviation_phrase(by_rep[to_rep], problem, 'by')}{_cap_phrase(problem, new, counts, work)}"
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


def _cap_phrase(problem: Problem, r: int, counts: Sequence[int], work: Sequence[int]) -> str:
    """ ", above max_accounts (9 > 8)" (or ", above max_workload (41.5 > 40)") when rep ``r``
    held more (or fewer) accounts or workload than its caps allow before the proposal: why
    an account moved although the bands held."""
    if not counts:
        return ""
    broken = problem.broken_cap(r, counts[r], work[r])
    if broken is None:
        return ""
    name, value, cap = broken
    side, sign = ("above", ">") if name.startswith("max") else ("below", "<")
    return f", {side} {name} ({value:g} {sign} {cap:g})"


def _deviation_phrase(balance: RepBalance, problem: Problem, by: str) -> str:
    """The rep's most out-of-band metric, e.g. "over fair share by 60%"."""
    metric, tolerance = max(
        zip(problem.metrics, problem.tolerances), key=lambda mt: abs(balance.deviation_of(mt[0])) - mt[1]
    )
    deviation = balance.deviation_of(metric)
    label = "" if metric == "potential" else f" ({metric})"
    if deviation > tolerance:
        return f"over {by} {deviation:.0%}{label}"
    if deviation < -tolerance:
        return f"under {by} {-deviation:.0%}{label}"
    return f"within band ({signed_percent(deviation)}{label})"


def _edges(accounts: Sequence[Account], adjacency: Sequence[tuple[str, str]] | None) -> list[tuple[int, int]]:
    index = {a.account_id: i for i, a in enumerate(accounts)}
    edges = []
    for k, pair in enumerate(adjacency or ()):
        _require(len(pair) == 2, f"adjacency[{k}] must be a pair of account ids, got {pair!r}")
        unknown = [u for u in pair if u not in index]
        _require(not unknown, f"adjacency[{k}] names unknown account {unknown[0]!r}" if unknown else "")
        edges.append((index[pair[0]], index[pair[1]]))
    return edges


def _check_arguments(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    tolerance: float | Mapping[str, float],
    metrics: Sequence[str],
    objective: str,
    max_moves: int | None,
    candidate_reps: int,
    time_limit_s: float,
    num_workers: int,
) -> dict[str, float]:
    """Validate the arguments; the tolerance per metric."""
    _require(len(reps) > 0, "reps must not be empty: there is no one to balance between")
    _require(
        len(metrics) > 0 and all(m in METRICS for m in metrics) and len(set(metrics)) == len(metrics),
        f"metrics must be distinct values of {METRICS}, got {tuple(metrics)!r}",
    )
    if isinstance(tolerance, Mapping):
        missing = [m for m in metrics if m not in tolerance]
        _require(not missing, f"tolerance has no value for metric {missing[0] if missing else ''!r}")
        tolerances = {m: tolerance[m] for m in metrics}
    else:
        tolerances = {m: tolerance for m in metrics}
    for metric, tol in tolerances.items():
        _require(
            _finite(tol) and tol >= 0,
            f"tolerance must be a finite number >= 0 (e.g. 0.10 for ±10%), got {tol!r} for {metric}",
        )
    _require(objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {objective!r}")
    _require(
        objective != "travel" or max_moves is not None,
        f"objective must be one of {tuple(o for o in OBJECTIVES if o != 'travel')} without max_moves: "
        "objective='travel' needs a budget of moves (max_moves=M), since without one the least travel rewrites "
        "the whole map (every account to the nearest rep the bands allow); "
        "trade_off_curve(kind='travel') shows what each budget buys",
    )
    _require(
        max_moves is None or (isinstance(max_moves, int) and not isinstance(max_moves, bool) and max_moves >= 0),
        f"max_moves must be None or an int >= 0, got {max_moves!r}",
    )
    _require(_positive_int(candidate_reps), f"candidate_reps must be an int >= 1, got {candidate_reps!r}")
    _require(
        _finite(time_limit_s) and time_limit_s > 0,
        f"time_limit_s must be a finite number > 0, got {time_limit_s!r}",
    )
    _require(_positive_int(num_workers), f"num_workers must be an int >= 1, got {num_workers!r}")
    _require_unique([rep.rep_id for rep in reps], "rep_id")
    _require_unique([a.account_id for a in accounts], "account_id")
    return tolerances
