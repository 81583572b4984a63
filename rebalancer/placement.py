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
from dataclasses import dataclass, replace

import numpy as np
from ortools.sat.python import cp_model

from core.formatting import distinct_percents
from rebalancer import cpsat
from rebalancer.heuristics import explain_caps, explain_unserved, greedy_placement
from rebalancer.model import _PRIMARY_TIME_SHARE, _WIDER_TIME_SHARE, _caps_kept, _check_arguments, _moves
from rebalancer.problem import (
    UNPLACED,
    Problem,
    build_problem,
    placement_only,
    reach_counts,
    widening,
    with_candidates,
)
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
    reason says so); either way only to a rep serving its segment (``Rep.segments``).
    An orphan whose segment no rep serves stays unplaced: the others are placed and
    the explanation names it.

    Every rep must end within its ``min_accounts`` / ``max_accounts`` and its
    ``min_workload`` / ``max_workload``, as in :func:`minimal_moves`. A placement moves no other account, so a rep whose own
    accounts already exceed its max_accounts, or that cannot reach its min_accounts with
    the orphans it may take, leaves no placement at all: the status is then
    "infeasible" (no moves) and the explanation names the cap.

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
        How many nearest reps within reach each orphan may go to. When no placement
        keeps every rep within band, more are tried (twice as many each time, up to
        every rep within reach; ``max_travel_km`` holds) within the same time limit, and
        the first that does is taken; ``notes`` say so, or that it did not help.
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
        always returned unless the account caps rule every placement out ("infeasible")
        or none within them was found in time ("unknown"), or no orphan can be placed
        ("infeasible": no rep serves their segments). ``objective`` and ``bound`` are the number of moves, which is
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
    # An orphan whose segment no rep serves cannot be placed: it is left out (and stays
    # unplaced), the others are placed as if it were not there.
    unserved = [
        full.accounts[i] for i, cur in enumerate(full.current) if cur == UNPLACED and not full.eligible[i].any()
    ]
    if unserved:
        left_out = {a.account_id for a in unserved}
        kept = [a for a in accounts if a.account_id not in left_out]
        full = build_problem(kept, reps, tolerance=tolerance, candidate_reps=candidate_reps)
    problem = placement_only(full)
    orphans = [i for i, cur in enumerate(problem.current) if cur == UNPLACED]
    unplaceable = _unserved(unserved)

    def empty(status: str, explanation: str | None, notes: tuple[str, ...] = ()) -> RebalanceResult:
        return RebalanceResult(
            status=status,
            moves=(),
            before=before,
            after=before,
            objective=0.0 if status == "balanced" else None,
            bound=0.0 if status == "balanced" else None,
            gap=0.0 if status == "balanced" else None,
            seconds=time.perf_counter() - start,
            tolerance=tolerance,
            explanation=explanation,
            notes=notes,
        )

    if not orphans:
        if unserved:  # orphans, but none that can be placed
            return empty("infeasible", unplaceable)
        explained = [
            _out_of_band(problem, problem.current, "there are no orphaned accounts to place", "rep {rep} is at"),
            _caps_broken(problem, problem.current),
        ]
        return empty("balanced", "; ".join(e for e in explained if e) or None)

    # Caps that no placement can meet, even with every rep within reach: nothing to solve.
    caps = (
        explain_caps(_placement_with(full, _widest(full, orphans)), why=_FIXED, which=_TAKES) if full.has_caps else []
    )
    if caps:
        return empty("infeasible", _joined([unplaceable, _caps_sentence(caps, len(orphans))]))

    # The least worst deviation with the orphans' nearest candidate_reps reps.
    deadline = start + time_limit_s
    chosen = _least_worst(
        problem,
        deadline=start + _PRIMARY_TIME_SHARE * time_limit_s,
        num_workers=num_workers,
        candidate_reps=candidate_reps,
    )
    notes: list[str] = []
    if chosen.assignment is None or not _in_band(chosen.problem, chosen.assignment):
        widened, note = _widen(full, chosen, candidate_reps, deadline, num_workers)
        if widened is not None:
            chosen, full = widened, with_candidates(full, widened.candidate_reps)
        if note:
            notes.append(note)
    if chosen.assignment is None:
        n = len(orphans)
        if chosen.status == "infeasible":
            why = (
                f"no placement of the {n} orphaned account{'s' if n > 1 else ''} keeps"
                f"{_caps_kept(full)[4:]}; a placement moves no other account, a full rebalance "
                "(minimal_moves) may move other accounts too"
            )
        else:
            why = f"no placement within the account caps found in {time_limit_s:g} s"
        return empty(chosen.status, _joined([unplaceable, why]), tuple(notes))
    problem, status, proven = chosen.problem, chosen.status, chosen.proven
    # Then the least travel keeping that worst deviation.
    assignment = _least_travel(chosen, deadline=deadline, num_workers=num_workers)

    reasons = {problem.accounts[i].account_id: _where(full, i) for i in orphans}
    moves = tuple(
        replace(m, reason=f"{m.reason}; {reasons[m.account_id]}") for m in _moves(problem, assignment, before)
    )
    n = len(orphans)
    explained = [
        unplaceable,
        _out_of_band(
            problem,
            assignment,
            f"no placement of the {n} orphaned account{'s' if n > 1 else ''} keeps every rep "
            f"within ±{tolerance:.0%} of fair share",
            "even the best placement leaves rep {rep} at"
            if status == "optimal"
            else "the best placement found leaves rep {rep} at",
        ),
    ]
    if status == "feasible":
        found = cpsat.worst_deviation(problem, assignment) / DEVIATION_RESOLUTION
        explained.append(
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
        explanation="; ".join(note for note in explained if note) or None,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _Placement:
    """The least worst deviation for one candidate rule, and the model that found it
    (the travel tie-break goes on from there)."""

    problem: Problem
    candidate_reps: int
    # Of the worst deviation: "optimal" (proven least) or "feasible"; "infeasible" (the
    # account caps cannot hold) or "unknown" (none found in time) when no assignment.
    status: str
    assignment: list[int] | None
    proven: int  # lower bound on the worst deviation, in millionths of fair share
    model: cp_model.CpModel
    x: cpsat.Assignment
    worst: cp_model.IntVar


def _least_worst(problem: Problem, *, deadline: float, num_workers: int, candidate_reps: int) -> _Placement:
    """Least worst deviation, warm-started from the greedy placement (complete: every
    orphan has a candidate in a placement-only problem, orphans whose segment no rep
    serves being left out). No assignment when the account caps cannot hold."""
    p = problem
    greedy = greedy_placement(p)
    assert greedy is not None
    model, x = cpsat.assignment_model(p)
    # worst: the largest deviation from fair share over reps, in millionths of fair share.
    worst = cpsat.add_worst_deviation(model, p, x)
    model.minimize(worst)
    cpsat.hint(model, p, x, greedy)
    model.add_hint(worst, cpsat.worst_deviation(p, greedy))
    solver = cpsat.solver(num_workers, deadline - time.perf_counter())
    code = cpsat.solve(solver, model)
    assignment: list[int] | None
    if cpsat.found(code):
        assignment = cpsat.read(solver, p, x)
        proven = min(math.ceil(solver.best_objective_bound - 1e-6), cpsat.worst_deviation(p, assignment))
    elif p.caps_hold(greedy):  # no solution in time: the greedy placement still stands
        assignment, proven = greedy, 0
    else:  # the greedy breaks a cap: there is no placement (proven), or none found in time
        status = "infeasible" if code == cp_model.INFEASIBLE else "unknown"
        return _Placement(p, candidate_reps, status, None, 0, model, x, worst)
    best = cpsat.worst_deviation(p, assignment)
    status = "optimal" if code == cp_model.OPTIMAL or proven >= best else "feasible"
    return _Placement(p, candidate_reps, status, assignment, proven, model, x, worst)


def _least_travel(placement: _Placement, *, deadline: float, num_workers: int) -> list[int]:
    """Least travel keeping the worst deviation found (a second solve of the same model,
    so the order of the objectives is strict)."""
    p, model, x, worst = placement.problem, placement.model, placement.x, placement.worst
    assignment = placement.assignment
    assert assignment is not None, "only a placement is improved"
    remaining = deadline - time.perf_counter()
    if remaining < cpsat.MIN_SOLVE_SECONDS:
        return assignment
    best = cpsat.worst_deviation(p, assignment)
    model.add(worst <= best)
    # Travel of the placed accounts (everyone else has only their current rep).
    model.minimize(cpsat.travel_expr(p, x))
    cpsat.hint(model, p, x, assignment)
    model.add_hint(worst, best)
    solver = cpsat.solver(num_workers, remaining)
    if cpsat.found(cpsat.solve(solver, model)):
        solution = cpsat.read(solver, p, x)
        # Belt and braces: only a verified solution replaces the one we hold.
        if cpsat.worst_deviation(p, solution) <= best and p.caps_hold(solution):
            return solution
    return assignment


def _widen(
    full: Problem, first: _Placement, candidate_reps: int, deadline: float, num_workers: int
) -> tuple[_Placement | None, str | None]:
    """When the best placement leaves a rep out of band, or there is none within the
    account caps, the same with more candidate reps for the orphans (twice as many each
    time, then every rep within reach) in the time left: the first that brings every rep
    within band (or, when the first had none, the first within the caps if none is
    within band), and a note either way. Nothing is tried for the band when a rep's own
    accounts already put it over its band (no placement can help) or every rep is a
    candidate already."""
    p = first.problem
    loads = p.loads(p.current)
    capped = first.assignment is None  # the caps, not the band, are what failed
    if not capped and any(loads[r] > p.hi[r] for r in range(p.n_reps)):
        return None, None
    orphans = [i for i, cur in enumerate(p.current) if cur == UNPLACED]
    widest = _widest(full, orphans)
    levels = [k for k in widening(candidate_reps, p.n_reps) if candidate_reps < k <= widest]
    if candidate_reps < widest and (not levels or levels[-1] < widest):
        levels.append(widest)
    tried = []
    within_caps: _Placement | None = None  # the first placement within the caps, when they failed
    for index, k in enumerate(levels):
        remaining = deadline - time.perf_counter()
        if remaining < 2 * cpsat.MIN_SOLVE_SECONDS:
            break
        # Every try but the last gets half of the time left; the last keeps a fifth of
        # it for the travel tie-break.
        share = _PRIMARY_TIME_SHARE if index == len(levels) - 1 else _WIDER_TIME_SHARE
        wider = _placement_with(full, k)
        placement = _least_worst(
            wider, deadline=time.perf_counter() + share * remaining, num_workers=num_workers, candidate_reps=k
        )
        tried.append(k)
        if placement.assignment is None:
            continue
        kept = "within its account caps" if capped else "within band"
        if _in_band(wider, placement.assignment):
            label = "every rep within reach" if k >= widest else f"{k} nearest reps within reach"
            return placement, (
                f"candidates widened from {candidate_reps} to {label}: with {candidate_reps}, no placement kept "
                f"every rep {kept}"
            )
        if capped:
            within_caps = within_caps or placement
    if within_caps is not None:
        k = within_caps.candidate_reps
        label = "every rep within reach" if k >= widest else f"{k} nearest reps within reach"
        return within_caps, (
            f"candidates widened from {candidate_reps} to {label}: with {candidate_reps}, no placement kept "
            "every rep within its account caps"
        )
    if not tried:
        return None, None
    label = "every rep within reach" if tried[-1] >= widest else f"{tried[-1]} nearest reps within reach"
    if capped:
        return None, f"candidates widened from {candidate_reps} up to {label} did not help either"
    return None, (
        f"candidates widened from {candidate_reps} up to {label} did not bring every rep within band either; "
        f"the placement with {candidate_reps} stands"
    )


def _widest(full: Problem, orphans: Sequence[int]) -> int:
    """The candidate count that means every rep within reach for these orphans."""
    return int(reach_counts(full)[list(orphans)].max(initial=0))


def _placement_with(full: Problem, candidate_reps: int) -> Problem:
    """The placement-only problem where each orphan may go to its ``candidate_reps``
    nearest reps within reach (serving its segment)."""
    return placement_only(with_candidates(full, max(candidate_reps, 1)))


# --------------------------------------------------------------------------- helpers

#: How the cap sentences (heuristics.explain_caps) read in a placement.
_FIXED = "a placement moves no other account"
_TAKES = "its own and the orphans within reach that it serves"


def _unserved(accounts: Sequence[Account]) -> str | None:
    """Names the orphans left unplaced because no rep serves their segment."""
    if not accounts:
        return None
    others = len(accounts) - 1
    more = f" (and {others} more orphan{'s' if others > 1 else ''} whose segment no rep serves)" if others else ""
    return f"{explain_unserved(accounts[0])}; it stays unplaced{more}"


def _caps_sentence(caps: Sequence[str], n: int) -> str:
    others = len(caps) - 1
    more = f" ({others} more cap{'s' if others > 1 else ''} cannot hold either)" if others else ""
    return (
        f"no placement of the {n} orphaned account{'s' if n > 1 else ''} can meet the account caps: {caps[0]}{more}; "
        "a full rebalance (minimal_moves) may move other accounts too"
    )


def _caps_broken(problem: Problem, assignment: Sequence[int]) -> str | None:
    """Names a rep outside its account or workload caps under ``assignment``, if any."""
    p = problem
    work = p.work_loads(assignment)
    for r, count in enumerate(p.counts(assignment)):
        broken = p.broken_cap(r, count, work[r])
        if broken is not None:
            rep = p.reps[r]
            name, value, cap = broken
            side = "above" if name.startswith("max") else "below"
            holds = (
                f"{count} account{'s' if count != 1 else ''}"
                if name.endswith("_accounts")
                else f"a workload of {value:g}"
            )
            return (
                f"rep {rep.rep_id} holds {holds}, {side} its {name} of {cap:g}; "
                "a full rebalance (minimal_moves) would be needed to meet it"
            )
    return None


def _joined(parts: Sequence[str | None]) -> str | None:
    return "; ".join(part for part in parts if part) or None


def _where(problem: Problem, i: int) -> str:
    """Where orphan ``i`` may go, for its move's reason; ``problem`` is the full one,
    whose candidates respect every rep's max_travel_km."""
    p = problem
    reps = p.reps
    if not p.candidates[i]:
        r = int(np.where(p.eligible[i], p.distance_km[i], np.inf).argmin())  # as placement_only does
        nearest = "the nearest" if p.eligible[i].all() else "the nearest serving its segment"
        return f"no rep within max_travel_km; placed with {nearest}, {reps[r].rep_id} ({p.distance_km[i, r]:.0f} km)"
    near = ", ".join(f"{reps[r].rep_id} ({p.distance_km[i, r]:.0f} km)" for r in p.candidates[i])
    return f"nearest rep{'s' if len(p.candidates[i]) > 1 else ''} {near}"


def _in_band(problem: Problem, assignment: Sequence[int]) -> bool:
    """Every rep inside fair share * (1 ± tolerance) under ``assignment``."""
    loads = problem.loads(assignment)
    return all(problem.violation(r, loads[r]) == 0 for r in range(problem.n_reps))


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
