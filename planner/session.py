"""The planner's whole job over plain mappings: the live agent and the backtest share it.

`PlanningSession.apply` takes the intake's state snapshots (the company view lives in
any MutableMapping: Faust tables in the worker, dicts in a backtest); `judge` runs the
detectors and says what to publish and whether to rebalance; `solve` runs the
rebalancer the request asks for and returns the proposal. No Kafka here.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_left
from dataclasses import asdict
from datetime import datetime, time, timedelta
from operator import attrgetter
from typing import Any, Callable, Iterable, Mapping, MutableMapping, TypedDict

from core.clock import SYSTEM_CLOCK, Clock
from core.records import Proposal
from core.settings import Settings
from detectors import Detector, standard_detectors
from detectors.local_shock import cell_of
from monitor.state import (
    KEPT_MONTHS,
    AccountState,
    RepState,
    month_index,
    month_key_of_index,
    opportunity_as_of,
    shared_strings,
    planner_state,
    state_of,
)
from planner.planner import Evaluation, Planner, RebalanceRequest
from planner.watermark import Watermark
from rebalancer import Account, RebalanceResult, Rep, minimal_moves, place_accounts, trade_off_curve
from rebalancer.scope import by_district

log = logging.getLogger(__name__)


#: Records of the checkpoint in `meta` besides the "planner.<part>" ones it lists.
CHECKPOINT_RECORDS = ("planner", "watermark")
#: Budgets on a live proposal's moves-vs-imbalance curve (sampled evenly beyond that).
CURVE_POINTS = 12
#: Judge a month's figures again only when their facts changed (see `month_facts`); off, every
#: judgement recomputes them (the reference the shortcut is tested against).
INCREMENTAL_MONTHS = True
#: Row fields every event moves that no monthly judgement reads (buckets and opportunities
#: are projected by `month_facts`).
_PER_EVENT_FIELDS = frozenset(
    {"monthly_sales", "monthly_minutes", "opportunities", "last_event_at", "seen", "applied_offsets", "held"}
)


class _SolverOptions(TypedDict):
    """The solver settings every rebalancer call of a proposal shares."""

    candidate_reps: int
    time_limit_s: float
    num_workers: int


def saved_planner_state(meta: MutableMapping[str, Any]) -> dict[str, Any]:
    """The planner's state as `PlanningSession.checkpoint` saved it in `meta`, one record a part
    (a part larger than a record is kept in pieces: see `_record`)."""
    return {part: _read_record(meta, f"planner.{part}") for part in (meta.get("planner") or {}).get("parts", [])}


def _owner_facts(account: Mapping[str, Any] | None) -> tuple | None:
    """What decides an account's place in the territories (its figures aside)."""
    if account is None:
        return None
    return tuple(account.get(name) for name in ("rep_id", "closed", "known", "locked"))


def month_facts(account: Mapping[str, Any] | None, month: str, window: int = KEPT_MONTHS - 1) -> tuple | None:
    """What a judgement of `month` ("YYYY-MM": potentials and aggregates through the month
    before it) reads of an account row: its profile and owner; its sales and minutes of the
    `window` months before (the potential model's features and the trailing figures look no
    further; `window` is longer when the trailing window is); the first month with any evidence
    (how long its history is); a newest bucket beyond `month` (the features cut where the
    state may have pruned for it); the opportunities as known at `month`'s start. An order or
    activity of `month` itself leaves them as they were, so the planner need not judge the
    month's figures again for it (tests/test_planner_incremental.py holds it to that)."""
    if account is None:
        return None
    oldest = month_key_of_index(month_index(month) - window)
    sales, minutes = account.get("monthly_sales") or {}, account.get("monthly_minutes") or {}
    opportunities = account.get("opportunities") or {}
    evidence = [*sales, *minutes, *(str(moment)[:7] for entry in opportunities.values() for moment in entry[0::2])]
    if account.get("profile_at"):
        evidence.append(str(account["profile_at"])[:7])
    newest_sale, newest_minutes = max(sales, default=""), max(minutes, default="")
    return (
        {name: value for name, value in account.items() if name not in _PER_EVENT_FIELDS},
        {key: value for key, value in sales.items() if oldest <= key < month},
        {key: value for key, value in minutes.items() if oldest <= key < month},
        max(min([key for key in evidence if key < month], default=month), oldest),
        newest_sale if newest_sale > month else None,
        newest_minutes if newest_minutes > month else None,
        {oid: known for oid, entry in opportunities.items() if (known := opportunity_as_of(entry, month))},
    )


def _fields(account: AccountState | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A company-view entry (a state, or a row recovered from the changelog) as its public
    fields, sharing the buckets."""
    return None if account is None else state_of(account).public_fields()


_account_id = attrgetter("account_id")


def _in_step(ordered: list[AccountState], changed: Mapping[str, AccountState | None]) -> list[AccountState]:
    """`ordered` (by account id) with the `changed` accounts replaced, added or (None) erased.
    A replacement is found by bisection; new accounts are sorted in once.

    >>> a, b, c = (AccountState(name, 0.0, 0.0) for name in "abc")
    >>> [s.account_id for s in _in_step([a, c], {"b": b, "c": None})]
    ['a', 'b']
    """
    new, erased = [], set()
    for account_id, account in changed.items():
        at = bisect_left(ordered, account_id, key=_account_id)
        found = at < len(ordered) and ordered[at].account_id == account_id
        if account is None:
            erased.add(account_id)
        elif found:
            ordered[at] = account
        else:
            new.append(account)
    if erased:
        ordered = [account for account in ordered if account.account_id not in erased]
    if new:
        ordered.extend(new)
        ordered.sort(key=_account_id)  # a sorted run and a short tail: close to linear
    return ordered


def _delete_record(meta: MutableMapping[str, Any], key: str) -> None:
    value = meta.pop(key, None)
    if isinstance(value, dict) and "$pieces" in value:
        for n in range(int(value["$pieces"])):
            meta.pop(f"{key}#{n}", None)


def _read_record(meta: MutableMapping[str, Any], key: str) -> Any:
    value = meta[key]
    if isinstance(value, dict) and "$pieces" in value:
        return json.loads("".join(meta[f"{key}#{n}"] for n in range(int(value["$pieces"]))))
    return value


class PlanningSession:
    def __init__(
        self,
        settings: Settings,
        *,
        accounts: MutableMapping[str, Any],
        reps: MutableMapping[str, Any],
        meta: MutableMapping[str, Any],
        clock: Clock = SYSTEM_CLOCK,
        expected_sources: Iterable[str] = (),
        # A fresh set of detectors for each fresh planner (at start and when a checkpoint is refused).
        make_detectors: Callable[[Settings], list[Detector]] = standard_detectors,
    ):
        self.settings = settings
        self.accounts, self.reps, self.meta = accounts, reps, meta
        self._clock = clock
        self._make_detectors = make_detectors
        self._expected_sources = tuple(expected_sources)
        self._written: dict[str, str] = {}  # checkpoint record -> JSON last written
        # Per input partition ("territory.state:0"), the offset after the last record applied:
        # saved with the checkpoint, so a restart never reads on past what was not applied
        # (planner.input_position).
        self.input_offsets: dict[str, int] = {}
        # `accounts` as AccountState in account id order, built once and then kept in step by
        # `apply`: a judgement neither converts nor sorts the whole company each day.
        self._states: list[AccountState] | None = None
        self._start_clean()

    def _start_clean(self) -> None:
        self.planner = Planner(self.settings, clock=self._clock, detectors=self._make_detectors(self.settings))
        self.planner.incremental = INCREMENTAL_MONTHS
        self.watermark = Watermark().expect(self._expected_sources)
        self.judged_at: datetime | None = None
        self.territories_changed = False

    def restore(self) -> bool:
        """Load the checkpoint from `meta`; True if there was one.

        Call it once the tables hold what was saved (in the worker: after Faust's table
        recovery, which comes after the agents start). A damaged or foreign checkpoint is
        refused with a log line and the planner starts clean: it then re-learns from the
        accounts it holds and judges from the next update on."""
        self._start_clean()
        self._written = {}
        self._states = None  # the tables were recovered
        self.input_offsets = {k: int(v) for k, v in (self.meta.get("input") or {}).items()}
        if not any(key in self.meta for key in CHECKPOINT_RECORDS):
            return False
        try:
            state = saved_planner_state(self.meta)
            self.planner.load_state_dict(state)
            self.watermark.load_state_dict(_read_record(self.meta, "watermark") if "watermark" in self.meta else {})
            self.watermark.expect(self._expected_sources)
            judged_at = (self.meta.get("planner") or {}).get("judged_at")
            self.judged_at = datetime.fromisoformat(judged_at) if judged_at else None
        except Exception as error:  # noqa: BLE001 - any damage at all means: do not trust it
            log.error("planner checkpoint refused, starting clean: %s: %s", type(error).__name__, error)
            self._start_clean()
            return False
        log.info(
            "planner checkpoint restored: judged at %s, learned through %s, orders of %d days not judged yet",
            self.judged_at,
            state.get("learned_month"),
            len(self.planner.pending_days()),
        )
        return True

    def apply(self, snapshots: Iterable[dict[str, Any]]) -> int:
        """Fold intake snapshots into the company view; returns how many.

        Only the newest snapshot of each account and rep in the batch is written: every
        write to a table is a changelog record, and one account often changes many times
        in a batch."""
        count = 0
        accounts: dict[str, AccountState | None] = {}  # None: erased
        reps: dict[str, dict[str, Any]] = {}
        for snapshot in snapshots:
            snapshot = dict(snapshot)
            kind = snapshot.pop("kind")
            if kind == "progress":
                self.watermark.caught_up(snapshot["source"], snapshot["caught_up"])
                continue
            if kind == "stream_times":
                # After all snapshots of an intake batch: per input stream, their earliest and
                # newest event time. Only now may the watermark move past them.
                for stream, (earliest, newest) in sorted(snapshot["times"].items()):
                    self.watermark.observe(stream, datetime.fromisoformat(earliest))
                    self.watermark.observe(stream, datetime.fromisoformat(newest))
                continue
            source, occurred_at = snapshot.pop("source"), snapshot.pop("occurred_at", None)
            # A snapshot from before batched intake moves the watermark itself (an erasure has no
            # event time; older ones carried the wall clock).
            if not snapshot.pop("stream_times_follow", False) and kind != "account_erased":
                self.watermark.observe(source, datetime.fromisoformat(occurred_at))
            orders = snapshot.pop("orders", None) or []
            if kind == "account_erased":
                accounts[snapshot["account_id"]] = None
            elif kind == "rep":
                reps[snapshot["rep_id"]] = snapshot
            else:
                # Kept for every account of the company: one copy of its names and codes.
                snapshot = shared_strings(snapshot)
                accounts[snapshot["account_id"]] = planner_state(snapshot)
                if orders and snapshot.get("region"):
                    located = snapshot.get("lat") is not None and snapshot.get("lon") is not None
                    cell = cell_of(snapshot["lat"], snapshot["lon"]) if located else None
                    self.planner.observe_orders(snapshot["region"], orders, cell=cell)
            count += 1
        for rep_id, rep in reps.items():
            self.reps[rep_id] = rep
        if reps:  # few, and without them every account reads "unknown rep": worth a line each time
            log.info("planner: reps %s applied", ", ".join(sorted(reps)))
        month = self.planner.judged_month
        window = max(KEPT_MONTHS - 1, self.settings.potential_window_months)
        self.planner.accounts_changed(
            account_id
            for account_id, account in accounts.items()
            if not INCREMENTAL_MONTHS
            or month is None
            or month_facts(_fields(self.accounts.get(account_id)), month, window)
            != month_facts(_fields(account), month, window)
        )
        if reps:
            self.planner.reps_changed()
        # Who owns what changed (an approval, a rep or an account gone): judged at once, even
        # within the day, so the territories' figures and alerts follow.
        self.territories_changed |= bool(reps) or any(
            _owner_facts(_fields(self.accounts.get(account_id))) != _owner_facts(_fields(account))
            for account_id, account in accounts.items()
        )
        for account_id, account in accounts.items():
            if account is None:
                self.accounts.pop(account_id, None)
            else:
                # The table keeps the state object itself (its changelog record is the same JSON,
                # `AccountState.__json__`), and the judgement reads that same object: one copy of
                # each account, without a dict of 23 fields beside it.
                self.accounts[account_id] = account
        if self._states is not None:
            self._states = _in_step(self._states, accounts)
        return count

    @property
    def due(self) -> bool:
        """Event time reached a new day since the last judgement, or moved at all once every
        stream is read to its end, or who owns what changed, or a rebalance held by the
        cooldown waits. (The detectors
        judge days and months, and the signals do not depend on how often they are asked within
        a day: tests/test_backtest_ids.py. A batch that stays within the day is only folded in.)"""
        if self.planner.rebalance_pending or self.behind or self.territories_changed:
            return True
        current = self.watermark.current
        moment = current - timedelta(days=self.settings.lateness_days) if current else None
        return moment is not None and moment != self.judged_at and self.watermark.all_caught_up

    @property
    def behind(self) -> bool:
        """The watermark (less the allowed lateness) is on a later day than the last judgement."""
        current = self.watermark.current
        if current is None:
            return False
        moment = current - timedelta(days=self.settings.lateness_days)
        return self.judged_at is None or moment.date() > self.judged_at.date()

    def judge(self, step_days: bool = True) -> Evaluation | None:
        """Judge the company at the watermark (less the allowed lateness), or, with `step_days`,
        at the start of the next day when the watermark is further ahead: a worker catching up
        then judges every day in turn, as the backtest does, and a shock found on one day makes
        its own proposal before the next day's news (call it while `behind`)."""
        moment = self.watermark.current
        if moment is None:
            return None
        # Allowed lateness: producers interleave partitions, so records of a moment may still be
        # in flight on one partition while another has moved on; judge that much behind.
        moment -= timedelta(days=self.settings.lateness_days)
        catching_up = False
        if step_days and self.judged_at is not None:
            next_day = datetime.combine(self.judged_at.date() + timedelta(days=1), time(), self.judged_at.tzinfo)
            if next_day.date() < moment.date():
                moment, catching_up = next_day, True
        first_event_at = self.watermark.first_event_at
        assert first_event_at is not None, "a watermark with a current time has seen an event"
        if self._states is None:  # rows recovered from the changelog are dicts
            self._states = sorted((planner_state(row) for row in self.accounts.values()), key=_account_id)
        evaluation = self.planner.evaluate(
            self._states,
            (RepState.from_dict(row) for row in self.reps.values()),
            in_id_order=True,
            watermark=moment,
            first_event_at=first_event_at,
            # A week's travel question is asked once caught up, not on a day of history.
            ask_travel=not catching_up,
        )
        self.judged_at = moment
        self.territories_changed = False
        return evaluation

    def checkpoint(self) -> None:
        """Save the planner's and the watermark's state. Call it after the judgement's signals
        and proposal are published: a crash in between judges the same moment again after the
        restart, and the repeats carry the same ids (`planner.planner.stable_id`).

        Each part of the planner's state is a record of its own, written only when it changed
        (every write is a changelog record). A part the broker would refuse as one record (the
        order ids of a long catch-up, say) is written in pieces of a third of `max_record_bytes`
        (escaping the JSON text again can double it), pieces first."""
        state = self.planner.state_dict(only=self.planner.take_changed_parts())
        records = {f"planner.{part}": value for part, value in state.items()}
        records["watermark"] = self.watermark.state_dict()
        records["input"] = dict(sorted(self.input_offsets.items()))
        parts = self.planner.state_part_names()
        gone = set((self.meta.get("planner") or {}).get("parts", [])) - set(parts)
        records["planner"] = {"parts": parts, "judged_at": self.judged_at.isoformat() if self.judged_at else None}
        for key, value in records.items():
            encoded = json.dumps(value, sort_keys=True)
            if self._written.get(key) == encoded:
                continue
            piece = max(1, self.settings.max_record_bytes // 3)
            if len(encoded) + len(key) > piece:
                pieces = [encoded[start : start + piece] for start in range(0, len(encoded), piece)]
                for n, text in enumerate(pieces):
                    self.meta[f"{key}#{n}"] = text
                value = {"$pieces": len(pieces)}
            self.meta[key] = value
            self._written[key] = encoded
        # Parts no longer listed (a judged day's orders) go once the list without them is
        # written: a restart in between reads the parts of the list it finds.
        for part in sorted(gone):
            _delete_record(self.meta, f"planner.{part}")
            self._written.pop(f"planner.{part}", None)

    def solve(self, request: RebalanceRequest) -> Proposal | None:
        """Run the rebalancer the request asks for (blocking: CP-SAT) and build the proposal;
        None for a travel request whose answer saves too little to be worth a review
        (TERRITORY_TRAVEL_PROPOSAL_MIN_SAVING), or has no answer: nothing was out of balance; and
        for one of a week already past while the worker catches up on history (no solve)."""
        return self.solver(request)()

    def solver(self, request: RebalanceRequest) -> Callable[[], Proposal | None]:
        """`solve` of the request, to call later: what it reads of the session and the planner
        (the moment judged, the shocks, whether catching up) is read now, so the call can run
        in a thread while the planner judges on."""
        if request.mode == "travel" and self.behind:
            return lambda: None
        moment = self.judged_at or self.watermark.current
        assert moment is not None, "a request comes from a judgement, at a watermark"
        proposal_of = self.planner.proposal_of(request, moment)
        settings = self.settings
        common: _SolverOptions = {
            "candidate_reps": settings.candidate_reps,
            "time_limit_s": settings.solver_time_limit_s,
            "num_workers": settings.solver_workers,
        }

        def solve(accounts: list[Account], reps: list[Rep]) -> RebalanceResult:
            if request.mode == "place":
                return place_accounts(accounts, reps, tolerance=request.tolerance, **common)
            if request.mode == "travel":
                return minimal_moves(
                    accounts,
                    reps,
                    tolerance=request.tolerance,
                    metrics=settings.metric_list,
                    objective="travel",
                    max_moves=request.max_moves,
                    **common,
                )
            return minimal_moves(
                accounts,
                reps,
                tolerance=request.tolerance,
                metrics=settings.metric_list,
                objective=settings.rebalance_objective,
                **common,
            )

        def run() -> Proposal | None:
            if request.districts is None:
                result = solve(request.accounts, request.reps)
            else:
                result = by_district(request.accounts, request.reps, request.districts, solve)
            if request.mode == "travel" and not saves_travel(result, settings.travel_proposal_min_saving):
                return None
            proposal = proposal_of(result)
            # One curve for the company; under district scope each district would need its own.
            if request.mode == "minimal_moves" and result.moves and request.districts is None:
                # What each extra move buys, for the review page and the weekly report.
                halved: _SolverOptions = {**common, "time_limit_s": settings.solver_time_limit_s / 2}
                curve = trade_off_curve(
                    request.accounts,
                    request.reps,
                    tolerance=request.tolerance,
                    metrics=settings.metric_list,
                    max_points=CURVE_POINTS,
                    **halved,
                )
                proposal = proposal.with_(curve=tuple(asdict(point) for point in curve))
            return proposal

        return run


def saves_travel(result: RebalanceResult, min_saving: float) -> bool:
    """Whether a travel answer moves accounts and saves at least `min_saving` of the travel.

    >>> answer = RebalanceResult("optimal", (object(),), (), (), 950.0, 950.0, 0.0, 0.1, 0.1,
    ...                          objective_kind="travel", travel_km_before=1000.0, travel_km_after=950.0)
    >>> saves_travel(answer, 0.02), saves_travel(answer, 0.1)
    (True, False)
    """
    if not result.moves or result.travel_km_before is None or result.travel_km_after is None:
        return False
    if result.travel_km_before <= 0:
        return False
    return (result.travel_km_before - result.travel_km_after) / result.travel_km_before >= min_saving
