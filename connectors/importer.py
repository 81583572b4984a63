"""A CRM export file -> an `ImportReport` (envelopes to produce, row errors), or, for
files of any size, a `SortedImport` (counts, the first row errors, and the events in
event-time order from sorted run files on disk). No Kafka."""

from __future__ import annotations

import heapq
import itertools
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from connectors import dynamics, generic, hubspot, pipedrive, salesforce
from connectors.csv_source import CsvSource, Row
from connectors.homes import RepHomes, centre
from connectors.mapping import (
    OCCURRED_AT,
    Binding,
    Context,
    Converted,
    ImportReport,
    MappingError,
    OwnerDirectory,
    Profile,
    RowError,
    bind,
    convert_row,
    convert_rows,
    summary_line,
)
from connectors.values import LOCALE_DATE_FORMATS, NumberStyle, check_date_format, date_formats_fitting, is_iso
from core.contract import ContractError, validate_envelope

FORMATS: dict[str, Profile] = {
    "salesforce-accounts": salesforce.ACCOUNTS,
    "salesforce-users": salesforce.USERS,
    "hubspot-companies": hubspot.COMPANIES,
    "hubspot-users": hubspot.USERS,
    "pipedrive-organizations": pipedrive.ORGANIZATIONS,
    "dynamics-accounts": dynamics.ACCOUNTS,
    "dynamics-users": dynamics.USERS,
}
FORMAT_NAMES = (*FORMATS, "generic")
EVENT_TIMES = ("modified", "import")
#: Per CRM (the format's prefix): the users export that resolves owner names (--owners).
OWNER_DIRECTORIES: dict[str, Callable[..., OwnerDirectory]] = {
    "salesforce": salesforce.owner_directory,
    "hubspot": hubspot.owner_directory,
    "pipedrive": pipedrive.owner_directory,
    "dynamics": dynamics.owner_directory,
}
#: A users format -> the accounts format of the same CRM (--accounts, --home-from-accounts).
ACCOUNTS_FORMAT_OF = {
    "salesforce-users": "salesforce-accounts",
    "hubspot-users": "hubspot-companies",
    "dynamics-users": "dynamics-accounts",
}
#: --date-format: detect the format from the file's dates.
AUTO = "auto"


def profile_for(format: str, record_type: str | None = None) -> Profile:
    if format == "generic":
        if not record_type:
            raise MappingError("--format generic needs --type account|rep|order|activity|opportunity")
        try:
            return generic.profile(record_type)
        except ValueError as error:
            raise MappingError(str(error)) from None
    if format not in FORMATS:
        raise MappingError(f"--format must be one of {', '.join(FORMAT_NAMES)}, got {format!r}")
    if record_type:
        raise MappingError(f"--type is for --format generic; {format} rows are {FORMATS[format].event_type}")
    return FORMATS[format]


def load_owners(
    path: str | Path, format: str, *, delimiter: str | None = None, encoding: str = "utf-8-sig"
) -> OwnerDirectory:
    """The users export that resolves owner names in an accounts/companies file."""
    crm = format.split("-")[0]
    if crm not in OWNER_DIRECTORIES:
        raise MappingError(f"--owners is for the CRM formats ({', '.join(OWNER_DIRECTORIES)}), not {format}")
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        return OWNER_DIRECTORIES[crm](source.header, source)


def detect_date_format(
    path: str | Path, column: str, *, delimiter: str | None = None, encoding: str = "utf-8-sig"
) -> str | None:
    """The one locale date format every date in `column` fits (None: the dates are ISO
    8601, or fit no single known format, and the rows say so). Raises MappingError when
    they fit several (`1/2/2025` in every row: January 2 or February 1?)."""
    candidates: list[str] | None = None
    example = None
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        for row in source:
            raw = row.values.get(column)
            if not raw or is_iso(raw):
                if raw:
                    return None  # ISO dates among them: no locale format for the file
                continue
            fitting = date_formats_fitting(raw, candidates if candidates is not None else LOCALE_DATE_FORMATS)
            if not fitting:
                return None
            if candidates is None or len(fitting) < len(candidates):
                example = raw
            candidates = fitting
    if not candidates:
        return None
    if len(candidates) > 1:
        options = " or ".join(candidates)
        raise MappingError(
            f"{Path(path).name}: the dates in column {column!r} (e.g. {example!r}) read as {options}: "
            f"pass --date-format (e.g. --date-format {candidates[0]}), or --event-time import to date the "
            "events at the import time"
        )
    return candidates[0]


def check_rep_location(path: str | Path, binding: Binding, homes: RepHomes | None) -> None:
    """Once per file, not per row: a users export without any location (HubSpot's) needs
    --rep-homes or --home-from-accounts."""
    if binding.profile.event_type != "rep.upserted" or homes is not None:
        return
    has = binding.columns.keys()
    if {"home_lat", "home_lon"} <= has or {"postal_code", "country"} <= has:
        return
    raise MappingError(
        f"{Path(path).name}: {binding.profile.name} without a location column (no latitude/longitude, no "
        "postal code + country): give the reps a home with --rep-homes FILE (rep id or e-mail; lat, lon or "
        "postal_code, country), or --home-from-accounts --accounts ACCOUNTS.csv (the centre of each rep's "
        "accounts), or --map home_lat=COLUMN --map home_lon=COLUMN"
    )


def account_centres(
    path: str | Path,
    format: str,
    *,
    owners: OwnerDirectory | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    date_format: str | None = AUTO,
) -> dict[str, tuple[float, float, int]]:
    """rep_id -> (lat, lon, number of accounts): the centre of each owner's valid accounts
    in an accounts export (postal codes resolved as the contract resolves them)."""
    points: dict[str, list[tuple[float, float]]] = {}
    with _bound_rows(
        path,
        format,
        record_type=None,
        mappings=None,
        owners=owners,
        delimiter=delimiter,
        encoding=encoding,
        zone=timezone.utc,
        event_time="import",
        imported_at=None,
        on_progress=None,
        progress_every=500,
        date_format=date_format,
        homes=None,
    ) as (binding, ctx, rows, _source):
        for row in rows:
            converted = convert_row(binding, row, ctx)
            if isinstance(converted, list):
                continue
            try:
                event = validate_envelope(converted.envelope, topic=converted.topic, key=converted.key)
            except ContractError:
                continue
            rep, lat, lon = event.data.get("rep_id"), event.data.get("lat"), event.data.get("lon")
            if rep and lat is not None and lon is not None:
                points.setdefault(rep, []).append((lat, lon))
    return {rep: centre(found) for rep, found in points.items()}


def read_export(
    path: str | Path,
    format: str,
    *,
    record_type: str | None = None,
    mappings: Mapping[str, str] | None = None,
    owners: OwnerDirectory | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    zone: tzinfo = timezone.utc,
    event_time: str = "modified",
    imported_at: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    progress_every: int = 500,
    date_format: str | None = None,
    homes: RepHomes | None = None,
    profile: Profile | None = None,
) -> ImportReport:
    """Read, map and validate every row of `path`, all in memory (`sorted_import` for big
    files). Raises CsvFormatError / MappingError for problems of the whole file; row
    problems are in the report.

    `on_progress(bytes_read, file_size)` runs every `progress_every` rows and at the end.
    `date_format`: strptime codes of the file's locale dates, or "auto" (detect them,
    and say in a row's date error which options help); None: ISO 8601 only.
    `homes`: where reps without coordinates live (connectors.homes).
    `profile`: read with this profile instead of `format`'s (e.g. `pipedrive.USERS`, which
    `territory import` does not offer as a format).
    """
    with _bound_rows(
        path,
        format,
        record_type=record_type,
        mappings=mappings,
        owners=owners,
        delimiter=delimiter,
        encoding=encoding,
        zone=zone,
        event_time=event_time,
        imported_at=imported_at,
        on_progress=on_progress,
        progress_every=progress_every,
        date_format=date_format,
        homes=homes,
        profile=profile,
    ) as (binding, ctx, rows, source):
        report = convert_rows(binding, rows, ctx)
        report.footer_lines = source.footer_lines
        return report


@contextmanager
def _bound_rows(
    path: str | Path,
    format: str,
    *,
    record_type: str | None,
    mappings: Mapping[str, str] | None,
    owners: OwnerDirectory | None,
    delimiter: str | None,
    encoding: str,
    zone: tzinfo,
    event_time: str,
    imported_at: datetime | None,
    on_progress: Callable[[int, int], None] | None,
    progress_every: int,
    date_format: str | None = None,
    homes: RepHomes | None = None,
    profile: Profile | None = None,
) -> Iterator[tuple[Binding, Context, Iterator[Row], CsvSource]]:
    """The file's profile bound to its header, the parsing context, its rows as a stream,
    and the source (whose `footer_lines` is complete once the rows are read)."""
    if event_time not in EVENT_TIMES:
        raise MappingError(f"event time must be one of {', '.join(EVENT_TIMES)}, got {event_time!r}")
    if date_format not in (None, AUTO):
        try:
            check_date_format(date_format)
        except ValueError as error:
            raise MappingError(str(error)) from None
    profile = profile or profile_for(format, record_type)
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        binding = bind(profile, source.header, mappings)
        check_rep_location(path, binding, homes)
        resolved = date_format
        if date_format == AUTO:
            column = binding.column_of(OCCURRED_AT)
            resolved = None
            if column is not None and event_time == "modified":
                resolved = detect_date_format(path, column, delimiter=source.delimiter, encoding=encoding)
        ctx = Context(
            zone=zone,
            # `;` files and files with day.month.year dates come from locales that write a
            # decimal comma: "19,456" is a coordinate there, not nineteen thousand.
            numbers=NumberStyle(decimal_comma=source.delimiter == ";" or "%d." in (resolved or "")),
            owners=owners,
            event_time=event_time,
            date_format=resolved,
            date_hints=date_format is not None,
            homes=homes,
        )
        if imported_at is not None:
            ctx = replace(ctx, imported_at=imported_at)

        def rows() -> Iterator[Row]:
            for count, row in enumerate(source, 1):
                yield row
                if on_progress is not None and count % progress_every == 0:
                    on_progress(source.position, source.size)
            if on_progress is not None:
                on_progress(source.size, source.size)

        yield binding, ctx, rows(), source


def in_event_time_order(events: Iterable) -> list:
    """Events oldest first (stable). The worker dead-letters an event far older than the
    newest it has seen on that partition (`too_late`); oldest-first avoids that within
    one import."""
    return sorted(events, key=lambda item: datetime.fromisoformat(item.envelope["occurred_at"]))


# --- files of any size ------------------------------------------------------------------------

#: Events sorted in memory at a time by `sorted_import` (about 1 kB each); the rest wait in
#: sorted run files on disk, so memory is bounded by this, not by the file.
RUN_SIZE = 50_000
#: Row errors kept for printing by default; all are counted.
KEPT_ERRORS = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class SortedImport:
    """A file read once: its counts, its first row errors, and (with `keep_events`) its
    valid, distinct events in sorted run files. `events()` merges the runs: oldest
    event time first, ties in file order, as `in_event_time_order` orders a list."""

    rows_read: int = 0
    distinct: int = 0  # valid events after dropping repeats: what `events()` yields
    duplicates: int = 0  # rows identical to an earlier row of the file (same event_id)
    invalid: int = 0  # rows with at least one error
    footer_lines: int = 0  # report footer lines skipped (not rows)
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ones, in file order
    topics: set[str] = field(default_factory=set)
    runs: list[Path] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return self.distinct + self.duplicates

    def summary(self) -> str:
        """The line `ImportReport.summary` prints."""
        return summary_line(self.rows_read, self.valid, self.invalid, self.duplicates, self.footer_lines)

    def events(self) -> Iterator[Converted]:
        return (_converted(record) for record in _merged(self.runs, _by_event_time))


@contextmanager
def sorted_import(
    path: str | Path,
    format: str,
    *,
    record_type: str | None = None,
    mappings: Mapping[str, str] | None = None,
    owners: OwnerDirectory | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    zone: tzinfo = timezone.utc,
    event_time: str = "modified",
    imported_at: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    progress_every: int = 500,
    run_size: int = RUN_SIZE,
    keep_errors: int = KEPT_ERRORS,
    keep_events: bool = True,
    date_format: str | None = None,
    homes: RepHomes | None = None,
) -> Iterator[SortedImport]:
    """`read_export` for files of any size: memory is bounded by `run_size` events and
    `keep_errors` errors, not by the file. Rows are read as a stream; the valid events
    go to sorted run files in a temporary directory (removed on leaving the context)
    twice: by event id, whose merge drops repeated rows (the first in the file stays,
    as `read_export` keeps it), then by event time for `SortedImport.events()`.
    `keep_events=False` (a dry run) only counts. Raises like `read_export`."""
    if run_size < 1:
        raise ValueError(f"run_size must be at least 1, got {run_size}")
    result = SortedImport()
    with tempfile.TemporaryDirectory(prefix="territory-import-") as name:
        directory = Path(name)
        with _bound_rows(
            path,
            format,
            record_type=record_type,
            mappings=mappings,
            owners=owners,
            delimiter=delimiter,
            encoding=encoding,
            zone=zone,
            event_time=event_time,
            imported_at=imported_at,
            on_progress=on_progress,
            progress_every=progress_every,
            date_format=date_format,
            homes=homes,
        ) as (binding, ctx, rows, source):
            by_event_id = _write_runs(
                _valid_records(binding, rows, ctx, result, keep_errors),
                _by_event_id,
                run_size,
                directory,
                "by-event-id",
            )
            result.footer_lines = source.footer_lines
        distinct = _first_of_each_event_id(_merged(by_event_id, _by_event_id), result)
        if keep_events:
            result.runs = _write_runs(distinct, _by_event_time, run_size, directory, "by-event-time")
        else:
            for _ in distinct:
                pass  # counting is all a dry run needs
        for run in by_event_id:
            run.unlink()  # the disk holds one copy of the events, not two, while they are produced
        yield result


# A run record: [event_id, line, event time in µs since 1970, topic, key, envelope]. Ties of
# event time sort by line, so the merged order is that of a stable sort of the file's events.
def _by_event_id(record: list) -> tuple[str, int]:
    return record[0], record[1]


def _by_event_time(record: list) -> tuple[int, int]:
    return record[2], record[1]


def _record(event: Converted) -> list:
    moment = datetime.fromisoformat(event.envelope["occurred_at"])  # the contract requires an offset
    return [
        event.event_id,
        event.line,
        (moment - _EPOCH) // timedelta(microseconds=1),
        event.topic,
        event.key,
        event.envelope,
    ]


def _converted(record: list) -> Converted:
    _, line, _, topic, key, envelope = record
    return Converted(line, topic, key, envelope)


def _valid_records(
    binding: Binding, rows: Iterable[Row], ctx: Context, result: SortedImport, keep_errors: int
) -> Iterator[list]:
    for row in rows:
        result.rows_read += 1
        converted = convert_row(binding, row, ctx)
        if isinstance(converted, list):
            result.invalid += 1
            result.error_count += len(converted)
            result.errors.extend(converted[: max(0, keep_errors - len(result.errors))])
        else:
            yield _record(converted)


def _first_of_each_event_id(records: Iterable[list], result: SortedImport) -> Iterator[list]:
    """Records merged by (event id, line): the first of each id, counting the repeats."""
    previous = None
    for record in records:
        if record[0] == previous:
            result.duplicates += 1
            continue
        previous = record[0]
        result.distinct += 1
        result.topics.add(record[3])
        yield record


def _write_runs(
    records: Iterable[list], key: Callable[[list], Any], run_size: int, directory: Path, name: str
) -> list[Path]:
    """`records` in files of at most `run_size`, each sorted by `key`."""
    runs: list[Path] = []
    records = iter(records)
    while chunk := list(itertools.islice(records, run_size)):
        chunk.sort(key=key)
        run = directory / f"{name}-{len(runs):06d}.jsonl"
        with run.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n" for record in chunk)
        runs.append(run)
        del chunk  # the next chunk is built without this one alive
    return runs


def _merged(runs: list[Path], key: Callable[[list], Any]) -> Iterator[list]:
    with ExitStack() as files:
        streams = [_read_run(files.enter_context(run.open(encoding="utf-8"))) for run in runs]
        yield from heapq.merge(*streams, key=key)


def _read_run(lines: Iterable[str]) -> Iterator[list]:
    return (json.loads(line) for line in lines)
