"""Fast helpers around the CP-SAT model (internal): greedy repair, a lower bound on the
number of moves, and per-rep proofs of infeasibility with a human explanation.

docs/ARCHITECTURE.md ("Measured facts") measured that a greedy repair takes 0.01-0.1 s,
sometimes meets the simple lower bound (then CP-SAT need not search for the move count
at all) and, used as the solution hint, helps CP-SAT on larger cases. Here it also
follows short chains of moves (A -> B -> C) when no single account fits, which turned
it from stalling into feasible on most clustered test cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.formatting import distinct_percents
from rebalancer.problem import UNPLACED, Problem

if TYPE_CHECKING:
    from rebalancer.values import Account


@dataclass(frozen=True)
class Repair:
    """Outcome of :func:`greedy_repair`."""

    assignment: list[int]  # rep index per account (placed unless one has no candidate)
    feasible: bool  # every rep inside its band
    stuck_rep: int | None  # most violated rep when the greedy gave up


def greedy_repair(problem: Problem) -> Repair:
    """Place unplaced accounts, then repeatedly move the largest fitting account from
    the most over-served rep to the most under-served candidate rep (or into the most
    under-served rep from the most over-served donor). When no single account fits,
    try a short chain of moves through full neighbours (A -> B -> C).

    Every step keeps the giving rep at or above its lower bound, the receiving rep at
    or under its upper bound and reps in between no further out of band, while the
    rep being repaired gets closer to its band: the total band violation strictly
    falls, so the loop ends. ``feasible=False`` when no such step is left.

    Caps: no step takes a rep below its min_accounts or min_workload, or above its
    max_accounts or max_workload, and placements prefer reps with room under their maxima,
    but caps broken today are not repaired
    here (CP-SAT does that). ``feasible`` is :meth:`Problem.is_balanced`, caps included,
    and only a feasible repair is ever taken as an answer.
    """
    return _Repairer(problem).run()


def greedy_placement(problem: Problem) -> list[int] | None:
    """Only the first step of :func:`greedy_repair`: place every unplaced account,
    largest first, on its relatively least served candidate that still has room
    (nearest on ties), and leave every other account where it is. None if an
    unplaced account has no candidate at all."""
    repairer = _Repairer(problem)
    return repairer.assignment if repairer._place_unplaced() else None


#: How many first accounts and how many end reps a chain search tries per step.
_CHAIN_TRIES = 20


class _Repairer:
    """State of one greedy repair: the assignment, loads, and which movable accounts
    each rep holds."""

    def __init__(self, problem: Problem) -> None:
        p = self.p = problem
        self.assignment = list(p.current)
        self.loads = p.loads(self.assignment)
        self.counts = p.counts(self.assignment)
        self.most = [math.inf if rep.max_accounts is None else rep.max_accounts for rep in p.reps]
        self.least = [0 if rep.min_accounts is None else rep.min_accounts for rep in p.reps]
        self.work = p.work_loads(self.assignment)
        self.work_most = [math.inf if most is None else most for most in p.work_most]
        # Other metrics than the primary one: moves must not push them further out of band.
        self.others = [p.view(m) for m in range(1, len(p.metrics))]
        self.other_loads = [view.loads(self.assignment) for view in self.others]
        self.members: list[set[int]] = [set() for _ in range(p.n_reps)]
        # links[d][t]: how many movable accounts held by d may go to t (chain search graph).
        self.links = [[0] * p.n_reps for _ in range(p.n_reps)]

    def run(self) -> Repair:
        p = self.p
        if not self._place_unplaced():
            return Repair(self.assignment, feasible=False, stuck_rep=None)
        for i, r in enumerate(self.assignment):
            if not p.locked[i] and len(p.candidates[i]) > 1 and p.potential[i] > 0:
                self._hold(i, r)

        violated: list[int] = []
        # The cap only bounds the work on pathological inputs (many tiny accounts that
        # each fix a sliver); the strictly falling violation already ends the loop.
        for _ in range(4 * p.n_accounts + 100):
            violated = sorted(
                (r for r in range(p.n_reps) if p.violation(r, self.loads[r]) > 0),
                key=lambda r: -p.violation(r, self.loads[r]) / max(p.fair[r], 1.0),
            )
            if not violated:
                feasible = p.is_balanced(self.assignment)
                return Repair(self.assignment, feasible=feasible, stuck_rep=None if feasible else self._worst_capped())
            steps = self._direct(violated) or self._chain(violated)
            if not steps:
                break
            for i, to in steps:
                self._move(i, to)
        return Repair(self.assignment, feasible=False, stuck_rep=violated[0] if violated else None)

    # -- placements and bookkeeping

    def _worst_capped(self) -> int | None:
        """The rep furthest outside its account caps, if any is."""
        p = self.p
        excess = [p.cap_excess(r, count) for r, count in enumerate(self.counts)]
        worst = max(range(p.n_reps), key=lambda r: excess[r], default=None)
        if worst is not None and excess[worst] > 0:
            return worst
        # Then the workload caps (another unit: compared only among themselves).
        work_excess = [p.workload_excess(r, work) for r, work in enumerate(self.work)]
        worst = max(range(p.n_reps), key=lambda r: work_excess[r], default=None)
        return worst if worst is not None and work_excess[worst] > 0 else None

    def _may_pass(self, frm: int, to: int) -> bool:
        """One account from ``frm`` to ``to`` keeps both within their account caps."""
        return self.counts[frm] > self.least[frm] and self.counts[to] < self.most[to]

    def _place_unplaced(self) -> bool:
        """Placements first, largest first, each to its relatively least served
        candidate that still has room (nearest on ties): they are moves anyway."""
        p, loads = self.p, self.loads
        for i in sorted((i for i, r in enumerate(self.assignment) if r == UNPLACED), key=lambda i: -p.potential[i]):
            if not p.candidates[i]:
                return False
            r = min(
                p.candidates[i],
                key=lambda r: (
                    self.counts[r] >= self.most[r] or self.work[r] + p.work[i] > self.work_most[r],
                    loads[r] + p.potential[i] > p.hi[r],
                    p.relative(r, loads[r]),
                    p.distance_km[i, r],
                ),
            )
            self.assignment[i] = r
            self.counts[r] += 1
            self.work[r] += p.work[i]
            loads[r] += p.potential[i]
            for view, other in zip(self.others, self.other_loads):
                other[r] += view.potential[i]
        return True

    def _hold(self, i: int, r: int) -> None:
        self.members[r].add(i)
        for t in self.p.candidates[i]:
            self.links[r][t] += 1

    def _harmless(self, i: int, frm: int, to: int) -> bool:
        """Moving ``i`` keeps both reps within their workload caps (a step of a chain is
        checked as if alone, which only ever refuses more) and leaves both no further out
        of band on the other metrics."""
        w = self.p.work[i]
        if w and (self.work[frm] - w < self.p.work_least[frm] or self.work[to] + w > self.work_most[to]):
            return False
        for view, loads in zip(self.others, self.other_loads):
            v = view.potential[i]
            if view.violation(frm, loads[frm] - v) > view.violation(frm, loads[frm]):
                return False
            if view.violation(to, loads[to] + v) > view.violation(to, loads[to]):
                return False
        return True

    def _move(self, i: int, to: int) -> None:
        frm = self.assignment[i]
        for view, loads in zip(self.others, self.other_loads):
            loads[frm] -= view.potential[i]
            loads[to] += view.potential[i]
        self.members[frm].discard(i)
        for t in self.p.candidates[i]:
            self.links[frm][t] -= 1
        self._hold(i, to)
        self.loads[frm] -= self.p.potential[i]
        self.loads[to] += self.p.potential[i]
        self.counts[frm] -= 1
        self.counts[to] += 1
        self.work[frm] -= self.p.work[i]
        self.work[to] += self.p.work[i]
        self.assignment[i] = to

    def _room(self, r: int) -> int:
        return self.p.hi[r] - self.loads[r]

    def _slack(self, r: int) -> int:
        return self.loads[r] - self.p.lo[r]

    # -- single moves

    def _direct(self, violated: list[int]) -> list[tuple[int, int]]:
        """One move repairing the worst rep that has one: an over-served rep gives its
        largest fitting account to the least served candidate; an under-served rep
        takes the largest fitting account of the most served donor."""
        p = self.p
        by_service = sorted(range(p.n_reps), key=lambda r: p.relative(r, self.loads[r]))
        for v in violated:
            if self.loads[v] > p.hi[v]:
                for t in by_service:
                    i = self._largest(v, t, min(self._room(t), self._slack(v))) if t != v else None
                    if i is not None:
                        return [(i, t)]
            else:
                for d in reversed(by_service):
                    i = self._largest(d, v, min(self._room(v), self._slack(d))) if d != v else None
                    if i is not None:
                        return [(i, v)]
        return []

    def _largest(self, frm: int, to: int, limit: int) -> int | None:
        """Largest movable account of ``frm`` that may go to ``to`` and is <= limit."""
        if limit <= 0 or self.links[frm][to] == 0 or not self._may_pass(frm, to):
            return None
        best = None
        for i in self.members[frm]:
            if self.p.potential[i] <= limit and to in self.p.candidates[i] and self._harmless(i, frm, to):
                if best is None or self.p.potential[i] > self.p.potential[best]:
                    best = i
        return best

    # -- chains

    def _chain(self, violated: list[int]) -> list[tuple[int, int]]:
        """Moves along a shortest path of reps from one with slack to one with room,
        through reps that pass an account on (an ejection chain)."""
        for v in violated:
            over = self.loads[v] > self.p.hi[v]
            for path in self._paths(v, forward=over):
                steps = self._plan(path)
                if steps:
                    return steps
        return []

    def _paths(self, v: int, *, forward: bool) -> Iterator[list[int]]:
        """Breadth-first paths source -> ... -> sink in the links graph: from an
        over-served ``v`` to reps with room (forward), or from reps with slack to an
        under-served ``v`` (backward). Yields up to _CHAIN_TRIES paths."""
        n = self.p.n_reps
        parent: dict[int, int | None] = {v: None}
        queue = [v]
        found = 0
        for r in queue:
            for t in range(n):
                linked = self.links[r][t] if forward else self.links[t][r]
                if t in parent or not linked:
                    continue
                parent[t] = r
                queue.append(t)
                if (self._room(t) if forward else self._slack(t)) > 0 and parent[t] != v:
                    path = [t]
                    while (up := parent[path[-1]]) is not None:
                        path.append(up)
                    yield path[::-1] if forward else path
                    found += 1
                    if found >= _CHAIN_TRIES:
                        return

    def _plan(self, path: list[int]) -> list[tuple[int, int]]:
        """Accounts to pass along ``path``: the first rep gives within its slack (largest
        first), each rep in between passes on the smallest account that keeps it no
        further out of band, and the last rep receives within its room."""
        p, loads = self.p, self.loads
        src, sink = path[0], path[-1]
        if not self._may_pass(src, sink):  # reps in between pass on as many as they take
            return []
        firsts = sorted(
            (
                i
                for i in self.members[src]
                if path[1] in p.candidates[i] and p.potential[i] <= self._slack(src) and self._harmless(i, src, path[1])
            ),
            key=lambda i: -p.potential[i],
        )[:_CHAIN_TRIES]
        for first in firsts:
            steps = [(first, path[1])]
            incoming = p.potential[first]
            for r, to in zip(path[1:-1], path[2:]):
                low = min(p.lo[r], loads[r])
                high = max(p.hi[r], loads[r])
                out_min, out_max = max(1, loads[r] + incoming - high), loads[r] + incoming - low
                options = [
                    i
                    for i in self.members[r]
                    if out_min <= p.potential[i] <= out_max and to in p.candidates[i] and self._harmless(i, r, to)
                ]
                if not options:
                    break
                chosen = min(options, key=lambda i: p.potential[i])
                steps.append((chosen, to))
                incoming = p.potential[chosen]
            else:
                if incoming <= self._room(sink):
                    return steps
        return []


def lower_bound(problem: Problem) -> int:
    """A valid lower bound on the number of moves.

    Each placement is a move. Each over-served rep must lose at least the fewest of its
    movable accounts whose potential covers its excess; each under-served rep must gain
    at least the fewest reachable accounts covering its deficit. A moved account leaves
    one rep and enters one, so both sums bound the moves:
    ``max(placements + sum of departures, sum of arrivals)``.

    Account caps only add constraints, so the fewest moves with them are at least the
    fewest without: a bound without caps stays valid, and ``lower_bound == moves`` still
    proves a capped answer optimal. The caps also give bounds of their own: a rep above
    its max_accounts loses at least the excess, one below its min_accounts gains at
    least the shortfall; each rep counts the larger of its two departure (arrival) bounds.
    The workload caps likewise: a rep above its max_workload loses at least the fewest of
    its movable accounts covering the excess, one below its min_workload gains at least the
    fewest reachable accounts covering the shortfall.
    """
    p = problem
    loads = p.loads(p.current)
    counts = p.counts(p.current)
    work = p.work_loads(p.current)
    placements = sum(1 for r in p.current if r == UNPLACED)
    departures = arrivals = 0
    for r, rep in enumerate(p.reps):
        leaving = entering = 0
        if loads[r] > p.hi[r]:
            movable = [
                p.potential[i]
                for i in p.reachable_by[r]
                if p.current[i] == r and not p.locked[i] and len(p.candidates[i]) > 1
            ]
            leaving = _fewest_covering(movable, loads[r] - p.hi[r])
        elif loads[r] < p.lo[r]:
            incoming = [p.potential[i] for i in p.reachable_by[r] if p.current[i] != r]
            entering = _fewest_covering(incoming, p.lo[r] - loads[r])
        if rep.max_accounts is not None:
            leaving = max(leaving, counts[r] - rep.max_accounts)
        if rep.min_accounts is not None:
            entering = max(entering, rep.min_accounts - counts[r])
        most = p.work_most[r]
        if most is not None and work[r] > most:
            movable_work = [
                p.work[i]
                for i in p.reachable_by[r]
                if p.current[i] == r and not p.locked[i] and len(p.candidates[i]) > 1
            ]
            leaving = max(leaving, _fewest_covering(movable_work, work[r] - most))
        if work[r] < p.work_least[r]:
            incoming_work = [p.work[i] for i in p.reachable_by[r] if p.current[i] != r]
            entering = max(entering, _fewest_covering(incoming_work, p.work_least[r] - work[r]))
        departures += leaving
        arrivals += entering
    return max(placements + departures, arrivals)


def _fewest_covering(sizes: list[int], amount: int) -> int:
    """Fewest items whose sizes sum to at least ``amount`` (all of them if none do:
    infeasibility is reported by :func:`explain_infeasible`, not here)."""
    total = count = 0
    for size in sorted(sizes, reverse=True):
        if total >= amount:
            break
        total += size
        count += 1
    return count


def explain_unreachable(problem: Problem) -> str | None:
    """A sentence naming an account that must be placed but that no rep may take: no
    rep serves its segment, or none of those that do is within reach."""
    p = problem
    for i, cands in enumerate(p.candidates):
        if not cands:
            account = p.accounts[i]
            if not p.eligible[i].any():
                return explain_unserved(account)
            serving = np.where(p.eligible[i], p.distance_km[i], np.inf)
            r = int(serving.argmin())
            rep = p.reps[r]
            nearest = "the nearest" if p.eligible[i].all() else "the nearest serving its segment"
            return (
                f"account {account.account_id} must be placed but no rep is within reach: "
                f"{nearest}, rep {rep.rep_id}, is {p.distance_km[i, r]:.0f} km away, "
                f"beyond its max_travel_km of {rep.max_travel_km:.0f} km"
            )
    return None


def explain_unserved(account: Account) -> str:
    """The sentence for an account that must be placed but whose segment no rep serves."""
    return f"account {account.account_id} (segment {account.segment!r}) must be placed but no rep serves that segment"


def _cap_findings(
    problem: Problem,
    stuck: Sequence[int],
    reachable: Sequence[int],
    *,
    why: str,
    which: str,
    stuck_work: Sequence[int] = (),
    reachable_work: Sequence[int] = (),
) -> list[str]:
    """Sentences for caps that cannot hold, whatever the bands: the caps' totals against
    the number of accounts, a rep holding more accounts it cannot give away (``stuck[r]``,
    reason ``why``) than its max_accounts, and a rep that can hold fewer accounts
    (``reachable[r]``, described by ``which``) than its min_accounts; the same for the
    workload caps with the scaled workload of those accounts (``stuck_work``,
    ``reachable_work``)."""
    p = problem
    if not p.has_caps:
        return []
    findings = []
    n = p.n_accounts
    maxima = [rep.max_accounts for rep in p.reps]
    if all(m is not None for m in maxima) and sum(m for m in maxima if m is not None) < n:
        findings.append(
            f"the reps' max_accounts total {sum(m for m in maxima if m is not None)}, "
            f"fewer than the {n} account{'s' if n != 1 else ''}"
        )
    least = sum(rep.min_accounts or 0 for rep in p.reps)
    if least > n:
        findings.append(f"the reps' min_accounts total {least}, more than the {n} account{'s' if n != 1 else ''}")
    for r, rep in enumerate(p.reps):
        if rep.max_accounts is not None and stuck[r] > rep.max_accounts:
            findings.append(
                f"rep {rep.rep_id} holds {_accounts(stuck[r])} it cannot give away ({why}), "
                f"above its max_accounts of {rep.max_accounts}"
            )
        if rep.min_accounts is not None and reachable[r] < rep.min_accounts:
            findings.append(
                f"rep {rep.rep_id} can take at most {_accounts(reachable[r])} ({which}), "
                f"below its min_accounts of {rep.min_accounts}"
            )
    if p.has_workload_caps:
        findings += _workload_cap_findings(p, stuck_work, reachable_work, why=why, which=which)
    return findings


def _workload_cap_findings(
    problem: Problem, stuck: Sequence[int], reachable: Sequence[int], *, why: str, which: str
) -> list[str]:
    """:func:`_cap_findings` for min_workload and max_workload (scaled ``work`` amounts)."""
    p = problem
    findings = []
    total = sum(p.work)
    maxima = p.work_most
    if all(m is not None for m in maxima) and sum(m for m in maxima if m is not None) < total:
        findings.append(
            f"the reps' max_workload total {_work(p, sum(m for m in maxima if m is not None))}, "
            f"less than the accounts' workload of {_work(p, total)}"
        )
    if sum(p.work_least) > total:
        findings.append(
            f"the reps' min_workload total {_work(p, sum(p.work_least))}, "
            f"more than the accounts' workload of {_work(p, total)}"
        )
    for r, rep in enumerate(p.reps):
        most = p.work_most[r]
        if rep.max_workload is not None and most is not None and stuck and stuck[r] > most:
            findings.append(
                f"rep {rep.rep_id} holds a workload of {_work(p, stuck[r])} it cannot give away ({why}), "
                f"above its max_workload of {rep.max_workload:g}"
            )
        if rep.min_workload is not None and reachable and reachable[r] < p.work_least[r]:
            findings.append(
                f"rep {rep.rep_id} can take a workload of at most {_work(p, reachable[r])} ({which}), "
                f"below its min_workload of {rep.min_workload:g}"
            )
    return findings


def _work(problem: Problem, scaled: int) -> str:
    """A scaled workload in the accounts' unit, e.g. "41.5"."""
    return f"{scaled / problem.work_units:g}"


def _accounts(n: int) -> str:
    return f"{n} account{'s' if n != 1 else ''}"


def _with_more(first: str, others: int, *, all_reps: bool = True) -> str:
    """``first``, and how many more constraints cannot hold either ("rep constraints"
    when all are the band's per-rep checks, as before caps existed)."""
    if not others:
        return first
    what = "rep constraint" if all_reps else "constraint"
    return f"{first} ({others} more {what}{'s' if others > 1 else ''} cannot hold either)"


def explain_infeasible(problem: Problem) -> str | None:
    """A sentence naming a rep (or account) and the constraint that provably cannot
    hold, or None when no single-rep check proves infeasibility. Works on the
    primary metric, named when it is not potential (use ``problem.view(m)``)."""
    p = problem
    tol = p.tolerance
    floor_pct, ceil_pct = 1 - tol, 1 + tol
    of = "" if p.metrics[0] == "potential" else f" of {p.metrics[0]}"

    unreachable = explain_unreachable(p)
    if unreachable is not None:
        return unreachable

    # Account caps first: a cap set on purpose is what the reader looks for.
    caps = explain_caps(p)

    findings: list[tuple[float, str]] = []  # (severity, sentence)
    for r, rep in enumerate(p.reps):
        held = [i for i in p.reachable_by[r] if p.current[i] == r and len(p.candidates[i]) == 1]
        stuck = sum(p.potential[i] for i in held)
        if stuck > p.hi[r]:
            have, limit = distinct_percents(p.relative(r, stuck), ceil_pct)
            which = (
                "its locked accounts"
                if all(p.locked[i] for i in held if p.potential[i] > 0)
                else "its locked accounts (and those with no other rep within reach)"
            )
            findings.append(
                (
                    p.relative(r, stuck) - ceil_pct,
                    f"rep {rep.rep_id} cannot get down to {limit} of fair share{of}: {which} alone total {have}",
                )
            )
        reachable = sum(p.potential[i] for i in p.reachable_by[r])
        if reachable < p.lo[r]:
            have, limit = distinct_percents(p.relative(r, reachable), floor_pct)
            findings.append(
                (
                    floor_pct - p.relative(r, reachable),
                    f"rep {rep.rep_id} cannot reach {limit} of fair share{of}: all accounts within reach total {have}",
                )
            )
    findings.sort(key=lambda f: -f[0])
    sentences = caps + [sentence for _, sentence in findings]
    if not sentences:
        return None
    return _with_more(sentences[0], len(sentences) - 1, all_reps=not caps)


def explain_caps(
    problem: Problem,
    *,
    why: str = "locked, or no other rep serves or reaches them",
    which: str = "those within reach that it serves",
) -> list[str]:
    """Sentences for the account caps that no assignment to the candidate reps can meet,
    whatever the bands (see :func:`_cap_findings`): an account with no other candidate
    cannot be given away. ``why`` and ``which`` say why, in the caller's terms."""
    p = problem
    if not p.has_caps:
        return []
    cannot_leave = [0] * p.n_reps
    work_cannot_leave = [0] * p.n_reps
    for i, cur in enumerate(p.current):
        if cur != UNPLACED and len(p.candidates[i]) == 1:
            cannot_leave[cur] += 1
            work_cannot_leave[cur] += p.work[i]
    return _cap_findings(
        p,
        cannot_leave,
        [len(accounts) for accounts in p.reachable_by],
        why=why,
        which=which,
        stuck_work=work_cannot_leave,
        reachable_work=[sum(p.work[i] for i in accounts) for accounts in p.reachable_by],
    )


def explain_caps_anywhere(problem: Problem) -> list[str]:
    """Sentences for the account caps that no assignment can meet, whatever the bands and
    travel limits (locks and segments hold): see :func:`_cap_findings`."""
    p = problem
    if not p.has_caps:
        return []
    may_hold = _may_hold(p)
    current = np.array(p.current, dtype=np.int64)
    locked = np.array(p.locked, dtype=bool)  # locked accounts are placed
    # Stuck: locked, or held by the only rep that may hold it.
    stuck = (current != UNPLACED) & (locked | (may_hold.sum(axis=1) == 1))
    stuck_counts = np.bincount(current[stuck], minlength=p.n_reps)
    reachable = np.bincount(current[locked], minlength=p.n_reps) + may_hold[~locked].sum(axis=0)
    work = np.array(p.work, dtype=np.int64)
    stuck_work = np.bincount(current[stuck], weights=work[stuck], minlength=p.n_reps)
    reachable_work = np.bincount(current[locked], weights=work[locked], minlength=p.n_reps) + work[~locked] @ may_hold[
        ~locked
    ].astype(np.int64)
    return _cap_findings(
        p,
        [int(c) for c in stuck_counts],
        [int(c) for c in reachable],
        why="locked, or no other rep serves them",
        which="those it serves or holds",
        stuck_work=[round(float(w)) for w in stuck_work],
        reachable_work=[round(float(w)) for w in reachable_work],
    )


def _may_hold(problem: Problem) -> np.ndarray:
    """Accounts x reps: who may hold each account under any assignment, the reps serving
    its segment and its own rep (travel limits aside)."""
    p = problem
    if not p.has_segments:
        return p.eligible
    may_hold = p.eligible.copy()
    placed = np.flatnonzero(np.array(p.current) != UNPLACED)
    may_hold[placed, np.array(p.current)[placed]] = True
    return may_hold


def tightest_rep(problem: Problem) -> str:
    """Name the rep with the least room between the potential within its reach and
    its floor: a fallback explanation when several reps compete for the same accounts
    and no single-rep check proves the infeasibility."""
    p = problem
    floor = 1 - p.tolerance
    reach = [p.relative(r, sum(p.potential[i] for i in p.reachable_by[r])) for r in range(p.n_reps)]
    r = min(range(p.n_reps), key=lambda r: reach[r] - floor)
    have, limit = distinct_percents(reach[r], floor)
    return (
        f"rep {p.reps[r].rep_id} has the least room: accounts within its reach total {have} "
        f"of fair share against a floor of {limit}"
    )


def explain_infeasible_anywhere(problem: Problem) -> str | None:
    """Like :func:`explain_infeasible`, but as if any rep serving an account's segment
    could serve it (travel limits and candidate pruning aside; locks and segments hold):
    an account that must be placed but whose segment no rep serves, account caps that
    cannot hold, a rep whose locked accounts alone exceed its band, or whose band cannot
    be filled even with every account not locked to another rep that it may hold, or an
    unlocked account larger than the band of every rep that may hold it. Sums only (no
    model); the primary metric."""
    p = problem
    tol = p.tolerance
    of = "" if p.metrics[0] == "potential" else f" of {p.metrics[0]}"
    unserved = np.flatnonzero((np.array(p.current) == UNPLACED) & ~p.eligible.any(axis=1))
    if unserved.size:
        return explain_unserved(p.accounts[int(unserved[0])])
    locked_load = [0] * p.n_reps
    for i, r in enumerate(p.current):
        if p.locked[i]:
            locked_load[r] += p.potential[i]
    free_total = sum(p.potential) - sum(locked_load)
    segmented = p.has_segments
    may_hold = _may_hold(p)
    caps = explain_caps_anywhere(p)
    findings: list[tuple[float, str]] = []
    if p.n_accounts and p.n_reps:
        free = [i for i in range(p.n_accounts) if not p.locked[i]]
        if not segmented:
            # The rep with the most room above: an unlocked account over it fits no one.
            roomiest = max(range(p.n_reps), key=lambda r: p.hi[r])
            largest = max(free, key=lambda i: p.potential[i], default=None)
            worst = (largest, roomiest) if largest is not None else None
        elif free:
            # Per account, the roomiest rep that may hold it; the account furthest over it.
            hi, fair = np.array(p.hi, dtype=np.int64), np.array(p.fair)
            roomiest_of = np.where(may_hold[free], hi[None, :], -1).argmax(axis=1)
            fair_of = fair[roomiest_of]
            potential = np.array(p.potential, dtype=np.float64)[free]
            shares = np.divide(potential, fair_of, out=np.ones_like(potential), where=fair_of > 0)
            k = int(shares.argmax())
            worst = (free[k], int(roomiest_of[k]))
        else:
            worst = None
        if worst is not None and p.potential[worst[0]] > p.hi[worst[1]]:
            i, r = worst
            share = p.relative(r, p.potential[i])
            have, limit = distinct_percents(share, 1 + tol)
            among = "" if may_hold[i].all() else " among those serving its segment"
            findings.append(
                (
                    share - (1 + tol),
                    f"account {p.accounts[i].account_id} alone is {have} of fair share{of} for rep "
                    f"{p.reps[r].rep_id}, the rep with the largest band{among} (at most {limit} allowed): "
                    "whoever serves it is over the band",
                )
            )
    if segmented:  # per rep, the unlocked potential it may hold
        free_potential = np.where(np.array(p.locked, dtype=bool), 0, np.array(p.potential, dtype=np.int64))
        free_for = free_potential @ may_hold
        serves_all = may_hold.sum(axis=0) == p.n_accounts
    for r, rep in enumerate(p.reps):
        share = p.relative(r, locked_load[r])
        if locked_load[r] > p.hi[r]:
            have, limit = distinct_percents(share, 1 + tol)
            findings.append(
                (
                    share - (1 + tol),
                    f"rep {rep.rep_id} cannot get down to {limit} of fair share{of}: its locked accounts alone "
                    f"total {have}",
                )
            )
        if segmented and not serves_all[r]:
            available, served = int(free_for[r]) + locked_load[r], " that it serves or holds"
        else:
            available, served = free_total + locked_load[r], ""
        if available < p.lo[r]:
            have, limit = distinct_percents(p.relative(r, available), 1 - tol)
            findings.append(
                (
                    (1 - tol) - p.relative(r, available),
                    f"rep {rep.rep_id} cannot reach {limit} of fair share{of}: all accounts not locked to other "
                    f"reps{served} total {have}",
                )
            )
    findings.sort(key=lambda f: -f[0])
    sentences = caps + [sentence for _, sentence in findings]
    if not sentences:
        return None
    return _with_more(sentences[0], len(sentences) - 1, all_reps=not caps)
