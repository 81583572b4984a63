"""District scope: each district balanced on its own (``TERRITORY_REBALANCE_SCOPE=district``).

A district manager's proposal must not take accounts from another district, and "fair" means
fair within the district: a rep's fair share is their capacity over the district's, of what
the district's reps serve. So the company is cut into districts and each is solved alone:
its reps, and the accounts they hold (an account without a rep joins the district of the
nearest rep that serves its segment). Reps without a district form one group of their own.
The answers are joined into one result; a district that cannot be balanced holds back the
whole proposal and the explanation names it.

>>> from rebalancer import Account, Rep, minimal_moves
>>> reps = [Rep("N1", 53.5, 10.0), Rep("N2", 53.4, 10.2), Rep("S1", 48.1, 11.6)]
>>> accounts = [Account("a", 60, rep_id="N1"), Account("b", 30, rep_id="N1"), Account("c", 5, rep_id="S1")]
>>> result = by_district(accounts, reps, {"N1": "North", "N2": "North", "S1": "South"},
...                      lambda a, r: minimal_moves(a, r, tolerance=0.6, num_workers=1))
>>> [(m.account_id, m.to_rep) for m in result.moves], result.status
([('b', 'N2')], 'optimal')

Segment pools (``TERRITORY_REBALANCE_SCOPE=segment_pool``) are the same cut with other groups:
reps who specialise are grouped by the segments they share (:func:`segment_pools`), and each
pool is balanced on its own potential, so a key-account specialist is held to a fair share of
the key accounts, not of the whole company.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from core.geo import haversine_km
from rebalancer.values import Account, RebalanceResult, Rep

Solve = Callable[[list[Account], list[Rep]], RebalanceResult]

#: The one pool when some rep serves every segment (lists none): it links every segment.
ALL_SEGMENTS = "(every segment)"

#: Worst first: the joined status is the worst of the districts'.
_WORST_FIRST = ("infeasible", "unknown", "feasible", "optimal", "balanced")
NO_DISTRICT = "(no district)"


def by_district(
    accounts: Sequence[Account], reps: Sequence[Rep], district_of: Mapping[str, str | None], solve: Solve
) -> RebalanceResult:
    """`solve` (e.g. :func:`rebalancer.minimal_moves` with its options) on each district alone;
    one result with every district's moves, balances in the order of ``reps``, objective and
    bound summed (the districts are independent problems), the worst status."""
    if not reps:
        return solve(list(accounts), [])  # nothing to split: the solver says what is wrong
    districts: dict[str, list[Rep]] = {}
    for rep in reps:
        districts.setdefault(district_of.get(rep.rep_id) or NO_DISTRICT, []).append(rep)
    group_of_rep = {rep.rep_id: name for name, members in districts.items() for rep in members}
    members_of: dict[str, list[Account]] = {name: [] for name in districts}
    for account in accounts:
        members_of[group_of_rep.get(account.rep_id or "") or _nearest_district(account, reps, group_of_rep)].append(
            account
        )
    results = {name: solve(members_of[name], members) for name, members in sorted(districts.items())}
    return _joined(results, reps)


def _nearest_district(account: Account, reps: Sequence[Rep], group_of_rep: Mapping[str, str]) -> str:
    serving = [rep for rep in reps if rep.serves(account.segment)] or list(reps)
    nearest = min(serving, key=lambda rep: haversine_km(rep.home_lat, rep.home_lon, account.lat, account.lon))
    return group_of_rep[nearest.rep_id]


def _joined(results: Mapping[str, RebalanceResult], reps: Sequence[Rep]) -> RebalanceResult:
    status = min((r.status for r in results.values()), key=_WORST_FIRST.index)
    first = next(iter(results.values()))
    order = {rep.rep_id: n for n, rep in enumerate(reps)}
    before = tuple(sorted((b for r in results.values() for b in r.before), key=lambda b: order[b.rep_id]))
    after = tuple(sorted((b for r in results.values() for b in r.after), key=lambda b: order[b.rep_id]))
    failed = [(name, r) for name, r in results.items() if r.status in ("infeasible", "unknown")]
    objectives = [r.objective for r in results.values()]
    bounds = [r.bound for r in results.values()]
    objective = sum(o for o in objectives if o is not None) if None not in objectives else None
    bound = sum(b for b in bounds if b is not None) if None not in bounds else None
    travel_before = _summed([r.travel_km_before for r in results.values()])
    travel_after = _summed([r.travel_km_before if failed else r.travel_km_after for r in results.values()])
    joined = replace(
        first,
        status=status,
        moves=() if failed else tuple(m for r in results.values() for m in r.moves),
        before=before,
        after=before if failed else after,
        objective=None if failed else objective,
        bound=None if failed else bound,
        gap=None if failed or objective is None or bound is None else (objective - bound) / max(objective, 1),
        seconds=sum(r.seconds for r in results.values()),
        explanation=(f"district {failed[0][0]}: {failed[0][1].explanation}" if failed else None),
        imbalance_before=max(r.imbalance_before for r in results.values()),
        imbalance_after=max(r.imbalance_before if failed else r.imbalance_after for r in results.values()),
        notes=tuple(f"district {name}: {note}" for name, r in results.items() for note in r.notes),
        travel_km_before=travel_before,
        travel_km_after=travel_after,
    )
    return joined


def _summed(values: Sequence[float | None]) -> float | None:
    """The districts' total, None when any district has none (not the travel objective)."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def segment_pools(served: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Rep id -> their segment pool, from the segments each rep serves: reps who share a
    segment, directly or through other reps, are one pool, named by its segments joined with
    "+". A rep who lists no segment serves every one and links them all: one pool, ALL_SEGMENTS.

    >>> segment_pools({"K1": ["key"], "K2": ["key", "smb"], "S1": ["smb"], "I1": ["industry"]})
    {'K1': 'key+smb', 'K2': 'key+smb', 'S1': 'key+smb', 'I1': 'industry'}
    """
    if any(not segments for segments in served.values()):
        return dict.fromkeys(served, ALL_SEGMENTS)
    parent: dict[str, str] = {}

    def root(segment: str) -> str:
        while parent.setdefault(segment, segment) != segment:
            segment = parent[segment]
        return segment

    for segments in served.values():
        first, *rest = sorted(segments)
        for other in rest:
            parent[root(other)] = root(first)
    members: dict[str, set[str]] = {}
    for segments in served.values():
        for segment in segments:
            members.setdefault(root(segment), set()).add(segment)
    return {rep_id: "+".join(sorted(members[root(min(segments))])) for rep_id, segments in served.items()}
