"""Tests of the pure-logic rebalancer (no Kafka, no database)."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from rebalancer import (
    STATUSES,
    Account,
    RebalanceResult,
    Rep,
    balance_of,
    haversine_km,
    minimal_moves,
)

# ---------------------------------------------------------------------------- helpers


def fair_potentials(accounts: list[Account], reps: list[Rep]) -> dict[str, float]:
    total = math.fsum(a.potential for a in accounts)
    capacity = math.fsum(r.capacity_fte for r in reps)
    return {r.rep_id: total * r.capacity_fte / capacity for r in reps}


def loads_of(accounts: list[Account], reps: list[Rep], assignment: dict[str, str | None]) -> dict[str, float]:
    loads = {r.rep_id: 0.0 for r in reps}
    for a in accounts:
        rep_id = assignment[a.account_id]
        if rep_id in loads:
            loads[rep_id] += a.potential
    return loads


def within_band(accounts: list[Account], reps: list[Rep], assignment: dict[str, str | None], tol: float) -> bool:
    """The float definition of the band, with the documented integer-scaling epsilon."""
    fair = fair_potentials(accounts, reps)
    loads = loads_of(accounts, reps, assignment)
    eps = 1e-9 * max(1.0, math.fsum(a.potential for a in accounts))
    return all(fair[r] * (1 - tol) - eps <= loads[r] <= fair[r] * (1 + tol) + eps for r in loads)


def final_assignment(accounts: list[Account], result: RebalanceResult) -> dict[str, str | None]:
    assignment: dict[str, str | None] = {a.account_id: a.rep_id for a in accounts}
    for m in result.moves:
        assignment[m.account_id] = m.to_rep
    return assignment


def allowed_reps(account: Account, reps: list[Rep], candidate_reps: int) -> list[str]:
    """The documented candidate rule, written independently of the package: current
    rep (always), plus the candidate_reps nearest other reps whose max travel reaches
    the account."""
    rep_ids = {r.rep_id for r in reps}
    if account.locked and account.rep_id in rep_ids:
        return [account.rep_id]
    distance = {r.rep_id: haversine_km(r.home_lat, r.home_lon, account.lat, account.lon) for r in reps}
    in_reach = sorted(
        (distance[r.rep_id], r.rep_id)
        for r in reps
        if r.rep_id != account.rep_id and (r.max_travel_km is None or distance[r.rep_id] <= r.max_travel_km)
    )
    nearest = [rep_id for _, rep_id in in_reach[:candidate_reps]]
    return ([account.rep_id] if account.rep_id in rep_ids else []) + nearest


def brute_force(accounts: list[Account], reps: list[Rep], tol: float, candidate_reps: int) -> tuple[int, float] | None:
    """(fewest moves, least travel of moved accounts at that count), or None if infeasible."""
    homes = {r.rep_id: (r.home_lat, r.home_lon) for r in reps}
    fair = fair_potentials(accounts, reps)
    eps = 1e-9 * max(1.0, math.fsum(a.potential for a in accounts))
    best: tuple[int, float] | None = None
    for choice in itertools.product(*(allowed_reps(a, reps, candidate_reps) for a in accounts)):
        loads = dict.fromkeys(fair, 0.0)
        for a, r in zip(accounts, choice):
            loads[r] += a.potential
        if not all(fair[r] * (1 - tol) - eps <= loads[r] <= fair[r] * (1 + tol) + eps for r in fair):
            continue
        moved = [(a, r) for a, r in zip(accounts, choice) if a.rep_id != r]
        travel = math.fsum(haversine_km(*homes[r], a.lat, a.lon) for a, r in moved)
        key = (len(moved), travel)
        if best is None or key < best:
            best = key
    return best


def random_case(
    seed: int,
    n_reps: tuple[int, ...] = (2, 3),
    n_accounts: tuple[int, int] = (6, 9),
    tolerances: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
) -> tuple[list[Account], list[Rep], float]:
    rng = random.Random(seed)
    n_reps = rng.choice(n_reps)
    reps = [
        Rep(
            f"R{r}",
            home_lat=rng.uniform(45, 48),
            home_lon=rng.uniform(2, 6),
            capacity_fte=rng.choice([0.5, 1.0, 1.0, 1.5]),
            max_travel_km=rng.choice([None, None, rng.uniform(150, 400)]),
        )
        for r in range(1, n_reps + 1)
    ]
    owners = [r.rep_id for r in reps] * 4 + [None, "GONE"]
    accounts = [
        Account(
            f"A{i}",
            potential=rng.choice([0.0, rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(1, 100)]),
            workload=rng.uniform(0, 10),
            lat=rng.uniform(45, 48),
            lon=rng.uniform(2, 6),
            rep_id=rng.choice(owners),
            locked=rng.random() < 0.15,
        )
        for i in range(rng.randint(*n_accounts))
    ]
    return accounts, reps, rng.choice(tolerances)


# ---------------------------------------------------------------------------- geometry


def test_haversine_is_symmetric_and_matches_a_known_distance() -> None:
    paris, london = (48.8566, 2.3522), (51.5074, -0.1278)
    assert haversine_km(*paris, *london) == pytest.approx(343.6, abs=0.1)
    assert haversine_km(*paris, *london) == pytest.approx(haversine_km(*london, *paris))
    assert haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088)


# ---------------------------------------------------------------------------- (a) optimality


@pytest.mark.parametrize("seed", range(120))
def test_fewest_moves_match_brute_force(seed: int) -> None:
    accounts, reps, tol = random_case(seed)
    check_against_brute_force(accounts, reps, tol, candidate_reps=3)


@pytest.mark.parametrize("seed", range(40))
def test_fewest_moves_match_brute_force_with_pruned_candidates(seed: int) -> None:
    # 4 reps and 2 candidates: the nearest-reps rule really removes options.
    accounts, reps, tol = random_case(10_000 + seed, n_reps=(4,), n_accounts=(7, 8), tolerances=(0.5, 0.7))
    check_against_brute_force(accounts, reps, tol, candidate_reps=2)


def widening(candidate_reps: int, n_reps: int) -> list[int]:
    """The documented widening, written independently: the given count, then twice as
    many each time, up to every rep."""
    levels = [candidate_reps]
    while levels[-1] < n_reps:
        levels.append(min(2 * levels[-1], n_reps))
    return levels


def check_against_brute_force(accounts: list[Account], reps: list[Rep], tol: float, candidate_reps: int) -> None:
    # The pruned model first; when it has no answer, the first wider one that has.
    for used in widening(candidate_reps, len(reps)):
        expected = brute_force(accounts, reps, tol, used)
        if expected is not None:
            break

    result = minimal_moves(accounts, reps, tolerance=tol, candidate_reps=candidate_reps, time_limit_s=5)

    assert result.status in STATUSES
    widened = [note for note in result.notes if note.startswith(f"candidates widened from {candidate_reps} ")]
    if expected is None:
        assert result.status == "infeasible"
        assert result.explanation and any(r.rep_id in result.explanation for r in reps)
        assert result.explanation.startswith(
            ("infeasible under any assignment", "infeasible for the reps within reach")
        )
        assert result.moves == () and result.after == result.before
        return
    # The notes say when the candidates had to be widened, and only then.
    if brute_force(accounts, reps, tol, candidate_reps) is None:
        assert widened, result.notes
    else:
        assert not widened, result.notes
        used = candidate_reps
    best_moves, best_travel = expected
    assert result.status == ("balanced" if best_moves == 0 else "optimal")
    assert result.objective == len(result.moves) == best_moves
    assert result.bound == best_moves and result.gap == 0
    assignment = final_assignment(accounts, result)
    assert within_band(accounts, reps, assignment, tol)
    # The travel tie-break is lexicographic: least travel among the fewest-move solutions.
    assert math.fsum(m.distance_km for m in result.moves) == pytest.approx(best_travel, abs=0.01)
    # Every account placed on an allowed rep, every move real, locked accounts in place.
    rep_ids = {r.rep_id for r in reps}
    by_id = {a.account_id: a for a in accounts}
    for a in accounts:
        assert assignment[a.account_id] in allowed_reps(a, reps, used)
    for m in result.moves:
        a = by_id[m.account_id]
        assert m.from_rep == a.rep_id != m.to_rep
        assert (m.potential, m.workload) == (a.potential, a.workload)
        assert not (a.locked and a.rep_id in rep_ids)


def test_the_band_counts_potential_in_floats_not_just_in_the_integer_model() -> None:
    # 1/3-style potentials that do not scale to exact integers.
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0), Rep("R3", 0, 0)]
    accounts = [Account(f"A{i}", potential=1 / 3 + i / 7, rep_id="R1") for i in range(9)]
    result = minimal_moves(accounts, reps, tolerance=0.05)
    assert result.status == "optimal"
    assert within_band(accounts, reps, final_assignment(accounts, result), 0.05)


# ---------------------------------------------------------------------------- (b) locked


def test_locked_accounts_never_move_even_when_moving_them_is_cheapest() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [
        # Moving B alone would fix the balance in one move, but it is locked.
        Account("B", 20, rep_id="R1", locked=True),
        *(Account(f"S{i}", 10, rep_id="R1") for i in range(1, 6)),
        Account("Y", 30, rep_id="R2"),
    ]
    result = minimal_moves(accounts, reps, tolerance=0.0)
    assert result.status == "optimal"
    assert result.objective == 2
    assert all(m.account_id.startswith("S") for m in result.moves)
    assert final_assignment(accounts, result)["B"] == "R1"


def test_a_locked_account_of_an_inactive_rep_is_placed() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 10, rep_id="R1"), Account("A2", 10, rep_id="OLD", locked=True)]
    result = minimal_moves(accounts, reps)
    assert [(m.account_id, m.from_rep, m.to_rep) for m in result.moves] == [("A2", "OLD", "R2")]


# ---------------------------------------------------------------------------- (c) placements


def test_accounts_of_an_inactive_rep_are_placed_and_count_as_moves() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 46.0, 5.0)]
    accounts = [
        Account("A1", 50, rep_id="R1", lat=45.0, lon=5.0),
        Account("A2", 50, rep_id="R2", lat=46.0, lon=5.0),
        Account("G1", 10, rep_id="R9", lat=45.1, lon=5.0),  # R9 left: near R1
        Account("G2", 10, rep_id="R9", lat=45.9, lon=5.0),  # near R2
        Account("N1", 0, rep_id=None, lat=45.0, lon=5.0),  # never had an owner
    ]
    result = minimal_moves(accounts, reps, tolerance=0.10)

    assert result.status == "optimal"
    assert result.objective == 3 == result.bound
    placed = {m.account_id: (m.from_rep, m.to_rep, m.reason) for m in result.moves}
    assert placed == {
        "G1": ("R9", "R1", "owner R9 inactive"),
        "G2": ("R9", "R2", "owner R9 inactive"),
        "N1": (None, "R1", "no owner"),  # nearest, by the travel tie-break
    }
    assert [b.potential for b in result.after] == [60, 60]


# ---------------------------------------------------------------------------- (d) balanced


def test_already_balanced_input_needs_no_solver() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 52, rep_id="R1"), Account("A2", 48, rep_id="R2")]
    result = minimal_moves(accounts, reps, tolerance=0.10)
    assert result.status == "balanced"
    assert result.moves == ()
    assert result.after == result.before
    assert (result.objective, result.bound, result.gap) == (0, 0, 0)


def test_no_accounts_is_balanced() -> None:
    result = minimal_moves([], [Rep("R1", 0, 0)])
    assert result.status == "balanced" and result.moves == ()


# ---------------------------------------------------------------------------- (e) infeasible


def test_one_giant_locked_account_is_infeasible_and_names_the_rep() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0), Rep("R3", 0, 0)]
    accounts = [Account("BIG", 1000, rep_id="R2", locked=True)] + [Account(f"A{i}", 10, rep_id="R1") for i in range(10)]
    result = minimal_moves(accounts, reps)
    assert result.status == "infeasible"
    assert result.explanation is not None
    assert result.explanation.startswith("infeasible under any assignment: ")
    assert "rep R2" in result.explanation and "locked" in result.explanation
    assert result.moves == () and result.after == result.before
    assert result.objective is None and result.gap is None


def test_a_rep_out_of_reach_of_enough_potential_is_infeasible_and_named() -> None:
    # One account each would do, but FAR's travel limit reaches none of them.
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.0, 5.0), Rep("FAR", 60.0, 25.0, max_travel_km=100)]
    accounts = [Account(f"A{i}", 10, rep_id="R1", lat=45.0, lon=5.0) for i in range(3)]
    result = minimal_moves(accounts, reps)
    assert result.status == "infeasible"
    assert result.explanation == (
        "infeasible for the reps within reach: no assignment keeps every rep within ±10% of fair share when each "
        "account may only stay or move to a rep whose max_travel_km reaches it; rep FAR cannot reach 90% of fair "
        "share: all accounts within reach total 0%; without the travel limits the bands could hold"
    )


def test_without_its_travel_limit_a_rep_would_still_fall_short_under_any_assignment() -> None:
    # Four accounts of 10 cannot give three reps 12-14.7 each, whoever serves them: the
    # travel limit is not what stops it, and the answer says so.
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.0, 5.0), Rep("FAR", 60.0, 25.0, max_travel_km=100)]
    accounts = [Account(f"A{i}", 10, rep_id="R1", lat=45.0, lon=5.0) for i in range(4)]
    result = minimal_moves(accounts, reps)
    assert result.status == "infeasible"
    assert result.explanation is not None
    assert result.explanation.startswith(
        "infeasible under any assignment: no assignment keeps every rep within ±10% of fair share, whichever rep "
        "serves each unlocked account (travel limits aside); the closest compromise still leaves rep "
    )


def test_an_account_no_rep_can_take_is_infeasible_and_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_travel_km=50)]
    accounts = [Account("A1", 10, rep_id=None, lat=48.0, lon=5.0)]
    result = minimal_moves(accounts, reps)
    assert result.status == "infeasible"
    assert result.explanation is not None
    assert "account A1" in result.explanation and "rep R1" in result.explanation


def test_infeasibility_from_competing_reps_still_names_a_rep() -> None:
    # Each rep can reach enough on its own, but not all at once: each needs two of the
    # four accounts of 5 (fair share 6.7, at least 5.3), and no account alone is too big.
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0), Rep("R3", 0, 0)]
    accounts = [Account(f"A{i}", 5, rep_id="R1") for i in range(4)]
    result = minimal_moves(accounts, reps, tolerance=0.2)
    assert result.status == "infeasible"
    assert result.explanation is not None
    assert result.explanation.startswith("infeasible under any assignment: ")
    # 10, 5 and 5 at best: one rep at 150% of fair share, the worst of it.
    assert "the closest compromise still leaves rep R" in result.explanation
    assert result.explanation.endswith("at 150% of fair share (at most 120% required)")


def test_an_account_larger_than_every_band_is_infeasible_under_any_assignment() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0, capacity_fte=1.5), Rep("R3", 0, 0)]
    accounts = [Account("HUGE", 60, rep_id="R1")] + [Account(f"A{i}", 5, rep_id="R3") for i in range(8)]
    result = minimal_moves(accounts, reps, tolerance=0.1)
    assert result.status == "infeasible"
    # Fair shares 28.6, 42.9, 28.6 of 100: 60 is 140% of R2's, the largest band.
    assert result.explanation == (
        "infeasible under any assignment: no assignment keeps every rep within ±10% of fair share, whichever rep "
        "serves each unlocked account (travel limits aside); account HUGE alone is 140% of fair share for rep R2, "
        "the rep with the largest band (at most 110% allowed): whoever serves it is over the band"
    )
    assert result.notes == ()  # no candidates were widened: nothing could help


def test_infeasibility_from_account_sizes_names_the_rep_and_its_band() -> None:
    # Fair share is 50 each, with no tolerance; no subset of 20s makes 50.
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account(f"A{i}", 20, rep_id="R1") for i in range(3)] + [Account("B", 40, rep_id="R2")]
    result = minimal_moves(accounts, reps, tolerance=0.0)
    assert result.status == "infeasible"
    assert result.explanation is not None
    assert result.explanation.endswith("at 120% of fair share (at most 100% required)") or result.explanation.endswith(
        "at 80% of fair share (at least 100% required)"
    )


# ---------------------------------------------------------------------------- (f) capacity


def test_a_half_time_rep_gets_half_the_fair_share() -> None:
    reps = [Rep("FULL", 0, 0, capacity_fte=1.0), Rep("HALF", 0, 0, capacity_fte=0.5)]
    accounts = [Account(f"A{i}", 10, rep_id="HALF") for i in range(6)] + [
        Account(f"B{i}", 10, rep_id="FULL") for i in range(3)
    ]
    before = {b.rep_id: b for b in balance_of(accounts, reps)}
    assert before["HALF"].fair_share == pytest.approx(1 / 3)
    assert before["HALF"].deviation == pytest.approx((6 / 9) / (1 / 3) - 1)

    result = minimal_moves(accounts, reps, tolerance=0.05)
    assert result.status == "optimal"
    assert result.objective == 3
    after = {b.rep_id: b for b in result.after}
    assert after["HALF"].potential == 30 and after["FULL"].potential == 60
    assert after["HALF"].deviation == pytest.approx(0)


# ---------------------------------------------------------------------------- other behaviour


def test_travel_breaks_ties_between_equal_move_counts() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 46.0, 5.0)]
    accounts = [
        Account("FAR", 10, rep_id="R1", lat=44.0, lon=5.0),
        Account("NEAR", 10, rep_id="R1", lat=45.9, lon=5.0),
        Account("X", 40, rep_id="R1", lat=45.0, lon=5.0),
        Account("Y", 40, rep_id="R2", lat=46.0, lon=5.0),
    ]
    result = minimal_moves(accounts, reps, tolerance=0.0)
    assert [m.account_id for m in result.moves] == ["NEAR"]
    assert result.moves[0].distance_km == pytest.approx(haversine_km(46.0, 5.0, 45.9, 5.0))
    assert result.moves[0].reason == "R1 over fair share by 20%; R2 under by 20%"


def test_moves_go_only_to_nearby_candidate_reps() -> None:
    # Five reps on a line; R1 is overloaded. With one candidate per account, its
    # accounts may only move to R2, the nearest other rep.
    reps = [Rep(f"R{k}", 45.0, 5.0 + k, max_travel_km=None) for k in range(1, 6)]
    accounts = [Account(f"A{i}", 10, rep_id="R1", lat=45.0, lon=6.0) for i in range(12)] + [
        Account(f"B{k}{i}", 10, rep_id=f"R{k}", lat=45.0, lon=5.0 + k) for k in range(2, 6) for i in range(2)
    ]
    result = minimal_moves(accounts, reps, tolerance=0.25, candidate_reps=4)
    assert result.status == "optimal" and result.objective == 7
    assert {m.to_rep for m in result.moves} <= {"R2", "R3", "R4", "R5"}
    assert result.notes == ()
    # R2 alone cannot absorb R1's excess: the candidates are widened to 2, the first
    # count with an answer, and the notes say so. It takes 10 moves (R1's accounts go
    # to R2 and R3, which pass some on down the line) where 4 candidates take 7: the
    # narrowest candidates with an answer keep the moves local.
    widened = minimal_moves(accounts, reps, tolerance=0.25, candidate_reps=1)
    assert (widened.status, widened.objective) == ("optimal", 10)
    assert widened.notes == (
        "candidates widened from 1 to 2 nearest reps within reach (a proposal); with 1: rep R5 cannot reach 75% "
        "of fair share: all accounts within reach total 50%",
    )
    # No account goes further than two reps down the line.
    assert max(m.distance_km for m in widened.moves) < haversine_km(45.0, 6.0, 45.0, 8.0) + 1


def test_result_round_trips_through_json() -> None:
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A1", 50, rep_id="R1"), Account("A2", 30, rep_id="R1"), Account("A3", 20)]
    result = minimal_moves(accounts, reps)
    data = json.loads(json.dumps(result.to_dict()))
    assert isinstance(data["moves"], list) and isinstance(data["moves"][0], dict)
    assert RebalanceResult.from_dict(data) == result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tolerance": -0.1}, "tolerance must be"),
        ({"tolerance": float("nan")}, "tolerance must be"),
        ({"candidate_reps": 0}, "candidate_reps must be"),
        ({"time_limit_s": 0}, "time_limit_s must be"),
        ({"num_workers": 0}, "num_workers must be"),
    ],
)
def test_bad_arguments_are_rejected_with_the_valid_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        minimal_moves([Account("A1", 1, rep_id="R1")], [Rep("R1", 0, 0)], **kwargs)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="potential"):
        Account("A1", -1)
    with pytest.raises(ValueError, match="capacity_fte"):
        Rep("R1", 0, 0, capacity_fte=0)
    with pytest.raises(ValueError, match="duplicated: A1"):
        minimal_moves([Account("A1", 1), Account("A1", 2)], [Rep("R1", 0, 0)])
    with pytest.raises(ValueError, match="reps must not be empty"):
        minimal_moves([Account("A1", 1)], [])


# ---------------------------------------------------------------------------- (g) medium


def clustered_case(seed: int, n_accounts: int, n_reps: int) -> tuple[list[Account], list[Rep]]:
    """Reps in cities across France; accounts around them, owned by the nearest rep;
    then a regional boom doubles potential around two cities and one rep leaves."""
    rng = random.Random(seed)
    cities = [(rng.uniform(43.5, 50.5), rng.uniform(-1.0, 7.0)) for _ in range(n_reps)]
    reps = [
        Rep(f"R{k:02d}", lat, lon, capacity_fte=rng.choice([0.8, 1.0, 1.0, 1.2])) for k, (lat, lon) in enumerate(cities)
    ]
    boom = {0, 1}
    accounts = []
    for i in range(n_accounts):
        k = rng.randrange(n_reps)
        lat = min(90.0, max(-90.0, rng.gauss(cities[k][0], 0.5)))
        lon = rng.gauss(cities[k][1], 0.7)
        owner = min(reps, key=lambda r: haversine_km(r.home_lat, r.home_lon, lat, lon))
        potential = rng.lognormvariate(3, 1) * (2.0 if k in boom else 1.0)
        accounts.append(
            Account(
                f"A{i:05d}",
                potential=potential,
                workload=rng.uniform(10, 120),
                lat=lat,
                lon=lon,
                rep_id="R_LEFT" if owner.rep_id == "R09" and rng.random() < 0.5 else owner.rep_id,
                locked=rng.random() < 0.05,
            )
        )
    return accounts, reps


def test_medium_case_is_feasible_within_its_time_limit() -> None:
    accounts, reps = clustered_case(seed=7, n_accounts=2000, n_reps=10)
    result = minimal_moves(accounts, reps, tolerance=0.10, time_limit_s=8.0)

    assert result.status in ("optimal", "feasible")
    assignment = final_assignment(accounts, result)
    assert within_band(accounts, reps, assignment, 0.10)
    assert all(abs(b.deviation) <= 0.10 + 1e-9 for b in result.after)
    locked = {a.account_id for a in accounts if a.locked and a.rep_id != "R_LEFT"}
    assert not locked & {m.account_id for m in result.moves}
    assert result.objective is not None and result.bound is not None
    assert result.bound <= result.objective == len(result.moves)
    assert 0 <= result.gap < 1
    print(
        f"\nmedium 2000x10: {result.status} moves={result.objective:g} bound={result.bound:g} "
        f"seconds={result.seconds:.2f}"
    )
