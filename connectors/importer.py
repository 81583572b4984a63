"""A CRM export file -> an `ImportReport` (envelopes to produce, row errors). No Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone, tzinfo
from pathlib import Path

from connectors import generic, hubspot, salesforce
from connectors.csv_source import CsvSource, Row
from connectors.mapping import Context, ImportReport, MappingError, OwnerDirectory, Profile, bind, convert_rows
from connectors.values import NumberStyle

FORMATS: dict[str, Profile] = {
    "salesforce-accounts": salesforce.ACCOUNTS,
    "salesforce-users": salesforce.USERS,
    "hubspot-companies": hubspot.COMPANIES,
    "hubspot-users": hubspot.USERS,
}
FORMAT_NAMES = (*FORMATS, "generic")
EVENT_TIMES = ("modified", "import")


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


def load_owners(path: str | Path, format: str, *, delimiter: str | None = None,
                encoding: str = "utf-8-sig") -> OwnerDirectory:
    """The users export that resolves owner names in an accounts/companies file."""
    build = hubspot.owner_directory if format.startswith("hubspot") else salesforce.owner_directory
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        return build(source.header, source)


def read_export(path: str | Path, format: str, *, record_type: str | None = None,
                mappings: Mapping[str, str] | None = None, owners: OwnerDirectory | None = None,
                delimiter: str | None = None, encoding: str = "utf-8-sig", zone: tzinfo = timezone.utc,
                event_time: str = "modified", imported_at: datetime | None = None,
                on_progress: Callable[[int, int], None] | None = None, progress_every: int = 500) -> ImportReport:
    """Read, map and validate every row of `path`. Raises CsvFormatError / MappingError
    for problems of the whole file; row problems are in the report.

    `on_progress(bytes_read, file_size)` runs every `progress_every` rows and at the end.
    """
    if event_time not in EVENT_TIMES:
        raise MappingError(f"event time must be one of {', '.join(EVENT_TIMES)}, got {event_time!r}")
    profile = profile_for(format, record_type)
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        binding = bind(profile, source.header, mappings)
        ctx = Context(zone=zone, numbers=NumberStyle(decimal_comma=source.delimiter == ";"), owners=owners,
                      event_time=event_time)
        if imported_at is not None:
            ctx = replace(ctx, imported_at=imported_at)
        counter = {"rows": 0}

        def tick(row: Row) -> None:
            counter["rows"] += 1
            if on_progress is not None and counter["rows"] % progress_every == 0:
                on_progress(source.position, source.size)

        report = convert_rows(binding, source, ctx, on_row=tick)
        if on_progress is not None:
            on_progress(source.size, source.size)
    return report


def in_event_time_order(events: Iterable) -> list:
    """Events oldest first (stable). The worker dead-letters an event far older than the
    newest it has seen on that partition (`too_late`); oldest-first avoids that within
    one import."""
    return sorted(events, key=lambda item: datetime.fromisoformat(item.envelope["occurred_at"]))
