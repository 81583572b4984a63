"""CSV rows -> contract envelopes, or row errors naming the line and the column.

A `Profile` says which event a kind of export becomes (`account.upserted` on
crm.accounts, ...), and for each contract field which header(s) hold it and how the
cell is parsed. `bind` finds those headers in a file's header (case-insensitively;
`--map field=Column` overrides win); `convert_row` parses the cells, builds the
envelope and runs `core.contract.validate_envelope` on it, so nothing is produced
that the worker would dead-letter.

Envelope fields:

* `event_id` = `<source>-<kind>-<record id>-<16 hex>`, the hex being a SHA-256 of the
  event type, the parsed payload and the record's modification time (when the export
  has one). Importing the same export again gives the same ids, which the worker
  counts as duplicates; so does an export that differs only in formatting (column order,
  extra columns, 15- vs 18-character Salesforce ids, `1,200` vs `1200`). A record whose
  payload changed gets a new id. Without a modification column a record that changes
  and later changes back (A -> B -> A) gets A's old id again and that last import is
  taken as a duplicate: export LastModifiedDate / Last Modified Date with the records.
* `occurred_at` = the record's modification time (`LastModifiedDate`, HubSpot
  `Last Modified Date`, generic `occurred_at`) when the file has it, else the time of the
  import (UTC). Timestamps without an offset are read in the `Context.zone`. With
  `event_time="import"` it is always the import time, and a modification cell that is
  not ISO 8601 (a report in a locale's date format) is no error: its text still goes
  into the event id. A locale date (`1/2/2025, 8:00 AM`, `02.01.2025`) is read in
  `Context.date_format` (`--date-format`, or the one format every date of the file fits:
  `connectors.importer.detect_date_format`).
* `source` = the profile's source (`salesforce`, `hubspot`, `csv`).
* key = `data.account_id`, or `data.rep_id` for `rep.upserted`.

Fields whose name starts with `_` are helpers (first/last name, e-mail) and never
reach the payload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from connectors.csv_source import Row, find_column
from connectors.tables import labels
from connectors.values import (
    NumberStyle,
    boolean,
    fraction,
    integer,
    iso,
    locale_timestamp,
    number,
    show,
    timestamp,
)
from core.clock import SYSTEM_CLOCK
from core.contract import MAX_ID_LENGTH, ContractError, validate_envelope

if TYPE_CHECKING:
    from connectors.homes import RepHomes

OCCURRED_AT = "occurred_at"
EVENT_ID = "event_id"


class MappingError(ValueError):
    """The file's header does not fit the format (a missing id column, a bad --map)."""


class OwnerDirectory:
    """Owner names and e-mail addresses -> rep ids, from a users export (`--owners`).

    Names compare case- and whitespace-insensitively; a name two users share is refused
    rather than guessed.
    """

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {}

    def add(self, rep_id: str, *, name: str | None = None, email: str | None = None) -> None:
        for alias in (name, email):
            if alias:
                self._ids.setdefault(_fold(alias), set()).add(rep_id)

    def resolve(self, value: str) -> str | None:
        found = self._ids.get(_fold(value))
        if not found:
            return None
        if len(found) > 1:
            raise ValueError(f"owner {show(value)} is ambiguous: {len(found)} users have that name")
        return next(iter(found))

    def __len__(self) -> int:
        return len({rep for ids in self._ids.values() for rep in ids})


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Context:
    """What parsing needs besides the cell: number style, zone, owners, the import time."""

    # A caller with a clock passes `clock.now()` (whole seconds read better in a record).
    imported_at: datetime = field(default_factory=lambda: SYSTEM_CLOCK.now().replace(microsecond=0))
    zone: tzinfo = timezone.utc
    numbers: NumberStyle = NumberStyle()
    owners: OwnerDirectory | None = None
    # "modified": occurred_at from the record's modification column when present;
    # "import": always the import time.
    event_time: str = "modified"
    # strptime codes of a locale date (`%m/%d/%Y`); None: ISO 8601 only.
    date_format: str | None = None
    # Whether a date error says which options help (--date-format, --event-time import).
    date_hints: bool = False
    # Where reps without coordinates live (--rep-homes, --home-from-accounts).
    homes: "RepHomes | None" = None


Parser = Callable[[str, Context], Any]


@dataclass(frozen=True)
class FieldRule:
    field: str  # contract data field, `occurred_at`, `event_id`, or a `_helper`
    aliases: tuple[str, ...]  # header names that hold it, first match wins
    parse: Parser


@dataclass(frozen=True)
class Profile:
    name: str  # e.g. "salesforce-accounts"
    source: str  # envelope `source`
    event_type: str
    topic: str
    id_field: str  # the record's own id (account_id, rep_id, order_id, ...)
    key_field: str  # the message key (account_id, or rep_id for reps)
    rules: tuple[FieldRule, ...]
    required: tuple[str, ...] = ()  # fields whose column must be in the header
    finish: Callable[[dict[str, Any]], None] | None = None  # e.g. joins first + last name
    extra_fields: Mapping[str, Parser] = field(default_factory=dict)  # more fields --map may name

    @property
    def kind(self) -> str:
        return self.event_type.split(".")[0]

    def parser_for(self, name: str) -> Parser | None:
        for rule in self.rules:
            if rule.field == name:
                return rule.parse
        return self.extra_fields.get(name)

    def mappable_fields(self) -> list[str]:
        names = [rule.field for rule in self.rules if not rule.field.startswith("_")]
        return names + [name for name in self.extra_fields if name not in names]


@dataclass(frozen=True)
class Binding:
    """A profile fitted to one file's header: field -> header name as written there."""

    profile: Profile
    columns: Mapping[str, str]
    parsers: Mapping[str, Parser]

    def column_of(self, field_name: str) -> str | None:
        return self.columns.get(field_name)


def parse_mappings(items: Iterable[str]) -> dict[str, str]:
    """`["account_id=AcctNo", "lat=Breite"]` -> {"account_id": "AcctNo", "lat": "Breite"}."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise MappingError(f"--map wants FIELD=COLUMN, got {item!r}")
        if name in mapping:
            raise MappingError(f"--map names {name!r} twice")
        mapping[name] = column
    return mapping


def bind(profile: Profile, header: Sequence[str], overrides: Mapping[str, str] | None = None) -> Binding:
    columns: dict[str, str] = {}
    parsers: dict[str, Parser] = {}
    overrides = dict(overrides or {})
    for name, column in overrides.items():
        parser = profile.parser_for(name)
        if parser is None or name.startswith("_"):
            raise MappingError(
                f"--map: unknown field {name!r} for {profile.name}; fields: {', '.join(profile.mappable_fields())}"
            )
        found = find_column(header, [column])
        if found is None:
            raise MappingError(
                f"--map {name}={column}: no column {column!r} in the header ({', '.join(h for h in header if h)})"
            )
        columns[name], parsers[name] = found, parser
    for rule in profile.rules:
        if rule.field in columns:
            continue
        found = find_column(header, rule.aliases)
        if found is not None and found not in columns.values():
            columns[rule.field], parsers[rule.field] = found, rule.parse
    for name in profile.required:
        if name not in columns:
            named = next((r for r in profile.rules if r.field == name), None)
            expected = " or ".join(repr(a) for a in named.aliases) if named else repr(name)
            raise MappingError(
                f"{profile.name}: no column for {name} (expected {expected}, "
                f"or --map {name}=COLUMN); header: {', '.join(h for h in header if h)}"
            )
    return Binding(profile, columns, parsers)


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None  # header name in the file; None when the file has no such column
    reason: str
    field: str | None = None  # the contract field, e.g. data.lat

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column else (f"field {self.field}" if self.field else "row")
        return f"line {self.line}, {where}: {self.reason}"


@dataclass(frozen=True)
class Converted:
    line: int
    topic: str
    key: str
    envelope: dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.envelope["event_id"]

    def triple(self) -> tuple[str, str, dict[str, Any]]:
        return self.topic, self.key, self.envelope


@dataclass
class ImportReport:
    rows_read: int = 0
    events: list[Converted] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    duplicates: int = 0  # rows identical to an earlier row of the file (same event_id)
    footer_lines: int = 0  # report footer lines skipped (not rows)

    @property
    def valid(self) -> int:
        return len(self.events) + self.duplicates

    @property
    def invalid(self) -> int:
        return len({error.line for error in self.errors})

    def summary(self) -> str:
        return summary_line(self.rows_read, self.valid, self.invalid, self.duplicates, self.footer_lines)


def summary_line(rows_read: int, valid: int, invalid: int, duplicates: int, footer_lines: int) -> str:
    text = f"rows read: {rows_read}, valid: {valid}, invalid: {invalid}"
    text += f" (of the valid, {duplicates} repeat an earlier row)" if duplicates else ""
    return text + (f"; {footer_lines} report footer lines skipped (not rows)" if footer_lines else "")


def event_id_for(
    source: str, kind: str, record_id: Any, payload: Mapping[str, Any], event_type: str, modified: str | None
) -> str:
    canonical = json.dumps(
        {"type": event_type, "data": payload, "modified": modified},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    record = str(record_id) if record_id not in (None, "") else "none"
    event_id = f"{source}-{kind}-{record}-{digest}"
    if len(event_id) > MAX_ID_LENGTH:
        event_id = f"{source}-{kind}-{hashlib.sha256(record.encode()).hexdigest()[:32]}-{digest}"
    return event_id


def build(binding: Binding, row: Row, ctx: Context) -> tuple[str, str, dict[str, Any] | None, list[RowError]]:
    """(topic, key, envelope or None, cell errors) for one row, before contract validation."""
    profile = binding.profile
    values: dict[str, Any] = {}
    errors: list[RowError] = []
    modified_text: str | None = None
    for name, column in binding.columns.items():
        raw = row.values.get(column)
        if raw is None:
            continue
        try:
            values[name] = binding.parsers[name](raw, ctx)
        except ValueError as error:
            if name == OCCURRED_AT and ctx.event_time == "import":
                modified_text = raw  # not used as event time; still tells versions apart
                continue
            errors.append(RowError(row.line, column, str(error), _field_path(name)))
    if row.extra:
        errors.append(
            RowError(
                row.line, None, f"{len(row.extra)} more cell(s) than the header has columns: {show(row.extra[0])}..."
            )
        )
    if profile.finish is not None:
        profile.finish(values)
    if ctx.homes is not None and profile.event_type == "rep.upserted":
        ctx.homes.fill(values)
    modified: datetime | None = values.pop(OCCURRED_AT, None)
    own_event_id = values.pop(EVENT_ID, None)
    payload = {name: value for name, value in values.items() if not name.startswith("_") and value is not None}
    key = payload.get(profile.key_field)
    key = key if isinstance(key, str) else ""
    if errors:
        return profile.topic, key, None, errors
    moment = modified if (modified is not None and ctx.event_time == "modified") else ctx.imported_at
    event_id = own_event_id or event_id_for(
        profile.source,
        profile.kind,
        payload.get(profile.id_field),
        payload,
        profile.event_type,
        iso(modified.astimezone(timezone.utc)) if modified else modified_text,
    )
    envelope = {
        "event_id": event_id,
        "type": profile.event_type,
        "occurred_at": iso(moment),
        "source": profile.source,
        "data": payload,
    }
    return profile.topic, key, envelope, []


def convert_row(binding: Binding, row: Row, ctx: Context) -> Converted | list[RowError]:
    topic, key, envelope, errors = build(binding, row, ctx)
    if envelope is None:
        return errors
    try:
        validate_envelope(envelope, topic=topic, key=key)
    except ContractError as error:
        return [RowError(row.line, _column_for(binding, error.field), error.reason, error.field)]
    return Converted(row.line, topic, key, envelope)


def convert_rows(
    binding: Binding, rows: Iterable[Row], ctx: Context, on_row: Callable[[Row], None] | None = None
) -> ImportReport:
    report = ImportReport()
    seen: set[str] = set()
    for row in rows:
        report.rows_read += 1
        result = convert_row(binding, row, ctx)
        if isinstance(result, list):
            report.errors.extend(result)
        elif result.event_id in seen:
            report.duplicates += 1
        else:
            seen.add(result.event_id)
            report.events.append(result)
        if on_row is not None:
            on_row(row)
    return report


def _field_path(name: str) -> str:
    return name if name in (OCCURRED_AT, EVENT_ID) or name.startswith("_") else f"data.{name}"


def _column_for(binding: Binding, contract_field: str) -> str | None:
    profile = binding.profile
    if contract_field.startswith("data."):
        return binding.column_of(contract_field[5:])
    if contract_field == "key":
        return binding.column_of(profile.key_field)
    if contract_field == EVENT_ID:
        return binding.column_of(EVENT_ID) or binding.column_of(profile.id_field)
    if contract_field == OCCURRED_AT:
        return binding.column_of(OCCURRED_AT)
    return None


# --- parsers shared by the formats -------------------------------------------------------


def text(raw: str, ctx: Context) -> str:
    return raw


def lower_text(raw: str, ctx: Context) -> str:
    return raw.casefold()


def as_number(raw: str, ctx: Context) -> float:
    return number(raw, ctx.numbers)


def as_integer(raw: str, ctx: Context) -> int:
    return integer(raw, ctx.numbers)


def as_fraction(raw: str, ctx: Context) -> float:
    return fraction(raw, ctx.numbers)


def as_labels(raw: str, ctx: Context) -> list[str]:
    """`retail; key account` -> ["retail", "key account"] (the contract takes a JSON list)."""
    return list(labels(raw))


def as_boolean(raw: str, ctx: Context) -> bool:
    return boolean(raw)


def as_timestamp(raw: str, ctx: Context) -> datetime:
    """The record's modification time (the only timestamp the formats read: the event time)."""
    try:
        return timestamp(raw, ctx.zone)
    except ValueError as error:
        iso_error = error
    if ctx.date_format is not None:
        try:
            return locale_timestamp(raw, ctx.date_format, ctx.zone)
        except ValueError as error:
            if not ctx.date_hints:
                raise
            raise ValueError(
                f"{error}; pass the file's --date-format, or --event-time import to date the events at the import time"
            ) from None
    if not ctx.date_hints:
        raise iso_error
    raise ValueError(
        f"{iso_error}; for a locale date pass --date-format (e.g. %m/%d/%Y or %d.%m.%Y), "
        "or --event-time import to date the events at the import time"
    ) from None


def join_name(values: dict[str, Any]) -> None:
    """finish hook: `name` from `_first_name` + `_last_name` unless a name column gave one."""
    parts = [values.get("_first_name"), values.get("_last_name")]
    if not values.get("name") and any(parts):
        values["name"] = " ".join(part for part in parts if part)


def owners_from_users(
    profile: "Profile",
    header: Iterable[str],
    rows: Iterable[Any],
    parse_id: Callable[[Any, "Context"], str],
    email_of: Callable[[str, Mapping[str, Any]], str | None],
) -> "OwnerDirectory":
    """An owner directory (names and e-mails -> rep ids) from a CRM's users export; rows
    whose id does not parse are skipped. Shared by the Salesforce and HubSpot readers."""
    binding = bind(profile, list(header))
    directory = OwnerDirectory()
    ctx = Context()
    for row in rows:
        raw = row.values.get(binding.columns["rep_id"])
        try:
            rep_id = parse_id(raw, ctx) if raw else None
        except ValueError:
            rep_id = None
        if rep_id is None:
            continue
        cells = {name: row.values.get(column) for name, column in binding.columns.items()}
        first, last = cells.get("_first_name"), cells.get("_last_name")
        name = cells.get("name") or " ".join(part for part in (first, last) if part)
        directory.add(rep_id, name=name or None, email=email_of(rep_id, cells))
        if first and last and not cells.get("name"):
            # Family name first, as CRMs show names in Chinese, Japanese, Korean, Hungarian locales.
            directory.add(rep_id, name=f"{last} {first}")
    return directory
