"""`territory import` and `territory export-assignments`: the Typer-facing functions.

The only module of the package that talks to Kafka. Register in territory/cli.py:

    from connectors.commands import export_assignments_command, import_command
    app.command("import")(import_command)
    app.command("export-assignments")(export_assignments_command)
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import ExitStack, contextmanager
from datetime import timezone, tzinfo
from pathlib import Path
from typing import Iterable, Iterator, List, Optional

import typer

from connectors.csv_source import CsvFormatError
from connectors.export import COLUMNS, Assignment, export_rows, parse_assignment, write_csv_file
from connectors.homes import RepHomes, load_rep_homes
from connectors.importer import (
    ACCOUNTS_FORMAT_OF,
    AUTO,
    FORMAT_NAMES,
    SortedImport,
    account_centres,
    load_owners,
    sorted_import,
)
from connectors.mapping import Converted, MappingError, parse_mappings
from core import topics
from core.settings import Settings

FORMAT_HELP = "|".join(FORMAT_NAMES)


def import_command(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="The CSV export (UTF-8, with or without BOM; , ; tab or | delimited).",
    ),
    format: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
    record_type: Optional[str] = typer.Option(
        None, "--type", help="With --format generic: account|rep|order|activity|opportunity."
    ),
    mappings: List[str] = typer.Option(
        [],
        "--map",
        help="FIELD=COLUMN, repeatable: read a contract field (account_id, lat, rep_id, amount, "
        "occurred_at, ...) from this column. Works with every format.",
    ),
    owners: Optional[Path] = typer.Option(
        None,
        "--owners",
        exists=True,
        dir_okay=False,
        help="The users export of the same CRM, to resolve owner names (report exports, HubSpot's Company owner, "
        "Pipedrive's and Dynamics 365's Owner). With a users format and --accounts, the users file itself.",
    ),
    accounts: Optional[Path] = typer.Option(
        None,
        "--accounts",
        exists=True,
        dir_okay=False,
        help="With a users format: the accounts / companies export of the same CRM, imported in the same command "
        "(before the reps). Needed by --home-from-accounts.",
    ),
    rep_homes: Optional[Path] = typer.Option(
        None,
        "--rep-homes",
        exists=True,
        dir_okay=False,
        help="A small CSV of rep homes for users exports without location: rep_id or email, and lat, lon or "
        "postal_code, country.",
    ),
    home_from_accounts: bool = typer.Option(
        False,
        "--home-from-accounts",
        help="A rep without a home (none in the export or --rep-homes) lives at the centre of their accounts "
        "in the --accounts file; said in the output.",
    ),
    date_format: str = typer.Option(
        AUTO,
        "--date-format",
        help="Dates in a locale's format, as strptime codes: %m/%d/%Y (1/15/2025, 9:30 AM), %d.%m.%Y "
        "(15.01.2025 09:30). Default 'auto': ISO 8601, or the one format every date of the file fits.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report every row; produce nothing."),
    delimiter: Optional[str] = typer.Option(None, help="Field delimiter (default: sniffed from the header)."),
    encoding: str = typer.Option("utf-8-sig", help="File encoding, e.g. cp1252 for a legacy Excel 'CSV'."),
    timezone_name: str = typer.Option(
        "UTC", "--timezone", help="Zone of timestamps written without offset (HubSpot: your account's zone)."
    ),
    event_time: str = typer.Option(
        "modified",
        help="occurred_at: 'modified' = the record's LastModifiedDate / Last Modified Date when the "
        "file has it, else the import time; 'import' = always the import time.",
    ),
    max_errors: int = typer.Option(100, help="Print at most this many row errors (all are counted)."),
    progress: bool = typer.Option(True, help="Show progress bars (on stderr)."),
) -> None:
    """Import a Salesforce / HubSpot / Pipedrive / Dynamics 365 / generic CSV export as contract events (rows that break the contract are reported, not sent).

    Exit status: 0 every row valid; 1 some rows invalid (the valid ones are produced
    unless --dry-run); 2 the file or the options cannot be used.
    """
    with ExitStack() as run_files:  # the sorted runs on disk live until the events are produced
        try:
            zone = _zone(timezone_name)
            mapping = parse_mappings(mappings)
            files = [(path, format)]
            if accounts is not None:
                if format not in ACCOUNTS_FORMAT_OF:
                    raise MappingError(f"--accounts goes with a users format ({', '.join(ACCOUNTS_FORMAT_OF)})")
                files.insert(0, (accounts, ACCOUNTS_FORMAT_OF[format]))
            if home_from_accounts and accounts is None:
                raise MappingError("--home-from-accounts needs --accounts ACCOUNTS.csv (the accounts export)")
            owners_file = owners or (path if accounts is not None else None)
            directory = (
                load_owners(owners_file, format, delimiter=delimiter, encoding=encoding) if owners_file else None
            )
            homes = None
            if rep_homes is not None or home_from_accounts:
                homes = load_rep_homes(rep_homes, delimiter=delimiter, encoding=encoding) if rep_homes else RepHomes()
            if home_from_accounts:
                assert homes is not None and accounts is not None
                for rep, (lat, lon, count) in account_centres(
                    accounts, files[0][1], owners=directory, delimiter=delimiter, encoding=encoding
                ).items():
                    homes.add_centre(rep, lat, lon, count)
            bootstrap = None if dry_run else _bootstrap()
            reports: list[tuple[Path, SortedImport]] = []
            for file, file_format in files:
                with _progress(progress) as bars:
                    task = bars.add_task(f"reading {file.name}", total=max(file.stat().st_size, 1))
                    report = run_files.enter_context(
                        sorted_import(
                            file,
                            file_format,
                            record_type=record_type,
                            mappings=mapping if file == path else None,
                            owners=directory,
                            delimiter=delimiter,
                            encoding=encoding,
                            zone=zone,
                            event_time=event_time,
                            keep_errors=max(max_errors, 0),
                            keep_events=not dry_run,
                            on_progress=lambda done, total: bars.update(task, completed=done, total=max(total, 1)),
                            date_format=date_format,
                            homes=homes if file == path else None,
                        )
                    )
                reports.append((file, report))
        except (CsvFormatError, MappingError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2)
        if directory is not None:
            typer.echo(f"owners: {len(directory)} users read from {owners_file}")
        if homes is not None:
            for note in homes.notes():
                typer.echo(note)
        for file, report in reports:
            if report.errors and len(reports) > 1:  # one file: the errors are the argument's
                typer.echo(f"{file.name}: {report.invalid} rows refused")
            _print_errors(report, max_errors)
            typer.echo(report.summary() if len(reports) == 1 else f"{file.name}: {report.summary()}")
        if dry_run:
            typer.echo("dry run: nothing produced")
        else:
            for file, report in reports:
                if report.distinct:
                    assert bootstrap is not None  # read above unless --dry-run
                    sent = produce(report.events(), bootstrap, total=report.distinct, show_progress=progress)
                    topic_names = ", ".join(sorted(report.topics))
                    typer.echo(f"produced {sent} events to {topic_names} on {bootstrap}")
                else:
                    typer.echo(f"{file.name}: nothing to produce" if len(reports) > 1 else "nothing to produce")
    if any(report.invalid for _, report in reports):
        raise typer.Exit(1)


def export_assignments_command(
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="The CSV file to write."),
    format: str = typer.Option(
        ...,
        "--format",
        "-f",
        help="salesforce (Id,OwnerId: a Data Loader update file) | hubspot (Record ID,Company owner: a company import)",
    ),
    idle_seconds: float = typer.Option(1.0, help="Stop reading once no new record came for this long."),
    timeout_seconds: float = typer.Option(120.0, help="Stop reading after this long in any case."),
) -> None:
    """Write the approved assignments of territory.assignments (latest per account) as a CSV the CRM re-imports.

    Exit status: 0 written; 1 written, but some assignments were left out (reported);
    2 nothing written.
    """
    if format not in COLUMNS:
        typer.echo(f"error: --format must be one of {', '.join(COLUMNS)}, got {format!r}", err=True)
        raise typer.Exit(2)
    bootstrap = _bootstrap()
    try:
        assignments, problems = asyncio.run(read_assignments(bootstrap, idle_s=idle_seconds, timeout_s=timeout_seconds))
    except TopicMissing as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    rows, left_out = export_rows(assignments, format)
    write_csv_file(out, format, rows)
    for problem in problems + left_out:
        typer.echo(f"skipped: {problem}", err=True)
    typer.echo(
        f"read {len(assignments)} assignment messages from {topics.ASSIGNMENTS}; "
        f"wrote {len(rows)} accounts to {out} ({format}: {', '.join(COLUMNS[format])})"
    )
    if left_out:
        raise typer.Exit(1)


# --- Kafka -------------------------------------------------------------------------------


def produce(events: Iterable[Converted], bootstrap: str, *, total: int, show_progress: bool = False) -> int:
    """Send the envelopes in the order given (`SortedImport.events()`: oldest event time
    first, as the worker needs); returns how many were acknowledged."""
    from simulator.produce import produce_events

    with _progress(show_progress) as bars:
        task = bars.add_task("producing", total=total)
        return asyncio.run(
            produce_events(
                (event.triple() for event in events),
                bootstrap,
                producer_config=_connection(),
                on_progress=lambda sent, _total, _at: bars.update(task, completed=sent),
            )
        )


async def read_assignments(
    bootstrap: str, *, topic: str = topics.ASSIGNMENTS, idle_s: float = 1.0, timeout_s: float = 120.0
) -> tuple[list[Assignment], list[str]]:
    """Every message of `topic` from the beginning, without a consumer group.

    Reads at least up to the end offsets the broker reports, then until no new record
    came for `idle_s` (the embedded broker can report ends short, so the quiet period,
    not the offsets, decides when everything has been read).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **_connection(),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        tps = [TopicPartition(topic, partition) for partition in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reported_ends = await consumer.end_offsets(tps)
        items: list[Assignment] = []
        problems: list[str] = []
        loop = asyncio.get_running_loop()
        started = last_new = loop.time()
        while loop.time() - started < timeout_s:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    last_new = loop.time()
                    try:
                        items.append(
                            parse_assignment(record.key, record.value, partition=tp.partition, offset=record.offset)
                        )
                    except ValueError as error:
                        problems.append(f"{tp.topic}[{tp.partition}] offset {record.offset}: {error}")
            positions = [await consumer.position(tp) for tp in tps]
            reached = all(position >= reported_ends.get(tp, 0) for tp, position in zip(tps, positions))
            if reached and loop.time() - last_new >= idle_s:
                break
        return items, problems
    finally:
        await consumer.stop()


async def _partitions(consumer, topic: str) -> list[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        await consumer.topics()  # fetches fresh metadata
        await asyncio.sleep(0.1)
    raise TopicMissing(f"topic {topic} not found on the broker")


class TopicMissing(RuntimeError):
    """The topic to export from does not exist on the broker."""


def _connection() -> dict:
    """TLS / SASL options of the settings (`_bootstrap` has reported invalid settings already)."""
    from core.kafka_auth import client_options

    return client_options(Settings.from_env())


def _bootstrap() -> str:
    try:
        settings = Settings.from_env()
    except ValueError as error:  # SettingsError: one line naming the variable, no traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if not settings.kafka_url:
        typer.echo("error: set TERRITORY_KAFKA_URL (e.g. from `territory broker`), or use --dry-run", err=True)
        raise typer.Exit(2)
    return settings.bootstrap_servers


# --- output ------------------------------------------------------------------------------


def _print_errors(report: SortedImport, limit: int) -> None:
    for error in report.errors[:limit]:
        typer.echo(str(error))
    if report.error_count > limit:
        typer.echo(f"... and {report.error_count - limit} more errors")


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"--timezone: unknown time zone {name!r} (e.g. Europe/Berlin)") from None


@contextmanager
def _progress(enabled: bool) -> Iterator:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        disable=not enabled,
        transient=True,
    )
    with bars:
        yield bars
