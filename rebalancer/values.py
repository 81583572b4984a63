"""The package's values: accounts, reps, moves, balances and results (pure data)."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core.records import BALANCED_METRICS, REBALANCE_OBJECTIVES

from core.shares import rep_shares

#: Values of :attr:`RebalanceResult.status`. "optimal" and "feasible" refer to the
#: objective (see ``objective_kind``); "balanced" means nothing had to be done.
STATUSES = ("optimal", "feasible", "infeasible", "unknown", "balanced")
#: What can be balanced (Account attributes) and what "fewest changes" counts (moved accounts,
#: or the potential they carry): shared with the settings, which validate them.
METRICS = BALANCED_METRICS
#: What :func:`minimal_moves` can minimise: the fewest changes (REBALANCE_OBJECTIVES, which the
#: live settings accept), or "travel", the least total travel within a budget of moves
#: (``max_moves`` required). The settings do not offer "travel": they set no budget.
OBJECTIVES = (*REBALANCE_OBJECTIVES, "travel")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Account:
    """A customer account. ``rep_id`` None, or a rep not among the reps given to
    :func:`minimal_moves`, means the account must be placed.

    ``segment`` (any label, e.g. "key account"; None: no segment) limits who may take
    the account on: only reps that serve that segment (see :meth:`Rep.serves`)."""

    account_id: str
    potential: float
    workload: float = 0.0
    lat: float = 0.0
    lon: float = 0.0
    rep_id: str | None = None
    locked: bool = False
    segment: str | None = None

    def __post_init__(self) -> None:
        where = f"account {self.account_id}"
        _require(
            _finite(self.potential) and self.potential >= 0,
            f"{where}: potential must be a finite number >= 0, got {self.potential!r}",
        )
        _require(
            _finite(self.workload) and self.workload >= 0,
            f"{where}: workload must be a finite number >= 0, got {self.workload!r}",
        )
        _require(
            _finite(self.lat) and -90 <= self.lat <= 90,
            f"{where}: lat must be in [-90, 90], got {self.lat!r}",
        )
        _require(
            _finite(self.lon) and -180 <= self.lon <= 180,
            f"{where}: lon must be in [-180, 180], got {self.lon!r}",
        )
        _require(
            self.segment is None or _label(self.segment),
            f"{where}: segment must be None (no segment) or a non-empty string, got {self.segment!r}",
        )


@dataclass(frozen=True)
class Rep:
    """A sales rep: home base, capacity in FTE (fair share is proportional to it), an
    optional travel limit for accounts newly assigned to them, the segments they serve
    and optional hard caps on how many accounts they hold.

    ``segments``: the account segments the rep serves; empty serves every segment. Any
    iterable of strings is accepted and stored as a tuple (a bare string is refused: it
    would read as its letters). Like ``max_travel_km`` it restricts new assignments only:
    an account stays with its current rep whatever its segment.

    ``min_accounts`` / ``max_accounts``: how many accounts the rep must hold after a
    proposal (None: no cap). Unlike the band they count accounts, whatever their size.
    ``min_workload`` / ``max_workload``: the same for the total ``Account.workload`` the
    rep holds, in the accounts' workload unit (e.g. hours a year); absolute amounts, not
    shares, and hard whether or not workload is a balanced metric.

    ``travel_factor``: what one straight-line km from the rep's home costs in the travel
    objective (``objective="travel"``, the travel curve), e.g. 1.3 for a rep who drives in
    a city, or minutes per km; 1.0: plain km. Nothing else uses it (``max_travel_km``, the
    candidates and the tie-break of the other objectives are in plain km)."""

    rep_id: str
    home_lat: float
    home_lon: float
    capacity_fte: float = 1.0
    max_travel_km: float | None = None
    segments: tuple[str, ...] = ()
    min_accounts: int | None = None
    max_accounts: int | None = None
    travel_factor: float = 1.0
    min_workload: float | None = None
    max_workload: float | None = None

    def __post_init__(self) -> None:
        where = f"rep {self.rep_id}"
        _require(
            _finite(self.home_lat) and -90 <= self.home_lat <= 90,
            f"{where}: home_lat must be in [-90, 90], got {self.home_lat!r}",
        )
        _require(
            _finite(self.home_lon) and -180 <= self.home_lon <= 180,
            f"{where}: home_lon must be in [-180, 180], got {self.home_lon!r}",
        )
        _require(
            _finite(self.capacity_fte) and self.capacity_fte > 0,
            f"{where}: capacity_fte must be a finite number > 0 (leave a rep without capacity out of `reps`), "
            f"got {self.capacity_fte!r}",
        )
        _require(
            self.max_travel_km is None or (_finite(self.max_travel_km) and self.max_travel_km >= 0),
            f"{where}: max_travel_km must be None (no limit) or a finite number >= 0, got {self.max_travel_km!r}",
        )
        segments = self.segments
        _require(
            not isinstance(segments, str | bytes) and isinstance(segments, Iterable),
            f"{where}: segments must be a tuple of segment names (empty: every segment), got {segments!r}",
        )
        segments = tuple(segments)
        _require(
            all(_label(s) for s in segments),
            f"{where}: segments must be non-empty strings, got {segments!r}",
        )
        # Frozen: normalising a list (or any iterable) to a tuple keeps the rep hashable.
        object.__setattr__(self, "segments", segments)
        for name in ("min_accounts", "max_accounts"):
            cap = getattr(self, name)
            _require(
                cap is None or _whole(cap),
                f"{where}: {name} must be None (no cap) or an int >= 0, got {cap!r}",
            )
            if cap is not None:
                object.__setattr__(self, name, int(cap))
        _require(
            self.min_accounts is None or self.max_accounts is None or self.min_accounts <= self.max_accounts,
            f"{where}: min_accounts ({self.min_accounts}) must not exceed max_accounts ({self.max_accounts})",
        )
        for name in ("min_workload", "max_workload"):
            cap = getattr(self, name)
            _require(
                cap is None or (_finite(cap) and float(cap) >= 0),
                f"{where}: {name} must be None (no cap) or a finite number >= 0, got {cap!r}",
            )
            if cap is not None:
                object.__setattr__(self, name, float(cap))
        _require(
            self.min_workload is None or self.max_workload is None or self.min_workload <= self.max_workload,
            f"{where}: min_workload ({self.min_workload}) must not exceed max_workload ({self.max_workload})",
        )
        _require(
            _finite(self.travel_factor) and self.travel_factor > 0,
            f"{where}: travel_factor must be a finite number > 0 (1.0: plain km), got {self.travel_factor!r}",
        )

    def serves(self, segment: str | None) -> bool:
        """Whether the rep may take on an account of ``segment``: an account without a
        segment goes to anyone; one with a segment to reps serving every segment (no
        ``segments``) or that one."""
        return segment is None or not self.segments or segment in self.segments


@dataclass(frozen=True)
class Move:
    """One proposed change of rep for one account."""

    account_id: str
    from_rep: str | None
    to_rep: str
    potential: float
    workload: float
    distance_km: float  # from to_rep's home to the account
    reason: str


@dataclass(frozen=True)
class RepBalance:
    """A rep's load against their fair share. With zero total potential, share and
    deviation are 0."""

    rep_id: str
    accounts: int
    potential: float
    share: float  # potential / potential the reps serve (accounts without a rep count in no total)
    fair_share: float  # capacity_fte / total capacity
    deviation: float  # share / fair_share - 1
    workload: float = 0.0
    workload_share: float = 0.0  # workload / workload the reps serve
    workload_deviation: float = 0.0  # workload_share / fair_share - 1

    def deviation_of(self, metric: str) -> float:
        """Deviation from fair share of "potential" or "workload"."""
        return self.deviation if metric == "potential" else self.workload_deviation


@dataclass(frozen=True)
class CurvePoint:
    """One point of the trade-off curve: the best balance found with at most
    ``moves`` moves."""

    moves: int  # the budget M
    imbalance: float  # largest |deviation| over reps and metrics, e.g. 0.08 for 8%
    status: str  # "optimal" (proven least imbalance for this budget) or "feasible"
    moves_used: int  # moves the best answer actually makes (<= moves)
    bound: float | None = None  # proven lower bound on the imbalance for this budget


@dataclass(frozen=True)
class TravelPoint:
    """One point of the travel curve: the least total travel found with every rep in band
    and at most ``moves`` moves. Travel is straight-line km from each account's rep's home,
    times that rep's ``travel_factor``, summed over every account (to the metre)."""

    moves: int  # the budget M
    travel_km: float  # total travel of the best answer found for this budget
    status: str  # "optimal" (proven least travel for this budget, over the candidate reps) or "feasible"
    moves_used: int  # moves that answer makes (<= moves): the fewest for its travel when time allowed
    bound_km: float | None = None  # proven lower bound on the travel for this budget
    imbalance: float = 0.0  # largest |deviation| over reps and metrics of that answer


@dataclass(frozen=True)
class RebalanceResult:
    """A rebalancing proposal with its before/after balance and solver figures."""

    status: str  # one of STATUSES
    moves: tuple[Move, ...]
    before: tuple[RepBalance, ...]
    after: tuple[RepBalance, ...]  # equals before when there is no solution
    objective: float | None  # value of the objective found (see objective_kind)
    bound: float | None  # best proven lower bound on that objective
    gap: float | None  # (objective - bound) / max(objective, 1), for imbalance relative to objective
    seconds: float
    tolerance: float  # of the first metric
    explanation: str | None = None  # for "infeasible" / "unknown": which rep, which constraint
    metrics: tuple[str, ...] = ("potential",)
    tolerances: dict[str, float] | None = None  # per metric; None means `tolerance` for all
    # "moves" (count), "moved_potential" (sum of moved potential), "imbalance" (largest
    # |deviation|, when the number of moves was capped) or "travel" (total km x travel_factor).
    objective_kind: str = "moves"
    imbalance_before: float = 0.0  # largest |deviation| over reps and metrics
    imbalance_after: float = 0.0
    notes: tuple[str, ...] = ()  # what the caller should know, e.g. reps left unconstrained
    # Total travel (straight-line km x travel_factor, every account with a rep), for the travel
    # objective only (None otherwise); after equals before when there is no solution.
    travel_km_before: float | None = None
    travel_km_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists of dicts), for Kafka messages and storage."""
        return {
            "status": self.status,
            "moves": [asdict(m) for m in self.moves],
            "before": [asdict(b) for b in self.before],
            "after": [asdict(b) for b in self.after],
            "objective": self.objective,
            "objective_kind": self.objective_kind,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "tolerance": self.tolerance,
            "tolerances": self.tolerances,
            "metrics": list(self.metrics),
            "imbalance_before": self.imbalance_before,
            "imbalance_after": self.imbalance_after,
            "explanation": self.explanation,
            "notes": list(self.notes),
            # Only on travel results: other documents stay as they were.
            **(
                {"travel_km_before": self.travel_km_before, "travel_km_after": self.travel_km_after}
                if self.travel_km_before is not None or self.travel_km_after is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RebalanceResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=data["status"],
            moves=tuple(Move(**m) for m in data["moves"]),
            before=tuple(RepBalance(**b) for b in data["before"]),
            after=tuple(RepBalance(**b) for b in data["after"]),
            objective=data["objective"],
            bound=data["bound"],
            gap=data["gap"],
            seconds=data["seconds"],
            tolerance=data["tolerance"],
            explanation=data.get("explanation"),
            metrics=tuple(data.get("metrics", ("potential",))),
            tolerances=data.get("tolerances"),
            objective_kind=data.get("objective_kind", "moves"),
            imbalance_before=data.get("imbalance_before", 0.0),
            imbalance_after=data.get("imbalance_after", 0.0),
            notes=tuple(data.get("notes", ())),
            travel_km_before=data.get("travel_km_before"),
            travel_km_after=data.get("travel_km_after"),
        )


# --------------------------------------------------------------------------- balance


def balance_of(
    accounts: Sequence[Account],
    reps: Sequence[Rep],
    assignment: Mapping[str, str | None] | None = None,
) -> tuple[RepBalance, ...]:
    """Each rep's accounts, potential and deviation from their capacity-weighted fair
    share, in the order of ``reps``.

    ``assignment`` maps account_id to rep_id and overrides ``Account.rep_id``; accounts
    it does not mention keep their own rep. Accounts without a rep in ``reps`` serve no
    one and count in no total: shares are of what ``reps`` serve and sum to 1 like fair
    shares, as the detector's aggregates read them (see core.shares for why).
    """
    owners = [assignment.get(a.account_id, a.rep_id) if assignment is not None else a.rep_id for a in accounts]
    capacities = {rep.rep_id: rep.capacity_fte for rep in reps}
    potentials = rep_shares(zip(owners, (a.potential for a in accounts)), capacities)
    workloads = rep_shares(zip(owners, (a.workload for a in accounts)), capacities)
    counts = Counter(rep_id for rep_id in owners if rep_id in capacities)
    return tuple(
        RepBalance(
            rep_id=rep.rep_id,
            accounts=counts[rep.rep_id],
            potential=potentials[rep.rep_id].amount,
            share=potentials[rep.rep_id].share,
            fair_share=potentials[rep.rep_id].fair_share,
            deviation=potentials[rep.rep_id].deviation,
            workload=workloads[rep.rep_id].amount,
            workload_share=workloads[rep.rep_id].share,
            workload_deviation=workloads[rep.rep_id].deviation,
        )
        for rep in reps
    )


def imbalance_of(balances: Sequence[RepBalance], metrics: Sequence[str] = ("potential",)) -> float:
    """Largest |deviation from fair share| over reps and ``metrics``."""
    return max((abs(b.deviation_of(m)) for b in balances for m in metrics), default=0.0)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_unique(ids: list[str], what: str) -> None:
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    _require(not duplicates, f"{what} values must be unique; duplicated: {', '.join(duplicates[:5])}")


def _finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _label(value: object) -> bool:
    """A usable segment name: a string with something besides spaces."""
    return isinstance(value, str) and bool(value.strip())


def _whole(value: object) -> bool:
    """An int >= 0 (numpy integers too; not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


def _positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1
