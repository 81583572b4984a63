"""One cell toolkit: `territory import` (connectors.mapping) and `territory rebalance`
(the offline reader) read the same cell text as the same value, or both refuse it with
an error naming the row and the column.

Each case is written once into a file both commands read: a `,` file (cells quoted as
needed) and a `;` file, whose ambiguous `1,200` / `1.200` are read the way locales with a
decimal comma write them (see connectors.values).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.csv_source import CsvFormatError
from connectors.importer import read_export
from territory.offline import InputError, read_reps, read_units

REFUSED = "refused"

# (cell text, value in a `,` file, value in a `;` file)
NUMBERS = [
    ("12", 12.0, 12.0),
    ("  12  ", 12.0, 12.0),
    ("+12", 12.0, 12.0),
    ("1840.5", 1840.5, 1840.5),
    (".5", 0.5, 0.5),
    ("1e3", 1000.0, 1000.0),
    ("1840,5", 1840.5, 1840.5),
    ("1,840.50", 1840.5, 1840.5),
    ("1.840,50", 1840.5, 1840.5),
    ("1 840", 1840.0, 1840.0),
    ("1\u00a0840,5", 1840.5, 1840.5),
    ("12'000", 12000.0, 12000.0),
    ("1_000", 1000.0, 1000.0),
    ("1,200", 1200.0, 1.2),
    ("1.200", 1.2, 1200.0),
    ("", None, None),
    ("abc", REFUSED, REFUSED),
    ("1,2,3", REFUSED, REFUSED),
    ("1.2.3", REFUSED, REFUSED),
    ("1,2.3", REFUSED, REFUSED),
    ("1__000", REFUSED, REFUSED),
    ("--1", REFUSED, REFUSED),
    ("nan", REFUSED, REFUSED),
    ("inf", REFUSED, REFUSED),
    ("1e999", REFUSED, REFUSED),
    ("€12", REFUSED, REFUSED),
    ("12 EUR", REFUSED, REFUSED),
    ("-5", REFUSED, REFUSED),
]

BOOLEANS = (
    [
        (text, True)
        for text in (
            "true",
            "TRUE",
            "True",
            "t",
            "T",
            "yes",
            "Yes",
            "y",
            "Y",
            "1",
            "x",
            "X",
            "on",
            "ja",
            "wahr",
            " yes ",
        )
    ]
    + [(text, False) for text in ("false", "FALSE", "f", "F", "no", "NO", "n", "N", "0", "off", "nein", "falsch")]
    + [(text, REFUSED) for text in ("maybe", "2", "-1", "ok", "yes please", "wahrscheinlich")]
)


def write(path: Path, delimiter: str, header: list[str], row: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerow(row)
    return path


def imported(path: Path, record_type: str, field: str) -> Any:
    """The value `territory import` reads, or REFUSED with a row error at line 2, column `field`."""
    report = read_export(path, "generic", record_type=record_type)
    if report.errors:
        assert [(error.line, error.column) for error in report.errors] == [(2, field)], report.errors
        return REFUSED
    [event] = report.events
    return event.envelope["data"].get(field)


def rebalanced(read: Callable[[Path], tuple], path: Path, attribute: str, column: str) -> Any:
    """The value the offline reader reads, or REFUSED with `FILE line 2, column C: ...`."""
    try:
        [item] = read(path)
    except InputError as error:
        assert f"{path} line 2, column {column}: " in str(error), str(error)
        return REFUSED
    return getattr(item, attribute)


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize(("text", "in_comma_file", "in_semicolon_file"), NUMBERS)
def test_a_number_cell_reads_the_same_in_import_and_rebalance(
    tmp_path: Path, delimiter: str, text: str, in_comma_file: Any, in_semicolon_file: Any
):
    expected = in_comma_file if delimiter == "," else in_semicolon_file
    path = write(
        tmp_path / "reps.csv",
        delimiter,
        ["rep_id", "home_lat", "home_lon", "max_travel_km"],
        ["R1", "52.5", "13.4", text],
    )
    by_import = imported(path, "rep", "max_travel_km")
    by_rebalance = rebalanced(read_reps, path, "max_travel_km", "max_travel_km")
    assert by_import == by_rebalance == expected


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize(("text", "expected"), BOOLEANS)
def test_a_boolean_cell_reads_the_same_in_import_and_rebalance(
    tmp_path: Path, delimiter: str, text: str, expected: Any
):
    path = write(
        tmp_path / "units.csv",
        delimiter,
        ["account_id", "unit_id", "lat", "lon", "potential", "locked"],
        ["A1", "A1", "52.5", "13.4", "10", text],
    )
    by_import = imported(path, "account", "locked")
    by_rebalance = rebalanced(read_units, path, "locked", "locked")
    assert by_import == by_rebalance == expected


def test_both_commands_name_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "reps.csv"
    path.write_bytes(
        b"rep_id,home_lat,home_lon\n" + b"R1,52.5,13.4\n" * 3000 + "M\u00fcller,52.5,13.4\n".encode("cp1252")
    )
    with pytest.raises(CsvFormatError, match="line 3002: not utf-8 text"):
        read_export(path, "generic", record_type="rep")
    with pytest.raises(InputError, match=r"reps\.csv line 3002: not utf-8 text .*save the export as 'CSV UTF-8'$"):
        read_reps(path)
