"""Offline rebalancing: `territory rebalance` on CSV files, with what-if scenarios.

Reads units (accounts, postal areas, whatever a territory is made of) and reps from
CSV files, runs the same rebalancer as the live worker (:func:`rebalancer.minimal_moves`)
on them and on what-if scenarios (a rep leaves, a rep is added, another tolerance), and
renders the proposals as text and as a JSON document a manager can review.

Pure I/O and orchestration, no Kafka and no database. The Typer command in
``territory/cli.py`` parses the options, prints, and picks the exit status.

Files (read by ``connectors.tables`` with the CSV reader and the cell toolkit of
``territory import``: UTF-8 with or without BOM; the delimiter , ; tab or | is taken from
the header; header names are case-insensitive; extra columns are ignored; numbers may
have a decimal comma and digit grouping, booleans read true/yes/y/1/x/on and
false/no/n/0/off in any case, see ``connectors.values``):

- UNITS.csv: ``unit_id, lat, lon, potential`` required; ``workload`` (default 0),
  ``rep_id`` (empty: unassigned, the unit must be placed), ``locked`` (default false),
  ``segment`` (empty: none; a unit with a segment only goes to reps serving it).
- REPS.csv: ``rep_id, home_lat, home_lon`` required; ``capacity_fte`` (default 1.0),
  ``max_travel_km`` (default: no limit), ``segments`` (the segments the rep serves,
  ``;``-separated, spaces around each stripped; empty: every segment; quote the cell in a
  ``;``-delimited file), ``min_accounts`` and ``max_accounts`` (whole numbers >= 0: the
  fewest and most units the rep holds after the proposal; empty: no cap), ``min_workload``
  and ``max_workload`` (numbers >= 0, in the units' workload unit: the least and most total
  workload the rep holds after the proposal; empty: no cap), ``district`` and
  ``sales_region`` (labels: the rep's sales district and the region it belongs to),
  ``travel_factor`` (a number > 0: what one straight-line km from the rep's home costs in
  ``--objective travel`` and ``--curve travel``, e.g. 1.3 for a city; empty: 1).
- EDGES.csv: ``unit_a, unit_b``: neighbouring units; territories stay connected.

Segments restrict new assignments only: a unit stays with its current rep whatever its
segment. Fair shares stay company-wide (see docs/REBALANCER.md, "Segments and caps").

``--objective travel --max-moves M``: the least total travel (km x travel_factor, straight
line) with every rep in band and at most M moves; ``--curve travel``: that for every budget
from the fewest moves up (docs/REBALANCER.md, "The travel trade-off").

Problems are reported as ``FILE line N, column C: what is wrong``, N being the line of the
file (the header is line 1; a quoted cell spanning lines counts its lines).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core import records
from connectors.tables import (
    BAD,
    CellError,
    InputError,
    Problems,
    flag,
    identifier,
    labels,
    number_above_0,
    number_at_least_0,
    number_in,
    optional,
    read_table,
    whole_number_at_least_0,
)
from core.formatting import amount, signed_percent, significant_percent
from rebalancer import (
    Account,
    CurvePoint,
    RebalanceResult,
    Rep,
    RepBalance,
    TravelPoint,
    minimal_moves,
    trade_off_curve,
)
from rebalancer.scope import by_district, segment_pools

__all__ = [
    "CURVES",
    "EDGE_COLUMNS",
    "METRICS",
    "OBJECTIVES",
    "REP_COLUMNS",
    "UNIT_COLUMNS",
    "InputError",
    "Inputs",
    "Options",
    "Proposal",
    "Scenario",
    "build_scenarios",
    "exit_status",
    "parse_add_rep",
    "parse_curve",
    "parse_metrics",
    "proposal_document",
    "read_edges",
    "read_districts",
    "read_inputs",
    "read_reps",
    "read_units",
    "render_comparison",
    "render_proposal",
    "run_scenarios",
    "write_document",
]

#: (required, optional) columns of each file.
UNIT_COLUMNS = (("unit_id", "lat", "lon", "potential"), ("workload", "rep_id", "locked", "segment"))
REP_COLUMNS = (
    ("rep_id", "home_lat", "home_lon"),
    (
        "capacity_fte",
        "max_travel_km",
        "segments",
        "min_accounts",
        "max_accounts",
        "travel_factor",
        "district",
        "min_workload",
        "max_workload",
        "sales_region",
    ),
)
SCOPES = ("company", "district", "segment_pool")
EDGE_COLUMNS = (("unit_a", "unit_b"), ())

METRICS = ("potential", "workload")
OBJECTIVES = ("moves", "moved_potential", "travel")
#: What ``--curve`` traces against the number of moves (the bare flag: the first).
CURVES = ("imbalance", "travel")
#: Statuses that carry a proposal (see rebalancer.STATUSES).
PROPOSAL_STATUSES = ("optimal", "feasible", "balanced")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Inputs:
    """What the files hold, validated."""

    units: tuple[Account, ...]
    reps: tuple[Rep, ...]
    adjacency: tuple[tuple[str, str], ...] | None = None  # None: no EDGES.csv given
    notes: tuple[str, ...] = ()  # things worth telling the user that are not errors
    districts: Mapping[str, str | None] = field(default_factory=dict)  # rep -> its reps.csv district


@dataclass(frozen=True)
class Options:
    """Solver options shared by every scenario."""

    tolerance: float = 0.10
    metrics: tuple[str, ...] = ("potential",)
    objective: str = "moves"
    max_moves: int | None = None
    candidate_reps: int = 3
    time_limit_s: float = 10.0
    num_workers: int = 2
    scope: str = "company"

    def check(self) -> None:
        _check_tolerance(self.tolerance, "--tolerance")
        if not self.metrics or any(m not in METRICS for m in self.metrics):
            raise InputError(
                f"--metric must be {' or '.join(METRICS)} or both (comma-separated), got {','.join(self.metrics)!r}"
            )
        if self.objective not in OBJECTIVES:
            raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.objective == "travel" and self.max_moves is None:
            fewest = ", ".join(o for o in OBJECTIVES if o != "travel")
            raise InputError(
                f"--objective must be one of {fewest} without --max-moves: --objective travel needs a budget: "
                "--max-moves M (without one, the least travel rewrites the whole map; --curve travel shows what "
                "each budget buys)"
            )
        if self.max_moves is not None and self.max_moves < 0:
            raise InputError(f"--max-moves must be >= 0, got {self.max_moves}")
        if self.candidate_reps < 1:
            raise InputError(f"--candidate-reps must be >= 1, got {self.candidate_reps}")
        if not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise InputError(f"--time-limit must be a number of seconds > 0, got {self.time_limit_s:g}")
        if self.num_workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.num_workers}")
        if self.scope not in SCOPES:
            raise InputError(f"--scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.scope != "company" and self.max_moves is not None:
            # One budget cannot be split between independent groups without choosing for them.
            raise InputError(f"--scope {self.scope} takes no --max-moves (each group is solved alone)")


@dataclass(frozen=True)
class Scenario:
    """One input to solve: the base case or a what-if derived from it."""

    name: str  # "base", "drop R7", "add R11", "tolerance 5%", "drop R7 + add R11"
    units: tuple[Account, ...]
    reps: tuple[Rep, ...]
    tolerance: float


@dataclass(frozen=True)
class Proposal:
    """A scenario and what the rebalancer made of it."""

    scenario: Scenario
    result: RebalanceResult
    options: Options
    curve: tuple[CurvePoint, ...] | None = None  # when asked (--curve, --curve imbalance)
    travel_curve: tuple[TravelPoint, ...] | None = None  # when asked (--curve travel)

    @property
    def has_proposal(self) -> bool:
        return self.result.status in PROPOSAL_STATUSES

    @property
    def moved_potential(self) -> float:
        return math.fsum(m.potential for m in self.result.moves)

    @property
    def imbalance_before(self) -> float:
        return self.result.imbalance_before

    @property
    def imbalance_after(self) -> float:
        return self.result.imbalance_after

    def worst_after(self) -> tuple[str, str, float] | None:
        """(rep_id, metric, deviation) of the rep furthest from fair share after."""
        worst = None
        for balance in self.result.after:
            for metric, deviation in _deviations(balance, self.options.metrics).items():
                if worst is None or abs(deviation) > abs(worst[2]):
                    worst = (balance.rep_id, metric, deviation)
        return worst

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rebalancer's own ``to_dict()`` with moves keyed by ``unit_id``."""
        body = self.result.to_dict()
        body["moves"] = [
            {
                "unit_id": m.account_id,
                "from_rep": m.from_rep,
                "to_rep": m.to_rep,
                "potential": m.potential,
                "workload": m.workload,
                "distance_km": m.distance_km,
                "reason": m.reason,
            }
            for m in self.result.moves
        ]
        body["moved_potential"] = self.moved_potential
        body["max_moves"] = self.options.max_moves
        document = {"scenario": self.scenario.name, **body}
        if self.curve is not None:
            document["curve"] = [
                {
                    "moves": p.moves,
                    "imbalance": p.imbalance,
                    "status": p.status,
                    "moves_used": p.moves_used,
                    "bound": p.bound,
                }
                for p in self.curve
            ]
        if self.travel_curve is not None:
            document["travel_curve"] = [asdict(p) for p in self.travel_curve]
        return document


# --------------------------------------------------------------------------- reading


def read_inputs(units: Path, reps: Path, adjacency: Path | None = None) -> Inputs:
    """Read and cross-check the files; raises :class:`InputError` listing the problems
    of both the units and the reps file (edges are checked once the units are good)."""
    problems: list[str] = []
    unit_rows: tuple[Account, ...] = ()
    rep_rows: tuple[Rep, ...] = ()
    try:
        unit_rows = read_units(units)
    except InputError as error:
        problems.append(str(error))
    try:
        rep_rows = read_reps(reps)
    except InputError as error:
        problems.append(str(error))
    if problems:
        raise InputError("\n".join(problems))
    edges = read_edges(adjacency, unit_rows, units_name=str(units)) if adjacency is not None else None
    notes = tuple(_notes(unit_rows, rep_rows, units, reps))
    return Inputs(unit_rows, rep_rows, edges, notes, read_districts(reps))


def read_districts(path: Path) -> dict[str, str | None]:
    """Rep id -> the `district` cell of reps.csv (stripped; empty: none). Read after
    :func:`read_reps` has checked the file."""
    table = read_table(path, *REP_COLUMNS)
    return {
        row["rep_id"].strip(): (row.get("district") or "").strip() or None
        for _, row in table.rows
        if row.get("rep_id", "").strip()
    }


def read_units(path: Path) -> tuple[Account, ...]:
    table = read_table(path, *UNIT_COLUMNS)
    name, errors = table.name, Problems.of(table)
    units: list[Account] = []
    first_line: dict[str, int] = {}
    for line, row in table.rows:
        cell = errors.at(line, row)
        unit_id = cell("unit_id", identifier)
        lat = cell("lat", number_in(-90, 90))
        lon = cell("lon", number_in(-180, 180))
        potential = cell("potential", number_at_least_0)
        workload = cell("workload", optional(number_at_least_0, 0.0))
        rep_id = row.get("rep_id") or None
        locked = cell("locked", flag)
        segment = row.get("segment") or None
        if unit_id is None:
            continue
        if unit_id in first_line:
            errors.add(line, "unit_id", f"duplicate unit {unit_id!r} (first on line {first_line[unit_id]})")
            continue
        first_line[unit_id] = line
        if None in (lat, lon, potential, workload, locked):
            continue
        units.append(
            errors.build(
                line,
                Account,
                account_id=unit_id,
                potential=potential,
                workload=workload,
                lat=lat,
                lon=lon,
                rep_id=rep_id,
                locked=locked,
                segment=segment,
            )
        )
    errors.raise_if_any()
    if not units:
        raise InputError(f"{name}: no units (only a header line)")
    return tuple(units)


def read_reps(path: Path) -> tuple[Rep, ...]:
    table = read_table(path, *REP_COLUMNS)
    name, errors = table.name, Problems.of(table)
    reps: list[Rep] = []
    first_line: dict[str, int] = {}
    for line, row in table.rows:
        cell = errors.at(line, row)
        rep_id = cell("rep_id", identifier)
        home_lat = cell("home_lat", number_in(-90, 90))
        home_lon = cell("home_lon", number_in(-180, 180))
        capacity = cell("capacity_fte", optional(number_above_0, 1.0))
        max_travel = cell("max_travel_km", optional(number_at_least_0, None), none_ok=True)
        segments = cell("segments", labels)
        least = cell("min_accounts", optional(whole_number_at_least_0, None), none_ok=True)
        most = cell("max_accounts", optional(whole_number_at_least_0, None), none_ok=True)
        travel_factor = cell("travel_factor", optional(number_above_0, 1.0))
        least_work = cell("min_workload", optional(number_at_least_0, None), none_ok=True)
        most_work = cell("max_workload", optional(number_at_least_0, None), none_ok=True)
        if BAD not in (least_work, most_work) and None not in (least_work, most_work) and least_work > most_work:
            errors.add(line, "min_workload", f"must not exceed max_workload ({most_work:g}), got {least_work:g}")
            least_work = BAD
        if least is not BAD and most is not BAD and least is not None and most is not None and least > most:
            errors.add(line, "min_accounts", f"must not exceed max_accounts ({most}), got {least}")
            least = BAD
        if rep_id is None:
            continue
        if rep_id in first_line:
            errors.add(line, "rep_id", f"duplicate rep {rep_id!r} (first on line {first_line[rep_id]})")
            continue
        first_line[rep_id] = line
        if None in (home_lat, home_lon, capacity, travel_factor) or BAD in (
            max_travel,
            least,
            most,
            least_work,
            most_work,
        ):
            continue
        reps.append(
            errors.build(
                line,
                Rep,
                rep_id=rep_id,
                home_lat=home_lat,
                home_lon=home_lon,
                capacity_fte=capacity,
                max_travel_km=max_travel,
                segments=segments,
                min_accounts=least,
                max_accounts=most,
                travel_factor=travel_factor,
                min_workload=least_work,
                max_workload=most_work,
            )
        )
    errors.raise_if_any()
    if not reps:
        raise InputError(f"{name}: no reps (only a header line)")
    return tuple(reps)


def read_edges(
    path: Path, units: Sequence[Account], *, units_name: str = "the units file"
) -> tuple[tuple[str, str], ...]:
    """Neighbouring pairs, each once, without self-pairs; every unit must be known."""
    table = read_table(path, *EDGE_COLUMNS)
    known = {u.account_id for u in units}
    errors = Problems.of(table)
    pairs: dict[frozenset[str], tuple[str, str]] = {}
    for line, row in table.rows:
        cell = errors.at(line, row)
        ends = [cell(column, identifier) for column in EDGE_COLUMNS[0]]
        for column, unit_id in zip(EDGE_COLUMNS[0], ends):
            if unit_id is not None and unit_id not in known:
                errors.add(line, column, f"unknown unit {unit_id!r} (not in {units_name})")
        a, b = ends
        if a in known and b in known and a != b:
            pairs.setdefault(frozenset((a, b)), (a, b))
    errors.raise_if_any()
    return tuple(pairs.values())


def _notes(units: Sequence[Account], reps: Sequence[Rep], units_path: Path, reps_path: Path) -> Iterable[str]:
    rep_ids = {r.rep_id for r in reps}
    unassigned = [u for u in units if u.rep_id is None]
    foreign = sorted({u.rep_id for u in units if u.rep_id is not None and u.rep_id not in rep_ids})
    if unassigned:
        yield f"{len(unassigned)} unit{'s' if len(unassigned) != 1 else ''} without a rep: each placement is a move"
    if foreign:
        count = sum(1 for u in units if u.rep_id in foreign)
        yield (
            f"{count} unit{'s' if count != 1 else ''} in {units_path} name reps not in {reps_path} "
            f"({_some(foreign)}): they count as unassigned and will be placed"
        )
    stray_locks = [u.account_id for u in units if u.locked and u.rep_id not in rep_ids]
    if stray_locks:
        yield f"locked units without a rep in {reps_path} cannot stay put; their lock is ignored: {_some(stray_locks)}"


# --------------------------------------------------------------------------- options and scenarios


def parse_metrics(text: str) -> tuple[str, ...]:
    """ "potential,workload" -> ("potential", "workload"); order kept, repeats dropped."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    wrong = [n for n in names if n not in METRICS]
    if wrong or not names:
        raise InputError(f"--metric must be {' or '.join(METRICS)} or both (comma-separated), got {text!r}")
    return tuple(dict.fromkeys(names))


def parse_curve(text: str | None) -> str | None:
    """ "travel" -> "travel"; None (no --curve) stays None; any case, spaces stripped."""
    if text is None:
        return None
    kind = text.strip().lower()
    if kind not in CURVES:
        raise InputError(f"--curve must be {' or '.join(CURVES)}, got {text!r}")
    return kind


def parse_add_rep(text: str) -> Rep:
    """ "ID,LAT,LON[,CAPACITY_FTE[,MAX_TRAVEL_KM]]" -> Rep."""
    parts = [part.strip() for part in text.split(",")]
    usage = "ID,LAT,LON[,CAPACITY_FTE[,MAX_TRAVEL_KM]], e.g. R11,52.52,13.40,1.0"
    if not 3 <= len(parts) <= 5 or not parts[0]:
        raise InputError(f"--add-rep {text!r}: expected {usage}")
    fields = [
        ("LAT", number_in(-90, 90)),
        ("LON", number_in(-180, 180)),
        ("CAPACITY_FTE", optional(number_above_0, 1.0)),
        ("MAX_TRAVEL_KM", optional(number_at_least_0, None)),
    ]
    values = []
    for (label, parse), value in zip(fields, parts[1:] + [""] * (4 - len(parts[1:]))):
        try:
            values.append(parse(value))
        except CellError as error:
            raise InputError(f"--add-rep {text!r}: {label} {error}") from None
    return Rep(parts[0], values[0], values[1], capacity_fte=values[2], max_travel_km=values[3])


def build_scenarios(
    inputs: Inputs,
    options: Options,
    *,
    drop_reps: Sequence[str] = (),
    add_reps: Sequence[Rep] = (),
    compare_tolerances: Sequence[float] = (),
    combined: bool = False,
) -> list[Scenario]:
    """The base case first, then one scenario per what-if option, each applied to the
    base input on its own; with ``combined``, one more with every drop and add at once."""
    rep_ids = [r.rep_id for r in inputs.reps]
    drops = list(dict.fromkeys(drop_reps))
    for rep_id in drops:
        if rep_id not in rep_ids:
            raise InputError(f"--drop-rep {rep_id}: no such rep (reps: {_some(rep_ids)})")
    added: dict[str, Rep] = {}
    for rep in add_reps:
        if rep.rep_id in rep_ids:
            raise InputError(f"--add-rep {rep.rep_id}: a rep with that id is already in the reps file")
        if rep.rep_id in added:
            raise InputError(f"--add-rep {rep.rep_id}: given twice")
        added[rep.rep_id] = rep
    for tolerance in compare_tolerances:
        _check_tolerance(tolerance, "--compare-tolerance")
    if combined and len(drops) + len(added) < 2:
        raise InputError("--combined needs at least two --drop-rep / --add-rep options to combine")

    base = Scenario("base", inputs.units, inputs.reps, options.tolerance)
    scenarios = [base]
    for rep_id in drops:
        scenarios.append(_changed(base, f"drop {rep_id}", drop=[rep_id]))
    for rep in added.values():
        scenarios.append(_changed(base, f"add {rep.rep_id}", add=[rep]))
    for tolerance in dict.fromkeys(compare_tolerances):
        scenarios.append(replace(base, name=f"tolerance {significant_percent(tolerance)}", tolerance=tolerance))
    if combined:
        name = " + ".join([f"drop {r}" for r in drops] + [f"add {r}" for r in added])
        scenarios.append(_changed(base, name, drop=drops, add=list(added.values())))
    for scenario in scenarios:
        if not scenario.reps:
            raise InputError(f"scenario {scenario.name!r} leaves no rep to balance between")
    return scenarios


def _changed(base: Scenario, name: str, *, drop: Sequence[str] = (), add: Sequence[Rep] = ()) -> Scenario:
    """Dropped reps leave: their units must be placed, and their locks no longer hold."""
    gone = set(drop)
    units = tuple(replace(u, locked=False) if u.rep_id in gone and u.locked else u for u in base.units)
    reps = tuple(r for r in base.reps if r.rep_id not in gone) + tuple(add)
    return Scenario(name, units, reps, base.tolerance)


# --------------------------------------------------------------------------- solving


def run_scenarios(
    scenarios: Sequence[Scenario],
    options: Options,
    *,
    adjacency: Sequence[tuple[str, str]] | None = None,
    curve: str | bool | None = None,
    progress: Callable[[str], None] | None = None,
    districts: Mapping[str, str | None] | None = None,
) -> list[Proposal]:
    """Solve every scenario in turn (each with the full time limit); with ``curve`` also
    the trade-off curve of the first (base) one: "imbalance" (or True) or "travel".
    ``progress`` gets a line per step."""
    kind = parse_curve(CURVES[0] if curve is True else (curve or None))
    say = progress or (lambda _line: None)
    steps = len(scenarios) + (1 if kind else 0)
    proposals = []
    for step, scenario in enumerate(scenarios, start=1):
        say(
            f"[{step}/{steps}] {scenario.name}: solving {len(scenario.units)} units, {len(scenario.reps)} reps, "
            f"tolerance ±{significant_percent(scenario.tolerance)} (time limit {options.time_limit_s:g} s)"
        )
        result = _solve(scenario, options, adjacency, districts)
        found = f", {_count(len(result.moves), 'move')}" if result.status in PROPOSAL_STATUSES else ""
        say(f"[{step}/{steps}] {scenario.name}: {result.status}{found} in {result.seconds:.1f} s")
        proposals.append(Proposal(scenario, result, options))
    if kind == "travel":
        scenario = scenarios[0]
        say(f"[{steps}/{steps}] {scenario.name}: travel curve (time limit {options.time_limit_s:g} s)")
        travel_points = _travel_curve(scenario, options, adjacency)
        say(f"[{steps}/{steps}] {scenario.name}: travel curve with {_count(len(travel_points), 'point')}")
        proposals[0] = replace(proposals[0], travel_curve=travel_points)
    elif kind is not None:
        scenario = scenarios[0]
        say(f"[{steps}/{steps}] {scenario.name}: trade-off curve (time limit {options.time_limit_s:g} s)")
        points = _trade_off_curve(scenario, options, adjacency)
        say(f"[{steps}/{steps}] {scenario.name}: curve with {_count(len(points), 'point')}")
        proposals[0] = replace(proposals[0], curve=points)
    return proposals


def _solve(
    scenario: Scenario,
    options: Options,
    adjacency: Sequence[tuple[str, str]] | None,
    districts: Mapping[str, str | None] | None = None,
) -> RebalanceResult:
    def solve(units: Sequence[Account], reps: Sequence[Rep]) -> RebalanceResult:
        ids = {unit.account_id for unit in units}
        return minimal_moves(
            units,
            reps,
            tolerance=scenario.tolerance,
            metrics=options.metrics,
            objective=options.objective,
            max_moves=options.max_moves,
            # A district's contiguity is among its own units.
            adjacency=None if adjacency is None else [(a, b) for a, b in adjacency if a in ids and b in ids],
            candidate_reps=options.candidate_reps,
            time_limit_s=options.time_limit_s,
            num_workers=options.num_workers,
        )

    if options.scope == "district":
        return by_district(list(scenario.units), list(scenario.reps), districts or {}, solve)
    if options.scope == "segment_pool":
        pools = segment_pools({rep.rep_id: rep.segments for rep in scenario.reps})
        return by_district(list(scenario.units), list(scenario.reps), pools, solve)
    return solve(scenario.units, scenario.reps)


def _trade_off_curve(
    scenario: Scenario, options: Options, adjacency: Sequence[tuple[str, str]] | None
) -> tuple[CurvePoint, ...]:
    return trade_off_curve(
        scenario.units,
        scenario.reps,
        tolerance=scenario.tolerance,
        metrics=options.metrics,
        adjacency=adjacency,
        candidate_reps=options.candidate_reps,
        time_limit_s=options.time_limit_s,
        num_workers=options.num_workers,
    )


def _travel_curve(
    scenario: Scenario, options: Options, adjacency: Sequence[tuple[str, str]] | None
) -> tuple[TravelPoint, ...]:
    return trade_off_curve(
        scenario.units,
        scenario.reps,
        tolerance=scenario.tolerance,
        metrics=options.metrics,
        adjacency=adjacency,
        candidate_reps=options.candidate_reps,
        time_limit_s=options.time_limit_s,
        num_workers=options.num_workers,
        kind="travel",
    )


def exit_status(proposals: Sequence[Proposal]) -> int:
    """0 when the base case has a proposal (or nothing to do), else 1."""
    return 0 if proposals[0].has_proposal else 1


# --------------------------------------------------------------------------- output


def proposal_document(proposals: Sequence[Proposal]) -> dict[str, Any]:
    """The base proposal at the top level, the what-ifs under ``scenarios``."""
    return {**proposals[0].to_dict(), "scenarios": [p.to_dict() for p in proposals[1:]]}


def write_document(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def proposal_payload(proposal: Proposal) -> dict[str, Any]:
    """The proposal in the shape the worker stores (docs/EVENTS.md), for what reads that
    shape (GeoJSON, the maps): the result's fields, units as `accounts` (with their segment
    when they have one), rep homes as `reps`, the scenario's name as `proposal_id`."""
    return {
        **proposal.result.to_dict(),
        "proposal_id": proposal.scenario.name,
        "mode": "minimal_moves",
        "accounts": [
            {
                "account_id": u.account_id,
                "lat": u.lat,
                "lon": u.lon,
                "rep_id": u.rep_id,
                "potential": u.potential,
                **({"segment": u.segment} if u.segment else {}),
            }
            for u in proposal.scenario.units
        ],
        "reps": [{"rep_id": r.rep_id, "home_lat": r.home_lat, "home_lon": r.home_lon} for r in proposal.scenario.reps],
    }


def proposal_record(proposal: Proposal) -> records.Proposal:
    """The proposal as the record the review's views read (`proposal_payload` read through
    ``core.records.Proposal.from_json``); an offline run judges no moment and answers no
    signal, so its times are now and it has no triggers."""
    now = datetime.now(timezone.utc).isoformat()
    return records.Proposal.from_json(
        {"created_at": now, "event_time": now, "trigger_signals": [], **proposal_payload(proposal)}
    )


def proposal_geojson(proposal: Proposal) -> dict[str, Any]:
    """The proposal as GeoJSON, in the shape of the review server's
    ``/api/proposals/{id}.geojson`` (:func:`alerts.geojson.proposal_geojson`): units as
    accounts (with their segment when they have one), moves as lines to the new rep's home,
    rep homes; ``scenario`` names the scenario."""
    from alerts.geojson import proposal_geojson as as_geojson

    return {"type": "FeatureCollection", "scenario": proposal.scenario.name, **as_geojson(proposal_record(proposal))}


def write_scenario_page(path: Path, proposals: Sequence[Proposal]) -> None:
    """One self-contained HTML page (alerts.scenario_page): the base case and every scenario
    side by side, each on the same interactive map."""
    from alerts.scenario_page import scenario_page_html

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scenario_page_html([proposal_record(p) for p in proposals]), encoding="utf-8")


def write_charts(directory: Path, proposal: Proposal) -> list[Path]:
    """The pictures a manager looks at first: the before/after map, each rep's share
    against the band, and (when computed) the trade-off curve (curve.png) or the travel
    curve (travel_curve.png). Returns the files."""
    from alerts.charts import (
        MapAccount,
        MapRep,
        moves_curve_png,
        share_chart_png,
        territory_map_png,
        travel_curve_png,
    )

    directory.mkdir(parents=True, exist_ok=True)
    document = proposal.result.to_dict()
    title = f"{proposal.scenario.name}: {len(proposal.result.moves)} moves ({proposal.result.status})"
    pictures = {
        "map.png": territory_map_png(
            [MapAccount(u.account_id, u.lat, u.lon, u.rep_id, u.potential) for u in proposal.scenario.units],
            [MapRep(r.rep_id, r.home_lat, r.home_lon) for r in proposal.scenario.reps],
            document,
            title=title,
        ),
        "shares.png": share_chart_png(document),
    }
    if proposal.curve:
        pictures["curve.png"] = moves_curve_png(
            [{"moves": p.moves, "imbalance": p.imbalance} for p in proposal.curve],
            tolerance=proposal.scenario.tolerance,
            title="Best imbalance for at most M moves",
        )
    if proposal.travel_curve:
        pictures["travel_curve.png"] = travel_curve_png(
            [asdict(p) for p in proposal.travel_curve], title="Least travel for at most M moves, every rep in band"
        )
    written = []
    for name, png in pictures.items():
        path = directory / name
        path.write_bytes(png)
        written.append(path)
    return written


def render_proposal(proposal: Proposal, *, max_listed: int = 20, more_hint: str = "") -> str:
    """A header line, the solver figures, then the moves (the first ``max_listed``)."""
    scenario, result, options = proposal.scenario, proposal.result, proposal.options
    header = (
        f"== {scenario.name}: {len(scenario.units)} units, {len(scenario.reps)} reps, tolerance "
        f"±{significant_percent(scenario.tolerance)}, metric {','.join(options.metrics)}, "
        f"objective {options.objective}"
    )
    if options.max_moves is not None:
        header += f", at most {_count(options.max_moves, 'move')}"
    lines = [header + " =="]
    moved = f" ({amount(proposal.moved_potential)} potential)" if result.moves else ""
    figures = [
        ("status", f"{result.status} in {result.seconds:.2f} s"),
        ("moves", f"{len(result.moves)}{moved}" if proposal.has_proposal else "-"),
        (
            "objective",
            f"{_figure(result.objective)}  bound {_figure(result.bound)}  gap "
            + (f"{result.gap:.1%}" if result.gap is not None else "-"),
        ),
        (
            "imbalance",
            f"{proposal.imbalance_before:.1%} -> {proposal.imbalance_after:.1%}  (worst after: {_worst(proposal)})"
            if proposal.has_proposal
            else f"{proposal.imbalance_before:.1%} (no proposal)",
        ),
    ]
    if result.travel_km_before is not None and result.travel_km_after is not None:
        figures.append(
            (
                "travel",
                f"{_km(result.travel_km_before)} -> {_km(result.travel_km_after)} km"
                f" (straight line x travel_factor; {_km(result.travel_km_before - result.travel_km_after)} km saved)"
                if proposal.has_proposal
                else f"{_km(result.travel_km_before)} km (no proposal)",
            )
        )
    if result.explanation:
        figures.append(("why", result.explanation))
    figures += [("note", note) for note in result.notes]
    lines += [f"  {label:<10} {value}" for label, value in figures]
    if proposal.curve is not None:
        points = ", ".join(f"{p.moves}: {p.imbalance:.1%}" for p in proposal.curve)
        lines.append(f"  {'curve':<10} best imbalance by moves: {points}")
    if proposal.travel_curve is not None:
        lines += _travel_curve_lines(proposal.travel_curve)
    if result.status == "balanced":
        lines.append("  nothing to move: every rep is inside the band")
    elif result.moves:
        rows = [
            [m.account_id, m.from_rep or "-", m.to_rep, amount(m.potential), f"{m.distance_km:.1f}"]
            for m in result.moves[:max_listed]
        ]
        lines += ["  " + line for line in _table(["unit", "from", "to", "potential", "km"], rows, "lllrr")]
        if len(result.moves) > max_listed:
            lines.append(f"  ... {len(result.moves) - max_listed} more{more_hint}")
    return "\n".join(lines)


def render_comparison(proposals: Sequence[Proposal]) -> str:
    """One row per scenario: status, moves, moved potential, imbalance after, worst rep
    (and the travel after, for the travel objective)."""
    travel = proposals[0].options.objective == "travel"
    rows = []
    for p in proposals:
        if p.has_proposal:
            row = [
                p.scenario.name,
                p.result.status,
                str(len(p.result.moves)),
                amount(p.moved_potential),
                f"{p.imbalance_after:.1%}",
                _worst(p),
            ]
            if travel:
                after = p.result.travel_km_after
                row.insert(5, _km(after) if after is not None else "-")
            rows.append(row)
        else:
            rows.append([p.scenario.name, p.result.status, "-", "-", "-", "-", *(["-"] if travel else [])])
    headers = ["scenario", "status", "moves", "moved potential", "imbalance after", "worst rep"]
    if travel:
        headers.insert(5, "travel km after")
    return "\n".join(_table(headers, rows, "llrrrrl" if travel else "llrrrl"))


def _travel_curve_lines(curve: Sequence[TravelPoint]) -> list[str]:
    """The travel curve as a table: the least travel for each budget and what the extra
    moves since the previous point saved, per move."""
    if not curve:
        return [f"  {'curve':<10} no travel curve: no assignment keeps every rep in band"]
    rows = []
    previous: TravelPoint | None = None
    for point in curve:
        saved = per_move = "-"
        if previous is not None:
            saved = _km(previous.travel_km - point.travel_km)
            per_move = _km((previous.travel_km - point.travel_km) / max(point.moves - previous.moves, 1))
        rows.append(
            [
                str(point.moves),
                _km(point.travel_km),
                saved,
                per_move,
                str(point.moves_used),
                f"{point.imbalance:.1%}",
                point.status,
            ]
        )
        previous = point
    headers = ["at most M moves", "least travel km", "travel saved", "per extra move", "moves used", "imbalance"]
    table = _table([*headers, "status"], rows, "rrrrrrl")
    return [f"  {'curve':<10} least travel (km x travel_factor) by moves, every rep in band:"] + [
        "    " + line for line in table
    ]


# --------------------------------------------------------------------------- helpers: options


def _check_tolerance(value: float, option: str) -> None:
    if not (math.isfinite(value) and 0 <= value < 1):
        raise InputError(f"{option} must be a fraction in [0, 1), e.g. 0.05 for ±5%, got {value:g}")


# --------------------------------------------------------------------------- helpers: figures and text


def _deviations(balance: RepBalance, metrics: Sequence[str]) -> dict[str, float]:
    return {metric: balance.deviation_of(metric) for metric in metrics}


def _worst(proposal: Proposal) -> str:
    worst = proposal.worst_after()
    if worst is None:
        return "-"
    rep_id, metric, deviation = worst
    label = f" {metric}" if len(proposal.options.metrics) > 1 else ""
    return f"{rep_id}{label} {signed_percent(deviation, 1)}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    return [line(headers)] + [line(row) for row in rows]


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if float(value).is_integer() else f"{value:,.2f}"


def _km(value: float) -> str:
    return f"{value:,.1f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
