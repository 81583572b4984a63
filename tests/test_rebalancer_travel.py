"""The travel trade-off (fewer kilometres for a budget of moves): ``minimal_moves(objective="travel", max_moves=M)``,
``trade_off_curve(kind="travel")`` and ``territory rebalance --objective travel`` /
``--curve travel``.

The rules, written here independently of the package:

- travel is the sum over every account of the straight-line km from its rep's home to it,
  times that rep's ``travel_factor`` (the solver counts it to the metre: each account's
  km x factor rounded to whole metres, so the brute force below rounds the same way);
- an answer keeps every rep in band on every balanced metric, the segments, the account
  caps, the locks and the travel limits (an account may stay with its rep whatever they
  say), and makes at most M moves (a placement is a move);
- least travel first, then the fewest moves for it.

Small random cases (5-8 accounts, 2-4 reps, random homes and factors, segments, caps,
locks, accounts to place) are enumerated exhaustively with every rep a candidate
(``candidate_reps >= n_reps``) and compared with the package.

The CLI runs on tests/data/rebalance/: travel_reps.csv is reps.csv with a travel_factor
column (R1 1.3, R2 empty: 1, R3 0.8); travel_units.csv is units.csv with three units held
by a rep from elsewhere (U05 of R1's area held by R2, U07 of R2's by R3, U11 of R3's by R2),
the loads R1 126, R2 104, R3 70. One move (U03 to R3) restores the ±10% band, as in
units.csv; each extra move buys travel back (U05 home to R1, then U07 and U11 swapped back,
which takes two moves at once), so the travel curve has points at 1, 2, 3 and 4 moves.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rebalancer import (
    Account,
    RebalanceResult,
    Rep,
    TravelPoint,
    haversine_km,
    minimal_moves,
    trade_off_curve,
)
from tests.test_rebalance_command import (
    DATA,
    REPS,
    UNITS,
    assignment_after,
    capacities,
    in_band,
    proposal,
    rebalance,
    rows,
    write_csv,
)

TIME_LIMIT_S = 5.0
SEGMENTS = ("key", "smb")
TRAVEL_REPS, TRAVEL_UNITS = DATA / "travel_reps.csv", DATA / "travel_units.csv"

# ---------------------------------------------------------------------------- the rules, independently


def serves(rep: Rep, account: Account) -> bool:
    return account.segment is None or not rep.segments or account.segment in rep.segments


def km(rep: Rep, account: Account) -> float:
    return haversine_km(rep.home_lat, rep.home_lon, account.lat, account.lon)


def options(account: Account, reps: Sequence[Rep]) -> list[int]:
    """Rep positions the account may end with (every rep a candidate)."""
    index = {rep.rep_id: r for r, rep in enumerate(reps)}
    current = index.get(account.rep_id) if account.rep_id is not None else None
    if account.locked and current is not None:
        return [current]
    others = [
        r
        for r, rep in enumerate(reps)
        if r != current
        and serves(rep, account)
        and (rep.max_travel_km is None or km(rep, account) <= rep.max_travel_km)
    ]
    return ([current] if current is not None else []) + others


class Enumeration:
    """Every assignment the rules allow, with its bands, caps, moves and travel."""

    def __init__(
        self, accounts: Sequence[Account], reps: Sequence[Rep], metrics: Sequence[str], tolerance: float
    ) -> None:
        allowed = [options(a, reps) for a in accounts]
        index = {rep.rep_id: r for r, rep in enumerate(reps)}
        current = np.array([index.get(a.rep_id, -1) if a.rep_id is not None else -1 for a in accounts])
        if any(not choice for choice in allowed):
            choices = np.zeros((0, len(accounts)), dtype=np.int64)
        else:
            choices = np.array(list(itertools.product(*allowed)), dtype=np.int64).reshape(-1, len(accounts))
        held = choices[:, :, None] == np.arange(len(reps))[None, None, :]  # K x n x R
        capacity = np.array([r.capacity_fte for r in reps])
        ok = np.ones(len(choices), dtype=bool)
        for metric in metrics:
            values = np.array([getattr(a, metric) for a in accounts], dtype=float)
            total = math.fsum(values)
            fair = total * capacity / capacity.sum()
            loads = np.einsum("knr,n->kr", held, values)
            eps = 1e-9 * max(total, 1.0)
            ok &= ((loads >= fair * (1 - tolerance) - eps) & (loads <= fair * (1 + tolerance) + eps)).all(axis=1)
        counts = held.sum(axis=1)
        least = np.array([r.min_accounts if r.min_accounts is not None else 0 for r in reps])
        most = np.array([r.max_accounts if r.max_accounts is not None else len(accounts) for r in reps])
        ok &= ((counts >= least) & (counts <= most)).all(axis=1)
        # Metres x factor, rounded per account as the solver counts them.
        cost = np.array([[round(km(rep, a) * rep.travel_factor * 1000) for rep in reps] for a in accounts])
        rows = np.arange(len(accounts))[None, :]
        self.choices = choices[ok]
        self.moves = (self.choices != current[None, :]).sum(axis=1)
        self.travel = cost[rows, self.choices].sum(axis=1)  # integer metres x factor
        exact = np.array([[km(rep, a) * rep.travel_factor for rep in reps] for a in accounts])
        self.travel_km = exact[rows, self.choices].sum(axis=1)

    def fewest_moves(self) -> int | None:
        return int(self.moves.min()) if len(self.moves) else None

    def least_travel(self, budget: int) -> tuple[int, float, int] | None:
        """(least travel in metres x factor, the same in km unrounded, fewest moves at that travel)."""
        within = self.moves <= budget
        if not within.any():
            return None
        least = int(self.travel[within].min())
        at = within & (self.travel == least)
        return least, float(self.travel_km[at].min()), int(self.moves[at].min())

    def last_budget(self) -> int:
        """The moves of the least travel with no budget (the fewest for it)."""
        answer = self.least_travel(10**9)
        assert answer is not None
        return answer[2]


def random_case(seed: int) -> tuple[list[Account], list[Rep], float, tuple[str, ...]]:
    rng = random.Random(seed)
    n_reps = rng.randint(2, 4)
    reps = []
    for r in range(1, n_reps + 1):
        most = rng.choice([None, None, None, None, 3, 4])
        least = rng.choice([None, None, None, None, 1, 2])
        if most is not None and least is not None and least > most:
            least = most
        reps.append(
            Rep(
                f"R{r}",
                home_lat=rng.uniform(45, 48),
                home_lon=rng.uniform(2, 6),
                capacity_fte=rng.choice([0.5, 1.0, 1.0, 1.5]),
                max_travel_km=rng.choice([None, None, None, rng.uniform(150, 400)]),
                segments=rng.choice([(), (), (), ("key",), ("smb",), SEGMENTS]),
                min_accounts=least,
                max_accounts=most,
                travel_factor=rng.choice([1.0, rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0)]),
            )
        )
    owners = [r.rep_id for r in reps] * 3 + [None, "GONE"]
    accounts = [
        Account(
            f"A{i}",
            potential=rng.choice([0.0, rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(1, 100)]),
            workload=rng.uniform(0, 50),
            lat=rng.uniform(45, 48),
            lon=rng.uniform(2, 6),
            rep_id=rng.choice(owners),
            locked=rng.random() < 0.15,
            segment=rng.choice([None, None, "key", "smb"]),
        )
        for i in range(rng.randint(5, 8))
    ]
    metrics = rng.choice([("potential",), ("potential",), ("potential", "workload")])
    return accounts, reps, rng.choice([0.3, 0.5, 0.7, 1.0]), metrics


def final_assignment(accounts: Sequence[Account], result: RebalanceResult) -> dict[str, str | None]:
    assignment = {a.account_id: a.rep_id for a in accounts}
    for move in result.moves:
        assert assignment[move.account_id] == move.from_rep, move
        assignment[move.account_id] = move.to_rep
    return assignment


def travel_of(accounts: Sequence[Account], reps: Sequence[Rep], assignment: dict[str, str | None]) -> float:
    by_id = {rep.rep_id: rep for rep in reps}
    return math.fsum(
        km(by_id[rep_id], a) * by_id[rep_id].travel_factor
        for a in accounts
        if (rep_id := assignment[a.account_id]) in by_id
    )


def check_answer(
    accounts: Sequence[Account], reps: Sequence[Rep], result: RebalanceResult, budget: int, where: object
) -> None:
    """Moves within the budget and the rules, travel figures recomputed from the moves."""
    assert len(result.moves) <= budget, where
    by_id = {rep.rep_id: rep for rep in reps}
    assignment = final_assignment(accounts, result)
    for account in accounts:
        rep_id = assignment[account.account_id]
        assert rep_id in by_id, (where, account)
        if rep_id != account.rep_id:
            assert not (account.locked and account.rep_id in by_id), (where, account)
            assert serves(by_id[rep_id], account), (where, account, rep_id)
    slack = 0.0005 * len(accounts) + 1e-9  # each account's km x factor is counted to the metre
    before = {a.account_id: a.rep_id for a in accounts}
    assert result.travel_km_before == pytest.approx(travel_of(accounts, reps, before), abs=slack), where
    assert result.travel_km_after == pytest.approx(travel_of(accounts, reps, assignment), abs=slack), where
    assert result.objective == pytest.approx(result.travel_km_after, abs=1e-9), where


# ---------------------------------------------------------------------------- least travel against brute force


@pytest.mark.parametrize("seed", range(60))
def test_least_travel_within_a_budget_matches_brute_force(seed: int) -> None:
    accounts, reps, tol, metrics = random_case(seed)
    enumeration = Enumeration(accounts, reps, metrics, tol)
    fewest = enumeration.fewest_moves()
    rng = random.Random(seed)
    budgets = sorted({0, rng.randint(0, len(accounts)), len(accounts)} | ({fewest, fewest + 1} if fewest else set()))
    for budget in budgets:
        where = (seed, budget)
        result = minimal_moves(
            accounts,
            reps,
            tolerance=tol,
            metrics=metrics,
            objective="travel",
            max_moves=budget,
            candidate_reps=len(reps),
            time_limit_s=TIME_LIMIT_S,
        )
        assert result.objective_kind == "travel", where
        expected = enumeration.least_travel(budget)
        if expected is None:
            assert result.status == "infeasible", (where, result)
            assert result.explanation, where
            if fewest is not None:
                # The band can hold, with more moves: the explanation names how many.
                assert f"needs at least {fewest} move" in result.explanation, (where, result.explanation)
            assert result.moves == () and result.travel_km_after == result.travel_km_before, where
            continue
        metres, exact_km, moves = expected
        assert result.status == "optimal", (where, result)
        assert round(result.objective * 1000) == metres, (where, result.objective, metres)
        assert result.objective == pytest.approx(exact_km, abs=0.0005 * len(accounts)), where
        assert result.bound == pytest.approx(result.objective) and result.gap == 0.0, where
        assert len(result.moves) == moves, (where, "the fewest moves for the least travel")
        check_answer(accounts, reps, result, budget, where)
        assert all(r.rep_id in {b.rep_id for b in result.after} for r in reps)
        assert not any("travel is least over" in note for note in result.notes), where  # every rep a candidate


@pytest.mark.parametrize("seed", range(60))
def test_travel_curve_matches_brute_force_and_never_rises(seed: int) -> None:
    accounts, reps, tol, metrics = random_case(seed)
    enumeration = Enumeration(accounts, reps, metrics, tol)
    fewest = enumeration.fewest_moves()

    curve = trade_off_curve(
        accounts,
        reps,
        tolerance=tol,
        metrics=metrics,
        candidate_reps=len(reps),
        time_limit_s=TIME_LIMIT_S,
        kind="travel",
    )

    if fewest is None:
        assert curve == (), seed
        return
    assert curve, seed
    assert all(isinstance(p, TravelPoint) for p in curve)
    assert curve[0].moves == fewest, (seed, curve)
    assert curve[-1].moves == enumeration.last_budget(), (seed, curve)
    assert [p.moves for p in curve] == list(range(curve[0].moves, curve[-1].moves + 1)), seed
    for point in curve:
        expected = enumeration.least_travel(point.moves)
        assert expected is not None
        metres, exact_km, moves = expected
        assert round(point.travel_km * 1000) == metres, (seed, point, metres)
        assert point.travel_km == pytest.approx(exact_km, abs=0.0005 * len(accounts)), (seed, point)
        assert point.status == "optimal" and point.bound_km == pytest.approx(point.travel_km), (seed, point)
        assert point.moves_used == moves <= point.moves, (seed, point)
        assert point.imbalance <= tol + 1e-6, (seed, point)  # every point in band
    travel = [p.travel_km for p in curve]
    assert all(b <= a for a, b in zip(travel, travel[1:])), (seed, travel)


# ---------------------------------------------------------------------------- targeted cases


def line_case() -> tuple[list[Account], list[Rep]]:
    """Two reps on the equator, 111 km apart; R1 holds five accounts between them."""
    reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 1.0, travel_factor=1.3)]
    accounts = [Account(f"A{i}", 10, lat=0.0, lon=i / 4, rep_id="R1") for i in range(5)]
    accounts.append(Account("B", 10, lat=0.0, lon=0.1, rep_id="R2"))
    return accounts, reps


def test_too_small_a_budget_is_infeasible_and_names_the_moves_the_band_needs() -> None:
    accounts, reps = line_case()  # R1 holds 50 of 60: two accounts must go to R2
    result = minimal_moves(accounts, reps, tolerance=0.2, objective="travel", max_moves=1, time_limit_s=TIME_LIMIT_S)
    assert result.status == "infeasible" and result.objective is None and result.moves == ()
    assert result.explanation is not None
    assert "with at most 1 move:" in result.explanation
    assert "the band needs at least 2 moves" in result.explanation
    assert "max_moves=1 is too few" in result.explanation


def test_placements_count_against_the_budget() -> None:
    accounts, reps = line_case()
    waiting = [*accounts, Account("N1", 0.0, lat=0, lon=0.5), Account("N2", 0.0, lat=0, lon=0.6)]
    result = minimal_moves(waiting, reps, tolerance=0.2, objective="travel", max_moves=1, time_limit_s=TIME_LIMIT_S)
    assert result.status == "infeasible"
    assert "2 accounts wait for a rep and each placement is a move" in (result.explanation or "")


def test_a_larger_budget_buys_less_travel_and_the_factor_counts() -> None:
    accounts, reps = line_case()
    two = minimal_moves(accounts, reps, tolerance=0.2, objective="travel", max_moves=2, time_limit_s=TIME_LIMIT_S)
    six = minimal_moves(accounts, reps, tolerance=0.2, objective="travel", max_moves=6, time_limit_s=TIME_LIMIT_S)
    assert two.status == six.status == "optimal"
    assert {m.account_id for m in two.moves} == {"A3", "A4"}  # the two nearest R2
    assert six.travel_km_after < two.travel_km_after < two.travel_km_before
    # B (0.1 degrees from R1's home) goes back to R1 once the budget allows it.
    assert ("B", "R1") in {(m.account_id, m.to_rep) for m in six.moves}
    # A higher factor for R2 makes its accounts dearer, the answer the same here.
    dear = [reps[0], Rep("R2", 0.0, 1.0, travel_factor=10.0)]
    costly = minimal_moves(accounts, dear, tolerance=0.2, objective="travel", max_moves=2, time_limit_s=TIME_LIMIT_S)
    assert costly.travel_km_after == pytest.approx(
        travel_of(accounts, dear, final_assignment(accounts, costly)), abs=0.01
    )
    assert costly.travel_km_after > two.travel_km_after


def test_a_cheaper_rep_wins_the_account_through_its_factor() -> None:
    # A1 is 11 km from R1's home and 22 km from R2's, but R1's km cost three times as much.
    reps = [Rep("R1", 0.0, 0.0, travel_factor=3.0), Rep("R2", 0.0, 0.3)]
    accounts = [
        Account("A1", 10, lat=0.0, lon=0.1, rep_id="R1"),
        Account("A2", 10, lat=0.0, lon=0.0, rep_id="R1"),
        Account("A3", 10, lat=0.0, lon=0.3, rep_id="R2"),
        Account("A4", 10, lat=0.0, lon=0.29, rep_id="R2"),
    ]
    plain = minimal_moves(accounts, reps, tolerance=0.5, objective="travel", max_moves=2, time_limit_s=TIME_LIMIT_S)
    assert [(m.account_id, m.to_rep) for m in plain.moves] == [("A1", "R2")]
    assert plain.status == "optimal"


def test_balanced_already_still_looks_for_less_travel() -> None:
    # Both reps in band, but each holds the account nearer the other's home.
    reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 1.0)]
    accounts = [Account("A1", 10, lat=0, lon=0.9, rep_id="R1"), Account("A2", 10, lat=0, lon=0.1, rep_id="R2")]
    assert minimal_moves(accounts, reps).status == "balanced"
    kept = minimal_moves(accounts, reps, objective="travel", max_moves=0, time_limit_s=TIME_LIMIT_S)
    assert kept.status == "optimal" and kept.moves == ()
    assert kept.travel_km_after == kept.travel_km_before
    swapped = minimal_moves(accounts, reps, objective="travel", max_moves=2, time_limit_s=TIME_LIMIT_S)
    assert swapped.status == "optimal" and len(swapped.moves) == 2
    assert swapped.travel_km_after == pytest.approx(2 * haversine_km(0, 0, 0, 0.1), abs=0.002)


def test_no_band_at_all_is_infeasible_with_the_usual_explanation() -> None:
    reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 1.0)]
    accounts = [Account("A1", 90, rep_id="R1", locked=True), Account("A2", 10, rep_id="R2")]
    result = minimal_moves(accounts, reps, objective="travel", max_moves=2, time_limit_s=TIME_LIMIT_S)
    assert result.status == "infeasible" and result.objective_kind == "travel"
    assert (result.explanation or "").startswith("infeasible under any assignment"), result.explanation
    assert trade_off_curve(accounts, reps, kind="travel", time_limit_s=TIME_LIMIT_S) == ()


def test_pruned_candidates_are_said_in_the_notes() -> None:
    rng = random.Random(7)
    reps = [Rep(f"R{r}", rng.uniform(45, 48), rng.uniform(2, 6)) for r in range(4)]
    accounts = [
        Account(f"A{i}", rng.uniform(1, 10), lat=rng.uniform(45, 48), lon=rng.uniform(2, 6), rep_id="R0")
        for i in range(8)
    ]
    pruned = minimal_moves(
        accounts, reps, tolerance=0.5, objective="travel", max_moves=8, candidate_reps=1, time_limit_s=TIME_LIMIT_S
    )
    assert pruned.status in ("optimal", "feasible")
    assert any("travel is least over each account's current rep and its 1 nearest" in n for n in pruned.notes), (
        pruned.notes
    )
    full = minimal_moves(
        accounts, reps, tolerance=0.5, objective="travel", max_moves=8, candidate_reps=3, time_limit_s=TIME_LIMIT_S
    )
    assert not any("travel is least" in n for n in full.notes)
    assert full.travel_km_after <= pruned.travel_km_after + 1e-9


def test_contiguity_holds_for_the_travel_objective() -> None:
    # A row of five units, R1 holding U0-U3 and living at U2, R2 holding U4 and living at U1.
    # One move restores the band: the least travel gives R2 U0 or U1 (saving 11 km), which
    # splits both territories; with adjacency only U3 can go (adding 11 km).
    reps = [Rep("R1", 0.0, 0.2), Rep("R2", 0.0, 0.1)]
    units = [Account(f"U{i}", 10, lat=0.0, lon=i * 0.1, rep_id="R1" if i < 4 else "R2") for i in range(5)]
    edges = [(f"U{i}", f"U{i + 1}") for i in range(4)]
    kwargs = {"tolerance": 0.25, "objective": "travel", "max_moves": 1, "time_limit_s": TIME_LIMIT_S}
    free = minimal_moves(units, reps, **kwargs)  # type: ignore[arg-type]
    assert [m.to_rep for m in free.moves] == ["R2"] and free.moves[0].account_id in ("U0", "U1")
    assert free.travel_km_after < free.travel_km_before
    connected = minimal_moves(units, reps, adjacency=edges, **kwargs)  # type: ignore[arg-type]
    assert connected.status == "optimal"
    assert [(m.account_id, m.to_rep) for m in connected.moves] == [("U3", "R2")]
    assert connected.travel_km_after > connected.travel_km_before


# ---------------------------------------------------------------------------- values and arguments


@pytest.mark.parametrize("factor", [0.0, -1.0, math.nan, math.inf, True, "1.2"])
def test_a_bad_travel_factor_is_refused(factor: object) -> None:
    with pytest.raises(ValueError, match="rep R1: travel_factor must be a finite number > 0"):
        Rep("R1", 0, 0, travel_factor=factor)  # type: ignore[arg-type]


def test_the_travel_objective_needs_a_budget() -> None:
    with pytest.raises(ValueError, match="objective='travel' needs a budget of moves \\(max_moves=M\\)"):
        minimal_moves([Account("A1", 1, rep_id="R1")], [Rep("R1", 0, 0)], objective="travel")
    with pytest.raises(ValueError, match="kind must be one of"):
        trade_off_curve([Account("A1", 1, rep_id="R1")], [Rep("R1", 0, 0)], kind="distance")  # type: ignore[call-overload]


def test_travel_results_round_trip_and_other_results_keep_their_keys() -> None:
    accounts, reps = line_case()
    travel = minimal_moves(accounts, reps, tolerance=0.2, objective="travel", max_moves=3, time_limit_s=TIME_LIMIT_S)
    data = json.loads(json.dumps(travel.to_dict()))
    assert data["objective_kind"] == "travel"
    assert data["travel_km_before"] == travel.travel_km_before and data["travel_km_after"] == travel.travel_km_after
    assert RebalanceResult.from_dict(data) == travel
    moves = minimal_moves(accounts, reps, tolerance=0.2, time_limit_s=TIME_LIMIT_S)
    assert moves.travel_km_before is None and moves.travel_km_after is None
    assert "travel_km_before" not in moves.to_dict() and "travel_km_after" not in moves.to_dict()
    assert RebalanceResult.from_dict(moves.to_dict()) == moves


# ---------------------------------------------------------------------------- territory rebalance


def csv_case(units_path: Path, reps_path: Path) -> tuple[list[Account], list[Rep]]:
    accounts = [
        Account(u["unit_id"], float(u["potential"]), lat=float(u["lat"]), lon=float(u["lon"]), rep_id=u["rep_id"])
        for u in rows(units_path)
    ]
    reps = [
        Rep(r["rep_id"], float(r["home_lat"]), float(r["home_lon"]), travel_factor=float(r["travel_factor"] or 1))
        for r in rows(reps_path)
    ]
    return accounts, reps


@pytest.mark.parametrize("budget", [2, 5])
def test_cli_travel_objective_with_a_budget_matches_brute_force(tmp_path, budget):
    document = proposal(
        tmp_path, "--units", TRAVEL_UNITS, "--reps", TRAVEL_REPS, "--objective", "travel", "--max-moves", str(budget)
    )
    assert document["objective_kind"] == "travel" and document["status"] == "optimal"
    assert document["max_moves"] == budget and len(document["moves"]) <= budget
    units = rows(TRAVEL_UNITS)
    assignment = assignment_after(units, document["moves"])
    assert in_band(units, capacities(), assignment, 0.10)
    accounts, reps = csv_case(TRAVEL_UNITS, TRAVEL_REPS)
    assert document["travel_km_after"] == pytest.approx(travel_of(accounts, reps, dict(assignment)), abs=0.01)
    expected = Enumeration(accounts, reps, ("potential",), 0.10).least_travel(budget)
    assert expected is not None
    assert round(document["objective"] * 1000) == expected[0]
    assert len(document["moves"]) == expected[2]
    assert document["travel_km_after"] < document["travel_km_before"]


def test_cli_travel_objective_prints_the_travel_and_an_infeasible_budget_exits_1(tmp_path):
    result = rebalance("--units", TRAVEL_UNITS, "--reps", TRAVEL_REPS, "--objective", "travel", "--max-moves", "3")
    assert "objective travel, at most 3 moves" in result.output
    assert "  travel     63.2 -> 41.8 km (straight line x travel_factor; 21.4 km saved)" in result.output
    failed = rebalance("--units", UNITS, "--reps", REPS, "--objective", "travel", "--max-moves", "0", expect=1)
    assert "the band needs at least 1 move" in failed.output


def test_cli_travel_curve(tmp_path):
    document = proposal(tmp_path, "--units", TRAVEL_UNITS, "--reps", TRAVEL_REPS, "--curve", "travel")
    curve = document["travel_curve"]
    assert "curve" not in document
    assert document["objective_kind"] == "moves"  # the proposal itself is the usual one
    assert [p["moves"] for p in curve] == [1, 2, 3, 4]
    assert all(set(p) == {"moves", "travel_km", "status", "moves_used", "bound_km", "imbalance"} for p in curve)
    enumeration = Enumeration(*csv_case(TRAVEL_UNITS, TRAVEL_REPS), ("potential",), 0.10)
    for point in curve:
        expected = enumeration.least_travel(point["moves"])
        assert expected is not None
        assert round(point["travel_km"] * 1000) == expected[0], point
        assert point["status"] == "optimal" and point["moves_used"] == expected[2], point
    travel = [p["travel_km"] for p in curve]
    assert all(b < a for a, b in zip(travel, travel[1:])), travel


def test_cli_curve_takes_a_kind_and_the_bare_flag_still_means_imbalance(tmp_path):
    bare = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--curve", "--tolerance", "0.10")
    named = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--curve", "imbalance")
    assert [p["moves"] for p in bare["curve"]] == [p["moves"] for p in named["curve"]] == [0, 1]
    assert "travel_curve" not in bare
    wrong = rebalance("--units", UNITS, "--reps", REPS, "--curve", "distance", expect=2)
    assert "--curve must be imbalance or travel, got 'distance'" in wrong.stderr


def test_cli_travel_curve_chart(tmp_path):
    out = rebalance(
        "--units", TRAVEL_UNITS, "--reps", TRAVEL_REPS, "--curve", "travel", "--charts", tmp_path / "charts"
    )
    assert "travel saved" in out.output and "per extra move" in out.output
    for name in ("map.png", "shares.png", "travel_curve.png"):
        picture = (tmp_path / "charts" / name).read_bytes()
        assert picture.startswith(b"\x89PNG") and len(picture) > 5_000, name
    assert not (tmp_path / "charts" / "curve.png").exists()


def test_cli_bad_travel_factor_cells_name_file_line_and_column(tmp_path):
    table = rows(TRAVEL_REPS)
    table[0]["travel_factor"] = "0"
    table[1]["travel_factor"] = "fast"
    table[2]["travel_factor"] = ""  # empty: 1
    reps = write_csv(tmp_path / "reps.csv", table)
    result = rebalance("--units", UNITS, "--reps", reps, "--objective", "travel", "--max-moves", "2", expect=2)
    assert "reps.csv line 2, column travel_factor: must be a number > 0, got '0'" in result.stderr
    assert "reps.csv line 3, column travel_factor: must be a number > 0, got 'fast'" in result.stderr
    assert "line 4" not in result.stderr


def test_cli_empty_travel_factor_means_one(tmp_path):
    table = [{**r, "travel_factor": ""} for r in rows(TRAVEL_REPS)]
    plain = write_csv(tmp_path / "reps.csv", table)
    with_column = proposal(tmp_path, "--units", UNITS, "--reps", plain, "--objective", "travel", "--max-moves", "2")
    without = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--objective", "travel", "--max-moves", "2")
    assert with_column["travel_km_after"] == pytest.approx(without["travel_km_after"])
    assert with_column["moves"] == without["moves"]


def test_cli_travel_objective_needs_max_moves():
    result = rebalance("--units", UNITS, "--reps", REPS, "--objective", "travel", expect=2)
    assert "--objective travel needs a budget: --max-moves M" in result.stderr


def test_travel_reps_file_is_reps_csv_with_factors():
    plain, factored = rows(REPS), rows(TRAVEL_REPS)
    assert [{k: v for k, v in r.items() if k != "travel_factor"} for r in factored] == plain
    assert any(r["travel_factor"] not in ("", "1", "1.0") for r in factored)


@pytest.mark.parametrize(
    "points",
    [
        [],
        [{"moves": 3, "travel_km": 120.0}],
        [{"moves": m, "travel_km": 500.0 - 10 * m} for m in range(2, 30)],  # dense: ends labelled only
    ],
)
def test_travel_curve_chart_draws_any_number_of_points(points):
    from alerts.charts import travel_curve_png

    assert travel_curve_png(points).startswith(b"\x89PNG")


def test_cli_says_when_there_is_no_travel_curve(tmp_path):
    units, reps = DATA / "infeasible_units.csv", DATA / "infeasible_reps.csv"
    result = rebalance("--units", units, "--reps", reps, "--curve", "travel", expect=1)
    assert "no travel curve: no assignment keeps every rep in band" in result.output


def test_cli_travel_scenarios_compare_the_travel_after(tmp_path):
    document = proposal(
        tmp_path,
        "--units",
        TRAVEL_UNITS,
        "--reps",
        TRAVEL_REPS,
        "--objective",
        "travel",
        "--max-moves",
        "6",
        "--compare-tolerance",
        "0.2",
    )
    (wider,) = document["scenarios"]
    assert wider["objective_kind"] == "travel" and wider["travel_km_after"] <= document["travel_km_after"] + 1e-9
    result = rebalance(
        "--units", TRAVEL_UNITS, "--reps", TRAVEL_REPS, "--objective", "travel", "--max-moves", "6",
        "--compare-tolerance", "0.2",
    )  # fmt: skip
    assert "travel km after" in result.output
