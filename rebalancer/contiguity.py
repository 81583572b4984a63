"""Contiguous territories for area units with an adjacency list (internal).

Postal codes or counties are *area units*; a territory made of them should stay one
connected piece. Each rep whose territory is connected today keeps an *anchor*, the
unit of theirs nearest their home (a locked one when they have one), and every unit
the rep serves must be reachable from the anchor through units the rep also serves.

That is a single-commodity flow per rep (the usual CP-SAT/MIP encoding): the anchor
sends one unit of flow to every other unit the rep serves, and flow may only use
edges whose both ends the rep serves. A unit whose removal would cut its territory in
two therefore cannot move on its own: the units behind it would lose their path.

Reps whose territory is already in pieces are not constrained (forcing them whole
would be a different, larger change); :attr:`Contiguity.split_reps` names them so the
result can say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ortools.sat.python import cp_model

from rebalancer.cpsat import Assignment
from rebalancer.problem import Problem


class Contiguity:
    """Adjacency of the accounts of ``problem`` (pairs of account positions)."""

    def __init__(self, problem: Problem, edges: Sequence[tuple[int, int]]) -> None:
        self.problem = p = problem
        self.neighbours: list[set[int]] = [set() for _ in range(p.n_accounts)]
        for a, b in edges:
            if a != b:
                self.neighbours[a].add(b)
                self.neighbours[b].add(a)
        self.anchor: dict[int, int] = {}
        self.split_reps: list[str] = []
        members: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(p.current):
            if r >= 0:
                members[r].append(i)
        for r, units in sorted(members.items()):
            if len(_components(set(units), self.neighbours)) > 1:
                self.split_reps.append(p.reps[r].rep_id)
                continue
            locked = [i for i in units if p.locked[i]]
            pool = locked or units
            self.anchor[r] = min(pool, key=lambda i: (p.distance_km[i, r], i))

    def fixed(self) -> dict[int, int]:
        """Account position -> rep it must stay with (the anchors)."""
        return {i: r for r, i in self.anchor.items()}

    def add_to(self, model: cp_model.CpModel, x: Assignment) -> None:
        """Flow constraints keeping every anchored rep's territory connected."""
        p = self.problem
        for r, root in self.anchor.items():
            units = [i for i in p.reachable_by[r]]
            in_reach = set(units)
            limit = len(units)
            model.add(x[root, r] == 1)
            inflow: dict[int, list[cp_model.IntVar]] = defaultdict(list)
            outflow: dict[int, list[cp_model.IntVar]] = defaultdict(list)
            for u in units:
                for v in self.neighbours[u]:
                    if v not in in_reach or v == root:
                        continue  # flow never needs to enter the anchor
                    f = model.new_int_var(0, limit, f"flow[{r},{u},{v}]")
                    model.add(f <= limit * x[u, r])
                    model.add(f <= limit * x[v, r])
                    outflow[u].append(f)
                    inflow[v].append(f)
            for u in units:
                if u == root:
                    continue
                # Every served unit consumes exactly one unit of flow.
                model.add(sum(inflow[u]) - sum(outflow[u]) == x[u, r])

    def broken_reps(self, assignment: Sequence[int]) -> list[str]:
        """Anchored reps that ``assignment`` takes the anchor from or whose territory
        it splits into pieces."""
        p = self.problem
        members: dict[int, set[int]] = defaultdict(set)
        for i, r in enumerate(assignment):
            if r >= 0:
                members[r].add(i)
        return [
            p.reps[r].rep_id
            for r, root in self.anchor.items()
            if assignment[root] != r or len(_components(members[r], self.neighbours)) > 1
        ]


def _components(units: set[int], neighbours: Sequence[set[int]]) -> list[set[int]]:
    """Connected pieces of ``units`` under ``neighbours``."""
    seen: set[int] = set()
    pieces = []
    for start in units:
        if start in seen:
            continue
        piece = {start}
        stack = [start]
        while stack:
            u = stack.pop()
            for v in neighbours[u]:
                if v in units and v not in piece:
                    piece.add(v)
                    stack.append(v)
        seen |= piece
        pieces.append(piece)
    return pieces
