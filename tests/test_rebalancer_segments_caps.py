"""Segments and account caps in the rebalancer (who may serve an account; how many accounts a
rep may hold).

The rules, written here independently of the package:

- an account without a segment may go to any rep; one with a segment only to reps whose
  ``segments`` are empty or contain it; staying with the current rep is always allowed;
- every rep ends with between ``min_accounts`` and ``max_accounts`` accounts (None: no cap);
- locks and travel limits as before, fair shares company-wide.

Small random cases are enumerated exhaustively (every candidate rep is allowed:
``candidate_reps >= n_reps``) and compared with :func:`minimal_moves`,
:func:`trade_off_curve` and :func:`place_accounts`; targeted cases check that an
infeasible answer names the cap or the segment at fault.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import numpy as np
import pytest

from rebalancer import Account, RebalanceResult, Rep, haversine_km, minimal_moves, place_accounts, trade_off_curve
from rebalancer.problem import build_problem, placement_only, reach_counts, with_candidates

TIME_LIMIT_S = 5.0
SEGMENTS = ("key", "smb")

# ---------------------------------------------------------------------------- the rules, independently


def serves(rep: Rep, account: Account) -> bool:
    return account.segment is None or not rep.segments or account.segment in rep.segments


def reaches(rep: Rep, account: Account) -> bool:
    km = haversine_km(rep.home_lat, rep.home_lon, account.lat, account.lon)
    return rep.max_travel_km is None or km <= rep.max_travel_km


def options(account: Account, reps: Sequence[Rep]) -> list[int]:
    """Rep positions the account may end with (every rep a candidate)."""
    index = {rep.rep_id: r for r, rep in enumerate(reps)}
    current = index.get(account.rep_id) if account.rep_id is not None else None
    if account.locked and current is not None:
        return [current]
    others = [r for r, rep in enumerate(reps) if r != current and serves(rep, account) and reaches(rep, account)]
    return ([current] if current is not None else []) + others


class Enumeration:
    """Every assignment the rules allow, with its loads, counts, moves and travel."""

    def __init__(
        self, accounts: Sequence[Account], reps: Sequence[Rep], allowed: Sequence[Sequence[int]] | None = None
    ) -> None:
        allowed = allowed if allowed is not None else [options(a, reps) for a in accounts]
        index = {rep.rep_id: r for r, rep in enumerate(reps)}
        current = np.array([index.get(a.rep_id, -1) if a.rep_id is not None else -1 for a in accounts])
        if any(not choice for choice in allowed):
            self.choices = np.zeros((0, len(accounts)), dtype=np.int64)
        else:
            self.choices = np.array(list(itertools.product(*allowed)), dtype=np.int64).reshape(-1, len(accounts))
        potential = np.array([a.potential for a in accounts])
        held = self.choices[:, :, None] == np.arange(len(reps))[None, None, :]  # K x n x R
        self.loads = np.einsum("knr,n->kr", held, potential)
        self.counts = held.sum(axis=1)
        self.moves = (self.choices != current[None, :]).sum(axis=1)
        km = np.array([[haversine_km(r.home_lat, r.home_lon, a.lat, a.lon) for r in reps] for a in accounts])
        moved = self.choices != current[None, :]
        self.travel = np.where(moved, km[np.arange(len(accounts))[None, :], self.choices], 0.0).sum(axis=1)
        self.total = math.fsum(a.potential for a in accounts)
        capacity = np.array([r.capacity_fte for r in reps])
        self.fair = self.total * capacity / capacity.sum()
        least = np.array([r.min_accounts if r.min_accounts is not None else 0 for r in reps])
        most = np.array([r.max_accounts if r.max_accounts is not None else len(accounts) for r in reps])
        self.capped = ((self.counts >= least) & (self.counts <= most)).all(axis=1)

    def in_band(self, tol: float) -> np.ndarray:
        eps = 1e-9 * max(self.total, 1.0)
        return ((self.loads >= self.fair * (1 - tol) - eps) & (self.loads <= self.fair * (1 + tol) + eps)).all(axis=1)

    def fewest(self, tol: float) -> tuple[int, float] | None:
        """(fewest moves, least travel at that count) over valid assignments, or None."""
        ok = self.in_band(tol) & self.capped
        if not ok.any():
            return None
        fewest = int(self.moves[ok].min())
        return fewest, float(self.travel[ok & (self.moves == fewest)].min())

    def imbalance(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            deviation = np.where(self.fair > 0, np.abs(self.loads / self.fair - 1), 0.0)
        return deviation.max(axis=1, initial=0.0)

    def best_imbalance(self, budget: int) -> float | None:
        ok = self.capped & (self.moves <= budget)
        return float(self.imbalance()[ok].min()) if ok.any() else None


def random_case(seed: int) -> tuple[list[Account], list[Rep], float]:
    rng = random.Random(seed)
    n_reps = rng.randint(2, 4)
    reps = []
    for r in range(1, n_reps + 1):
        most = rng.choice([None, None, 2, 3, 4])
        least = rng.choice([None, None, 1, 2])
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
            )
        )
    owners = [r.rep_id for r in reps] * 3 + [None, "GONE"]
    accounts = [
        Account(
            f"A{i}",
            potential=rng.choice([0.0, rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(1, 100)]),
            lat=rng.uniform(45, 48),
            lon=rng.uniform(2, 6),
            rep_id=rng.choice(owners),
            locked=rng.random() < 0.15,
            segment=rng.choice([None, "key", "smb", "smb"]),
        )
        for i in range(rng.randint(5, 8))
    ]
    return accounts, reps, rng.choice([0.2, 0.3, 0.5, 0.7, 1.0])


def final_assignment(accounts: Sequence[Account], result: RebalanceResult) -> dict[str, str | None]:
    assignment = {a.account_id: a.rep_id for a in accounts}
    for move in result.moves:
        assert assignment[move.account_id] == move.from_rep, move
        assignment[move.account_id] = move.to_rep
    return assignment


def check_segments_and_caps(accounts: Sequence[Account], reps: Sequence[Rep], result: RebalanceResult) -> None:
    """Every account with its current rep or one serving its segment; caps kept."""
    by_id = {rep.rep_id: rep for rep in reps}
    assignment = final_assignment(accounts, result)
    for account in accounts:
        rep_id = assignment[account.account_id]
        if rep_id != account.rep_id:
            assert rep_id is not None and serves(by_id[rep_id], account), (account, rep_id)
    counts = {rep.rep_id: 0 for rep in reps}
    for rep_id in assignment.values():
        if rep_id in counts:
            counts[rep_id] += 1
    for rep in reps:
        assert rep.min_accounts is None or counts[rep.rep_id] >= rep.min_accounts, (rep, counts)
        assert rep.max_accounts is None or counts[rep.rep_id] <= rep.max_accounts, (rep, counts)


# ---------------------------------------------------------------------------- values


def test_rep_segments_take_any_iterable_of_names_and_are_stored_as_a_tuple() -> None:
    rep = Rep("R1", 0, 0, segments=["key", "smb"])  # type: ignore[arg-type]
    assert rep.segments == ("key", "smb")
    assert hash(rep) == hash(Rep("R1", 0, 0, segments=("key", "smb")))
    assert Rep("R1", 0, 0).segments == ()
    assert Rep("R1", 0, 0, segments=("key",)).serves("key") and not Rep("R1", 0, 0, segments=("key",)).serves("smb")
    assert Rep("R1", 0, 0, segments=("key",)).serves(None) and Rep("R1", 0, 0).serves("anything")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"segments": "key"}, "segments must be a tuple of segment names"),
        ({"segments": ("key", "")}, "segments must be non-empty strings"),
        ({"segments": (3,)}, "segments must be non-empty strings"),
        ({"min_accounts": -1}, "min_accounts must be None (no cap) or an int >= 0"),
        ({"max_accounts": 2.5}, "max_accounts must be None (no cap) or an int >= 0"),
        ({"max_accounts": True}, "max_accounts must be None (no cap) or an int >= 0"),
        ({"min_accounts": 3, "max_accounts": 2}, "min_accounts (3) must not exceed max_accounts (2)"),
    ],
)
def test_bad_rep_segments_and_caps_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Rep("R1", 0, 0, **fields)


@pytest.mark.parametrize("segment", ["", "   ", 7])
def test_a_bad_account_segment_is_refused(segment: object) -> None:
    with pytest.raises(ValueError, match="segment must be None"):
        Account("A1", 1.0, segment=segment)  # type: ignore[arg-type]


def test_caps_accept_numpy_integers_as_ints() -> None:
    rep = Rep("R1", 0, 0, min_accounts=np.int64(1), max_accounts=np.int32(3))  # type: ignore[arg-type]
    assert (rep.min_accounts, rep.max_accounts) == (1, 3)
    assert type(rep.min_accounts) is int and type(rep.max_accounts) is int


# ---------------------------------------------------------------------------- the problem


def segment_problem_case() -> tuple[list[Account], list[Rep]]:
    reps = [
        Rep("R1", 45.0, 5.0, max_travel_km=50, segments=("key", "smb")),
        Rep("R2", 45.2, 5.0, segments=("key",)),
        Rep("R3", 46.0, 5.0, segments=["smb", "key"]),  # type: ignore[arg-type]
    ]
    accounts = [
        Account("K1", 10, lat=45.1, lon=5.0, rep_id="R1", segment="key"),
        Account("S1", 10, lat=45.1, lon=5.0, rep_id="R2", segment="smb"),  # R2 does not serve it: stays allowed
        Account("F1", 10, lat=47.5, lon=5.0, rep_id=None, segment="key"),  # beyond R1's reach, R3 is nearest
        Account("N1", 10, lat=47.5, lon=5.0, rep_id=None, segment="nobody"),
    ]
    return accounts, reps


def test_candidates_reach_counts_and_widening_keep_segments() -> None:
    accounts, reps = segment_problem_case()
    p = build_problem(accounts, reps, tolerance=0.1, candidate_reps=3)
    assert p.eligible.tolist() == [[True, True, True], [True, False, True], [True, True, True], [False] * 3]
    assert [set(c) for c in p.candidates] == [{0, 1, 2}, {1, 0, 2}, {1, 2}, set()]
    assert p.candidates[1][0] == 1  # the current rep first, though it does not serve the segment
    assert reach_counts(p).tolist() == [2, 2, 2, 0]
    assert reach_counts(p, travel_limits=False).tolist() == [2, 2, 3, 0]
    free = with_candidates(p, 3, travel_limits=False)
    assert [set(c) for c in free.candidates] == [{0, 1, 2}, {1, 0, 2}, {0, 1, 2}, set()]


def test_placement_only_falls_back_to_the_nearest_rep_serving_the_segment() -> None:
    reps = [
        Rep("R1", 47.5, 5.0, segments=("smb",), max_travel_km=1),
        Rep("R2", 45.0, 5.0, segments=("key",), max_travel_km=1),
    ]
    accounts = [Account("K1", 10, lat=47.5, lon=5.1, segment="key"), Account("N1", 10, lat=47.5, lon=5.1, segment="x")]
    p = placement_only(build_problem(accounts, reps, tolerance=0.1, candidate_reps=2))
    # R1 is nearest but serves only smb: K1 goes beyond R2's reach; nobody serves "x".
    assert p.candidates == [(1,), ()]


# ---------------------------------------------------------------------------- fewest moves against brute force


@pytest.mark.parametrize("seed", range(80))
def test_fewest_moves_with_segments_and_caps_match_brute_force(seed: int) -> None:
    accounts, reps, tol = random_case(seed)
    expected = Enumeration(accounts, reps).fewest(tol)

    result = minimal_moves(accounts, reps, tolerance=tol, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    if expected is None:
        assert result.status == "infeasible", result
        assert result.explanation and result.explanation.startswith("infeasible"), result.explanation
        assert result.moves == () and result.after == result.before
        return
    fewest, travel = expected
    assert result.status == ("balanced" if fewest == 0 else "optimal"), result
    assert result.objective == len(result.moves) == fewest
    assert result.bound == fewest and result.gap == 0
    assert math.fsum(m.distance_km for m in result.moves) == pytest.approx(travel, abs=0.01)
    check_segments_and_caps(accounts, reps, result)
    by_id = {a.account_id: a for a in accounts}
    assert not any(by_id[m.account_id].locked and m.from_rep in {r.rep_id for r in reps} for m in result.moves)


def test_the_random_cases_exercise_segments_caps_and_infeasibility() -> None:
    # Guard the guard: the cases above are not all trivial.
    kinds = {"feasible": 0, "infeasible": 0, "capped": 0, "segmented": 0}
    for seed in range(80):
        accounts, reps, tol = random_case(seed)
        e = Enumeration(accounts, reps)
        kinds["feasible" if e.fewest(tol) is not None else "infeasible"] += 1
        ok = e.in_band(tol)
        # Caps that change the answer: the band alone allows fewer moves.
        if ok.any() and (ok & e.capped).any() and e.moves[ok].min() < e.moves[ok & e.capped].min():
            kinds["capped"] += 1
        if any(r.segments for r in reps) and any(a.segment for a in accounts):
            kinds["segmented"] += 1
    assert kinds["feasible"] >= 30 and kinds["infeasible"] >= 5 and kinds["capped"] >= 5, kinds
    assert kinds["segmented"] >= 30, kinds


# ---------------------------------------------------------------------------- explanations


def names(result: RebalanceResult, *parts: str) -> None:
    assert result.status == "infeasible", result
    assert result.explanation is not None
    for part in parts:
        assert part in result.explanation, result.explanation


def test_a_rep_holding_more_locked_accounts_than_its_max_is_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_accounts=2), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, rep_id="R1", locked=True) for i in range(3)] + [Account("B", 30, rep_id="R2")]
    result = minimal_moves(accounts, reps, tolerance=0.5)
    names(
        result,
        "infeasible under any assignment",
        "rep R1 holds 3 accounts it cannot give away (locked, or no other rep serves them), above its max_accounts of 2",
    )


def test_a_rep_holding_accounts_no_other_rep_reaches_above_its_max_is_named() -> None:
    # R2 would take them, but its max_travel_km does not reach R1's accounts.
    reps = [Rep("R1", 45.0, 5.0, max_accounts=1), Rep("R2", 47.0, 5.0, max_travel_km=50)]
    accounts = [Account(f"A{i}", 10, lat=45.0, lon=5.0, rep_id="R1") for i in range(3)]
    accounts.append(Account("B", 30, lat=47.0, lon=5.0, rep_id="R2"))
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(
        result,
        "infeasible for the reps within reach",
        "rep R1 holds 3 accounts it cannot give away (locked, or no other rep serves or reaches them), "
        "above its max_accounts of 1",
        "without the travel limits the bands and caps could hold",
    )


def test_a_rep_that_cannot_reach_its_min_accounts_is_named() -> None:
    # R2 serves key accounts only, holds one smb account and can get the two key ones.
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.0, 5.0, segments=("key",), min_accounts=4)]
    accounts = [
        Account("K1", 10, rep_id="R1", segment="key"),
        Account("K2", 10, rep_id="R1", segment="key"),
        Account("S1", 10, rep_id="R1", segment="smb"),
        Account("S2", 10, rep_id="R1", segment="smb"),
        Account("S3", 10, rep_id="R2", segment="smb"),
    ]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(
        result,
        "infeasible under any assignment",
        "a rep serving its segment serves each unlocked account",
        "rep R2 can take at most 3 accounts (those it serves or holds), below its min_accounts of 4",
    )


def test_a_rep_whose_reach_holds_too_few_accounts_for_its_min_is_named() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 47.0, 5.0, max_travel_km=50, min_accounts=3)]
    accounts = [Account(f"A{i}", 10, lat=45.0, lon=5.0, rep_id="R1") for i in range(4)]
    accounts.append(Account("B", 10, lat=47.0, lon=5.0, rep_id="R1"))
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(
        result,
        "infeasible for the reps within reach",
        "rep R2 can take at most 1 account (those within reach that it serves), below its min_accounts of 3",
    )


def test_max_accounts_totalling_fewer_than_the_accounts_are_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_accounts=2), Rep("R2", 45.0, 5.0, max_accounts=2)]
    accounts = [Account(f"A{i}", 10, rep_id="R1") for i in range(5)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(result, "infeasible under any assignment", "the reps' max_accounts total 4, fewer than the 5 accounts")


def test_min_accounts_totalling_more_than_the_accounts_are_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, min_accounts=4), Rep("R2", 45.0, 5.0, min_accounts=3)]
    accounts = [Account(f"A{i}", 10, rep_id="R1") for i in range(5)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(result, "infeasible under any assignment", "the reps' min_accounts total 7, more than the 5 accounts")


def test_an_account_whose_segment_no_rep_serves_cannot_be_placed() -> None:
    reps = [Rep("R1", 45.0, 5.0, segments=("smb",)), Rep("R2", 45.0, 5.0, segments=("smb",))]
    accounts = [
        Account("A1", 10, rep_id="R1", segment="smb"),
        Account("A2", 10, rep_id="R2", segment="smb"),
        Account("A7", 10, rep_id=None, segment="key account"),
    ]
    result = minimal_moves(accounts, reps, tolerance=0.5)
    names(result, "account A7 (segment 'key account') must be placed but no rep serves that segment")
    budget = minimal_moves(accounts, reps, tolerance=0.5, max_moves=3)
    names(budget, "account A7 (segment 'key account') must be placed but no rep serves that segment")
    assert trade_off_curve(accounts, reps, tolerance=0.5) == ()


def test_caps_that_only_fail_together_are_named_by_the_solver() -> None:
    # Each check on its own passes: R2 and R3 may each reach 2 accounts, but both want
    # the same two (K1, K2: the only key accounts, R2 and R3 serve key only).
    reps = [
        Rep("R1", 45.0, 5.0),
        Rep("R2", 45.0, 5.0, segments=("key",), min_accounts=2),
        Rep("R3", 45.0, 5.0, segments=("key",), min_accounts=2),
    ]
    accounts = [Account("K1", 10, rep_id="R1", segment="key"), Account("K2", 10, rep_id="R1", segment="key")]
    accounts += [Account(f"S{i}", 10, rep_id="R1", segment="smb") for i in range(4)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(result, "infeasible under any assignment", "the account caps cannot all hold")


def test_a_move_budget_too_small_for_the_caps_says_so() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_accounts=2), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, rep_id="R1") for i in range(5)]
    result = minimal_moves(accounts, reps, tolerance=0.1, max_moves=2)
    names(result, "no assignment with at most 2 moves keeps every rep within its min_accounts and max_accounts")
    assert "the caps alone need at least 3 moves" in (result.explanation or "")
    enough = minimal_moves(accounts, reps, tolerance=0.1, max_moves=3)
    assert enough.status == "optimal" and len(enough.moves) == 3
    check_segments_and_caps(accounts, reps, enough)


def test_no_segments_and_no_caps_change_nothing() -> None:
    # The same case with segments nobody restricts and caps that never bind.
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.5, 5.0)]
    accounts = [Account(f"A{i}", 10 + i, lat=45.0 + i / 20, lon=5.0, rep_id="R1") for i in range(6)]
    plain = minimal_moves(accounts, reps, tolerance=0.1, num_workers=1)
    loose = minimal_moves(
        [Account(a.account_id, a.potential, lat=a.lat, lon=a.lon, rep_id=a.rep_id, segment="smb") for a in accounts],
        [Rep(r.rep_id, r.home_lat, r.home_lon, min_accounts=0, max_accounts=6) for r in reps],
        tolerance=0.1,
        num_workers=1,
    )
    assert [(m.account_id, m.to_rep) for m in plain.moves] == [(m.account_id, m.to_rep) for m in loose.moves]
    assert (plain.status, plain.objective, plain.notes) == (loose.status, loose.objective, loose.notes)


# ---------------------------------------------------------------------------- curve and placement


def curve_case(seed: int) -> tuple[list[Account], list[Rep], float]:
    """A random case whose band and caps can be met (so the curve has a last point)."""
    for attempt in itertools.count():
        accounts, reps, tol = random_case(50_000 + 97 * seed + attempt)
        if Enumeration(accounts, reps).fewest(tol) is not None:
            return accounts, reps, tol
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(8))
def test_trade_off_curve_respects_segments_and_caps_at_every_point(seed: int) -> None:
    accounts, reps, tol = curve_case(seed)
    e = Enumeration(accounts, reps)
    fewest = e.fewest(tol)
    assert fewest is not None

    curve = trade_off_curve(accounts, reps, tolerance=tol, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    assert curve and curve[-1].moves == fewest[0]
    for point in curve:
        expected = e.best_imbalance(point.moves)
        # A budget without a valid assignment has no point; one with a point has one.
        assert expected is not None, point
        assert point.moves_used <= point.moves
        # Below the best that segments and caps allow would mean one of them was broken.
        assert point.imbalance >= expected - 1e-6, (point, expected)
        if point.status == "optimal":
            assert point.imbalance == pytest.approx(expected, abs=1e-6), (point, expected)
    budgets = [point.moves for point in curve]
    first_valid = min(m for m in range(len(accounts) + 1) if e.best_imbalance(m) is not None)
    assert budgets[0] == first_valid, (budgets, first_valid)


def placement_case(seed: int) -> tuple[list[Account], list[Rep]]:
    rng = random.Random(70_000 + seed)
    accounts, reps, _ = random_case(70_000 + seed)
    # Orphans: a third of the accounts, unlocked; the others keep their rep.
    rep_ids = [r.rep_id for r in reps]
    changed = []
    for a in accounts:
        if rng.random() < 0.4:
            changed.append(Account(a.account_id, a.potential, lat=a.lat, lon=a.lon, rep_id="GONE", segment=a.segment))
        else:
            owner = a.rep_id if a.rep_id in rep_ids else rng.choice(rep_ids)
            changed.append(Account(a.account_id, a.potential, lat=a.lat, lon=a.lon, rep_id=owner, segment=a.segment))
    return changed, reps


def placement_options(account: Account, reps: Sequence[Rep]) -> list[int]:
    """Where a placement may put an account: its rep, or for an orphan every rep
    serving its segment within reach, else the nearest rep serving it."""
    index = {rep.rep_id: r for r, rep in enumerate(reps)}
    if account.rep_id in index:
        return [index[account.rep_id]]
    serving = [r for r, rep in enumerate(reps) if serves(rep, account)]
    within = [r for r in serving if reaches(reps[r], account)]
    if within or not serving:
        return within
    return [min(serving, key=lambda r: haversine_km(reps[r].home_lat, reps[r].home_lon, account.lat, account.lon))]


@pytest.mark.parametrize("seed", range(24))
def test_place_accounts_respects_segments_and_caps(seed: int) -> None:
    accounts, reps = placement_case(seed)
    allowed = [placement_options(a, reps) for a in accounts]
    unserved = {a.account_id for a, choice in zip(accounts, allowed) if not choice}
    placeable = [a for a in accounts if a.account_id not in unserved]
    e = Enumeration(placeable, reps, [c for c in allowed if c])

    result = place_accounts(accounts, reps, tolerance=0.2, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    orphans = {a.account_id for a in placeable if a.rep_id == "GONE"}
    if unserved:
        assert result.explanation and "no rep serves that segment" in result.explanation
        assert not unserved & {m.account_id for m in result.moves}
    if not orphans:  # nothing that can be placed
        assert result.moves == () and result.status == ("infeasible" if unserved else "balanced"), result
        return
    if not e.capped.any():
        assert result.status == "infeasible" and result.moves == (), result
        assert result.explanation and "_accounts" in result.explanation, result.explanation
        return
    assert result.status == "optimal", result
    assert {m.account_id for m in result.moves} == orphans
    check_segments_and_caps(placeable, reps, result)
    # The least worst deviation among placements within the caps (shares of what is placed).
    worst = max(abs(b.deviation) for b in result.after)
    assert worst == pytest.approx(float(e.imbalance()[e.capped].min()), abs=1e-5)


def test_place_accounts_leaves_an_orphan_no_rep_serves_unplaced_and_places_the_rest() -> None:
    reps = [Rep("R1", 45.0, 5.0, segments=("smb",)), Rep("R2", 45.1, 5.0)]
    accounts = [
        Account("A1", 10, lat=45.0, lon=5.0, rep_id="R1", segment="smb"),
        Account("A2", 10, lat=45.1, lon=5.0, rep_id="R2", segment="smb"),
        Account("K1", 10, lat=45.0, lon=5.0, rep_id="GONE", segment="key"),
        Account("A7", 10, lat=45.0, lon=5.0, rep_id="GONE", segment="key account"),
    ]
    reps[1] = Rep("R2", 45.1, 5.0, segments=("smb", "key"))
    result = place_accounts(accounts, reps, tolerance=0.5)
    assert [(m.account_id, m.to_rep) for m in result.moves] == [("K1", "R2")]
    assert result.explanation is not None
    assert result.explanation.startswith(
        "account A7 (segment 'key account') must be placed but no rep serves that segment; it stays unplaced"
    )
    only = place_accounts([accounts[0], accounts[1], accounts[3]], reps, tolerance=0.5)
    assert only.status == "infeasible" and only.moves == ()


def test_place_accounts_names_a_cap_no_placement_can_meet() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_accounts=1), Rep("R2", 45.1, 5.0)]
    accounts = [
        Account("A1", 10, rep_id="R1"),
        Account("A2", 10, rep_id="R1"),
        Account("O1", 10, rep_id="GONE"),
    ]
    result = place_accounts(accounts, reps, tolerance=0.5)
    assert result.status == "infeasible" and result.moves == ()
    assert result.explanation is not None
    assert (
        "rep R1 holds 2 accounts it cannot give away (a placement moves no other account), above its max_accounts of 1"
        in result.explanation
    )
    assert "minimal_moves" in result.explanation


def test_place_accounts_keeps_the_orphans_of_a_full_rep_elsewhere() -> None:
    # R1 is nearest to both orphans and would take them for balance, but holds its max.
    reps = [Rep("R1", 45.0, 5.0, max_accounts=2), Rep("R2", 45.5, 5.0)]
    accounts = [
        Account("A1", 5, lat=45.0, lon=5.0, rep_id="R1"),
        Account("A2", 5, lat=45.0, lon=5.0, rep_id="R1"),
        Account("B1", 40, lat=45.5, lon=5.0, rep_id="R2"),
        Account("O1", 15, lat=45.0, lon=5.0, rep_id="GONE"),
        Account("O2", 15, lat=45.0, lon=5.0, rep_id="GONE"),
    ]
    result = place_accounts(accounts, reps, tolerance=0.1)
    assert {m.to_rep for m in result.moves} == {"R2"}
    check_segments_and_caps(accounts, reps, result)
    assert result.explanation and "a full rebalance (minimal_moves)" in result.explanation


def test_place_accounts_with_caps_that_only_fail_together_is_infeasible() -> None:
    # Both orphans are key accounts, only R1 serves them, and R1 may hold one more.
    reps = [Rep("R1", 45.0, 5.0, segments=("key",), max_accounts=1), Rep("R2", 45.1, 5.0, segments=("smb",))]
    accounts = [
        Account("A1", 10, rep_id="R2", segment="smb"),
        Account("O1", 10, rep_id="GONE", segment="key"),
        Account("O2", 10, rep_id="GONE", segment="key"),
    ]
    result = place_accounts(accounts, reps, tolerance=0.5, candidate_reps=1)
    assert result.status == "infeasible" and result.moves == ()
    assert result.explanation == (
        "no placement of the 2 orphaned accounts keeps every rep within its min_accounts and max_accounts; "
        "a placement moves no other account, a full rebalance (minimal_moves) may move other accounts too"
    )


def test_a_move_made_for_a_cap_says_so_in_its_reason() -> None:
    # Both reps are in band; R1 holds one account more than its max.
    reps = [Rep("R1", 45.0, 5.0, max_accounts=2), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, rep_id="R1") for i in range(3)] + [Account("B", 30, rep_id="R2")]
    result = minimal_moves(accounts, reps, tolerance=0.5)
    assert result.status == "optimal" and len(result.moves) == 1
    assert result.moves[0].reason == "R1 within band (+0%), above max_accounts (3 > 2); R2 within band (+0%)"
