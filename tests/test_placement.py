"""Tests of placement-only rebalancing: when a rep leaves, only their accounts move."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from rebalancer import Account, RebalanceResult, Rep, balance_of, haversine_km, minimal_moves, place_accounts

# ---------------------------------------------------------------------------- helpers


def orphans_of(accounts: list[Account], reps: list[Rep]) -> list[Account]:
    rep_ids = {r.rep_id for r in reps}
    return [a for a in accounts if a.rep_id not in rep_ids]


def final_assignment(accounts: list[Account], result: RebalanceResult) -> dict[str, str | None]:
    assignment: dict[str, str | None] = {a.account_id: a.rep_id for a in accounts}
    for m in result.moves:
        assignment[m.account_id] = m.to_rep
    return assignment


def distance(rep: Rep, account: Account) -> float:
    return haversine_km(rep.home_lat, rep.home_lon, account.lat, account.lon)


def allowed_reps(account: Account, reps: list[Rep], candidate_reps: int) -> list[str]:
    """The documented rule for an orphan, written independently of the package: the
    candidate_reps nearest reps whose max travel reaches it, else the nearest rep."""
    in_reach = sorted(
        (distance(r, account), r.rep_id)
        for r in reps
        if r.max_travel_km is None or distance(r, account) <= r.max_travel_km
    )
    if in_reach:
        return [rep_id for _, rep_id in in_reach[:candidate_reps]]
    return [min(reps, key=lambda r: distance(r, account)).rep_id]


def worst_deviation(accounts: list[Account], reps: list[Rep], assignment: dict[str, str | None]) -> float:
    """max |potential / fair - 1| over reps, in floats."""
    return max(abs(b.deviation) for b in balance_of(accounts, reps, assignment))


def brute_force(accounts: list[Account], reps: list[Rep], candidate_reps: int) -> tuple[float, float]:
    """(least worst deviation, least travel of the orphans among the placements that
    reach it), over every assignment of the orphans to their allowed reps."""
    homes = {r.rep_id: r for r in reps}
    orphans = orphans_of(accounts, reps)
    scored = []
    for choice in itertools.product(*(allowed_reps(a, reps, candidate_reps) for a in orphans)):
        assignment = {a.account_id: r for a, r in zip(orphans, choice)}
        travel = math.fsum(distance(homes[r], a) for a, r in zip(orphans, choice))
        scored.append((worst_deviation(accounts, reps, assignment), travel))
    best = min(dev for dev, _ in scored)
    return best, min(travel for dev, travel in scored if dev <= best + 1e-9)


def widened_brute_force(
    accounts: list[Account], reps: list[Rep], tol: float, candidate_reps: int
) -> tuple[int, float, float] | None:
    """The documented widening, written independently: when even the best placement
    with ``candidate_reps`` leaves a rep out of band, the first of 2x, 4x, ... up to
    every rep that brings every rep within band; else ``candidate_reps`` stands.
    Returns (candidates used, least worst deviation, least travel), or None when a
    deviation lies too near the band's edge for floats to say which side it is on."""
    levels = [candidate_reps]
    while levels[-1] < len(reps):
        levels.append(min(2 * levels[-1], len(reps)))
    first = None
    for k in levels:
        deviation, travel = brute_force(accounts, reps, k)
        if abs(deviation - tol) <= 1e-6:
            return None
        first = first or (k, deviation, travel)
        if deviation < tol:
            return k, deviation, travel
    return first


def random_case(seed: int) -> tuple[list[Account], list[Rep], float, int]:
    """3 reps, 6-9 accounts of which 2-4 orphans (no owner, or an owner who left);
    zero, repeated and random potentials, some locks, some short travel limits."""
    rng = random.Random(seed)
    reps = [
        Rep(
            f"R{r}",
            home_lat=rng.uniform(45, 48),
            home_lon=rng.uniform(2, 6),
            capacity_fte=rng.choice([0.5, 1.0, 1.0, 1.5]),
            max_travel_km=rng.choice([None, rng.uniform(30, 200)]),
        )
        for r in range(1, 4)
    ]
    n_orphans = rng.randint(2, 4)
    accounts = [
        Account(
            f"A{i}",
            potential=rng.choice([0.0, 25.0, rng.uniform(1, 100), rng.uniform(1, 100)]),
            workload=rng.uniform(0, 10),
            lat=rng.uniform(45, 48),
            lon=rng.uniform(2, 6),
            rep_id=rng.choice([None, "R9"]) if i < n_orphans else rng.choice(["R1", "R2", "R3"]),
            locked=rng.random() < 0.3,
        )
        for i in range(rng.randint(6, 9))
    ]
    rng.shuffle(accounts)
    return accounts, reps, rng.choice([0.1, 0.3, 0.6]), rng.choice([1, 2, 3])


# ---------------------------------------------------------------------------- (a) only orphans move


def test_only_orphans_move_and_everyone_else_keeps_their_rep_locked_or_not() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 46.0, 5.0), Rep("R3", 47.0, 5.0)]
    accounts = [
        # R1 is far over its fair share: a full rebalance would move some of these.
        *(Account(f"R1-{k}", 30, rep_id="R1", lat=45.0, lon=5.0) for k in range(4)),
        Account("R1-locked", 30, rep_id="R1", lat=45.0, lon=5.0, locked=True),
        Account("R2-a", 10, rep_id="R2", lat=46.0, lon=5.0),
        Account("R2-locked", 10, rep_id="R2", lat=46.0, lon=5.0, locked=True),
        Account("R3-a", 20, rep_id="R3", lat=47.0, lon=5.0),
        # Orphans: an inactive owner (one of them locked to that owner) and no owner.
        Account("G1", 20, rep_id="R9", lat=46.1, lon=5.0),
        Account("G2", 15, rep_id="R9", lat=46.9, lon=5.0, locked=True),
        Account("N1", 5, rep_id=None, lat=45.5, lon=5.0),
    ]
    result = place_accounts(accounts, reps, tolerance=0.10)

    assert result.status == "optimal"
    assert {m.account_id for m in result.moves} == {"G1", "G2", "N1"}
    assert {m.account_id: m.from_rep for m in result.moves} == {"G1": "R9", "G2": "R9", "N1": None}
    assignment = final_assignment(accounts, result)
    for a in accounts:
        if a.rep_id is not None and a.rep_id != "R9":
            assert assignment[a.account_id] == a.rep_id
    assert result.objective == result.bound == 3 and result.gap == 0
    assert result.after == balance_of(accounts, reps, assignment)
    for m in result.moves:
        a = next(a for a in accounts if a.account_id == m.account_id)
        assert (m.potential, m.workload) == (a.potential, a.workload)
        assert m.distance_km == pytest.approx(distance(next(r for r in reps if r.rep_id == m.to_rep), a))
    # R1 stays over its band whatever the orphans do: the caller is told a full
    # rebalance is needed, and that one indeed moves accounts the placement keeps.
    assert result.explanation is not None and "rep R1" in result.explanation
    assert "minimal_moves" in result.explanation
    full = minimal_moves(accounts, reps, tolerance=0.10)
    assert any(m.from_rep == "R1" for m in full.moves)


def test_moves_give_the_owner_and_the_nearest_reps_with_distances() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 46.0, 5.0), Rep("R3", 47.0, 5.0)]
    accounts = [
        Account("A1", 10, rep_id="R1", lat=45.0, lon=5.0),
        Account("A2", 10, rep_id="R2", lat=46.0, lon=5.0),
        Account("G1", 10, rep_id="R9", lat=46.3, lon=5.0),
        Account("N1", 0, rep_id=None, lat=45.0, lon=5.0),
    ]
    result = place_accounts(accounts, reps, candidate_reps=2)
    reasons = {m.account_id: (m.to_rep, m.reason) for m in result.moves}
    assert reasons == {
        "G1": ("R3", "owner R9 inactive; nearest reps R2 (33 km), R3 (78 km)"),
        "N1": ("R1", "no owner; nearest reps R1 (0 km), R2 (111 km)"),
    }


# ---------------------------------------------------------------------------- (b) optimality


@pytest.mark.parametrize("seed", range(80))
def test_worst_deviation_and_travel_match_brute_force(seed: int) -> None:
    accounts, reps, tol, candidate_reps = random_case(seed)
    reference = widened_brute_force(accounts, reps, tol, candidate_reps)
    if reference is None:  # at the band's edge: integer scaling may see either side
        used = candidate_reps
        best_deviation, best_travel = brute_force(accounts, reps, candidate_reps)
    else:
        used, best_deviation, best_travel = reference

    result = place_accounts(accounts, reps, tolerance=tol, candidate_reps=candidate_reps, time_limit_s=5)

    orphans = orphans_of(accounts, reps)
    if reference is None:
        assert result.status == "optimal" and len(result.moves) == len(orphans)
        return
    # The notes say when (and how far) the candidates were widened.
    if used != candidate_reps:
        assert result.notes and result.notes[0].startswith(f"candidates widened from {candidate_reps} to "), (
            result.notes
        )
    else:
        assert not any(note.startswith(f"candidates widened from {candidate_reps} to") for note in result.notes)
    assert result.status == "optimal"
    assert sorted(m.account_id for m in result.moves) == sorted(a.account_id for a in orphans)
    assert result.objective == result.bound == len(orphans) and result.gap == 0
    assignment = final_assignment(accounts, result)
    for a in accounts:
        if a in orphans:
            assert assignment[a.account_id] in allowed_reps(a, reps, used)
        else:
            assert assignment[a.account_id] == a.rep_id
    # Lexicographic: the least worst deviation first, then the least travel among those.
    assert worst_deviation(accounts, reps, assignment) == pytest.approx(best_deviation, abs=1e-6)
    assert math.fsum(m.distance_km for m in result.moves) == pytest.approx(best_travel, abs=0.01)
    # An explanation exactly when even the best placement leaves a rep out of band.
    if abs(best_deviation - tol) > 1e-6:
        assert (result.explanation is not None) == (best_deviation > tol)


def test_the_random_cases_cover_the_interesting_situations() -> None:
    """Guards test (b) against drifting into trivial cases."""
    fallbacks = out_of_band = in_band = pruned = widened = 0
    for seed in range(80):
        accounts, reps, tol, candidate_reps = random_case(seed)
        best_deviation, _ = brute_force(accounts, reps, candidate_reps)
        out_of_band += best_deviation > tol
        in_band += best_deviation <= tol
        reference = widened_brute_force(accounts, reps, tol, candidate_reps)
        widened += reference is not None and reference[0] != candidate_reps
        for a in orphans_of(accounts, reps):
            fallbacks += all(r.max_travel_km is not None and distance(r, a) > r.max_travel_km for r in reps)
            pruned += len(allowed_reps(a, reps, candidate_reps)) < 3
    assert min(fallbacks, out_of_band, in_band, pruned) >= 5
    assert widened >= 3


# ---------------------------------------------------------------------------- (c) capacity


def test_fair_share_is_weighted_by_capacity() -> None:
    # Both orphans are nearest to HALF, which has half FULL's capacity: fair shares of
    # the 100 total are 66.7 (FULL) and 33.3 (HALF).
    reps = [Rep("FULL", 45.0, 5.0, capacity_fte=1.0), Rep("HALF", 46.0, 5.0, capacity_fte=0.5)]
    accounts = [
        Account("F", 35, rep_id="FULL", lat=45.0, lon=5.0),
        Account("H", 15, rep_id="HALF", lat=46.0, lon=5.0),
        Account("BIG", 30, rep_id="R9", lat=46.0, lon=5.0),
        Account("SMALL", 20, rep_id="R9", lat=46.0, lon=5.0),
    ]
    result = place_accounts(accounts, reps, tolerance=0.10)
    assert result.status == "optimal" and result.explanation is None
    assert {m.account_id: m.to_rep for m in result.moves} == {"BIG": "FULL", "SMALL": "HALF"}
    after = {b.rep_id: b for b in result.after}
    assert (after["FULL"].potential, after["HALF"].potential) == (65, 35)
    assert after["FULL"].deviation == pytest.approx(-0.025)
    assert after["HALF"].deviation == pytest.approx(0.05)

    # With equal capacities (fair share 50 each) the same orphans go the other way round.
    equal = [Rep("FULL", 45.0, 5.0), Rep("HALF", 46.0, 5.0)]
    result = place_accounts(accounts, equal, tolerance=0.15)
    assert {m.account_id: m.to_rep for m in result.moves} == {"BIG": "HALF", "SMALL": "FULL"}
    assert [b.potential for b in result.after] == [55, 45]


# ---------------------------------------------------------------------------- (d) no orphans


def test_no_orphans_is_balanced_with_no_moves() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 52, rep_id="R1"), Account("A2", 48, rep_id="R2")]
    result = place_accounts(accounts, reps)
    assert result.status == "balanced"
    assert result.moves == () and result.after == result.before
    assert (result.objective, result.bound, result.gap) == (0, 0, 0)
    assert result.explanation is None
    assert place_accounts([], reps).status == "balanced"


def test_no_orphans_but_out_of_band_is_still_balanced_and_says_so() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 70, rep_id="R1"), Account("A2", 30, rep_id="R2")]
    result = place_accounts(accounts, reps)
    assert result.status == "balanced" and result.moves == ()
    assert result.explanation == (
        "there are no orphaned accounts to place: rep R1 is at 140% of fair share (at most 110% allowed), "
        "30.0 percentage points over its band; 1 more rep is out of band; "
        "a full rebalance (minimal_moves) would be needed to bring every rep within band"
    )


# ---------------------------------------------------------------------------- (e) band out of reach


def test_when_no_placement_meets_the_band_the_best_one_comes_with_an_explanation() -> None:
    # Fair share is 80 each. The orphan (60) keeps the worst deviation least on R1
    # (110: +37.5%); on R2 or R3 the worst would be +50% or +62.5%.
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0), Rep("R3", 0, 0)]
    accounts = [
        *(Account(f"A{k}", 10, rep_id="R1") for k in range(5)),
        *(Account(f"B{k}", 10, rep_id="R2") for k in range(6)),
        *(Account(f"C{k}", 10, rep_id="R3") for k in range(7)),
        Account("BIG", 60, rep_id="R9"),
    ]
    result = place_accounts(accounts, reps, tolerance=0.10)

    assert result.status == "optimal"
    assert [(m.account_id, m.to_rep) for m in result.moves] == [("BIG", "R1")]
    assert [b.potential for b in result.after] == [110, 60, 70]
    assert result.explanation == (
        "no placement of the 1 orphaned account keeps every rep within ±10% of fair share: "
        "even the best placement leaves rep R1 at 138% of fair share (at most 110% allowed), "
        "27.5 percentage points over its band; 2 more reps are out of band; "
        "a full rebalance (minimal_moves) would be needed to bring every rep within band"
    )
    # ... and the full rebalance the explanation points to exists.
    assert minimal_moves(accounts, reps, tolerance=0.10).status == "optimal"


# ---------------------------------------------------------------------------- (f) out of reach


def test_an_orphan_no_rep_can_reach_goes_to_the_nearest_rep_and_says_so() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_travel_km=100), Rep("R2", 46.0, 5.0, max_travel_km=100)]
    accounts = [
        Account("A1", 10, rep_id="R1", lat=45.0, lon=5.0),
        Account("A2", 10, rep_id="R2", lat=46.0, lon=5.0),
        Account("FAR", 10, rep_id="R9", lat=49.0, lon=5.0),  # 334 km from R2, 445 km from R1
        Account("NEAR", 10, rep_id="R9", lat=45.1, lon=5.0),
    ]
    result = place_accounts(accounts, reps)
    assert result.status == "optimal" and result.explanation is None
    moves = {m.account_id: (m.to_rep, round(m.distance_km), m.reason) for m in result.moves}
    assert moves == {
        "FAR": ("R2", 334, "owner R9 inactive; no rep within max_travel_km; placed with the nearest, R2 (334 km)"),
        "NEAR": ("R1", 11, "owner R9 inactive; nearest rep R1 (11 km)"),
    }


# ---------------------------------------------------------------------------- other behaviour


def test_result_round_trips_through_json() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 50, rep_id="R1"), Account("A2", 30, rep_id="R9"), Account("A3", 20)]
    result = place_accounts(accounts, reps)
    assert RebalanceResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_with_no_potential_at_all_orphans_go_to_the_nearest_rep() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 46.0, 5.0)]
    accounts = [Account("A1", 0, rep_id="R1", lat=45.0, lon=5.0), Account("G1", 0, rep_id="R9", lat=45.9, lon=5.0)]
    result = place_accounts(accounts, reps)
    assert result.status == "optimal" and result.explanation is None
    assert [(m.account_id, m.to_rep) for m in result.moves] == [("G1", "R2")]


def test_bad_arguments_are_rejected_as_in_minimal_moves() -> None:
    with pytest.raises(ValueError, match="tolerance must be"):
        place_accounts([Account("A1", 1)], [Rep("R1", 0, 0)], tolerance=-0.1)
    with pytest.raises(ValueError, match="reps must not be empty"):
        place_accounts([Account("A1", 1)], [])


# ---------------------------------------------------------------------------- (g) medium


def rep_leaves_case(seed: int, n_accounts: int, n_reps: int, n_orphans: int) -> tuple[list[Account], list[Rep]]:
    """Reps in cities across France, accounts around them owned by the nearest rep; the
    first n_orphans accounts sit around one more city, whose rep has left."""
    rng = random.Random(seed)
    cities = [(rng.uniform(43.5, 50.5), rng.uniform(-1.0, 7.0)) for _ in range(n_reps + 1)]
    reps = [
        Rep(f"R{k:02d}", lat, lon, capacity_fte=rng.choice([0.8, 1.0, 1.0, 1.2]))
        for k, (lat, lon) in enumerate(cities[:n_reps])
    ]
    accounts = []
    for i in range(n_accounts):
        k = n_reps if i < n_orphans else rng.randrange(n_reps)
        lat, lon = rng.gauss(cities[k][0], 0.5), rng.gauss(cities[k][1], 0.7)
        nearest = min(reps, key=lambda r: haversine_km(r.home_lat, r.home_lon, lat, lon))
        owner = "R_LEFT" if k == n_reps else nearest.rep_id
        accounts.append(
            Account(
                f"A{i:05d}",
                potential=rng.lognormvariate(3, 1),
                workload=rng.uniform(10, 120),
                lat=lat,
                lon=lon,
                rep_id=owner,
                locked=rng.random() < 0.05,
            )
        )
    return accounts, reps


def test_medium_case_places_a_leaving_reps_accounts_within_its_time_limit() -> None:
    accounts, reps = rep_leaves_case(seed=7, n_accounts=2000, n_reps=10, n_orphans=200)
    result = place_accounts(accounts, reps, tolerance=0.10, time_limit_s=5.0)

    assert result.status in ("optimal", "feasible")
    orphans = orphans_of(accounts, reps)
    assert len(orphans) == 200
    assert {m.account_id for m in result.moves} == {a.account_id for a in orphans}
    assert result.objective == result.bound == 200 and result.gap == 0
    assignment = final_assignment(accounts, result)
    for a in orphans:
        assert assignment[a.account_id] in allowed_reps(a, reps, 3)
    assert result.after == balance_of(accounts, reps, assignment)
    assert result.explanation is None or "minimal_moves" in result.explanation
    print(
        f"\nmedium placement 2000x10, 200 orphans: {result.status} "
        f"worst deviation={max(abs(b.deviation) for b in result.after):.1%} seconds={result.seconds:.2f}"
    )
