"""A CRM's accounts export (+ its users export, + a sales history) -> the rebalancer's inputs.

`territory rebalance --accounts EXPORT.csv --format FORMAT` reads the accounts as `territory
import` does (the format's profile, `--map`, owner names resolved through `--owners`, report
footers skipped, every row through the contract), and turns them into units without Kafka:

* **location**: the export's coordinates, else its postal code + country, resolved offline as
  the contract resolves them (`core.contract`);
* **current rep**: the owner (`OwnerId`, `Company owner`, `Owner`, ... resolved like the import);
* **reps**: the users export given with `--owners` (the same CRM's users format; Pipedrive: the
  Name + Email list), homes as `territory import` places them (the user's coordinates,
  `--rep-homes`, the user's postal code + country, `--home-from-accounts`). Inactive users and
  users who own no account of the export are left out (`--add-rep` adds someone). Without a
  users file the reps are the accounts' owners, each at the centre of their accounts;
* **potential**: `sales`, an orders export read as `--format generic --type order` with
  `sales_map` (e.g. a Data Loader export of Order: `order_id=Id account_id=AccountId
  amount=TotalAmount occurred_at=EffectiveDate`; dates in a locale format are detected as the
  import detects them): the worker's potential model (`potential.PotentialModel`) learns that
  history month by month as the planner does (`learn_from_history`, 3-month labels) and values
  every account at the month after the last order (`predict_potential`); or `potential_column`,
  a numeric column of the export (`AnnualRevenue`; empty counts 0); or, with neither, 1 per
  account (the reps are balanced on account counts);
* **segment**: the industry, with `segment_from_industry`.

Everything assumed is listed in `CrmUnits.assumed`, rows left out in `CrmUnits.skipped` (file,
line, column, reason). Pure: no Kafka, no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from connectors import pipedrive
from connectors.csv_source import CsvSource, find_column
from connectors.homes import RepHomes, centre, load_rep_homes
from connectors.importer import AUTO, load_owners, profile_for, read_export
from connectors.mapping import Context, MappingError, OwnerDirectory, Profile, RowError, bind
from connectors.salesforce import to_18
from connectors.values import NumberStyle, number, show
from core.contract import ContractError, Event, validate_envelope
from core.geocode import default_resolver
from monitor.state import apply_account_event, month_index, month_key, month_key_of_index
from potential import PotentialModel, learn_from_history, predict_potential
from rebalancer import Account, Rep

#: --format of an accounts export -> the CRM (write-back layout, users export).
ACCOUNT_FORMATS = {
    "salesforce-accounts": "salesforce",
    "hubspot-companies": "hubspot",
    "pipedrive-organizations": "pipedrive",
    "dynamics-accounts": "dynamics",
    "generic": "generic",
}
#: The users export of each CRM (--owners): a format of `territory import`, or a profile.
USERS_FORMAT: dict[str, str | Profile] = {
    "salesforce": "salesforce-users",
    "hubspot": "hubspot-users",
    "pipedrive": pipedrive.USERS,
    "dynamics": "dynamics-users",
}
#: Months the potential model's label spans (the planner's default).
LABEL_MONTHS = 3
#: Cells of the accounts export that a write-back file repeats, per CRM (Dynamics' update
#: import matches a row by them).
PASSTHROUGH = {"dynamics": ("(Do Not Modify) Account", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On")}


@dataclass
class CrmUnits:
    """The rebalancer's inputs from a CRM export, and what was assumed to get them."""

    crm: str
    accounts: tuple[Account, ...]
    reps: tuple[Rep, ...]
    assumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "FILE line N, column 'C': reason"
    owner_names: dict[str, str] = field(default_factory=dict)  # rep id -> name (users file)
    passthrough: dict[str, dict[str, str]] = field(default_factory=dict)  # account id -> cells
    potential_source: str = "count"  # "sales", "column" or "count"


def build_units(
    path: str | Path,
    format: str,
    *,
    owners: str | Path | None = None,
    rep_homes: str | Path | None = None,
    home_from_accounts: bool = False,
    sales: str | Path | None = None,
    sales_map: Mapping[str, str] | None = None,
    potential_column: str | None = None,
    segment_from_industry: bool = False,
    mappings: Mapping[str, str] | None = None,
    date_format: str | None = AUTO,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
) -> CrmUnits:
    """Read the exports; raises MappingError / CsvFormatError for a file that cannot be used
    (rows that cannot are in `skipped`)."""
    path = Path(path)
    if format not in ACCOUNT_FORMATS:
        raise MappingError(f"--format must be an accounts format ({', '.join(ACCOUNT_FORMATS)}), got {format!r}")
    if sales is not None and potential_column is not None:
        raise MappingError("--sales and --potential-column both set the potential: give one")
    crm = ACCOUNT_FORMATS[format]
    result = CrmUnits(crm, (), ())
    directory = load_owners(owners, format, delimiter=delimiter, encoding=encoding) if owners is not None else None

    # The accounts, as `territory import` reads them (dates play no part: event time "import").
    report = read_export(
        path,
        format,
        record_type="account" if format == "generic" else None,
        mappings=mappings,
        owners=directory,
        delimiter=delimiter,
        encoding=encoding,
        event_time="import",
        date_format=date_format,
    )
    result.skipped += [f"{path.name} {error}" for error in report.errors]
    events: dict[str, tuple[int, Event]] = {}
    by_coordinates = 0
    for converted in report.events:
        event = validate_envelope(converted.envelope, topic=converted.topic, key=converted.key)
        account_id = event.data["account_id"]
        if account_id in events:
            first = events[account_id][0]
            result.skipped.append(
                f"{path.name} line {converted.line}: account {account_id} again (first on line {first}); left out"
            )
            continue
        events[account_id] = (converted.line, event)
        by_coordinates += converted.envelope["data"].get("lat") is not None
    if not events:
        raise MappingError(f"{path.name}: no account could be read ({len(report.errors)} row errors)")
    result.assumed.append(
        f"{len(events)} accounts from {path.name}: {by_coordinates} placed by their coordinates, "
        f"{len(events) - by_coordinates} by postal code + country"
        + (f"; {report.footer_lines} report footer lines skipped" if report.footer_lines else "")
    )
    if directory is not None and owners is not None:
        by_name = _owners_by_name(path, format, mappings, directory, delimiter, encoding)
        if by_name:
            result.assumed.append(f"{by_name} owners resolved by name through {Path(owners).name}")
    if crm in PASSTHROUGH:
        result.passthrough = _passthrough(path, PASSTHROUGH[crm], events, delimiter, encoding)

    # Potential.
    potential: dict[str, float]
    if sales is not None:
        potential = _sales_potential(
            Path(sales), sales_map, events, crm, result, path.name, date_format, delimiter, encoding
        )
        result.potential_source = "sales"
    elif potential_column is not None:
        potential = _column_potential(path, potential_column, events, result, delimiter, encoding)
        result.potential_source = "column"
    else:
        potential = dict.fromkeys(events, 1.0)
        result.assumed.append(
            "potential: none given (--sales or --potential-column): every account counts 1, so the reps are "
            "balanced on account counts"
        )

    # Segments.
    industries = {e.data["industry"] for _, e in events.values() if e.data.get("industry")}
    if segment_from_industry:
        without = sum(1 for _, e in events.values() if not e.data.get("industry"))
        result.assumed.append(
            f"segment: the Industry column ({len(industries)} industries)"
            + (f"; {without} accounts without one have no segment" if without else "")
            + "; only reps serving a segment may take its accounts on (reps from an export serve every segment)"
        )

    accounts = []
    for account_id, (_, event) in events.items():
        if account_id not in potential:
            continue  # its potential cell was refused (in `skipped`)
        data = event.data
        segment = data.get("industry") if segment_from_industry else data.get("segment")
        accounts.append(
            Account(
                account_id=account_id,
                potential=potential[account_id],
                lat=data["lat"],
                lon=data["lon"],
                rep_id=data.get("rep_id"),
                locked=bool(data.get("locked")),
                segment=segment or None,
            )
        )
    result.accounts = tuple(accounts)

    # Reps.
    homes = load_rep_homes(rep_homes, delimiter=delimiter, encoding=encoding) if rep_homes is not None else None
    inactive: set[str] = set()  # users the users file marks inactive (said once, there)
    if owners is not None and crm in USERS_FORMAT:
        result.reps = _reps_from_users(
            Path(owners), crm, result, homes, home_from_accounts, inactive, delimiter, encoding
        )
    else:  # every rep is placed at the centre of their accounts (--home-from-accounts or not)
        result.reps = _reps_from_owners(result, homes)
    owned = {a.rep_id for a in result.accounts if a.rep_id}
    strangers = sorted(owned - {r.rep_id for r in result.reps} - inactive)
    if strangers:
        count = sum(1 for a in result.accounts if a.rep_id in strangers)
        result.assumed.append(
            f"{_count(count, 'account')} of {_count(len(strangers), 'owner')} not in the users file ({_some(strangers)}): placed with a rep"
        )
    if result.skipped:
        result.assumed.append(f"{len(result.skipped)} rows skipped (below: file, line, column, reason)")
    return result


# --------------------------------------------------------------------------- reps


def _reps_from_users(
    users: Path,
    crm: str,
    result: CrmUnits,
    homes: RepHomes | None,
    home_from_accounts: bool,
    inactive: set[str],
    delimiter: str | None,
    encoding: str,
) -> tuple[Rep, ...]:
    if home_from_accounts:
        homes = homes or RepHomes()
        for rep_id, (lat, lon, count) in _centres(result.accounts).items():
            homes.add_centre(rep_id, lat, lon, count)
    users_format = USERS_FORMAT[crm]
    report = read_export(
        users,
        users_format if isinstance(users_format, str) else "generic",
        profile=users_format if isinstance(users_format, Profile) else None,
        delimiter=delimiter,
        encoding=encoding,
        event_time="import",
        homes=homes,
    )
    result.skipped += [f"{users.name} {error}" for error in report.errors]
    counts: dict[str, int] = {}
    for account in result.accounts:
        if account.rep_id:
            counts[account.rep_id] = counts.get(account.rep_id, 0) + 1
    reps: list[Rep] = []
    idle: list[str] = []
    for converted in report.events:
        try:
            event = validate_envelope(converted.envelope, topic=converted.topic, key=converted.key)
        except ContractError as error:  # pragma: no cover - read_export validated it
            result.skipped.append(f"{users.name} {RowError(converted.line, None, error.reason, error.field)}")
            continue
        data = event.data
        rep_id = data["rep_id"]
        if data.get("name"):
            result.owner_names[rep_id] = data["name"]
        label = f"rep {rep_id}" + (f" ({data['name']})" if data.get("name") else "")
        if not data["active"]:
            inactive.add(rep_id)
            held = counts.get(rep_id, 0)
            result.assumed.append(
                f"{label} is inactive in {users.name}: left out"
                + (f", their {held} account{'s' if held != 1 else ''} placed with an active rep" if held else "")
            )
            continue
        if not counts.get(rep_id):
            idle.append(rep_id)
            continue
        reps.append(_rep(data))
    if homes is not None:
        result.assumed += homes.notes()
    if idle:
        result.assumed.append(
            f"{_count(len(idle), 'user')} of {users.name} own{'s' if len(idle) == 1 else ''} no account of the export: left out "
            f"({_some(idle)}); --add-rep ID,LAT,LON adds one"
        )
    if not reps:
        raise MappingError(f"{users.name}: no active user owns an account of the export")
    result.assumed.append(f"{len(reps)} reps from {users.name}")
    return tuple(reps)


def _reps_from_owners(result: CrmUnits, homes: RepHomes | None) -> tuple[Rep, ...]:
    centres = _centres(result.accounts)
    if not centres:
        raise MappingError("no account has an owner: give the users export with --owners")
    reps = []
    listed = 0
    for rep_id, (lat, lon, _held) in sorted(centres.items()):
        values: dict = {"rep_id": rep_id}
        if homes is not None:
            homes.fill(values)
        if values.get("home_lat") is not None:
            lat, lon = values["home_lat"], values["home_lon"]
            listed += 1
        elif values.get("postal_code") and values.get("country"):
            lat, lon = default_resolver().require(values["postal_code"], values["country"])
            listed += 1
        reps.append(Rep(rep_id, lat, lon))
    result.assumed.append(
        f"no users file (--owners): the reps are the accounts' {_count(len(reps), 'owner')}, each at the centre of "
        "their accounts" + (f" ({listed} placed by --rep-homes instead)" if listed else "")
    )
    return tuple(reps)


def _rep(data: Mapping) -> Rep:
    return Rep(
        rep_id=data["rep_id"],
        home_lat=data["home_lat"],
        home_lon=data["home_lon"],
        capacity_fte=data.get("capacity_fte") or 1.0,
        max_travel_km=data.get("max_travel_km"),
        segments=tuple(data.get("segments") or ()),
        min_accounts=data.get("min_accounts"),
        max_accounts=data.get("max_accounts"),
        travel_factor=data.get("travel_factor") or 1.0,
        min_workload=data.get("min_workload"),
        max_workload=data.get("max_workload"),
    )


def _centres(accounts: tuple[Account, ...]) -> dict[str, tuple[float, float, int]]:
    points: dict[str, list[tuple[float, float]]] = {}
    for account in accounts:
        if account.rep_id:
            points.setdefault(account.rep_id, []).append((account.lat, account.lon))
    return {rep_id: centre(found) for rep_id, found in points.items()}


# --------------------------------------------------------------------------- potential


def _column_potential(
    path: Path,
    column: str,
    events: Mapping[str, tuple[int, Event]],
    result: CrmUnits,
    delimiter: str | None,
    encoding: str,
) -> dict[str, float]:
    """`column`'s number per account (empty: 0); a cell that is no number >= 0 skips the row."""
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        found = find_column(source.header, [column])
        if found is None:
            raise MappingError(
                f"--potential-column: no column {column!r} in {path.name}; header: {', '.join(h for h in source.header if h)}"
            )
        style = NumberStyle(decimal_comma=source.delimiter == ";")
        cells = {row.line: row.values.get(found) for row in source}
    potential: dict[str, float] = {}
    empty = 0
    for account_id, (line, _) in events.items():
        raw = cells.get(line)
        if not raw:
            potential[account_id] = 0.0
            empty += 1
            continue
        try:
            value = number(raw, style)
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"must be a number >= 0, got {show(raw)}")
        except ValueError as error:
            result.skipped.append(f"{path.name} {RowError(line, found, str(error))}")
            continue
        potential[account_id] = value
    result.assumed.append(
        f"potential: column {found!r}" + (f"; {empty} accounts with it empty count 0" if empty else "")
    )
    return potential


def _sales_potential(
    sales: Path,
    sales_map: Mapping[str, str] | None,
    events: Mapping[str, tuple[int, Event]],
    crm: str,
    result: CrmUnits,
    accounts_name: str,
    date_format: str | None,
    delimiter: str | None,
    encoding: str,
) -> dict[str, float]:
    """Each account's potential as the worker's model values it after learning `sales`."""
    report = read_export(
        sales,
        "generic",
        record_type="order",
        mappings=sales_map,
        delimiter=delimiter,
        encoding=encoding,
        date_format=date_format,
    )
    result.skipped += [f"{sales.name} {error}" for error in report.errors]
    states = {account_id: apply_account_event(None, event) for account_id, (_, event) in events.items()}
    unknown: dict[str, int] = {}
    currencies: set[str] = set()
    months: set[int] = set()
    used = 0
    for converted in report.events:
        order = validate_envelope(converted.envelope, topic=converted.topic, key=converted.key)
        account_id = _account_id(order.data["account_id"], crm)
        if account_id not in states:
            unknown[account_id] = unknown.get(account_id, 0) + 1
            continue
        states[account_id] = apply_account_event(states[account_id], order)
        currencies.add(order.data["currency"])
        months.add(month_index(month_key(order.occurred_at.astimezone(timezone.utc))))
        used += 1
    if not months:
        raise MappingError(f"--sales {sales.name}: no order of an account in {accounts_name}")
    first, last = min(months), max(months)
    span = last - first + 1
    if span <= LABEL_MONTHS:
        raise MappingError(
            f"--sales {sales.name}: the orders span {span} month{'s' if span != 1 else ''} "
            f"({month_key_of_index(first)} to {month_key_of_index(last)}); the potential model learns from "
            f"{LABEL_MONTHS}-month windows and needs at least {LABEL_MONTHS + 1} months (or use --potential-column)"
        )
    # Every account existed throughout the history: an account without orders learns 0.
    start = _month_start(first).isoformat()
    for state in states.values():
        state.profile_at = start
    model = PotentialModel()
    for end in range(first + LABEL_MONTHS, last + 2):
        learn_from_history(model, list(states.values()), _month_start(end))
    at = _month_start(last + 1)
    predicted = predict_potential(model, list(states.values()), at)
    negative = sum(1 for value in predicted.values() if value < 0)
    buying = sum(1 for state in states.values() if state.monthly_sales)
    result.assumed.append(
        f"potential: the worker's potential model (potential.PotentialModel) trained on {sales.name}: "
        f"{used} orders of {buying} accounts, {month_key_of_index(first)} to {month_key_of_index(last)}, "
        f"{LABEL_MONTHS}-month labels; each account valued as of {month_key(at)} (a yearly rate); accounts "
        "without orders are taken to have bought nothing since the first month"
        + (f"; {negative} negative estimates count 0" if negative else "")
    )
    if len(currencies) > 1:
        result.assumed.append(f"amounts added as given, currencies not converted ({', '.join(sorted(currencies))})")
    if unknown:
        count = sum(unknown.values())
        result.assumed.append(
            f"{count} order{'s' if count != 1 else ''} name{'s' if count == 1 else ''} "
            f"{'an account' if len(unknown) == 1 else f'{len(unknown)} accounts'} not in {accounts_name} "
            f"({_some(sorted(unknown))}): ignored"
        )
    return {account_id: max(0.0, value) for account_id, value in predicted.items()}


def _account_id(raw: str, crm: str) -> str:
    """An order's account id in the accounts export's form (Salesforce: 18 characters)."""
    if crm == "salesforce":
        try:
            return to_18(raw)
        except ValueError:
            return raw
    return raw


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- raw cells


def _owners_by_name(
    path: Path,
    format: str,
    mappings: Mapping[str, str] | None,
    directory: OwnerDirectory,
    delimiter: str | None,
    encoding: str,
) -> int:
    """How many owner cells of the export are names (not ids or e-mail addresses) that
    resolved through the users file."""
    profile = profile_for(format, "account" if format == "generic" else None)
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        column = bind(profile, source.header, mappings).column_of("rep_id")
        if column is None:
            return 0
        parse = profile.parser_for("rep_id")
        assert parse is not None
        bare, resolving = Context(), Context(owners=directory)  # bare: what parses is an id or an address
        count = 0
        for row in source:
            raw = row.values.get(column)
            if raw and not _parses(parse, raw, bare) and _parses(parse, raw, resolving):
                count += 1
    return count


def _parses(parse: Callable[[str, Context], object], raw: str, ctx: Context) -> bool:
    try:
        parse(raw, ctx)
    except ValueError:
        return False
    return True


def _passthrough(
    path: Path, columns: tuple[str, ...], events: Mapping[str, tuple[int, Event]], delimiter: str | None, encoding: str
) -> dict[str, dict[str, str]]:
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        found = {column: find_column(source.header, [column]) for column in columns}
        cells = {row.line: row.values for row in source}
    return {
        account_id: {column: (cells[line].get(name) or "") if name else "" for column, name in found.items()}
        for account_id, (line, _) in events.items()
        if line in cells
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


__all__ = ["ACCOUNT_FORMATS", "CrmUnits", "build_units"]
