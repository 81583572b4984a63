"""The planner's decisions, free of Kafka: when to judge balance, what to signal, when to rebalance.

The planner agent (planner/agents.py) feeds it the whole company after each batch of
state snapshots; `Planner.evaluate` returns the aggregates, the signals to publish and,
when a rebalance is due, the rebalancer's input.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

from core.clock import SYSTEM_CLOCK, Clock
from core.geo import haversine_km
from core.records import Proposal, ProposedMove, RepLoad, Signal, stable_id
from detectors.protocol import QuotaYear, ShockDetector
from detectors.quota_pace import QuotaStanding, quota_standings
from detectors import (
    CellDay,
    CompanyCoverage,
    CoverageGapDetector,
    Detector,
    ModelErrors,
    MonthlyTerritories,
    RegionalDay,
    standard_detectors,
)
from potential import PotentialModel, learn_from_history, predict_potential
from monitor.state import (
    AccountState,
    RepAggregate,
    RepState,
    month_index,
    month_key,
    territory_aggregates,
    trailing_sum,
)
from rebalancer import Account, Move, RebalanceResult, Rep
from rebalancer.scope import segment_pools
from core.settings import Settings

# The proposal carries the figures of every account when the company has at most this many
# (the review's map then shows the whole company), else those of the reps the moves touch,
# at most this many rows (moved accounts first, then by potential). Either way the rows stay
# within CONTEXT_MAX_BYTES of JSON (a row is about 220 bytes, so 5000 rows would be ~1.1 MB):
# Kafka's and Faust's default message limit is 1 MB, and moves and balances need room too.
CONTEXT_ALL_ACCOUNTS_UP_TO = 5000
CONTEXT_MAX_ACCOUNTS = 5000
CONTEXT_MAX_BYTES = 600_000
# Sales and activity in the context are counted over the last twelve complete months,
# whatever the potential window: a year is what a manager compares.
CONTEXT_WINDOW_MONTHS = 12


@dataclass(frozen=True)
class ProposalContext:
    """What the weekly review shows beside the moves (map, sales intelligence): the states of
    the accounts as the request saw them, the active reps' home bases and the end of the last
    complete month the figures run through.

    It holds the states, not their rows: a solve can take half a minute, and a row for every
    account of a large company held through it is tens of MiB, most of it never shown. The
    planner replaces a changed account's state and never alters one, so these stay as they
    were at the request; the rows are made once the moves say which are shown (`rows`)."""

    states: tuple[AccountState, ...]
    reps: tuple[dict[str, Any], ...]
    through: datetime

    @property
    def as_of(self) -> str:
        """The last complete month of the figures, "YYYY-MM"."""
        return month_key(self.through)

    def rows(
        self,
        accounts: Sequence[Account],
        moves: Sequence[Move | dict[str, Any]],
        *,
        all_up_to: int = CONTEXT_ALL_ACCOUNTS_UP_TO,
        **limits: int,
    ) -> tuple[list[dict[str, Any]], str]:
        """The rows the proposal carries and their scope (`select_context_accounts`, with its
        limits), for the accounts the rebalancer was given, with the potential it balanced."""
        potential = {account.account_id: account.potential for account in accounts}
        shown = [state for state in self.states if state.account_id in potential]
        if len(shown) > all_up_to:
            # More than "all" may carry: only the moves' territories can be shown, so only
            # their rows are made.
            touched, moved = _touched_by(moves)
            shown = [state for state in shown if state.rep_id in touched or state.account_id in moved]
            all_up_to = -1  # these are the touched ones already, never "all"
        rows = [account_context_row(state, potential[state.account_id], self.through) for state in shown]
        return select_context_accounts(rows, moves, all_up_to=all_up_to, **limits)


@dataclass(frozen=True)
class RebalanceRequest:
    accounts: list[Account]
    reps: list[Rep]
    tolerance: float
    trigger_signal_ids: list[str]
    # "minimal_moves": fewest moves to bring every rep into the band;
    # "place": only accounts without an active rep move (a rep left);
    # "travel": least travel with at most `max_moves` moves, every rep kept in the band.
    mode: str = "minimal_moves"
    max_moves: int | None = None
    # Figures for the review, taken with the request (the states are at hand only here) and
    # made for the touched territories once the moves are known (`Planner.proposal`).
    context: ProposalContext | None = None
    # Rep -> district or segment pool when each is balanced on its own (TERRITORY_REBALANCE_SCOPE).
    districts: dict[str, str | None] | None = None


@dataclass
class Evaluation:
    aggregates: dict[str, RepAggregate]
    imbalance: float
    model_error: float | None = None  # mean absolute error of the last monthly scoring
    signals: list[Signal] = field(default_factory=list)
    rebalance: RebalanceRequest | None = None
    # Each rep with a quota: their calendar year so far against it, at the last month judged.
    quota: dict[str, QuotaStanding] = field(default_factory=dict)


#: The part of the planner's state that folding orders in (`observe_orders`) changes besides
#: the days it touches.
ORDER_PARTS = ("first_order_day",)
#: Prefix of the state parts holding one day's orders not judged yet ("orders.2025-03-04"): a
#: batch rewrites the days it touched and a judged day's part goes, so a checkpoint during a
#: long catch-up does not rewrite every day still pending.
DAY_PART = "orders."


def imbalance_index(aggregates: Iterable[RepAggregate]) -> float:
    """Largest |share / fair share - 1| over reps: 0.41 means some rep is 41% off."""
    return max((abs(rep.deviation) for rep in aggregates), default=0.0)


#: Checkpoint parts of detectors as saved before the detectors shared one protocol (read once
#: after an upgrade, never written).
_LEGACY_PARTS = {
    "imbalance": "detector",
    "workload_imbalance": "workload_detector",
    "market_shock": "shock_detector",
    "model_drift": "model_drift",
}


class Planner:
    """When to judge, which detectors see what, when to ask the rebalancer.

    `detectors` (default `detectors.standard_detectors`) must include a
    `CoverageGapDetector`: accounts without an owner are placed before balance is judged."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK, detectors: Sequence[Detector] | None = None):
        self.settings = settings
        self.detectors = list(standard_detectors(settings) if detectors is None else detectors)
        names = [detector.name for detector in self.detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique, got {names}")
        coverage = [d for d in self.detectors if isinstance(d, CoverageGapDetector)]
        if len(coverage) != 1:
            raise ValueError("the planner needs exactly one CoverageGapDetector (it places accounts without an owner)")
        self._coverage = coverage[0]
        # Timestamps (emitted_at, created_at) by its wall time; the cooldown by its monotonic
        # time (a wall clock stepped by NTP would hold proposals or release them early).
        self._clock = clock
        self._pending_signal_ids: list[str] = []
        self._last_proposal_at: float | None = None  # by the monotonic clock
        self._placed_orphans: set[str] = set()  # orphans the last placement proposal covered
        # region -> ISO day -> (order value, order count)
        self._daily_sales: dict[str, dict[str, tuple[float, int]]] = {}
        # ISO day -> grid cell -> (orders, sum of log order values, sum of their squares)
        self._daily_cells: dict[str, dict[str, tuple[int, float, float]]] = {}
        self._observed_orders: dict[str, set[str]] = {}  # ISO day not yet judged -> order event ids
        # Region -> its first order day. A region is fed to the shock detector from that day on,
        # however late the planner learns of it: a planner that first judges after a long
        # catch-up (a restart, a replay read unevenly) must feed the same days as one in step.
        self._first_order_day: dict[str, str] = {}
        self._judged_month: str | None = None  # as-of month of the last judgement
        self._judged_day: str | None = None  # last complete day fed to the shock detector
        # The learned potential model (settings.potential == "model") or trailing sales.
        self.model = PotentialModel() if settings.potential == "model" else None
        self._learned_month: str | None = None
        self._months_learned = 0
        self._potentials: dict[str, float] | None = None
        self._valued_month: str | None = None  # month the cached potentials are valued at
        self._changed: set[str] = set()  # accounts changed since they were valued
        self._changed_parts: set[str] | None = None  # see take_changed_parts
        self._changed_days: set[str] = set()  # days whose orders changed since the last checkpoint
        # Trailing-window sales and minutes per account for one (month, window) at a time, with
        # the AccountState they were summed from: a day judged within a month sums them again
        # only for the accounts whose state is a new object (the session replaces what changed).
        self._trailing_key: tuple[str, int] | None = None
        self._trailing: dict[str, tuple[AccountState, float, float]] = {}
        # A shock's accounts: account id -> (factor on its potential, the shock's signal id, the
        # first month the factor no longer applies). See `_follow_shock`.
        self._shock_factors: dict[str, tuple[float, str, str]] = {}
        self._new_shocks: list[str] = []  # shock signal ids of the current judgement
        # Shock signal id -> the area it hit, for a proposal it triggers (the review's map draws it).
        self._shock_areas: dict[str, dict[str, Any]] = {}
        self._accounts_now: list[AccountState] = []
        self._travel_week: str | None = None  # ISO week of the last travel request ("2025-W07")
        # With `incremental` (the planning session tells the planner what changed, see
        # `accounts_changed`), a judgement within the month already judged recomputes the
        # month's figures only when something they are made of changed; else it reuses
        # `_month_view` (aggregates, imbalance, quota standings).
        self.incremental = False
        self._month_dirty = True
        self._month_view: tuple[dict[str, RepAggregate], float, dict[str, QuotaStanding]] | None = None

    def detector(self, name: str) -> Detector:
        return next(detector for detector in self.detectors if detector.name == name)

    def _observe(self, observation: Any, evaluation: Evaluation) -> None:
        """Hand an observation to the detectors that read it; their findings become signals,
        and open ones from detectors that trigger a rebalance wait for it."""
        for detector in self.detectors:
            if not isinstance(observation, detector.observes):
                continue
            for finding in detector.observe(observation):
                signal = detector.signal(finding, self._clock.now())
                evaluation.signals.append(signal)
                if detector.triggers_rebalance and not signal.resolved:
                    self._pending_signal_ids.append(signal.signal_id)
                if isinstance(detector, ShockDetector) and not signal.resolved:
                    self._follow_shock(detector, finding, signal)

    @property
    def _out_of_balance(self) -> bool:
        return any(detector.open_subjects() for detector in self.detectors if detector.triggers_rebalance)

    def evaluate(
        self,
        accounts: Iterable[AccountState],
        reps: Iterable[RepState],
        *,
        watermark: datetime,
        first_event_at: datetime,
        ask_travel: bool = True,
        in_id_order: bool = False,
    ) -> Evaluation:
        """Judge the company at `watermark`. `ask_travel=False` (a day of history judged while
        catching up) leaves the week's travel question for a later judgement of the week;
        `in_id_order` says the accounts come sorted by id already (sorting a large company
        every day of a catch-up was a cost of its own)."""
        self._changed_parts = None
        accounts, reps = list(accounts), list(reps)
        window_months = self.settings.potential_window_months
        # Potentials count complete months only (through the month before the watermark's),
        # and every month boundary crossed since the last judgement is judged in turn: a live
        # worker and a backtest then judge the same figures whatever the batching.
        as_of = _month_start(watermark)
        through = as_of - timedelta(microseconds=1)
        evaluation = Evaluation({}, 0.0)
        orphans: frozenset[str] = frozenset()
        if not in_id_order:
            accounts.sort(key=lambda account: account.account_id)  # learning order must not depend on arrival
        self._accounts_now, self._new_shocks = accounts, []
        self._shock_factors = {a: v for a, v in self._shock_factors.items() if v[2] > month_key(through)}
        # Days and months are judged in event-time order whatever the batching: before a month
        # is judged, the days that end before its eve are (a shock found on a day is followed at
        # the month that day completes in, with that month's potentials).
        company = (accounts, reps, window_months, first_event_at)
        for month in self._months_to_judge(as_of, first_event_at):
            self._judge_markets((month - timedelta(days=1)).date(), evaluation, company)
            warmed_up = month - first_event_at >= timedelta(days=self.settings.warmup_days)
            if month == as_of and self._month_unchanged(as_of):
                # Judged already with the same facts: the detectors would find nothing new.
                evaluation.aggregates, evaluation.imbalance, evaluation.quota = self._month_view  # type: ignore[misc]
                orphans = self._coverage.orphans
                continue
            month_end = month - timedelta(microseconds=1)
            potentials = self._learn_and_value(accounts, month, evaluation) if self.model is not None else None
            aggregates = self._aggregates(accounts, reps, potentials, month_end, window_months)
            evaluation.aggregates, evaluation.imbalance = aggregates, imbalance_index(aggregates.values())
            quota = self._quota_year(accounts, reps, month, first_event_at)
            evaluation.quota = quota_standings(quota) if quota is not None else {}
            if month == as_of:
                self._observe(CompanyCoverage(accounts, reps, watermark, through, window_months, warmed_up), evaluation)
                orphans = self._coverage.orphans
                self._place_orphans(orphans, accounts, reps, evaluation, through, window_months)
            if warmed_up and aggregates and sum(agg.potential for agg in aggregates.values()) > 0:
                self._observe(MonthlyTerritories(month, aggregates, quota), evaluation)
            self._month_view, self._month_dirty = (aggregates, evaluation.imbalance, evaluation.quota), False
        self._judged_month = as_of.isoformat()
        self._judge_markets(watermark.date(), evaluation, company)
        if self._new_shocks and warmed_up:  # a shock from an observation of the company, not of a day
            self._rejudge_after_shocks(accounts, reps, as_of, window_months, evaluation)
            self._new_shocks = []

        if orphans:
            return evaluation  # accounts without an owner are placed first; balance waits for that
        if self._pending_signal_ids and self._out_of_balance and self._cooled_down():
            valued = self._after_shocks(accounts, self._potentials, through, window_months)
            request_accounts = rebalance_accounts(accounts, through, window_months, valued)
            evaluation.rebalance = RebalanceRequest(
                accounts=request_accounts,
                reps=rebalance_reps(reps),
                districts=self._groups(reps),
                # Aim inside the detector's leave band, so an accepted proposal clears the signal.
                tolerance=self.settings.tolerance * self.settings.hysteresis,
                trigger_signal_ids=list(self._pending_signal_ids),
                context=proposal_context(accounts, reps, through, evaluation.quota),
            )
            self._pending_signal_ids = []
            self._last_proposal_at = self._clock.monotonic()
        elif self._pending_signal_ids and not self._out_of_balance:
            self._pending_signal_ids = []  # the imbalance went away on its own
        if evaluation.rebalance is None and warmed_up and ask_travel:
            evaluation.rebalance = self._travel_request(accounts, reps, watermark, through, window_months, evaluation)
        return evaluation

    def _travel_request(
        self,
        accounts: list[AccountState],
        reps: list[RepState],
        watermark: datetime,
        through: datetime,
        window_months: int,
        evaluation: Evaluation,
    ) -> RebalanceRequest | None:
        """The weekly travel question (TERRITORY_TRAVEL_PROPOSAL_MOVES): at the first judgement of
        an ISO week of event time that is not a day of history judged while catching up, so a
        proposal waits for that week's review (and a replay asks it in the same weeks), while no rep
        is out of balance: balance comes first."""
        if self.settings.travel_proposal_moves <= 0 or self._out_of_balance or self._pending_signal_ids:
            return None
        year, week, _ = watermark.isocalendar()
        if self._travel_week == f"{year}-W{week:02d}":
            return None
        self._travel_week = f"{year}-W{week:02d}"
        valued = self._after_shocks(accounts, self._potentials, through, window_months)
        request_accounts = rebalance_accounts(accounts, through, window_months, valued)
        return RebalanceRequest(
            accounts=request_accounts,
            reps=rebalance_reps(reps),
            districts=self._groups(reps),
            tolerance=self.settings.tolerance,
            trigger_signal_ids=[],
            mode="travel",
            max_moves=self.settings.travel_proposal_moves,
            context=proposal_context(accounts, reps, through, evaluation.quota),
        )

    def _follow_shock(self, detector: ShockDetector, finding: Any, signal: Signal) -> None:
        """A demand shock moves its accounts' potential by its size at once: the model (or the
        trailing sales) would take months of evidence to follow. The factor applies until half a
        potential window has passed since the shock began; by then the figures carry it."""
        factor = max(0.05, 1.0 + float(finding.size))
        window_months = self.settings.potential_window_months
        started = signal.evidence.get("started_on") or signal.detected_at.date().isoformat()
        until = month_key(_add_months(datetime.fromisoformat(str(started)), max(1, window_months // 2)))
        affected = detector.affected_accounts(finding, self._accounts_now)
        for account_id in sorted(affected):
            self._shock_factors[account_id] = (factor, signal.signal_id, until)
        self._month_dirty = True  # the shocked potentials make new aggregates
        self._new_shocks.append(signal.signal_id)
        self._shock_areas[signal.signal_id] = shock_area(
            signal, [a for a in self._accounts_now if a.account_id in affected]
        )

    def _after_shocks(
        self, accounts: list[AccountState], potentials: dict[str, float] | None, through: datetime, window_months: int
    ) -> dict[str, float] | None:
        """Potentials with the factors of shocks still in force at `through` (None: trailing sales)."""
        month = month_key(through)
        active = {a: factor for a, (factor, _, until) in self._shock_factors.items() if until > month}
        if not active:
            return potentials
        base = potentials if potentials is not None else self._trailing_figures(accounts, through, window_months)[0]
        return {account_id: value * active.get(account_id, 1.0) for account_id, value in base.items()}

    def _groups(self, reps: list[RepState]) -> dict[str, str | None] | None:
        """Active rep -> the group balanced on its own (TERRITORY_REBALANCE_SCOPE): their district
        or their segment pool; None company-wide."""
        active = [rep for rep in reps if rep.active]
        if self.settings.rebalance_scope == "district":
            return {rep.rep_id: rep.district for rep in active}
        if self.settings.rebalance_scope == "segment_pool":
            return dict(segment_pools({rep.rep_id: tuple(rep.segments or ()) for rep in active}))
        return None

    def _aggregates(
        self,
        accounts: list[AccountState],
        reps: list[RepState],
        potentials: dict[str, float] | None,
        through: datetime,
        window_months: int,
    ) -> dict[str, RepAggregate]:
        """Per-rep aggregates at `through`: the model's potentials (else trailing sales) after shocks."""
        sales, minutes = self._trailing_figures(accounts, through, window_months)
        valued = self._after_shocks(accounts, potentials, through, window_months)
        return territory_aggregates(
            accounts,
            reps,
            watermark=through,
            window_months=window_months,
            potentials=valued if valued is not None else sales,
            workloads=minutes,
            groups=self._groups(reps),
        )

    def _quota_year(
        self, accounts: list[AccountState], reps: list[RepState], month: datetime, first_event_at: datetime
    ) -> QuotaYear | None:
        """The calendar year of the complete month before `month`, for quota pace: per active rep
        with a quota for that year (one set in a later year is not: docs/EVENTS.md), their sales of
        each complete month of it, counted for the account's owner now; and the seasonal index
        the potential model learned. None when the event history starts after the year's
        January: its sales to date would be short. Nothing is summed while no rep has a quota."""
        last = month - timedelta(days=1)
        year, months = last.year, last.month
        if _month_start(first_event_at) > datetime(year, 1, 1, tzinfo=month.tzinfo):
            return None
        quotas = {
            rep.rep_id: float(rep.quota)
            for rep in reps
            if rep.active and rep.quota is not None and _year_set(rep, year) <= year
        }
        seasonal = self._seasonal_index()
        if not quotas:
            return QuotaYear(year, months, {}, {}, seasonal)
        keys = [f"{year:04d}-{m:02d}" for m in range(1, months + 1)]
        sales = {rep_id: [0.0] * months for rep_id in quotas}
        for account in accounts:
            row = sales.get(account.rep_id or "")
            if row is None or not account.known:
                continue
            buckets = account.monthly_sales
            for index, key in enumerate(keys):
                value = buckets.get(key)
                if value:
                    row[index] += value
        return QuotaYear(year, months, {rep_id: tuple(row) for rep_id, row in sales.items()}, quotas, seasonal)

    def _seasonal_index(self) -> tuple[float, ...] | None:
        """The potential model's seasonal index (January first): None without the model
        (TERRITORY_POTENTIAL=trailing) and while it has learned none (every factor still 1: it
        needs a year of months)."""
        if self.model is None:
            return None
        factors = tuple(float(factor) for factor in self.model.seasonal.factors)
        return factors if any(factor != 1.0 for factor in factors) else None

    def _rejudge_after_shocks(
        self,
        accounts: list[AccountState],
        reps: list[RepState],
        as_of: datetime,
        window_months: int,
        evaluation: Evaluation,
    ) -> None:
        """Balance judged again with the shocked potentials; a rep the shock puts out of band asks
        for a rebalance that names the shock among its triggers."""
        through = as_of - timedelta(microseconds=1)
        aggregates = self._aggregates(accounts, reps, self._potentials, through, window_months)
        evaluation.aggregates, evaluation.imbalance = aggregates, imbalance_index(aggregates.values())
        pending_before = len(self._pending_signal_ids)
        if aggregates and sum(agg.potential for agg in aggregates.values()) > 0:
            self._observe(MonthlyTerritories(as_of, aggregates), evaluation)
        if len(self._pending_signal_ids) > pending_before:
            self._pending_signal_ids.extend(self._new_shocks)

    def _learn_and_value(
        self, accounts: list[AccountState], month: datetime, evaluation: Evaluation
    ) -> dict[str, float]:
        """Once per completed month: score then learn (progressive validation), watch the
        error for drift, and value every account with the model."""
        model = self.model
        assert model is not None, "accounts are valued by the model only when settings.potential is 'model'"
        key = month.isoformat()
        if self._learned_month is None or key > self._learned_month:
            scored = learn_from_history(model, accounts, month)
            self._learned_month = key
            self._months_learned += 1 if scored else 0
            # A young model's error falls and rises as it learns the seasons: watch it for drift
            # only after a year of learning.
            if self._months_learned > 12:
                errors = [abs(predicted - label) / max(label, predicted, 1.0) for _, predicted, label in scored]
                self._observe(ModelErrors(month, errors), evaluation)
            if scored:
                evaluation.model_error = sum(abs(p - y) for _, p, y in scored) / len(scored)
            self._valued_month = None  # the model changed: value everyone again
        if self._valued_month != key or self._potentials is None:
            self._potentials = predict_potential(model, accounts, month)
        else:
            # Same model, same month: only accounts that changed since are valued again (a
            # prediction depends on the account's own history and the model only).
            stale = [
                account
                for account in accounts
                if account.account_id in self._changed or account.account_id not in self._potentials
            ]
            current = {account.account_id for account in accounts}
            self._potentials = {
                account_id: value for account_id, value in self._potentials.items() if account_id in current
            }
            self._potentials.update(predict_potential(model, stale, month))
        self._valued_month, self._changed = key, set()
        return self._potentials

    def accounts_changed(self, account_ids: Iterable[str]) -> None:
        """Accounts whose state changed since the last judgement (their potential is stale).
        With `incremental`, name only those whose `planner.session.month_facts` for
        `judged_month` changed: the month's figures are judged again for them."""
        changed = set(account_ids)
        if changed:
            self._month_dirty = True
            if self.model is not None:  # only the model values accounts one by one
                self._changed |= changed

    def reps_changed(self) -> None:
        """A rep's profile changed: the month's figures are judged again."""
        self._month_dirty = True

    @property
    def judged_month(self) -> str | None:
        """The month of the last judgement ("YYYY-MM"), None before the first."""
        return self._judged_month[:7] if self._judged_month else None

    def _month_unchanged(self, as_of: datetime) -> bool:
        return (
            self.incremental
            and not self._month_dirty
            and self._month_view is not None
            and self._judged_month == as_of.isoformat()
        )

    def _trailing_figures(
        self, accounts: list[AccountState], through: datetime, window_months: int
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Each account's sales and activity minutes over the window ending with `through`'s month."""
        key = (month_key(through), window_months)
        if key != self._trailing_key:
            self._trailing_key, self._trailing = key, {}
        cache = self._trailing
        sales, minutes = {}, {}
        for account in accounts:
            cached = cache.get(account.account_id)
            if cached is None or cached[0] is not account:
                cached = (
                    account,
                    trailing_sum(account.monthly_sales, through, window_months),
                    trailing_sum(account.monthly_minutes, through, window_months),
                )
                cache[account.account_id] = cached
            sales[account.account_id], minutes[account.account_id] = cached[1], cached[2]
        return sales, minutes

    def _months_to_judge(self, as_of: datetime, first_event_at: datetime) -> list[datetime]:
        # From the first event's month on the first judgement: the model then learns every
        # month whenever the worker first gets to judge.
        if self._judged_month is None:
            start = _month_start(first_event_at)
            if start >= as_of:
                return [as_of]
            month, months = start, [start]
        else:
            month, months = datetime.fromisoformat(self._judged_month), []
        while month < as_of:
            month = _month_start(month + timedelta(days=32))
            months.append(month)
        return months or [as_of]

    def observe_orders(self, region: str, orders: Iterable[list], cell: str | None = None) -> None:
        """Orders (day, amount, event id) of an account in `region` and grid `cell`, for the
        sales per region and per cell the shock detectors read per complete day. Each order
        counts once: snapshots read again after a restart (the planner's checkpoint may
        already hold their orders) are recognised by the event id until their day is judged."""
        days = self._daily_sales.setdefault(region, {})
        for day, amount, *event_id in orders:
            if day < self._first_order_day.get(region, "9999"):
                self._first_order_day[region] = day
                if self._changed_parts is not None:
                    self._changed_parts.update(ORDER_PARTS)
            if event_id:
                seen = self._observed_orders.setdefault(day, set())
                if event_id[0] in seen:
                    continue
                seen.add(event_id[0])
            total, count = days.get(day, (0.0, 0))
            days[day] = (round(total + amount, 2), count + 1)
            self._changed_days.add(day)
            if cell is not None:
                cells = self._daily_cells.setdefault(day, {})
                count, logs, squares = cells.get(cell, (0, 0.0, 0.0))
                log_value = math.log(max(float(amount), 1.0))
                cells[cell] = (count + 1, logs + log_value, squares + log_value * log_value)

    def _judge_markets(
        self,
        today: date,
        evaluation: Evaluation,
        company: tuple[list[AccountState], list[RepState], int, datetime],
    ) -> None:
        """Hand every day completed before `today` and not yet judged to the detectors of sales per
        region and per cell. A day with a new shock has balance judged again at once, in the month
        that day completes in (`_rejudge_after_shocks`)."""
        if not self._daily_sales:
            return
        first = min(self._first_order_day.values(), default=today.isoformat())
        day = (
            date.fromisoformat(self._judged_day) + timedelta(days=1) if self._judged_day else date.fromisoformat(first)
        )
        while day < today:
            key = day.isoformat()
            regions = [region for region, first_day in sorted(self._first_order_day.items()) if first_day <= key]
            sales = {region: self._daily_sales[region].get(key, (0.0, 0))[0] for region in regions}
            counts = {region: self._daily_sales[region].get(key, (0.0, 0))[1] for region in regions}
            self._observe(RegionalDay(day, sales, counts), evaluation)
            cells = {cell: self._daily_cells.get(key, {})[cell] for cell in sorted(self._daily_cells.get(key, {}))}
            day_of_cells = CellDay(
                day,
                {cell: int(v[0]) for cell, v in cells.items()},
                {cell: v[1] for cell, v in cells.items()},
                {cell: v[2] for cell, v in cells.items()},
            )
            self._observe(day_of_cells, evaluation)
            if self._new_shocks:
                accounts, reps, window_months, first_event_at = company
                month = _month_start(datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc))
                if month - first_event_at >= timedelta(days=self.settings.warmup_days):
                    self._rejudge_after_shocks(accounts, reps, month, window_months, evaluation)
                self._new_shocks = []
            self._judged_day = key
            day += timedelta(days=1)
        # Days judged are final: forget them (late orders for them change state, not judgements).
        judged: list[dict[str, Any]] = [*self._daily_sales.values(), self._observed_orders, self._daily_cells]
        for days in judged:
            for key in [k for k in days if self._judged_day and k <= self._judged_day]:
                del days[key]

    def _place_orphans(
        self,
        orphans: frozenset[str],
        accounts: list[AccountState],
        reps: list[RepState],
        evaluation: Evaluation,
        through: datetime,
        window_months: int,
    ) -> None:
        """Accounts whose rep left, or that have no owner, get a placement that moves only them
        (once per set of orphans), answering the open coverage-gap signals."""
        active = any(rep.active for rep in reps)
        if orphans and orphans != self._placed_orphans and active:
            gap_ids = [s.signal_id for s in evaluation.signals if s.kind == self._coverage.kind and s.state == "open"]
            valued = self._after_shocks(accounts, self._potentials, through, window_months)
            request_accounts = rebalance_accounts(accounts, through, window_months, valued)
            evaluation.rebalance = RebalanceRequest(
                accounts=request_accounts,
                reps=rebalance_reps(reps),
                districts=self._groups(reps),
                tolerance=self.settings.tolerance * self.settings.hysteresis,
                trigger_signal_ids=gap_ids,
                mode="place",
                context=proposal_context(accounts, reps, through, evaluation.quota),
            )
            self._last_proposal_at = self._clock.monotonic()
        self._placed_orphans = set(orphans)

    def out_of_band(self) -> dict[str, int]:
        """Subjects out of their normal state now, per stateful detector
        (territory_detector_out_of_band): reps off their fair share of potential or of
        workload, reps whose accounts have no active owner. Change-point detectors (market
        shocks, model drift) have no lasting state: they are counted as signals only."""
        counts = {detector.name: detector.open_subjects() for detector in self.detectors}
        return {name: count for name, count in counts.items() if count is not None}

    @property
    def rebalance_pending(self) -> bool:
        """Signals wait for a rebalance that the cooldown held back."""
        return bool(self._pending_signal_ids) and self._out_of_balance

    def _cooled_down(self) -> bool:
        if self._last_proposal_at is None:
            return True
        return self._clock.monotonic() - self._last_proposal_at >= self.settings.rebalance_cooldown_s

    def proposal(self, request: RebalanceRequest, result: RebalanceResult, watermark: datetime) -> Proposal:
        return self.proposal_of(request, watermark)(result)

    def proposal_of(self, request: RebalanceRequest, watermark: datetime) -> Callable[[RebalanceResult], Proposal]:
        """The proposal a solve of `request` makes, as a function of its result. What it takes
        of the planner is read now, so the solve may run while the planner judges on."""
        self._changed_parts = None
        # The shocks among the triggers, then those whose factor still shapes the potentials the
        # proposal was solved on (found earlier, they asked for nothing then): the review draws both.
        through = month_key(_month_start(watermark) - timedelta(microseconds=1))  # as `_after_shocks` reads them
        in_force = {signal_id for _, signal_id, until in self._shock_factors.values() if until > through}
        shown = [*request.trigger_signal_ids, *sorted(in_force - set(request.trigger_signal_ids))]
        shocks = tuple(self._shock_areas[s] for s in shown if s in self._shock_areas) or None
        return partial(self._proposal, request, watermark, shocks)

    def _proposal(
        self,
        request: RebalanceRequest,
        watermark: datetime,
        shocks: tuple[dict[str, Any], ...] | None,
        result: RebalanceResult,
    ) -> Proposal:
        rows: tuple[Mapping[str, Any], ...] | None = None
        scope = as_of = homes = None
        if request.context is not None:
            selected, scope = request.context.rows(request.accounts, result.moves)
            rows, as_of, homes = tuple(selected), request.context.as_of, request.context.reps
        return Proposal(
            # Named by the signals it answers (each answered once), else by the moment judged.
            proposal_id=stable_id("prop", request.mode, *(request.trigger_signal_ids or [watermark.isoformat()])),
            created_at=self._clock.now(),
            event_time=watermark,
            trigger_signals=tuple(request.trigger_signal_ids),
            mode=request.mode,
            status=result.status,
            moves=tuple(ProposedMove(**vars(move)) for move in result.moves),
            before=tuple(RepLoad(**vars(load)) for load in result.before),
            after=tuple(RepLoad(**vars(load)) for load in result.after),
            imbalance_before=result.imbalance_before,
            imbalance_after=result.imbalance_after,
            seconds=result.seconds,
            tolerance=result.tolerance,
            objective=result.objective,
            objective_kind=result.objective_kind,
            bound=result.bound,
            gap=result.gap,
            tolerances=result.tolerances,
            metrics=tuple(result.metrics),
            explanation=result.explanation,
            notes=tuple(result.notes),
            travel_km_before=result.travel_km_before,
            travel_km_after=result.travel_km_after,
            shocks=shocks,
            accounts=rows,
            accounts_scope=scope,
            accounts_as_of=as_of,
            reps=homes,
        )

    def _state_parts(self) -> dict[str, Callable[[], Any]]:
        return {
            **{f"detector.{detector.name}": detector.state_dict for detector in self.detectors},
            "pending_signal_ids": lambda: list(self._pending_signal_ids),
            "placed_orphans": lambda: sorted(self._placed_orphans),
            "judged_month": lambda: self._judged_month,
            **{f"{DAY_PART}{day}": partial(self._day_orders, day) for day in self.pending_days()},
            "judged_day": lambda: self._judged_day,
            "first_order_day": lambda: dict(sorted(self._first_order_day.items())),
            "model": lambda: self.model.state_dict() if self.model is not None else None,
            "learned_month": lambda: self._learned_month,
            "shock_factors": lambda: {a: list(v) for a, v in sorted(self._shock_factors.items())},
            "shock_areas": lambda: dict(sorted(self._shock_areas.items())),
            "months_learned": lambda: self._months_learned,
            "travel_week": lambda: self._travel_week,
        }

    def pending_days(self) -> set[str]:
        """Days with orders not judged yet."""
        return {day for days in self._daily_sales.values() for day in days} | {
            *self._daily_cells,
            *self._observed_orders,
        }

    def _day_orders(self, day: str) -> dict[str, Any]:
        """One day's state part: sales per region, sums per grid cell, the order ids counted."""
        return {
            "sales": {region: list(days[day]) for region, days in sorted(self._daily_sales.items()) if day in days},
            "cells": {cell: list(value) for cell, value in sorted(self._daily_cells.get(day, {}).items())},
            "ids": sorted(self._observed_orders.get(day, ())),
        }

    def _load_day_orders(self, day: str, part: Mapping[str, Any]) -> None:
        for region, (total, count) in part.get("sales", {}).items():
            self._daily_sales.setdefault(region, {})[day] = (total, count)
        if part.get("cells"):
            self._daily_cells[day] = {
                cell: (int(value[0]), float(value[1]), float(value[2])) for cell, value in part["cells"].items()
            }
        if part.get("ids"):
            self._observed_orders[day] = set(part["ids"])

    def state_dict(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The state by part; with `only`, just those parts (see `take_changed_parts`)."""
        parts = self._state_parts()
        chosen = None if only is None else set(only)
        wanted = parts if chosen is None else [name for name in parts if name in chosen]
        return {name: parts[name]() for name in wanted}

    def state_part_names(self) -> list[str]:
        return sorted(self._state_parts())

    def take_changed_parts(self) -> set[str]:
        """The parts of `state_dict` that may have changed since the last call. Folding orders
        in changes only the days it touched; a judgement or a proposal may change any part but
        the days' orders (judging a day drops its part). Encoding every part for each batch was
        most of a checkpoint's cost."""
        changed = self._changed_parts
        if changed is None:
            changed = {name for name in self._state_parts() if not name.startswith(DAY_PART)}
        changed |= {f"{DAY_PART}{day}" for day in self._changed_days}
        self._changed_parts, self._changed_days = set(), set()
        return changed

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._changed_parts = None
        for detector in self.detectors:
            saved = state.get(f"detector.{detector.name}")
            if saved is None and detector.name in _LEGACY_PARTS:
                saved = state.get(_LEGACY_PARTS[detector.name])
            if saved is None and isinstance(detector, CoverageGapDetector) and "gap_reps" in state:
                saved = {"gap_reps": state["gap_reps"]}
            if saved:
                detector.load_state_dict(saved)
        self._pending_signal_ids = list(state.get("pending_signal_ids", []))
        self._placed_orphans = set(state.get("placed_orphans", []))
        self._judged_month = state.get("judged_month")
        self._daily_sales, self._daily_cells, self._observed_orders = {}, {}, {}
        for name, part in state.items():
            if name.startswith(DAY_PART) and part:
                self._load_day_orders(name.removeprefix(DAY_PART), part)
        # A checkpoint from before the orders were kept a day a part.
        for region, days in (state.get("daily_sales") or {}).items():
            for day, value in days.items():
                self._load_day_orders(day, {"sales": {region: value}})
        for day, cells in (state.get("daily_cells") or {}).items():
            self._load_day_orders(day, {"cells": cells})
        for day, ids in (state.get("observed_orders") or {}).items():
            self._load_day_orders(day, {"ids": ids})
        self._changed_days = self.pending_days()
        self._judged_day = state.get("judged_day")
        self._first_order_day = dict(state.get("first_order_day") or {})
        if state.get("model") and self.model is not None:
            self.model.load_state_dict(state["model"])  # a restart does not forget what was learned
        self._shock_factors = {
            str(a): (float(v[0]), str(v[1]), str(v[2])) for a, v in (state.get("shock_factors") or {}).items()
        }
        self._shock_areas = dict(state.get("shock_areas") or {})
        self._learned_month = state.get("learned_month")
        self._months_learned = state.get("months_learned", 0)
        self._travel_week = state.get("travel_week")


def shock_area(signal: Signal, accounts: Sequence[AccountState]) -> dict[str, Any]:
    """Where a shock hit, for the review's map: the centre of its accounts and the radius that
    holds them all.

    >>> from core.records import Subject
    >>> s = Signal.make(kind="local_shock", state="drop", severity="critical", subject=Subject("area", "x"),
    ...                 evidence={"size": -0.3}, detected_at=datetime(2025, 3, 1), emitted_at=datetime(2025, 3, 1))
    >>> shock_area(s, [AccountState("a", 48.0, 9.0), AccountState("b", 48.2, 9.0)])["radius_km"]
    11.1
    """
    located = [(a.lat, a.lon) for a in accounts if a.lat is not None and a.lon is not None]
    lat = sum(p[0] for p in located) / len(located) if located else 0.0
    lon = sum(p[1] for p in located) / len(located) if located else 0.0
    radius = max((haversine_km(lat, lon, *p) for p in located), default=0.0)
    return {
        "signal_id": signal.signal_id,
        "kind": signal.kind,
        "direction": signal.state,
        "size": signal.evidence.get("size"),
        "name": signal.subject.name or signal.subject.id,
        "centre": [round(lat, 4), round(lon, 4)],
        "radius_km": round(radius, 1),
        "accounts": len(located),
    }


def _year_set(rep: RepState, default: int) -> int:
    """The calendar year of the rep's profile (its upsert's event time); `default` if unknown."""
    stamp = rep.updated_at[:4]
    return int(stamp) if len(stamp) == 4 and stamp.isdigit() else default


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def rebalance_accounts(
    accounts: Iterable[AccountState],
    watermark: datetime,
    window_months: int,
    potentials: dict[str, float] | None = None,
) -> list[Account]:
    out = []
    for account in accounts:
        if not account.known or account.closed:
            continue
        # The contract gives every account.upserted coordinates (or resolves its postal code).
        assert account.lat is not None and account.lon is not None, f"known account {account.account_id} has no place"
        out.append(
            Account(
                account_id=account.account_id,
                potential=(
                    potentials.get(account.account_id, 0.0)
                    if potentials is not None
                    else trailing_sum(account.monthly_sales, watermark, window_months)
                ),
                workload=trailing_sum(account.monthly_minutes, watermark, window_months),
                lat=account.lat,
                lon=account.lon,
                rep_id=account.rep_id,
                locked=account.locked,
                segment=account.segment,
            )
        )
    return out


def rebalance_reps(reps: Iterable[RepState]) -> list[Rep]:
    """The active reps as the rebalancer takes them: home, capacity, reach, segments, caps."""
    return [
        Rep(
            r.rep_id,
            r.home_lat,
            r.home_lon,
            r.capacity_fte,
            r.max_travel_km,
            segments=tuple(r.segments),
            min_accounts=r.min_accounts,
            max_accounts=r.max_accounts,
            travel_factor=r.travel_factor,
            min_workload=r.min_workload,
            max_workload=r.max_workload,
        )
        for r in reps
        if r.active
    ]


# --------------------------------------------------------------------------- review context


def account_context_row(state: AccountState, potential: float, through: datetime) -> dict[str, Any]:
    """One account's figures for the weekly review, from complete months up to `through`.

    `active_months_12m` counts months with orders among the last twelve; `typical_gap_months`
    is the median number of months between consecutive months with orders over the kept
    history (None with fewer than two such months): the account's buying rhythm, against
    which a silence counts as lapsed. Floats are rounded to what a report shows.

    >>> from datetime import timezone
    >>> state = AccountState("a1", 52.52001, 13.40499, rep_id="R1", segment="key account",
    ...                      monthly_sales={"2024-11": 50.0, "2025-01": 80.0, "2025-03": 120.0, "2025-05": 9.0},
    ...                      monthly_minutes={"2025-02": 30.0})
    >>> row = account_context_row(state, 1234.567, datetime(2025, 4, 30, 23, 59, tzinfo=timezone.utc))
    >>> row["sales_12m"], row["active_months_12m"], row["last_order_month"], row["typical_gap_months"]
    (250.0, 3, '2025-03', 2.0)
    >>> row["segment"]  # only for an account with a segment: the map's popup and the exports show it
    'key account'
    """
    last = month_index(month_key(through))
    ordering = sorted(
        month_index(key) for key, amount in state.monthly_sales.items() if amount > 0 and month_index(key) <= last
    )
    gaps = [later - earlier for earlier, later in zip(ordering, ordering[1:])]
    return {
        "account_id": state.account_id,
        "lat": round(state.lat, 4) if state.lat is not None else None,
        "lon": round(state.lon, 4) if state.lon is not None else None,
        "rep_id": state.rep_id,
        "potential": round(potential, 2),
        "sales_12m": round(trailing_sum(state.monthly_sales, through, CONTEXT_WINDOW_MONTHS), 2),
        "active_months_12m": sum(1 for month in ordering if last - month < CONTEXT_WINDOW_MONTHS),
        "last_order_month": f"{ordering[-1] // 12:04d}-{ordering[-1] % 12 + 1:02d}" if ordering else None,
        "typical_gap_months": round(float(statistics.median(gaps)), 1) if gaps else None,
        "activity_minutes_12m": round(trailing_sum(state.monthly_minutes, through, CONTEXT_WINDOW_MONTHS), 1),
        **({"segment": state.segment} if state.segment else {}),
    }


def proposal_context(
    states: Iterable[AccountState],
    reps: Iterable[RepState],
    through: datetime,
    quota: Mapping[str, QuotaStanding] | None = None,
) -> ProposalContext:
    """The review's context of a request: the account states as they are now, and the active
    reps' home bases with the quota, attainment and pace of those who have a quota (`quota`,
    as `Evaluation.quota`)."""
    homes = tuple(
        {
            "rep_id": rep.rep_id,
            "home_lat": round(rep.home_lat, 4),
            "home_lon": round(rep.home_lon, 4),
            **({"district": rep.district} if rep.district else {}),
            **_quota_columns((quota or {}).get(rep.rep_id)),
        }
        for rep in reps
        if rep.active
    )
    # A copy of the sequence: the session updates its list of states in place.
    return ProposalContext(states=tuple(states), reps=homes, through=through)


def _quota_columns(standing: QuotaStanding | None) -> dict[str, Any]:
    """A rep's quota figures for the review (none without a quota)."""
    if standing is None:
        return {}
    return {
        "quota": round(standing.quota, 2),
        "quota_year": standing.year,
        "quota_months": standing.months,
        "quota_attainment": round(standing.attainment, 4),
        "quota_pace": round(standing.pace, 4),
    }


def _touched_by(moves: Iterable[Move | dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The reps the moves take from or give to, and the moved accounts."""
    pairs = [
        (move["account_id"], move["from_rep"], move["to_rep"])
        if isinstance(move, dict)
        else (move.account_id, move.from_rep, move.to_rep)
        for move in moves
    ]
    touched = {rep for _, from_rep, to_rep in pairs for rep in (from_rep, to_rep) if rep is not None}
    return touched, {account_id for account_id, _, _ in pairs}


def select_context_accounts(
    rows: Sequence[dict[str, Any]],
    moves: Iterable[Move | dict[str, Any]],
    *,
    all_up_to: int = CONTEXT_ALL_ACCOUNTS_UP_TO,
    max_rows: int = CONTEXT_MAX_ACCOUNTS,
    max_bytes: int = CONTEXT_MAX_BYTES,
) -> tuple[list[dict[str, Any]], str]:
    """The rows a proposal carries and their scope, in the order given:

    - "all": every account, when there are at most `all_up_to` and they fit `max_bytes`;
    - "touched": the accounts of the moves' from and to reps and the moved accounts;
    - "touched_largest": when those exceed `max_rows` or `max_bytes`, the moved accounts
      and then the largest by potential that fit (the review's sales intelligence then
      covers those only, and says so).

    >>> rows = [{"account_id": a, "rep_id": r, "potential": p} for a, r, p in
    ...         [("a", "R1", 5), ("b", "R2", 9), ("c", "R3", 1), ("d", "R3", 7)]]
    >>> move = {"account_id": "a", "from_rep": "R1", "to_rep": "R2"}
    >>> select_context_accounts(rows, [move])[1]
    'all'
    >>> [r["account_id"] for r in select_context_accounts(rows, [move], all_up_to=2)[0]]
    ['a', 'b']
    >>> [r["account_id"] for r in select_context_accounts(rows, [move], all_up_to=2, max_rows=1)[0]]
    ['a']
    """
    sizes = {row["account_id"]: len(json.dumps(row)) + 2 for row in rows}  # ", " between rows
    if len(rows) <= all_up_to and sum(sizes.values()) <= max_bytes:
        return list(rows), "all"
    touched, moved = _touched_by(moves)
    selected = [row for row in rows if row["rep_id"] in touched or row["account_id"] in moved]
    if len(selected) <= max_rows and sum(sizes[row["account_id"]] for row in selected) <= max_bytes:
        return selected, "touched"
    keep: set[str] = set()
    budget = max_bytes
    for row in sorted(selected, key=lambda row: (row["account_id"] not in moved, -row["potential"], row["account_id"])):
        if len(keep) >= max_rows or sizes[row["account_id"]] > budget:
            break
        keep.add(row["account_id"])
        budget -= sizes[row["account_id"]]
    return [row for row in selected if row["account_id"] in keep], "touched_largest"
