"""District scope: fair shares and moves stay inside each district (rebalancer.scope)."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from rebalancer import Account, Rep, minimal_moves
from rebalancer.scope import ALL_SEGMENTS, by_district, segment_pools


def brute_force_by_district(accounts: list[Account], reps: list[Rep], district_of: dict[str, str], tol: float) -> int:
    """Fewest moves with every rep within its district's fair share band, no account leaving
    its district, locked accounts kept; -1 if impossible."""
    capacity = {r.rep_id: r.capacity_fte for r in reps}
    districts = sorted(set(district_of.values()))
    total = 0
    for district in districts:
        members = [r.rep_id for r in reps if district_of[r.rep_id] == district]
        own = [a for a in accounts if district_of.get(a.rep_id or "") == district]
        pot = sum(a.potential for a in own)
        cap = sum(capacity[r] for r in members)
        best = None
        for owners in itertools.product(members, repeat=len(own)):
            if any(a.locked and o != a.rep_id for a, o in zip(own, owners)):
                continue
            loads = dict.fromkeys(members, 0.0)
            for a, o in zip(own, owners):
                loads[o] += a.potential
            fair = {r: pot * capacity[r] / cap for r in members}
            if all(fair[r] * (1 - tol) - 1e-9 <= loads[r] <= fair[r] * (1 + tol) + 1e-9 for r in members):
                moves = sum(o != a.rep_id for a, o in zip(own, owners))
                best = moves if best is None else min(best, moves)
        if best is None:
            return -1
        total += best
    return total


def random_case(seed: int) -> tuple[list[Account], list[Rep], dict[str, str], float]:
    rng = random.Random(seed)
    reps = [
        Rep(f"R{r}", rng.uniform(47, 54), rng.uniform(6, 14), capacity_fte=rng.choice((0.5, 1.0))) for r in range(4)
    ]
    district_of = {"R0": "North", "R1": "North", "R2": "South", "R3": "South"}
    accounts = [
        Account(
            f"A{i}",
            rng.choice((10.0, 20.0, 30.0, 50.0, 80.0)),
            lat=rng.uniform(47, 54),
            lon=rng.uniform(6, 14),
            rep_id=rng.choice(reps).rep_id,
            locked=rng.random() < 0.1,
        )
        for i in range(rng.randint(6, 9))
    ]
    return accounts, reps, district_of, rng.choice((0.2, 0.35, 0.5))


@pytest.mark.parametrize("seed", range(30))
def test_district_scope_matches_brute_force_and_keeps_accounts_in_their_district(seed: int) -> None:
    accounts, reps, district_of, tol = random_case(seed)
    expected = brute_force_by_district(accounts, reps, district_of, tol)

    result = by_district(
        accounts,
        reps,
        district_of,
        lambda a, r: minimal_moves(a, r, tolerance=tol, candidate_reps=len(reps), time_limit_s=5, num_workers=1),
    )

    if expected < 0:
        assert result.status == "infeasible" and result.moves == ()
        assert result.explanation and result.explanation.startswith("district ")
        return
    assert result.status in ("optimal", "balanced")
    assert len(result.moves) == expected == result.objective
    by_id = {a.account_id: a for a in accounts}
    for move in result.moves:
        assert district_of[move.to_rep] == district_of[by_id[move.account_id].rep_id], move
    # Shares and fair shares are of the district: they sum to 1 within each.
    for district in ("North", "South"):
        rows = [b for b in result.after if district_of[b.rep_id] == district]
        assert sum(b.fair_share for b in rows) == pytest.approx(1.0)
        if any(b.potential for b in rows):
            assert sum(b.share for b in rows) == pytest.approx(1.0)
            assert all(abs(b.deviation) <= tol + 1e-9 for b in rows)
    assert [b.rep_id for b in result.after] == [r.rep_id for r in reps]


def test_a_company_scope_proposal_would_cross_districts_where_the_district_scope_does_not() -> None:
    # North is overloaded and South light: company-wide, North gives accounts to South; by
    # district, both are balanced inside and nothing moves.
    reps = [Rep("N1", 53.5, 10.0), Rep("N2", 53.0, 10.5), Rep("S1", 48.1, 11.6), Rep("S2", 48.5, 11.0)]
    district_of = {"N1": "North", "N2": "North", "S1": "South", "S2": "South"}
    accounts = [Account(f"N{i}", 100.0, lat=53.2, lon=10.2, rep_id="N1" if i % 2 else "N2") for i in range(16)]
    accounts += [Account(f"S{i}", 100.0, lat=48.3, lon=11.3, rep_id="S1" if i % 2 else "S2") for i in range(4)]

    def solve(a: list[Account], r: list[Rep]):
        return minimal_moves(a, r, tolerance=0.1, candidate_reps=4, time_limit_s=5, num_workers=1)

    assert solve(accounts, reps).moves  # company scope moves North accounts south
    result = by_district(accounts, reps, district_of, solve)
    assert result.status == "balanced" and result.moves == ()


def test_accounts_without_a_rep_join_the_district_of_the_nearest_rep_and_reps_without_one_form_their_own() -> None:
    reps = [Rep("N1", 53.5, 10.0), Rep("S1", 48.1, 11.6), Rep("X1", 50.0, 8.0)]
    district_of = {"N1": "North", "S1": "South"}  # X1 has none
    accounts = [
        Account("A1", 10.0, lat=53.4, lon=10.1, rep_id="N1"),
        Account("A2", 10.0, lat=48.2, lon=11.5, rep_id="S1"),
        Account("A3", 10.0, lat=50.1, lon=8.1, rep_id="X1"),
        Account("NEW", 5.0, lat=48.15, lon=11.55),  # nearest rep: S1
    ]
    seen: list[tuple[list[str], list[str]]] = []

    def solve(a: list[Account], r: list[Rep]):
        seen.append((sorted(x.account_id for x in a), sorted(x.rep_id for x in r)))
        return minimal_moves(a, r, tolerance=0.9, candidate_reps=4, time_limit_s=5, num_workers=1)

    result = by_district(accounts, reps, district_of, solve)
    assert sorted(seen) == [(["A1"], ["N1"]), (["A2", "NEW"], ["S1"]), (["A3"], ["X1"])]
    assert [(m.account_id, m.to_rep) for m in result.moves] == [("NEW", "S1")]


def test_no_reps_is_the_solvers_answer_not_a_crash() -> None:
    accounts = [Account("A1", 10.0, lat=50.0, lon=8.0)]
    with pytest.raises(ValueError) as direct:
        minimal_moves(accounts, [], tolerance=0.1)
    with pytest.raises(ValueError) as scoped:
        by_district(accounts, [], {}, lambda a, r: minimal_moves(a, r, tolerance=0.1))
    assert str(scoped.value) == str(direct.value)


def test_segment_pools_are_the_groups_of_reps_linked_by_the_segments_they_share() -> None:
    served = {"R1": ["key"], "R2": ["key", "retail"], "R3": ["retail"], "R4": ["industry"], "R5": ("industry",)}
    assert segment_pools(served) == {
        "R1": "key+retail",
        "R2": "key+retail",
        "R3": "key+retail",
        "R4": "industry",
        "R5": "industry",
    }
    # A rep who serves every segment (none listed) links every pool into one.
    assert set(segment_pools({**served, "R6": []}).values()) == {ALL_SEGMENTS}
    assert segment_pools({}) == {}


@pytest.mark.parametrize("seed", range(12))
def test_segment_pool_scope_matches_brute_force_with_fair_shares_per_pool(seed: int) -> None:
    # R0 and R1 serve segment "a", R2 and R3 segment "b": two pools of specialists, each
    # with the fair share of its own segment's potential.
    accounts, reps, _, tol = random_case(seed)
    serves = {"R0": ("a",), "R1": ("a",), "R2": ("b",), "R3": ("b",)}
    reps = [dataclasses.replace(rep, segments=serves[rep.rep_id]) for rep in reps]
    accounts = [dataclasses.replace(a, segment=serves[a.rep_id][0]) for a in accounts]
    pools = segment_pools({rep.rep_id: rep.segments for rep in reps})
    assert pools == {"R0": "a", "R1": "a", "R2": "b", "R3": "b"}
    expected = brute_force_by_district(accounts, reps, pools, tol)

    result = by_district(
        accounts,
        reps,
        pools,
        lambda a, r: minimal_moves(a, r, tolerance=tol, candidate_reps=len(reps), time_limit_s=5, num_workers=1),
    )
    if expected < 0:
        assert result.status == "infeasible"
        return
    assert len(result.moves) == expected
    by_id = {a.account_id: a for a in accounts}
    assert all(by_id[m.account_id].segment in serves[m.to_rep] for m in result.moves)
    for pool in ("a", "b"):
        rows = [b for b in result.after if pools[b.rep_id] == pool]
        assert sum(b.fair_share for b in rows) == pytest.approx(1.0)
