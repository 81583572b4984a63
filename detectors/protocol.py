"""The one protocol every detector follows, and what detectors observe.

The planner builds an observation when it judges (the territories of a complete month, with
each rep's sales of the calendar year so far against their quota; the company's coverage now,
a complete day of sales per region and per grid cell, a month's
model errors)
and hands it to every detector whose `observes` is that observation's type. A detector
returns its findings, turns each into a `core.records.Signal` (with a one-line summary, which
the alert stage shows as it is), says how many subjects are
out of their normal state now, and saves and restores its state as JSON data; the
planner keeps `{name: state}` in its checkpoint.

Adding a detector is one module with a class that follows `Detector` and one entry in
`detectors.standard_detectors`. A detector the planner runs by default is also `Documented`:
docs/EVENTS.md lists its kind, states and evidence, and a test compares that table with the
detector's `example_signal`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from core.records import Signal
from monitor.state import AccountState, RepAggregate, RepState


@dataclass(frozen=True)
class QuotaYear:
    """The calendar year of a judged month, for quota pace: per active rep with a quota for that
    year, their sales of each complete month of it (January first, `months` of them, counted for
    the rep who owns the account now) and the quota; and the potential model's learned seasonal
    index (12 factors, January first), None while none is learned (a straight line stands in)."""

    year: int
    months: int
    sales: Mapping[str, Sequence[float]]
    quotas: Mapping[str, float]
    seasonal: Sequence[float] | None = None


@dataclass(frozen=True)
class MonthlyTerritories:
    """Every active rep's aggregates over the potential window ending with a complete month;
    `month` is the first day of the month after it (the moment judged). `quota` is the year of
    that month for quota pace; None: nothing to judge it on this time (an observation made
    again after a shock, or an event history that starts after the year's first month)."""

    month: datetime
    aggregates: Mapping[str, RepAggregate]
    quota: QuotaYear | None = None


@dataclass(frozen=True)
class CompanyCoverage:
    """The company as it stands at `watermark`: who owns which account. `through` is the end of
    the last complete month (figures are counted up to it over `window_months`); `warmed_up`
    says the stream has run long enough for an unannounced rep id to count as missing."""

    accounts: Sequence[AccountState]
    reps: Sequence[RepState]
    watermark: datetime
    through: datetime
    window_months: int
    warmed_up: bool


@dataclass(frozen=True)
class RegionalDay:
    """One complete day of orders per region: order value and order count."""

    day: date
    sales: Mapping[str, float]
    counts: Mapping[str, int]


@dataclass(frozen=True)
class CellDay:
    """One complete day of orders per grid cell (`detectors.local_shock.cell_of` of the
    account's location): order count, and the sums of the orders' log values and of their
    squares (a value below one counts as one)."""

    day: date
    counts: Mapping[str, int]
    log_values: Mapping[str, float]
    log_squares: Mapping[str, float]

    @classmethod
    def of_orders(cls, day: date, values: Mapping[str, Sequence[float]]) -> "CellDay":
        """From each cell's order values."""
        logs = {cell: [math.log(max(float(v), 1.0)) for v in cell_values] for cell, cell_values in values.items()}
        return cls(
            day,
            {cell: len(v) for cell, v in logs.items() if v},
            {cell: sum(v) for cell, v in logs.items() if v},
            {cell: sum(x * x for x in v) for cell, v in logs.items() if v},
        )


@dataclass(frozen=True)
class ModelErrors:
    """The potential model's scaled errors (0..1) of one month's scoring, in account order."""

    month: datetime
    errors: Sequence[float]


@runtime_checkable
class Detector(Protocol):
    #: Unique; the key of its state in the planner's checkpoint and its metrics label.
    name: str
    #: The `kind` of the signals it makes.
    kind: str

    # `states` and `observes` are read-only (properties here), so a detector may declare them as
    # plain class attributes of a narrower type, e.g. `states = ("open", "cleared")`.
    @property
    def states(self) -> tuple[str, ...]:
        """The `state`s its signals can have."""

    @property
    def observes(self) -> type | tuple[type, ...]:
        """The observation type it reads, or the types (what `isinstance` takes)."""

    #: Whether its open signals ask the rebalancer for fewer-moves balance.
    triggers_rebalance: bool

    def observe(self, observation: Any) -> Sequence[Any]:
        """Update with one observation; return the findings (state changes or change points)."""

    def signal(self, finding: Any, emitted_at: datetime) -> Signal:
        """The signal to publish for one of its findings, with its one-line `summary` for people
        (the alert stage shows it as is: it knows no detector)."""

    def open_subjects(self) -> int | None:
        """Subjects out of their normal state now; None for change-point detectors, which have
        no lasting state to count (their findings are counted as signals only)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


@runtime_checkable
class Documented(Protocol):
    """A detector of `detectors.standard_detectors`: it shows what its signals look like."""

    def example_signal(self) -> Signal:
        """A signal as this detector makes them, from a made-up observation (made by a fresh
        detector of the same settings: this one's state is left alone)."""
        ...


@runtime_checkable
class ShockDetector(Detector, Protocol):
    """A detector whose findings are demand shocks on a set of accounts: the planner lets those
    accounts' potential follow the shock at once (`size`, e.g. -0.3) instead of waiting for
    months of evidence, and names the shock as the trigger of the proposal that follows."""

    def affected_accounts(self, finding: Any, accounts: Sequence[AccountState]) -> frozenset[str]:
        """The accounts the finding is about, among `accounts`."""
        ...
