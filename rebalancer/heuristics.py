"""Fast helpers around the CP-SAT model (internal): greedy repair, a lower bound on the
number of moves, and per-rep proofs of infeasibility with a human explanation.

docs/ARCHITECTURE.md ("Measured facts") measured that a greedy repair takes 0.01-0.1 s,
sometimes meets the simple lower bound (then CP-SAT need not search for the move count
at all) and, used as the solution hint, helps CP-SAT on larger cases. Here it also
follows short chains of moves (A -> B -> C) when no single account fits, which turned
it from stalling into feasible on most clustered test cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from core.formatting import distinct_percents
from rebalancer.problem import UNPLACED, Problem


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
                return Repair(self.assignment, feasible=p.is_balanced(self.assignment), stuck_rep=None)
            steps = self._direct(violated) or self._chain(violated)
            if not steps:
                break
            for i, to in steps:
                self._move(i, to)
        return Repair(self.assignment, feasible=False, stuck_rep=violated[0] if violated else None)

    # -- placements and bookkeeping

    def _place_unplaced(self) -> bool:
        """Placements first, largest first, each to its relatively least served
        candidate that still has room (nearest on ties): they are moves anyway."""
        p, loads = self.p, self.loads
        for i in sorted((i for i, r in enumerate(self.assignment) if r == UNPLACED), key=lambda i: -p.potential[i]):
            if not p.candidates[i]:
                return False
            r = min(
                p.candidates[i],
                key=lambda r: (loads[r] + p.potential[i] > p.hi[r], p.relative(r, loads[r]), p.distance_km[i, r]),
            )
            self.assignment[i] = r
            loads[r] += p.potential[i]
            for view, other in zip(self.others, self.other_loads):
                other[r] += view.potential[i]
        return True

    def _hold(self, i: int, r: int) -> None:
        self.members[r].add(i)
        for t in self.p.candidates[i]:
            self.links[r][t] += 1

    def _harmless(self, i: int, frm: int, to: int) -> bool:
        """Moving ``i`` leaves both reps no further out of band on the other metrics."""
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
        if limit <= 0 or self.links[frm][to] == 0:
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
    """
    p = problem
    loads = p.loads(p.current)
    placements = sum(1 for r in p.current if r == UNPLACED)
    departures = arrivals = 0
    for r in range(p.n_reps):
        if loads[r] > p.hi[r]:
            movable = [
                p.potential[i]
                for i in p.reachable_by[r]
                if p.current[i] == r and not p.locked[i] and len(p.candidates[i]) > 1
            ]
            departures += _fewest_covering(movable, loads[r] - p.hi[r])
        elif loads[r] < p.lo[r]:
            incoming = [p.potential[i] for i in p.reachable_by[r] if p.current[i] != r]
            arrivals += _fewest_covering(incoming, p.lo[r] - loads[r])
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
    """A sentence naming an account that must be placed but that no rep may take."""
    p = problem
    for i, cands in enumerate(p.candidates):
        if not cands:
            account = p.accounts[i]
            r = int(p.distance_km[i].argmin())
            rep = p.reps[r]
            return (
                f"account {account.account_id} must be placed but no rep is within reach: "
                f"the nearest, rep {rep.rep_id}, is {p.distance_km[i, r]:.0f} km away, "
                f"beyond its max_travel_km of {rep.max_travel_km:.0f} km"
            )
    return None


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
    if not findings:
        return None
    findings.sort(key=lambda f: -f[0])
    others = len(findings) - 1
    more = f" ({others} more rep constraint{'s' if others > 1 else ''} cannot hold either)" if others else ""
    return findings[0][1] + more


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
    """Like :func:`explain_infeasible`, but as if any rep could serve any unlocked
    account (travel limits and candidate pruning aside): a rep whose locked accounts
    alone exceed its band, or whose band cannot be filled even with every account not
    locked to another rep, or an unlocked account larger than every rep's band. Sums
    only (no model); the primary metric."""
    p = problem
    tol = p.tolerance
    of = "" if p.metrics[0] == "potential" else f" of {p.metrics[0]}"
    locked_load = [0] * p.n_reps
    for i, r in enumerate(p.current):
        if p.locked[i]:
            locked_load[r] += p.potential[i]
    free_total = sum(p.potential) - sum(locked_load)
    findings: list[tuple[float, str]] = []
    if p.n_accounts and p.n_reps:
        # The rep with the most room above: an unlocked account over it fits no one.
        roomiest = max(range(p.n_reps), key=lambda r: p.hi[r])
        free = [i for i in range(p.n_accounts) if not p.locked[i]]
        largest = max(free, key=lambda i: p.potential[i], default=None)
        if largest is not None and p.potential[largest] > p.hi[roomiest]:
            share = p.relative(roomiest, p.potential[largest])
            have, limit = distinct_percents(share, 1 + tol)
            findings.append(
                (
                    share - (1 + tol),
                    f"account {p.accounts[largest].account_id} alone is {have} of fair share{of} for rep "
                    f"{p.reps[roomiest].rep_id}, the rep with the largest band (at most {limit} allowed): "
                    "whoever serves it is over the band",
                )
            )
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
        available = free_total + locked_load[r]
        if available < p.lo[r]:
            have, limit = distinct_percents(p.relative(r, available), 1 - tol)
            findings.append(
                (
                    (1 - tol) - p.relative(r, available),
                    f"rep {rep.rep_id} cannot reach {limit} of fair share{of}: all accounts not locked to other "
                    f"reps total {have}",
                )
            )
    if not findings:
        return None
    findings.sort(key=lambda f: -f[0])
    others = len(findings) - 1
    more = f" ({others} more rep constraint{'s' if others > 1 else ''} cannot hold either)" if others else ""
    return findings[0][1] + more
