"""Local shock: the demand of a small neighbourhood of accounts drops or rises against the rest.

Regions (admin1 areas) are too coarse for the shock this product exists for (a plant closes
and the towns around it buy less), so this detector scans neighbourhoods of every size
between `min_share` and `max_share` of the company's orders, anywhere, in the spirit of
Kulldorff's prospective space-time scan: accounts are grouped into small grid cells; every
cell is the centre of circular zones that grow by nearest cells until they hold 2 %, 3 %,
5 %, ... of the baseline. A shock may show as fewer orders, as smaller orders, or both, so
two measures are watched per zone:

- `orders`: the zone's daily share of the company's order count against its baseline share
  (conditioning on the company's total removes the seasonality every zone shares);
- `order_size`: the zone's mean log order value against the company's on the same day
  (logs tame the heavy tail of order values: one large order, or one large account falling
  silent, is not a market).

Per zone, measure and direction a CUSUM of the log-likelihood ratio of "the level moved by
`shift`" against "it did not" accumulates evidence in nats, with the residuals standardised
by each zone's own dispersion, learned while it is calm. An alarm needs `threshold` nats:
false alarms are controlled across all the (overlapping) zones scanned by that one
threshold, calibrated in bench/local_shock.py (docs/BENCHMARKS.md). A zone's information limit is `threshold`
divided by the nats a day of the shift carries there (`information_days`): the fewest
trading days any detector needs at that false-alarm rate.

One finding per shock: of the zones that alarm on a day, the one with the most evidence
names the area (its cells, centre and radius, accounts and reps); overlapping zones start
over and their cells re-learn their level for `rearm_days`.

>>> import numpy as np
>>> from datetime import timedelta
>>> rng = np.random.default_rng(3)
>>> cells = [cell_of(48.0 + 0.2 * i, 9.0 + 0.3 * j) for i in range(6) for j in range(6)]
>>> detector = LocalShockDetector()
>>> day0, found = date(2024, 1, 1), []
>>> for n in range(400):
...     # From day 250 every order of cells 0 and 1 (about 6 % of orders) is 30 % smaller; as many orders.
...     values = {c: rng.gamma(4.0, 25.0, rng.poisson(3.0)) * (0.7 if n >= 250 and k < 2 else 1.0)
...               for k, c in enumerate(cells)}
...     found += detector.observe(CellDay.of_orders(day0 + timedelta(days=n), values))
>>> [(f.cells, f.direction, f.evidence.measure, (f.start - day0).days, (f.detected_on - day0).days) for f in found]
[(('240:31',), 'drop', 'order_size', 249, 276), (('240:30',), 'drop', 'order_size', 255, 278)]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import sparse

from core.geo import haversine_array_km, haversine_matrix_km
from core.river_codec import dump_array, load_array
from core.formatting import percent
from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import CellDay, CompanyCoverage
from monitor.regions import region_label
from monitor.state import AccountState

MEASURES = ("orders", "order_size")
#: A zone: its centre cell and the bytes of its member cells' indices (int64, ascending).
ZoneKey = tuple[int, bytes]
DIRECTIONS = ("drop", "rise")
STATE_VERSION = 3
#: Grid cell size in degrees (about 22 km north-south; 22 km east-west at 48°N).
CELL_LAT_DEG, CELL_LON_DEG = 0.2, 0.3
#: Zones grow around each centre cell until they cross these shares of the baseline.
SHARE_STEPS = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)
#: Account ids shown in a finding (the count says how many there are).
MAX_ACCOUNT_IDS = 20
#: Orders (exponentially weighted) a zone's baseline needs before its order size is judged.
MIN_BASELINE_ORDERS = 30.0
#: Centres whose distances to every cell are computed at once when zones are built.
ZONE_BLOCK = 256
#: Zones are rebuilt from the cells' baselines this often (trading days), or when a cell appears.
REBUILD_DAYS = 30
# Per zone and measure: dispersion, then per direction the CUSUM, the observed and the
# expected sums since it last left zero, and the trading days since.
_KAPPA, _COLUMNS = 0, 9
_DIRECTION_AT = {"drop": 1, "rise": 5}
_MAX_KAPPA = 25.0


def cell_of(lat: float, lon: float) -> str:
    """The grid cell of a location: "<row>:<column>" of CELL_LAT_DEG x CELL_LON_DEG cells.

    >>> cell_of(48.78, 9.18), cell_centre("243:30")
    ('243:30', (48.7, 9.15))
    """
    return f"{math.floor(lat / CELL_LAT_DEG)}:{math.floor(lon / CELL_LON_DEG)}"


def cell_centre(cell: str) -> tuple[float, float]:
    row, column = (int(part) for part in cell.split(":"))
    return round((row + 0.5) * CELL_LAT_DEG, 4), round((column + 0.5) * CELL_LON_DEG, 4)


@dataclass(frozen=True)
class LocalShockEvidence:
    """The numbers behind a `LocalShockFinding`."""

    measure: str  # "orders" (order counts) or "order_size" (log order values)
    statistic: float  # CUSUM evidence at detection, in nats
    threshold: float  # the nats it crossed
    baseline_share: float  # the area's share of the company's orders before the change
    expected_since_start: float  # orders it would have had since the start (order_size: orders since)
    actual_since_start: float  # orders it had (order_size: mean log-value change x orders)
    days_since_start: int  # trading days from the start to the detection, inclusive
    information_days: float  # trading days a perfect detector needs for this shift here
    centre: tuple[float, float]  # (lat, lon) of the centre cell
    radius_km: float  # from the centre to the farthest cell centre of the area


@dataclass(frozen=True)
class LocalShockFinding:
    """A neighbourhood's demand moved away from the rest of the company."""

    area: str  # "<centre cell>/<number of cells>"
    cells: tuple[str, ...]
    direction: str  # "drop" or "rise"
    size: float  # relative change of the area's level (orders) or order size, e.g. -0.31
    start: date
    detected_on: date
    evidence: LocalShockEvidence
    accounts: tuple[str, ...] = ()  # account ids in the area (as last observed), sorted
    reps: tuple[str, ...] = ()  # their reps, sorted
    # The admin2 (county, Landkreis) and admin1 ids the accounts lie in, most orders first.
    admin2: tuple[str, ...] = ()
    admin1: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["detected_on"] = self.start.isoformat(), self.detected_on.isoformat()
        return out


class LocalShockDetector:
    """Scans neighbourhoods of 2-20 % of the company's orders for a shock in order count or size.

    Parameters
    ----------
    threshold
        Evidence in nats a zone needs to alarm (per zone, measure and direction).
    shift
        The relative change the CUSUMs are tuned to (0.3: a 30 % move).
    min_share, max_share
        Smallest and largest zone, as a share of the baseline orders.
    min_history_days
        Trading days of baseline before zones are judged.
    baseline_halflife_days
        Half-life, in trading days, of the exponentially weighted baselines.
    rearm_days
        Trading days an area's cells re-learn their level after a finding.
    min_change
        Smallest relative change since the start that is reported.
    """

    name = kind = "local_shock"
    states = DIRECTIONS
    observes = (CompanyCoverage, CellDay)
    triggers_rebalance = False

    def __init__(
        self,
        threshold: float = 16.0,
        shift: float = 0.3,
        min_share: float = 0.02,
        max_share: float = 0.2,
        min_history_days: int = 60,
        baseline_halflife_days: float = 500.0,
        rearm_days: int = 60,
        min_change: float = 0.15,
    ):
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
        if not 0 < shift < 1:
            raise ValueError(f"shift must be in (0, 1), got {shift!r}")
        if not 0 < min_share < max_share < 1:
            raise ValueError(f"need 0 < min_share < max_share < 1, got {min_share!r}, {max_share!r}")
        self.threshold, self.shift = float(threshold), float(shift)
        self.min_share, self.max_share = float(min_share), float(max_share)
        self.min_history_days, self.rearm_days = int(min_history_days), int(rearm_days)
        self.baseline_halflife_days, self.min_change = float(baseline_halflife_days), float(min_change)
        self._members: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # cell -> (accounts, reps)
        # cell -> (admin1 or None, admin2 or None) of each of its accounts
        self._areas: dict[str, tuple[tuple[str | None, str | None], ...]] = {}
        self._reset()

    def _reset(self) -> None:
        self._cells: list[str] = []  # known cells, in order of appearance
        self._index: dict[str, int] = {}
        # Per cell, exponentially weighted sums: orders and the company's orders on the days the
        # cell learned (their ratio is its baseline share); its orders' log-value offsets from
        # the company's daily mean, and their squares.
        self._sums = np.zeros((0, 4))
        self._rearm_left = np.zeros(0, dtype=int)
        self._days = 0  # trading days seen
        self._last_day: date | None = None
        # A zone is known by its centre and its member cells (indices in `_cells`, ascending):
        # a rebuild keeps the state of a zone it finds again.
        self._zone_keys: list[ZoneKey] = []
        self._zones = {m: np.zeros((0, _COLUMNS)) for m in MEASURES}
        self._matrix = sparse.csr_matrix((0, 0))
        self._zones_built_at = -1
        self._encoded_zones: dict[str, Any] | None = None  # `state_dict`'s zone members, until a rebuild

    # ------------------------------------------------------------------ the protocol

    def observe(self, observation: CompanyCoverage | CellDay) -> list[LocalShockFinding]:
        if isinstance(observation, CompanyCoverage):
            self._learn_members(observation)
            return []
        return self.update(observation)

    def signal(self, finding: LocalShockFinding, emitted_at: datetime) -> Signal:
        found = finding.to_dict()["evidence"]
        subject = Subject("area", finding.area, _area_name(finding))
        evidence = {
            "direction": finding.direction,
            "size": round(finding.size, 4),
            "started_on": finding.start.isoformat(),
            **found,
            "centre": list(found["centre"]),
            "cells": list(finding.cells),
            "accounts": len(finding.accounts),
            "account_ids": list(finding.accounts[:MAX_ACCOUNT_IDS]),
            "reps": list(finding.reps),
            "areas": [region_label(a) for a in finding.admin2],
            "admin1": [region_label(a) for a in finding.admin1],
        }
        return Signal.make(
            kind=self.kind,
            state=finding.direction,
            severity="critical" if abs(finding.size) >= 0.3 else "warning",
            subject=subject,
            evidence=evidence,
            detected_at=datetime.combine(finding.detected_on, datetime.min.time(), timezone.utc),
            emitted_at=emitted_at,
            summary=summary(subject, finding.direction, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal as it makes them (docs/EVENTS.md lists its evidence)."""
        evidence = LocalShockEvidence("orders", 15.0, 14.0, 0.04, 200.0, 140.0, 15, 12.5, (48.7, 9.15), 22.0)
        finding = LocalShockFinding(
            "243:30/2",
            ("243:30", "243:31"),
            "drop",
            -0.3,
            date(2025, 5, 1),
            date(2025, 5, 20),
            evidence,
            ("a1", "a2"),
            ("R1",),
            ("DE-01-08425",),
            ("DE-01",),
        )
        return self.signal(finding, datetime(2025, 6, 1, tzinfo=timezone.utc))

    def open_subjects(self) -> None:
        return None  # change points: a shock is news, not a lasting state

    def affected_accounts(self, finding: LocalShockFinding, accounts: Sequence[AccountState]) -> frozenset[str]:
        cells = set(finding.cells)
        return frozenset(
            a.account_id for a in accounts if a.lat is not None and a.lon is not None and cell_of(a.lat, a.lon) in cells
        )

    def _learn_members(self, coverage: CompanyCoverage) -> None:
        """Which accounts and reps each cell holds (for the findings; not part of the state)."""
        accounts: dict[str, list[str]] = {}
        reps: dict[str, set[str]] = {}
        areas: dict[str, list[tuple[str | None, str | None]]] = {}
        for account in coverage.accounts:
            if not account.known or account.closed or account.lat is None or account.lon is None:
                continue
            cell = cell_of(account.lat, account.lon)
            accounts.setdefault(cell, []).append(account.account_id)
            areas.setdefault(cell, []).append((account.admin1, account.admin2))
            if account.rep_id:
                reps.setdefault(cell, set()).add(account.rep_id)
        self._members = {
            cell: (tuple(sorted(ids)), tuple(sorted(reps.get(cell, ())))) for cell, ids in accounts.items()
        }
        self._areas = {cell: tuple(sorted(found, key=str)) for cell, found in areas.items()}

    # ------------------------------------------------------------------ the update

    def update(self, observation: CellDay) -> list[LocalShockFinding]:
        """Judge one complete day; a day at or before the last one is ignored (replays are harmless)."""
        day = observation.day
        if self._last_day is not None and day <= self._last_day:
            return []
        self._last_day = day
        for cell in sorted(observation.counts):
            self._add_cell(cell)
        n, logs, squares = (
            self._vector(values) for values in (observation.counts, observation.log_values, observation.log_squares)
        )
        total = float(n.sum())
        if total <= 0:
            return []  # a day without orders (a weekend) carries no information
        mean_log = float(logs.sum()) / total
        # Per cell: the orders' log-value offsets from the company's mean, and their squares.
        offsets = logs - n * mean_log
        offset_squares = squares - 2 * mean_log * logs + n * mean_log**2
        self._days += 1
        findings: list[LocalShockFinding] = []
        if self._days > self.min_history_days:
            stale = self._days - self._zones_built_at >= REBUILD_DAYS or self._matrix.shape[1] != len(self._cells)
            if stale:
                self._build_zones()
            if self._zone_keys:
                findings = self._judge(day, n, total, offsets)
        self._learn(n, total, offsets, offset_squares)
        return findings

    def _add_cell(self, cell: str) -> None:
        if cell in self._index:
            return
        self._index[cell] = len(self._cells)
        self._cells.append(cell)
        self._sums = np.vstack([self._sums, np.zeros((1, 4))])
        self._rearm_left = np.append(self._rearm_left, 0)

    def _vector(self, values: Mapping[str, float]) -> np.ndarray:
        out = np.zeros(len(self._cells))
        for cell, value in values.items():
            if cell in self._index and math.isfinite(float(value)):
                out[self._index[cell]] = float(value)
        return out

    @property
    def _decay(self) -> float:
        return float(0.5 ** (1.0 / self.baseline_halflife_days))

    def _share(self) -> np.ndarray:
        own, total = self._sums[:, 0], self._sums[:, 1]
        return np.divide(own, total, out=np.zeros_like(own), where=total > 0)

    def _learn(self, n: np.ndarray, total: float, offsets: np.ndarray, offset_squares: np.ndarray) -> None:
        """Cells learn unless a zone holding them is suspect (a change may be under way);
        re-arming cells learn afresh."""
        learning = np.ones(len(self._cells), dtype=bool)
        if self._zone_keys:
            suspect = np.zeros(len(self._zone_keys), dtype=bool)
            for m in MEASURES:
                for at in _DIRECTION_AT.values():
                    suspect |= self._zones[m][:, at] > 0.5 * self.threshold
            if suspect.any():
                frozen = np.asarray(self._matrix[suspect].sum(axis=0)).ravel() > 0
                learning &= ~frozen | (self._rearm_left > 0)
        today = np.column_stack([n, np.full(len(n), total), offsets, offset_squares])
        decay = self._decay
        self._sums = np.where(learning[:, None], decay * self._sums + today, self._sums)
        self._rearm_left = np.maximum(self._rearm_left - 1, 0)

    # ------------------------------------------------------------------ zones

    def _build_zones(self) -> None:
        """Circular zones: around every cell, the nearest cells up to each share step.

        Vectorised over the centres, in blocks so memory stays bounded (a block's distances
        are `ZONE_BLOCK` x cells floats); ties in distance go to the lower cell index."""
        share = self._share()
        if share.sum() <= 0:
            return
        share = share / share.sum()
        with_share = np.flatnonzero(share > 0)
        centres = np.array([cell_centre(self._cells[c]) for c in with_share])
        first = 0
        while first < len(SHARE_STEPS) and SHARE_STEPS[first] < self.min_share:
            first += 1
        steps = np.array(SHARE_STEPS[first:])
        keys: list[ZoneKey] = []
        rows: list[np.ndarray] = []
        for start in range(0, len(with_share), ZONE_BLOCK):
            block = centres[start : start + ZONE_BLOCK]
            distance = haversine_matrix_km(block[:, 0], block[:, 1], centres[:, 0], centres[:, 1])
            index = np.broadcast_to(np.arange(len(with_share)), distance.shape)
            nearest = np.lexsort((index, distance), axis=1)  # positions in with_share, nearest first
            cumulative = np.cumsum(share[with_share][nearest], axis=1)
            # Per centre and step: the first position where the cumulative share reaches the step.
            ends = (cumulative[:, :, None] < steps[None, None, :]).sum(axis=1)
            # A zone per centre and step it reaches, up to max_share (the cumulative share grows
            # with the step, so the zones kept are the smaller ones).
            reached = ends < len(with_share)
            within = np.take_along_axis(cumulative, np.minimum(ends, len(with_share) - 1), axis=1) <= self.max_share
            cells_by_distance = with_share[nearest].astype(np.int64, copy=False)
            for r, sizes in enumerate((ends + 1) * (reached & within)):
                centre = int(with_share[start + r])
                # Distinct steps are distinct sizes: no two zones of a build are alike.
                for size in sorted(set(sizes.tolist()) - {0}):
                    members = cells_by_distance[r, :size].copy()
                    members.sort()
                    keys.append(_zone_key(centre, members))
                    rows.append(members)
        self._set_zones(keys, rows)
        self._zones_built_at = self._days

    def _set_zones(self, keys: list[ZoneKey], rows: list[np.ndarray]) -> None:
        """Zones with these keys and member cells; a zone kept from before keeps its state."""
        indptr = np.cumsum([0] + [len(r) for r in rows])
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        self._matrix = sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), len(self._cells)))
        previous = {key: z for z, key in enumerate(self._zone_keys)}
        kept = [(z, previous[key]) for z, key in enumerate(keys) if key in previous]
        now, before = (np.array(side, dtype=np.int64) for side in zip(*kept)) if kept else (np.zeros(0, int),) * 2
        for m in MEASURES:
            zones = np.tile(_fresh_row(), (len(keys), 1))
            zones[now] = self._zones[m][before]
            self._zones[m] = zones
        self._zone_keys = keys
        self._encoded_zones = None

    def _judge(self, day: date, n: np.ndarray, total: float, offsets: np.ndarray) -> list[LocalShockFinding]:
        matrix = self._matrix
        rearming = np.asarray(matrix @ (self._rearm_left > 0).astype(float)).ravel() > 0
        sums = np.asarray(matrix @ self._sums)  # per zone: orders, -, log-value offsets, their squares
        share = np.asarray(matrix @ self._share()).ravel()
        orders = np.asarray(matrix @ n).ravel()
        # orders: the zone's count against its share of today's total (binomial, times dispersion).
        expected = share * total
        spread = np.sqrt(np.maximum(share * (1 - share) * total, 1e-12))
        moves = {d: share * (1 + s * self.shift) / (1 + s * self.shift * share) - share for d, s in _SIGNS.items()}
        self._cusum(
            "orders", orders - expected, spread, {d: moves[d] * total for d in _SIGNS}, orders, expected, rearming
        )
        # order_size: the zone's log-value offset against its baseline offset, per order. Its
        # spread is learned from its own orders, but never taken below a quarter of the
        # company's (a zone whose few orders happened to be alike is not that predictable).
        weight = np.maximum(sums[:, 0], 1e-12)
        offset = sums[:, 2] / weight
        company = self._sums.sum(axis=0)
        company_variance = company[3] / company[0] if company[0] > 0 else 1.0
        variance = np.maximum(sums[:, 3] / weight - offset**2, 0.25 * company_variance)
        # The day's company mean includes the zone's own orders, so against it a shift of the
        # zone's order size shows as (1 - share) of itself, with (1 - share) of the variance: the
        # CUSUM is tuned to that, and the size is reported against the rest of the company.
        rest = 1 - share
        residual = np.asarray(matrix @ offsets).ravel() - orders * offset
        spread_size = np.sqrt(np.maximum(orders * variance * rest, 1e-12))
        shifts = {d: math.log(1 + s * self.shift) * orders * rest for d, s in _SIGNS.items()}
        unknown = sums[:, 0] < MIN_BASELINE_ORDERS  # too few orders to know the zone's usual order size
        skip = rearming | (orders <= 0) | unknown
        self._cusum("order_size", residual, spread_size, shifts, residual / rest, orders, skip)
        return self._findings(day, total, share, variance)

    def _cusum(
        self,
        measure: str,
        residual: np.ndarray,
        spread: np.ndarray,
        shifts: dict[str, np.ndarray],
        observed: np.ndarray,
        expected: np.ndarray,
        skip: np.ndarray,
    ) -> None:
        zones = self._zones[measure]
        kappa = np.maximum(zones[:, _KAPPA], 1.0)
        z = residual / (spread * np.sqrt(kappa))
        calm = np.ones(len(zones), dtype=bool)
        for d, at in _DIRECTION_AT.items():
            mu = shifts[d] / (spread * np.sqrt(kappa))
            stat = np.maximum(0.0, zones[:, at] + mu * z - mu * mu / 2.0)
            stat = np.where(skip, zones[:, at], stat)
            running = stat > 0
            zones[:, at] = stat
            zones[:, at + 1] = np.where(running, zones[:, at + 1] + observed, 0.0)
            zones[:, at + 2] = np.where(running, zones[:, at + 2] + expected, 0.0)
            zones[:, at + 3] = np.where(running, zones[:, at + 3] + 1, 0)
            calm &= stat < 0.5 * self.threshold
        # Dispersion, learned while calm: the mean squared standardised residual (at least 1).
        learn = calm & ~skip
        decay = self._decay
        zones[:, _KAPPA] = np.where(
            learn, decay * zones[:, _KAPPA] + (1 - decay) * np.minimum(z * z * kappa, _MAX_KAPPA), zones[:, _KAPPA]
        )

    def _size(self, measure: str, row: np.ndarray, at: int) -> float:
        observed, expected = row[at + 1], row[at + 2]
        if expected <= 0:
            return 0.0
        if measure == "orders":
            return float(observed / expected - 1.0)
        return float(math.exp(observed / expected) - 1.0)  # mean log-value change per order

    def _findings(self, day: date, total: float, share: np.ndarray, variance: np.ndarray) -> list[LocalShockFinding]:
        alarms = []
        for m in MEASURES:
            for d, at in _DIRECTION_AT.items():
                for z in np.flatnonzero(self._zones[m][:, at] > self.threshold):
                    size = self._size(m, self._zones[m][z], at)
                    if _SIGNS[d] * size >= self.min_change:
                        alarms.append((float(self._zones[m][z, at]), int(z), m, d))
        findings = []
        taken = np.zeros(len(self._cells), dtype=bool)
        for stat, zone, m, d in sorted(alarms, key=lambda a: (-a[0], a[1], a[2], a[3])):
            members = self._matrix[zone].indices
            if taken[members].any():
                continue
            findings.append(self._finding(day, zone, m, d, stat, total, float(share[zone]), float(variance[zone])))
            taken[members] = True
        if findings:
            self._rearm(taken)
        return findings

    def _finding(
        self, day: date, z: int, measure: str, direction: str, stat: float, total: float, share: float, variance: float
    ) -> LocalShockFinding:
        centre_cell, at = self._cells[self._zone_keys[z][0]], _DIRECTION_AT[direction]
        row = self._zones[measure][z]
        days = int(row[at + 3])
        cells = tuple(sorted((self._cells[j] for j in self._matrix[z].indices)))
        centre = cell_centre(centre_cell)
        around = np.array([cell_centre(c) for c in cells])
        radius = float(haversine_array_km(centre[0], centre[1], around[:, 0], around[:, 1]).max())
        kappa = max(float(row[_KAPPA]), 1.0)
        orders_per_day = share * total
        if measure == "orders":
            moved = share * (1 + _SIGNS[direction] * self.shift) / (1 + _SIGNS[direction] * self.shift * share)
            nats_per_day = ((moved - share) * total) ** 2 / (2 * kappa * share * (1 - share) * total)
        else:
            step = math.log(1 + _SIGNS[direction] * self.shift)
            nats_per_day = orders_per_day * step**2 * (1 - share) / (2 * kappa * variance)
        accounts = tuple(sorted(a for c in cells for a in self._members.get(c, ((), ()))[0]))
        reps = tuple(sorted({r for c in cells for r in self._members.get(c, ((), ()))[1]}))
        # each account weighs its cell's baseline share of the orders, split evenly among the cell's accounts
        cell_share = self._share()
        weighted = [
            (area, float(cell_share[self._index[c]]) / len(self._areas[c]))
            for c in cells
            if c in self._areas
            for area in self._areas[c]
        ]
        admin1, admin2 = _most_first(weighted)
        return LocalShockFinding(
            area=f"{centre_cell}/{len(cells)}",
            cells=cells,
            direction=direction,
            size=self._size(measure, row, at),
            start=date.fromordinal(day.toordinal() - days + 1) if days else day,
            detected_on=day,
            evidence=LocalShockEvidence(
                measure=measure,
                statistic=round(stat, 4),
                threshold=self.threshold,
                baseline_share=round(share, 6),
                expected_since_start=round(float(row[at + 2]), 2),
                actual_since_start=round(float(row[at + 1]), 2),
                days_since_start=days,
                information_days=round(self.threshold / nats_per_day, 1) if nats_per_day > 0 else math.inf,
                centre=centre,
                radius_km=round(radius, 1),
            ),
            accounts=accounts,
            reps=reps,
            admin2=admin2,
            admin1=admin1,
        )

    def _rearm(self, cells: np.ndarray) -> None:
        """The area's cells learn their new level; every zone touching them starts over."""
        self._sums[cells] = 0.0
        self._rearm_left[cells] = self.rearm_days
        touching = np.asarray(self._matrix @ cells.astype(float)).ravel() > 0
        for m in MEASURES:
            self._zones[m][touching] = _fresh_row()

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state. It is saved after every judged day, so the arrays go as their exact
        bytes (`core.river_codec.dump_array`) and each zone as its centre and member cells: a
        third of the size of JSON numbers and zone keys, in under half the time to encode."""
        if self._encoded_zones is None:  # the members change only with a rebuild, the state daily
            self._encoded_zones = {
                "zone_centres": dump_array(
                    np.array([centre for centre, _ in self._zone_keys], dtype=np.int64), level=1
                ),
                "zone_sizes": dump_array(np.diff(self._matrix.indptr).astype(np.int64), level=1),
                "zone_members": dump_array(self._matrix.indices.astype(np.int64), level=1),
            }
        return {
            "version": STATE_VERSION,
            "cells": list(self._cells),
            "sums": dump_array(self._sums, level=1),
            "rearm_left": dump_array(self._rearm_left.astype(np.int64), level=1),
            "days": self._days,
            "last_day": self._last_day.isoformat() if self._last_day else None,
            "zones_built_at": self._zones_built_at,
            **self._encoded_zones,
            "zones": {m: dump_array(self._zones[m], level=1) for m in MEASURES},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "LocalShockDetector":
        """Restore `state_dict()`'s output, or that of version 2 (numbers and zone keys in JSON)."""
        version = state.get("version")
        if version not in (2, STATE_VERSION):
            raise ValueError(f"local shock state version {version!r}, expected {STATE_VERSION}")
        array = load_array if version == STATE_VERSION else np.array
        self._reset()
        for cell in state["cells"]:
            self._add_cell(str(cell))
        self._sums = np.asarray(array(state["sums"]), dtype=float).reshape(-1, 4)
        self._rearm_left = np.asarray(array(state["rearm_left"]), dtype=int)
        if len(self._sums) != len(self._cells) or len(self._rearm_left) != len(self._cells):
            raise ValueError("local shock state: per-cell arrays do not match the cells")
        self._days = int(state["days"])
        self._last_day = date.fromisoformat(state["last_day"]) if state.get("last_day") else None
        if version == STATE_VERSION:
            centres, sizes, members = (
                load_array(state[name]).tolist() for name in ("zone_centres", "zone_sizes", "zone_members")
            )
            if len(centres) != len(sizes) or sum(sizes) != len(members):
                raise ValueError("local shock state: zone centres, sizes and members do not match")
            ends = np.cumsum(sizes).tolist()
            rows = [members[end - size : end] for end, size in zip(ends, sizes)]
        else:  # zone keys "centre/cell,cell,..."
            texts = [str(key).split("/", 1) for key in state.get("zone_keys", [])]
            centres = [self._index[centre] for centre, _ in texts]
            rows = [[self._index[cell] for cell in cells.split(",")] for _, cells in texts]
        arrays = [np.asarray(row, dtype=np.int64) for row in rows]
        keys = [_zone_key(int(centre), row) for centre, row in zip(centres, arrays)]
        self._set_zones(keys, arrays)
        for m in MEASURES:
            self._zones[m] = np.asarray(array(state["zones"][m]), dtype=float).reshape(len(keys), _COLUMNS)
        self._zones_built_at = int(state.get("zones_built_at", self._zones_built_at))
        return self


_SIGNS = {"drop": -1.0, "rise": 1.0}


def _zone_key(centre: int, members: np.ndarray) -> ZoneKey:
    # The members' bytes: hashed and compared in C (a build makes a key per centre and share step).
    return centre, members.tobytes()


def _fresh_row() -> np.ndarray:
    row = np.zeros(_COLUMNS)
    row[_KAPPA] = 1.0
    return row


def _most_first(
    weighted: Sequence[tuple[tuple[str | None, str | None], float]],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The distinct admin1 and admin2 ids of some weighted accounts, the heaviest first."""
    out = []
    for level in (0, 1):
        totals: dict[str, float] = {}
        for area, weight in weighted:
            if area[level]:
                totals[str(area[level])] = totals.get(str(area[level]), 0.0) + weight
        out.append(tuple(key for key, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))))
    return out[0], out[1]


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "local shock: orders of 12 accounts within 9 km of 48.15°N 11.55°E dropped 30% since
    2025-05-01; reps R1, R2".

    >>> summary(Subject("area", "243:30/2", "2 accounts near Ulm"), "cleared", {})
    'local shock in 2 accounts near Ulm (243:30/2) is over'
    """
    if state in RESOLVED_STATES:
        return f"local shock in {subject.label} is over"
    size = evidence.get("size")
    moved = "dropped" if state == "drop" else "rose" if state == "rise" else "moved"
    what = "order sizes" if evidence.get("measure") == "order_size" else "orders"
    how_much = f" {percent(abs(float(size)))}" if size is not None else ""
    since = f" since {evidence['started_on']}" if evidence.get("started_on") else ""
    reps = f"; reps {', '.join(evidence['reps'])}" if evidence.get("reps") else ""
    return f"local shock: {what} of {subject.label} {moved}{how_much}{since}{reps}"


def _area_name(finding: LocalShockFinding) -> str:
    """ "Bibb, Jones and 3 more (Georgia): 12 accounts within 40 km of 32.90°N 83.55°W"; the
    county part is left out where the accounts have no admin2."""
    lat, lon = finding.evidence.centre
    where = (
        f"{len(finding.accounts)} accounts within {finding.evidence.radius_km:.0f} km of "
        f"{abs(lat):.2f}°{'N' if lat >= 0 else 'S'} {abs(lon):.2f}°{'E' if lon >= 0 else 'W'}"
    )
    if not finding.admin2:
        return where
    first = [_short_name(a) for a in finding.admin2[:2]]
    rest = len(finding.admin2) - len(first)
    counties = " and ".join(first) if rest == 0 else f"{', '.join(first)} and {rest} more"
    states = ", ".join(_short_name(a) for a in finding.admin1[:2]) + (" ..." if len(finding.admin1) > 2 else "")
    return f"{counties} ({states}): {where}" if states else f"{counties}: {where}"


def _short_name(area_id: str) -> str:
    """An area's own name without its parent and id ("Bibb" for US-GA-021), else the id."""
    label = region_label(area_id)
    name = label[: -len(area_id) - 3] if label.endswith(f" ({area_id})") else area_id
    return name.split(", ")[0] if area_id.count("-") >= 2 else name


__all__: Sequence[str] = [
    "LocalShockDetector",
    "LocalShockEvidence",
    "LocalShockFinding",
    "cell_of",
    "cell_centre",
    "summary",
]
