"""The rebalancing problem in solver-ready form (internal).

Everything the greedy repair, the lower bound, the infeasibility checks and the CP-SAT
model share is computed once here: index maps, integer potentials, the band of every
rep and the candidate reps of every account. Keeping a single integer representation
means all of them agree on what "within band" means.

Integer scaling
---------------
CP-SAT needs integer coefficients. Potentials are scaled so that the total potential
is ``RESOLUTION`` units and rounded to the nearest unit. Band bounds are rounded
*inwards* (``ceil`` of the lower bound, ``floor`` of the upper bound, after absorbing
float noise of ``_FLOAT_NOISE_UNITS``), so a rep inside its integer band is inside its
float band up to the rounding of its own accounts: at most ``0.5 * k / RESOLUTION`` of
the total potential for a rep with ``k`` accounts (2e-7 of the total for k = 400).

Why not a finer resolution: with the total at 1e12 units, OR-Tools 9.15 certified
non-optimal solutions as optimal on a few small brute-forced cases (see ``_solver`` in
model.py); at 1e9 none of about 2,700 such cases went wrong, with or without the
presolve workaround.

Segments and caps
-----------------
Segments act where travel limits do: ``eligible[i, r]`` says whether rep ``r`` serves
account ``i``'s segment, and only eligible reps become candidates (the current rep is
always one). Unlike travel limits they are never widened away. The account caps
(``Rep.min_accounts`` / ``max_accounts``) are constraints of every CP-SAT model
(``cpsat.assignment_model``) and part of :meth:`Problem.is_balanced`.

The workload caps (``Rep.min_workload`` / ``max_workload``) are absolute amounts of the
accounts' workload, not shares, so they get a fixed scale of their own: ``work`` counts
thousandths of a workload unit (``WORKLOAD_UNITS``), exact for workloads given to three
decimals, and the caps are rounded inwards like the bands. Only an unusually large total
workload gets a coarser scale, to keep every sum far below 2**53.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from core.geo import haversine_matrix_km

if TYPE_CHECKING:  # only for annotations: model.py imports this module
    from rebalancer.values import Account, Rep

#: Integer units the total potential is scaled to (see module docstring).
RESOLUTION = 10**9
#: Relative float error of a band bound is ~1e-16, i.e. ~1e-4 units at RESOLUTION;
#: absorbing 1e-3 units keeps bounds that are exact in decimal (e.g. 45.0) exact.
_FLOAT_NOISE_UNITS = 1e-3
#: Integer units per unit of Account.workload for the workload caps (see module docstring) ...
WORKLOAD_UNITS = 1000
#: ... unless the total workload would pass this many units.
_WORKLOAD_TOTAL_LIMIT = 10**15
#: Marks an account whose current rep is missing or not in ``reps``.
UNPLACED = -1


@dataclass(frozen=True, eq=False)
class Problem:
    """Solver-ready data. Accounts and reps are referred to by position."""

    accounts: Sequence[Account]
    reps: Sequence[Rep]
    # The primary metric (metrics[0], normally "potential"): the greedy repair, the
    # bounds and the explanations work on it; `view(m)` gives any other metric this shape.
    tolerance: float
    potential: list[int]  # scaled value of the primary metric per account
    current: list[int]  # current rep index per account, UNPLACED if it must be placed
    locked: list[bool]  # True only when the account is locked to a rep in `reps`
    candidates: list[tuple[int, ...]]  # allowed reps per account, current rep first
    reachable_by: list[list[int]]  # per rep: accounts that list it as a candidate
    distance_km: NDArray[np.float64]  # accounts x reps, from rep home to account
    eligible: NDArray[np.bool_]  # accounts x reps: the rep serves the account's segment
    fair: list[float]  # scaled fair potential per rep
    lo: list[int]  # scaled band per rep, inclusive
    hi: list[int]
    # Every balanced metric, primary first, each scaled to RESOLUTION on its own.
    metrics: tuple[str, ...]
    tolerances: tuple[float, ...]
    values: tuple[list[int], ...]
    fairs: tuple[list[float], ...]
    los: tuple[list[int], ...]
    his: tuple[list[int], ...]
    # The workload caps, whatever the metrics: scaled workload per account, units per
    # workload unit, and per rep the least (0: no min) and most (None: no max) scaled workload.
    work: list[int]
    work_units: float
    work_least: list[int]
    work_most: list[int | None]

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    @property
    def n_reps(self) -> int:
        return len(self.reps)

    def loads(self, assignment: Sequence[int]) -> list[int]:
        """Scaled potential served by each rep under ``assignment``."""
        loads = [0] * self.n_reps
        for i, r in enumerate(assignment):
            if r != UNPLACED:
                loads[r] += self.potential[i]
        return loads

    def violation(self, r: int, load: int) -> int:
        """How far (in scaled units) ``load`` lies outside rep ``r``'s band; 0 inside."""
        return max(0, self.lo[r] - load, load - self.hi[r])

    def relative(self, r: int, load: float) -> float:
        """``load`` as a fraction of rep ``r``'s fair potential (1.0 = fair share)."""
        return load / self.fair[r] if self.fair[r] > 0 else 1.0

    def moves(self, assignment: Sequence[int]) -> int:
        """Accounts whose rep differs from the current one (placements included)."""
        return sum(1 for cur, new in zip(self.current, assignment) if cur == UNPLACED or cur != new)

    def metric_loads(self, assignment: Sequence[int]) -> list[list[int]]:
        """Scaled load of every rep, per metric."""
        return [self.view(m).loads(assignment) for m in range(len(self.metrics))]

    def is_balanced(self, assignment: Sequence[int]) -> bool:
        """Every account placed, every rep inside its band on every metric and within
        its account caps: what every answer must be."""
        if UNPLACED in assignment:
            return False
        for m, loads in enumerate(self.metric_loads(assignment)):
            if any(load < self.los[m][r] or load > self.his[m][r] for r, load in enumerate(loads)):
                return False
        return self.caps_hold(assignment)

    @property
    def has_caps(self) -> bool:
        """Some rep has a cap: min_accounts, max_accounts, min_workload or max_workload."""
        return self.has_workload_caps or any(
            rep.min_accounts is not None or rep.max_accounts is not None for rep in self.reps
        )

    @property
    def has_workload_caps(self) -> bool:
        """Some rep has a min_workload or max_workload."""
        return any(rep.min_workload is not None or rep.max_workload is not None for rep in self.reps)

    def work_loads(self, assignment: Sequence[int]) -> list[int]:
        """Scaled workload held by each rep under ``assignment`` (``work`` units)."""
        loads = [0] * self.n_reps
        for i, r in enumerate(assignment):
            if r != UNPLACED:
                loads[r] += self.work[i]
        return loads

    def workload_excess(self, r: int, work: int) -> int:
        """How far (in ``work`` units) ``work`` lies outside rep ``r``'s workload caps; 0 within."""
        most = self.work_most[r]
        return max(0, self.work_least[r] - work, work - most if most is not None else 0)

    def broken_cap(self, r: int, count: int, work: int) -> tuple[str, float, float] | None:
        """The first cap of rep ``r`` that ``count`` accounts of total scaled workload
        ``work`` break, as (name, the rep's value, the cap), e.g. ("max_workload", 41.5,
        40.0); None when every cap holds. For the explanations."""
        rep = self.reps[r]
        if rep.max_accounts is not None and count > rep.max_accounts:
            return "max_accounts", count, rep.max_accounts
        if rep.min_accounts is not None and count < rep.min_accounts:
            return "min_accounts", count, rep.min_accounts
        most = self.work_most[r]
        if rep.max_workload is not None and most is not None and work > most:
            return "max_workload", work / self.work_units, rep.max_workload
        if rep.min_workload is not None and work < self.work_least[r]:
            return "min_workload", work / self.work_units, rep.min_workload
        return None

    @property
    def has_segments(self) -> bool:
        """Segments keep some account from some rep."""
        return not bool(self.eligible.all())

    def counts(self, assignment: Sequence[int]) -> list[int]:
        """Accounts held by each rep under ``assignment``."""
        counts = [0] * self.n_reps
        for r in assignment:
            if r != UNPLACED:
                counts[r] += 1
        return counts

    def cap_excess(self, r: int, count: int) -> int:
        """How many accounts ``count`` lies outside rep ``r``'s caps; 0 within them."""
        rep = self.reps[r]
        below = rep.min_accounts - count if rep.min_accounts is not None else 0
        above = count - rep.max_accounts if rep.max_accounts is not None else 0
        return max(0, below, above)

    def caps_hold(self, assignment: Sequence[int]) -> bool:
        """Every rep holds between its min_accounts and max_accounts accounts, and between
        its min_workload and max_workload of workload."""
        if not self.has_caps:
            return True
        if not all(self.cap_excess(r, count) == 0 for r, count in enumerate(self.counts(assignment))):
            return False
        return not self.has_workload_caps or all(
            self.workload_excess(r, work) == 0 for r, work in enumerate(self.work_loads(assignment))
        )

    def imbalance(self, assignment: Sequence[int]) -> float:
        """Largest relative deviation from fair share, ``max |load / fair - 1|``, over
        reps and metrics (metrics with nothing to share count 0)."""
        worst = 0.0
        for m, loads in enumerate(self.metric_loads(assignment)):
            for r, load in enumerate(loads):
                if self.fairs[m][r] > 0:
                    worst = max(worst, abs(load / self.fairs[m][r] - 1))
        return worst

    def view(self, m: int) -> Problem:
        """The same problem balancing only metric ``m`` (as its primary metric)."""
        if m == 0 and len(self.metrics) == 1:
            return self
        return replace(
            self,
            tolerance=self.tolerances[m],
            potential=self.values[m],
            fair=self.fairs[m],
            lo=self.los[m],
            hi=self.his[m],
            metrics=(self.metrics[m],),
            tolerances=(self.tolerances[m],),
            values=(self.values[m],),
            fairs=(self.fairs[m],),
            los=(self.los[m],),
            his=(self.his[m],),
        )


def build_problem(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    *,
    tolerance: float | Mapping[str, float],
    candidate_reps: int,
    metrics: Sequence[str] = ("potential",),
) -> Problem:
    """Scale, index and prune. Inputs are assumed validated by the caller.

    ``metrics`` are Account attribute names ("potential", "workload"); ``tolerance``
    is one value for all of them or one per metric."""
    rep_index = {rep.rep_id: r for r, rep in enumerate(reps)}
    capacity = math.fsum(rep.capacity_fte for rep in reps)
    tolerances = tuple(tolerance[m] if isinstance(tolerance, Mapping) else tolerance for m in metrics)
    values, fairs, los, his = [], [], [], []
    for metric, tol in zip(metrics, tolerances):
        raw = [float(getattr(a, metric)) for a in accounts]
        total = math.fsum(raw)
        # With nothing to share every band is [0, 0] and any scale works.
        scale = RESOLUTION / total if total > 0 else 1.0
        values.append([round(v * scale) for v in raw])
        fair = [total * rep.capacity_fte / capacity * scale for rep in reps]
        fairs.append(fair)
        los.append([max(0, math.ceil(f * (1 - tol) - _FLOAT_NOISE_UNITS)) for f in fair])
        his.append([math.floor(f * (1 + tol) + _FLOAT_NOISE_UNITS) for f in fair])

    work_raw = [float(a.workload) for a in accounts]
    work_total = math.fsum(work_raw)
    work_units = float(WORKLOAD_UNITS)
    if work_total * work_units > _WORKLOAD_TOTAL_LIMIT:
        work_units = _WORKLOAD_TOTAL_LIMIT / work_total
    # Caps rounded inwards, as the bands; float noise absorbed so that 40.0 stays 40000.
    work_least = [
        max(0, math.ceil(rep.min_workload * work_units - _FLOAT_NOISE_UNITS)) if rep.min_workload is not None else 0
        for rep in reps
    ]
    work_most: list[int | None] = [
        math.floor(rep.max_workload * work_units + _FLOAT_NOISE_UNITS) if rep.max_workload is not None else None
        for rep in reps
    ]

    current = [rep_index.get(a.rep_id, UNPLACED) if a.rep_id is not None else UNPLACED for a in accounts]
    locked = [a.locked and cur != UNPLACED for a, cur in zip(accounts, current)]

    distance_km = haversine_matrix_km(
        [a.lat for a in accounts],
        [a.lon for a in accounts],
        [rep.home_lat for rep in reps],
        [rep.home_lon for rep in reps],
    )
    eligible = serves_matrix(accounts, reps)
    candidates = _candidates(distance_km, reps, current, locked, candidate_reps, eligible)

    return Problem(
        accounts=accounts,
        reps=reps,
        tolerance=tolerances[0],
        potential=values[0],
        current=current,
        locked=locked,
        candidates=candidates,
        reachable_by=_reachable_by(candidates, len(reps)),
        distance_km=distance_km,
        eligible=eligible,
        fair=fairs[0],
        lo=los[0],
        hi=his[0],
        metrics=tuple(metrics),
        tolerances=tolerances,
        values=tuple(values),
        fairs=tuple(fairs),
        los=tuple(los),
        his=tuple(his),
        work=[round(w * work_units) for w in work_raw],
        work_units=work_units,
        work_least=work_least,
        work_most=work_most,
    )


def serves_matrix(accounts: Sequence[Account], reps: Sequence[Rep]) -> NDArray[np.bool_]:
    """Accounts x reps: whether the rep serves the account's segment (:meth:`Rep.serves`),
    one lookup per segment rather than per pair."""
    eligible = np.ones((len(accounts), len(reps)), dtype=bool)
    labels = sorted({a.segment for a in accounts if a.segment is not None})
    if not labels or all(not rep.segments for rep in reps):
        return eligible
    code = {label: k for k, label in enumerate(labels)}
    # Row k: which reps serve segment k; the last row is "no segment" (everyone).
    served = np.ones((len(labels) + 1, len(reps)), dtype=bool)
    for k, label in enumerate(labels):
        served[k] = [rep.serves(label) for rep in reps]
    segment = np.array([code[a.segment] if a.segment is not None else len(labels) for a in accounts], dtype=np.int64)
    result: NDArray[np.bool_] = served[segment]
    return result


def with_candidates(problem: Problem, candidate_reps: int, *, travel_limits: bool = True) -> Problem:
    """The same problem where each account may go to its ``candidate_reps`` nearest other
    reps (see :func:`_candidates`); with ``travel_limits=False`` every rep counts as within
    reach, whatever its ``max_travel_km``. Segments always hold: a rep that does not serve
    an account's segment never becomes its candidate. Distances are not computed again."""
    p = problem
    candidates = _candidates(
        p.distance_km, p.reps, p.current, p.locked, candidate_reps, p.eligible, travel_limits=travel_limits
    )
    return replace(p, candidates=candidates, reachable_by=_reachable_by(candidates, p.n_reps))


def widening(candidate_reps: int, n_reps: int) -> list[int]:
    """Candidate counts to try in turn when the pruned model has no answer: the given one,
    then twice as many each time, then every rep (``n_reps``: every rep within reach).

    >>> widening(3, 20), widening(3, 4), widening(5, 3)
    ([3, 6, 12, 20], [3, 4], [5])
    """
    levels = [candidate_reps]
    while levels[-1] < n_reps:
        levels.append(min(2 * levels[-1], n_reps))
    return levels


def reach_counts(problem: Problem, *, travel_limits: bool = True) -> NDArray[np.int64]:
    """Per account, how many reps it could go to besides its current one: the reps whose
    ``max_travel_km`` reaches it and that serve its segment, 0 for a locked account.
    ``candidate_reps`` at or above the largest count means every rep within reach;
    ``sum(min(count, k)) + placed accounts`` is the model size for ``k``. With
    ``travel_limits=False``: the reps serving its segment, however far."""
    p = problem
    max_travel = np.array(
        [math.inf if rep.max_travel_km is None or not travel_limits else rep.max_travel_km for rep in p.reps]
    )
    within = (p.distance_km <= max_travel[None, :]) & p.eligible
    counts = within.sum(axis=1).astype(np.int64)
    current = np.array(p.current, dtype=np.int64)
    rows = np.flatnonzero(current != UNPLACED)
    counts[rows] -= within[rows, current[rows]]
    counts[np.array(p.locked, dtype=bool)] = 0
    return counts


def candidate_pairs(problem: Problem) -> int:
    """Assignment variables of the problem's model: one per account and candidate rep."""
    return sum(len(c) for c in problem.candidates)


def placement_only(problem: Problem) -> Problem:
    """The same problem with every placed account fixed to its current rep (as if
    locked), so only unplaced accounts can be assigned. An unplaced account keeps its
    candidates; one with no rep within reach gets the nearest rep serving its segment,
    beyond its ``max_travel_km`` (the caller says so). One whose segment no rep serves
    gets no candidate at all: it cannot be placed (the caller leaves it out)."""
    p = problem
    candidates: list[tuple[int, ...]] = []
    for i, cur in enumerate(p.current):
        if cur != UNPLACED:
            candidates.append((cur,))
        elif p.candidates[i]:
            candidates.append(p.candidates[i])
        elif p.eligible[i].any():
            serving = np.where(p.eligible[i], p.distance_km[i], np.inf)
            candidates.append((int(serving.argmin()),))
        else:
            candidates.append(())
    return replace(
        p,
        locked=[cur != UNPLACED for cur in p.current],
        candidates=candidates,
        reachable_by=_reachable_by(candidates, p.n_reps),
    )


def _reachable_by(candidates: Sequence[tuple[int, ...]], n_reps: int) -> list[list[int]]:
    """Per rep, the accounts that list it as a candidate."""
    reachable_by: list[list[int]] = [[] for _ in range(n_reps)]
    for i, cands in enumerate(candidates):
        for r in cands:
            reachable_by[r].append(i)
    return reachable_by


def _candidates(
    distance_km: NDArray[np.float64],
    reps: Sequence[Rep],
    current: list[int],
    locked: list[bool],
    candidate_reps: int,
    eligible: NDArray[np.bool_],
    *,
    travel_limits: bool = True,
) -> list[tuple[int, ...]]:
    """Current rep first, then the ``candidate_reps`` nearest other reps within their
    ``max_travel_km`` (every rep when ``travel_limits`` is False) that serve the
    account's segment (``eligible``), nearest first.

    Staying with the current rep is always allowed, even beyond its max travel or
    outside its segments: both rules restrict new assignments, they do not force anyone
    out. With at most ``candidate_reps + 1`` reps this yields every rep within reach
    (for an account that must be placed, with ``candidate_reps >= n_reps``).
    """
    n, n_reps = distance_km.shape
    if n == 0:
        return []
    max_travel = np.array(
        [math.inf if rep.max_travel_km is None or not travel_limits else rep.max_travel_km for rep in reps]
    )
    ranked = np.where((distance_km <= max_travel[None, :]) & eligible, distance_km, np.inf)
    has_current = np.array(current) != UNPLACED
    rows = np.flatnonzero(has_current)
    ranked[rows, np.array(current)[rows]] = np.inf  # the current rep is added separately
    k = min(candidate_reps, n_reps)
    nearest = np.argsort(ranked, axis=1, kind="stable")[:, :k]
    in_reach = np.isfinite(np.take_along_axis(ranked, nearest, axis=1))

    candidates: list[tuple[int, ...]] = []
    for i in range(n):
        if locked[i]:
            candidates.append((current[i],))
            continue
        others = tuple(int(r) for r, ok in zip(nearest[i], in_reach[i]) if ok)
        candidates.append((current[i], *others) if current[i] != UNPLACED else others)
    return candidates
