"""`territory import` of files of any size: rows streamed, events sorted by event time in
runs on disk (an external merge sort), errors counted but only the first ones kept."""

from __future__ import annotations

import random
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from connectors.commands import export_assignments_command, import_command
from connectors.importer import in_event_time_order, read_export, sorted_import

DATA = Path(__file__).parent / "data" / "crm"
ORDER_MAP = {"order_id": "OrderNo", "account_id": "AcctNo", "amount": "Total", "occurred_at": "OrderDate"}
IMPORTED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def with_repeat(tmp_path: Path, name: str, marker: str) -> Path:
    """A test export with its (one-line, valid) row holding `marker` repeated at the end."""
    text = (DATA / name).read_text(encoding="utf-8-sig")
    (line,) = [line for line in text.splitlines() if marker in line]
    path = tmp_path / name
    path.write_text(text.rstrip("\n") + "\n" + line + "\n", encoding="utf-8")
    return path


def orders_file(path: Path, rows: int, *, seed: int = 1) -> Path:
    """Generic orders in shuffled event time; every 50th row repeats the one before it,
    every 100th has a negative amount (a row error)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8") as out:
        out.write("order_id,account_id,amount,currency,occurred_at\n")
        line = ""
        for n in range(rows):
            if n % 50 == 49:
                out.write(line)
                continue
            moment = start + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
            amount = -5 if n % 100 == 0 else rng.randrange(1, 10**7) / 100
            line = f"O-{n},A-{rng.randrange(20_000)},{amount},EUR,{moment.isoformat()}\n"
            out.write(line)
    return path


@pytest.mark.parametrize(
    "name, repeated, format, options",
    [
        ("salesforce_accounts.csv", "AbC02AAF", "salesforce-accounts", {}),
        ("salesforce_accounts_semicolon.csv", "AbC02;", "salesforce-accounts", {}),
        ("generic_orders.csv", "778813", "generic", {"record_type": "order", "mappings": ORDER_MAP}),
        ("hubspot_users.csv", "51234567", "hubspot-users", {}),
    ],
)
def test_the_streamed_import_gives_what_the_in_memory_import_gives(tmp_path, name, repeated, format, options):
    path = with_repeat(tmp_path, name, repeated)
    report = read_export(path, format, imported_at=IMPORTED_AT, **options)
    with sorted_import(path, format, imported_at=IMPORTED_AT, run_size=2, **options) as streamed:
        assert len(streamed.runs) > 1 or streamed.distinct <= 2
        assert list(streamed.events()) == in_event_time_order(report.events)
        assert streamed.summary() == report.summary()
        assert (streamed.errors, streamed.error_count, streamed.invalid) == (
            report.errors,
            len(report.errors),
            report.invalid,
        )
        assert streamed.topics == {event.topic for event in report.events}
        assert streamed.duplicates == report.duplicates == 1
        directory = streamed.runs[0].parent
    assert not directory.exists()  # the run files go with the context


def test_ties_of_event_time_keep_file_order_across_runs(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(
        "account_id,lat,lon\n" + "".join(f"A-{n:03d},52.{n:03d},13.4\n" for n in range(100)), encoding="utf-8"
    )
    with sorted_import(path, "generic", record_type="account", imported_at=IMPORTED_AT, run_size=7) as streamed:
        assert [event.key for event in streamed.events()] == [f"A-{n:03d}" for n in range(100)]


def test_memory_is_bounded_by_the_run_size_not_by_the_file(tmp_path):
    # 50 runs of the file: the streamed peak follows one run, the in-memory one the whole file.
    rows, run_size = 20_000, 400
    path = orders_file(tmp_path / "orders.csv", rows)
    options = {"record_type": "order", "imported_at": IMPORTED_AT}
    tracemalloc.start()
    try:
        with sorted_import(path, "generic", run_size=run_size, keep_errors=100, **options) as streamed:
            produced, previous = 0, None
            for event in streamed.events():  # consumed one by one, as the producer does
                moment = datetime.fromisoformat(event.envelope["occurred_at"])
                assert previous is None or previous <= moment
                previous, produced = moment, produced + 1
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        report = read_export(path, "generic", **options)
        in_memory = in_event_time_order(report.events)
        _, in_memory_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    repeats, negatives = rows // 50, rows // 100  # see orders_file
    assert produced == streamed.distinct == len(in_memory) == rows - repeats - negatives
    assert (streamed.duplicates, streamed.invalid, streamed.error_count) == (repeats, negatives, negatives)
    assert len(streamed.errors) == 100 and streamed.errors == report.errors[:100]
    assert streamed_peak < 0.3 * in_memory_peak, (streamed_peak, in_memory_peak)


def test_a_dry_run_prints_the_first_errors_and_counts_all(tmp_path):
    path = orders_file(tmp_path / "orders.csv", 1_000)
    app = typer.Typer()
    app.command("import")(import_command)
    app.command("export-assignments")(export_assignments_command)
    result = CliRunner().invoke(
        app,
        [
            "import",
            str(path),
            "--format",
            "generic",
            "--type",
            "order",
            "--dry-run",
            "--no-progress",
            "--max-errors",
            "3",
        ],
        env={"TERRITORY_KAFKA_URL": ""},
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "line 2, column 'amount': must be >= 0, got -5",
        "line 102, column 'amount': must be >= 0, got -5",
        "line 202, column 'amount': must be >= 0, got -5",
        "... and 7 more errors",
        "rows read: 1000, valid: 990, invalid: 10 (of the valid, 20 repeat an earlier row)",
        "dry run: nothing produced",
    ]
