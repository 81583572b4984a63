"""Workload caps in the rebalancer: ``Rep.min_workload`` / ``max_workload``.

The rule, written here independently of the package: every rep ends holding a total
``Account.workload`` between its ``min_workload`` and ``max_workload`` (None: no cap), in
the accounts' own unit, whether or not workload is a balanced metric; beside the account
caps, the bands, locks, segments and travel limits as before.

Small random cases are enumerated exhaustively (every candidate rep is allowed) and
compared with :func:`minimal_moves`, :func:`trade_off_curve` and :func:`place_accounts`;
targeted cases check that an infeasible answer or a move's reason names the workload cap.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from rebalancer import Account, RebalanceResult, Rep, minimal_moves, place_accounts, trade_off_curve
from tests.test_rebalancer_segments_caps import final_assignment, names

TIME_LIMIT_S = 5.0


def options(account: Account, reps: Sequence[Rep]) -> list[int]:
    """Rep positions the account may end with (no segments or travel limits here)."""
    index = {rep.rep_id: r for r, rep in enumerate(reps)}
    current = index.get(account.rep_id) if account.rep_id is not None else None
    if account.locked and current is not None:
        return [current]
    return ([current] if current is not None else []) + [r for r in range(len(reps)) if r != current]


class Enumeration:
    """Every assignment, with its loads, workloads, counts and moves."""

    def __init__(
        self, accounts: Sequence[Account], reps: Sequence[Rep], allowed: Sequence[Sequence[int]] | None = None
    ) -> None:
        allowed = allowed if allowed is not None else [options(a, reps) for a in accounts]
        index = {rep.rep_id: r for r, rep in enumerate(reps)}
        current = np.array([index.get(a.rep_id, -1) if a.rep_id is not None else -1 for a in accounts])
        self.choices = np.array(list(itertools.product(*allowed)), dtype=np.int64).reshape(-1, len(accounts))
        held = self.choices[:, :, None] == np.arange(len(reps))[None, None, :]
        self.loads = np.einsum("knr,n->kr", held, np.array([a.potential for a in accounts]))
        self.work = np.einsum("knr,n->kr", held, np.array([a.workload for a in accounts]))
        counts = held.sum(axis=1)
        self.moves = (self.choices != current[None, :]).sum(axis=1)
        self.total = math.fsum(a.potential for a in accounts)
        capacity = np.array([r.capacity_fte for r in reps])
        self.fair = self.total * capacity / capacity.sum()
        least = np.array([r.min_accounts if r.min_accounts is not None else 0 for r in reps])
        most = np.array([r.max_accounts if r.max_accounts is not None else len(accounts) for r in reps])
        work_least = np.array([r.min_workload if r.min_workload is not None else 0.0 for r in reps])
        work_most = np.array([r.max_workload if r.max_workload is not None else math.inf for r in reps])
        eps = 1e-9
        self.count_capped = ((counts >= least) & (counts <= most)).all(axis=1)
        self.capped = self.count_capped & ((self.work >= work_least - eps) & (self.work <= work_most + eps)).all(axis=1)

    def in_band(self, tol: float) -> np.ndarray:
        eps = 1e-9 * max(self.total, 1.0)
        return ((self.loads >= self.fair * (1 - tol) - eps) & (self.loads <= self.fair * (1 + tol) + eps)).all(axis=1)

    def fewest(self, tol: float) -> int | None:
        ok = self.in_band(tol) & self.capped
        return int(self.moves[ok].min()) if ok.any() else None

    def imbalance(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            deviation = np.where(self.fair > 0, np.abs(self.loads / self.fair - 1), 0.0)
        return deviation.max(axis=1, initial=0.0)

    def best_imbalance(self, budget: int) -> float | None:
        ok = self.capped & (self.moves <= budget)
        return float(self.imbalance()[ok].min()) if ok.any() else None


def random_case(seed: int) -> tuple[list[Account], list[Rep], float]:
    """2-4 reps, 5-8 accounts with workloads of 0.5 to 12 (one decimal), workload caps on
    about half the reps (and an account cap now and then)."""
    rng = random.Random(seed)
    accounts = [
        Account(
            f"A{i}",
            potential=rng.choice([0.0, rng.uniform(1, 100), rng.uniform(1, 100)]),
            workload=round(rng.uniform(0.5, 12), 1),
            lat=rng.uniform(45, 48),
            lon=rng.uniform(2, 6),
            rep_id=None,
            locked=rng.random() < 0.1,
        )
        for i in range(rng.randint(5, 8))
    ]
    n_reps = rng.randint(2, 4)
    total_work = math.fsum(a.workload for a in accounts)
    fair_work = total_work / n_reps
    reps = []
    for r in range(1, n_reps + 1):
        most = rng.choice([None, None, round(fair_work * rng.uniform(0.9, 1.6), 1)])
        least = rng.choice([None, None, round(fair_work * rng.uniform(0.4, 1.0), 1)])
        if most is not None and least is not None and least > most:
            least = most
        reps.append(
            Rep(
                f"R{r}",
                home_lat=rng.uniform(45, 48),
                home_lon=rng.uniform(2, 6),
                capacity_fte=rng.choice([0.5, 1.0, 1.0, 1.5]),
                min_workload=least,
                max_workload=most,
                max_accounts=rng.choice([None, None, None, 4]),
            )
        )
    owners = [r.rep_id for r in reps] * 3 + [None]
    accounts = [
        replace(a, rep_id=(owner := rng.choice(owners)), locked=a.locked and owner is not None) for a in accounts
    ]
    return accounts, reps, rng.choice([0.2, 0.3, 0.5, 0.7, 1.0])


def check_workload_caps(accounts: Sequence[Account], reps: Sequence[Rep], result: RebalanceResult) -> None:
    assignment = final_assignment(accounts, result)
    work = {rep.rep_id: 0.0 for rep in reps}
    for account in accounts:
        rep_id = assignment[account.account_id]
        if rep_id in work:
            work[rep_id] += account.workload
    for rep in reps:
        assert rep.min_workload is None or work[rep.rep_id] >= rep.min_workload - 1e-9, (rep, work)
        assert rep.max_workload is None or work[rep.rep_id] <= rep.max_workload + 1e-9, (rep, work)


# ---------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_workload": -1.0}, "min_workload must be None (no cap) or a finite number >= 0"),
        ({"max_workload": math.inf}, "max_workload must be None (no cap) or a finite number >= 0"),
        ({"max_workload": True}, "max_workload must be None"),
        ({"min_workload": 5.0, "max_workload": 4.0}, "min_workload (5.0) must not exceed max_workload (4.0)"),
    ],
)
def test_bad_workload_caps_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Rep("R1", 0, 0, **fields)


def test_workload_caps_are_stored_as_floats() -> None:
    rep = Rep("R1", 0, 0, min_workload=np.int64(3), max_workload=40)
    assert rep.min_workload == 3.0 and isinstance(rep.min_workload, float)
    assert rep.max_workload == 40.0 and isinstance(rep.max_workload, float)


# ---------------------------------------------------------------------------- against brute force


@pytest.mark.parametrize("seed", range(60))
def test_fewest_moves_with_workload_caps_match_brute_force(seed: int) -> None:
    accounts, reps, tol = random_case(seed)
    fewest = Enumeration(accounts, reps).fewest(tol)

    result = minimal_moves(accounts, reps, tolerance=tol, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    if fewest is None:
        assert result.status == "infeasible", result
        assert result.explanation and result.explanation.startswith("infeasible"), result.explanation
        assert result.moves == ()
        return
    assert result.status == ("balanced" if fewest == 0 else "optimal"), result
    assert result.objective == len(result.moves) == fewest
    assert result.bound == fewest and result.gap == 0
    check_workload_caps(accounts, reps, result)


def test_the_random_cases_exercise_the_workload_caps() -> None:
    kinds = {"feasible": 0, "infeasible": 0, "binding": 0}
    for seed in range(60):
        accounts, reps, tol = random_case(seed)
        e = Enumeration(accounts, reps)
        kinds["feasible" if e.fewest(tol) is not None else "infeasible"] += 1
        ok = e.in_band(tol)
        # The workload caps change the answer: without them fewer moves would do.
        without = ok & e.count_capped
        if (ok & e.capped).any() and e.moves[without].min() < e.moves[ok & e.capped].min():
            kinds["binding"] += 1
    assert kinds["feasible"] >= 20 and kinds["infeasible"] >= 5 and kinds["binding"] >= 5, kinds


def feasible_case(seed: int) -> tuple[list[Account], list[Rep], float]:
    for attempt in itertools.count():
        accounts, reps, tol = random_case(90_000 + 97 * seed + attempt)
        if Enumeration(accounts, reps).fewest(tol) is not None:
            return accounts, reps, tol
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(6))
def test_trade_off_curve_keeps_the_workload_caps_at_every_point(seed: int) -> None:
    accounts, reps, tol = feasible_case(seed)
    e = Enumeration(accounts, reps)

    curve = trade_off_curve(accounts, reps, tolerance=tol, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    assert curve and curve[-1].moves == e.fewest(tol)
    for point in curve:
        expected = e.best_imbalance(point.moves)
        assert expected is not None, point
        assert point.imbalance >= expected - 1e-6, (point, expected)
        if point.status == "optimal":
            assert point.imbalance == pytest.approx(expected, abs=1e-6), (point, expected)


@pytest.mark.parametrize("seed", range(16))
def test_place_accounts_keeps_the_workload_caps(seed: int) -> None:
    rng = random.Random(seed)
    accounts, reps, _ = random_case(70_000 + seed)
    rep_ids = [r.rep_id for r in reps]
    accounts = [
        replace(
            a,
            rep_id="GONE" if rng.random() < 0.4 else (a.rep_id if a.rep_id in rep_ids else rng.choice(rep_ids)),
            locked=False,
        )
        for a in accounts
    ]
    index = {rep_id: r for r, rep_id in enumerate(rep_ids)}
    allowed = [[index[a.rep_id]] if a.rep_id in index else list(range(len(reps))) for a in accounts]
    e = Enumeration(accounts, reps, allowed)
    orphans = {a.account_id for a in accounts if a.rep_id == "GONE"}

    result = place_accounts(accounts, reps, tolerance=0.2, candidate_reps=len(reps), time_limit_s=TIME_LIMIT_S)

    if not orphans:
        return
    if not e.capped.any():
        assert result.status == "infeasible" and result.moves == (), result
        assert result.explanation and "_workload" in result.explanation + "_accounts", result.explanation
        return
    assert result.status == "optimal", result
    assert {m.account_id for m in result.moves} == orphans
    check_workload_caps(accounts, reps, result)
    worst = max(abs(b.deviation) for b in result.after)
    assert worst == pytest.approx(float(e.imbalance()[e.capped].min()), abs=1e-5)


# ---------------------------------------------------------------------------- explanations


def test_a_rep_holding_locked_workload_above_its_max_workload_is_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_workload=20), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, workload=8.5, rep_id="R1", locked=True) for i in range(3)]
    accounts.append(Account("B", 30, workload=1, rep_id="R2"))
    result = minimal_moves(accounts, reps, tolerance=0.5)
    names(
        result,
        "infeasible under any assignment",
        "rep R1 holds a workload of 25.5 it cannot give away (locked, or no other rep serves them), "
        "above its max_workload of 20",
    )


def test_a_rep_that_cannot_reach_its_min_workload_is_named() -> None:
    reps = [Rep("R1", 45.0, 5.0), Rep("R2", 45.0, 5.0, min_workload=50)]
    accounts = [Account(f"A{i}", 10, workload=10, rep_id="R1") for i in range(4)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(
        result,
        "infeasible under any assignment",
        "the reps' min_workload total 50, more than the accounts' workload of 40",
    )


def test_max_workloads_totalling_less_than_the_workload_are_named() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_workload=10), Rep("R2", 45.0, 5.0, max_workload=12.5)]
    accounts = [Account(f"A{i}", 10, workload=6, rep_id="R1") for i in range(4)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(result, "the reps' max_workload total 22.5, less than the accounts' workload of 24")


def test_workload_caps_that_only_fail_together_are_named_by_the_solver() -> None:
    # Totals fit (max 13 + 13 >= 24) but no split of three 8s does: someone holds 16.
    reps = [Rep("R1", 45.0, 5.0, max_workload=13), Rep("R2", 45.0, 5.0, max_workload=13)]
    accounts = [Account(f"A{i}", 10, workload=8, rep_id="R1") for i in range(3)]
    result = minimal_moves(accounts, reps, tolerance=1.0)
    names(result, "infeasible under any assignment", "the account and workload caps cannot all hold", "max_workload")


def test_a_move_made_for_a_workload_cap_says_so_in_its_reason() -> None:
    # Both reps are in band on potential; R1 holds more workload than its max.
    reps = [Rep("R1", 45.0, 5.0, max_workload=20), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, workload=7.5, rep_id="R1") for i in range(3)] + [
        Account("B", 30, workload=1, rep_id="R2")
    ]
    result = minimal_moves(accounts, reps, tolerance=0.5)
    assert result.status == "optimal" and len(result.moves) == 1
    assert result.moves[0].reason == "R1 within band (+0%), above max_workload (22.5 > 20); R2 within band (+0%)"


def test_a_move_budget_too_small_for_the_workload_caps_says_so() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_workload=10), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, workload=5, rep_id="R1") for i in range(5)]
    result = minimal_moves(accounts, reps, tolerance=1.0, max_moves=2)
    names(result, "no assignment with at most 2 moves keeps every rep within its min_workload and max_workload")
    assert "the caps alone need at least 3 moves" in (result.explanation or "")
    enough = minimal_moves(accounts, reps, tolerance=1.0, max_moves=3)
    assert enough.status == "optimal" and len(enough.moves) == 3
    check_workload_caps(accounts, reps, enough)


def test_place_accounts_names_a_workload_cap_broken_today() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_workload=10), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, workload=6, rep_id="R1") for i in range(2)]
    result = place_accounts(accounts, reps, tolerance=1.0)
    assert result.explanation is not None
    assert "rep R1 holds a workload of 12, above its max_workload of 10" in result.explanation


def test_workload_caps_hold_whether_or_not_workload_is_balanced() -> None:
    reps = [Rep("R1", 45.0, 5.0, max_workload=12), Rep("R2", 45.0, 5.0)]
    accounts = [Account(f"A{i}", 10, workload=4, rep_id="R1") for i in range(4)] + [
        Account(f"B{i}", 10, workload=4, rep_id="R2") for i in range(4)
    ]
    for metrics in (("potential",), ("potential", "workload")):
        result = minimal_moves(accounts, reps, tolerance=0.5, metrics=metrics)
        assert result.status == "optimal" and len(result.moves) == 1, (metrics, result)
        check_workload_caps(accounts, reps, result)
