"""Over-long cells are refused with the line and column, and cell
parsing is linear (no regex with two quantifiers that can split the same text: see
bench/csv_cells.py for the 10 KB vs 100 KB measurement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.csv_source import MAX_CELL_CHARS, CsvFormatError, CsvSource
from connectors.hubspot import email
from connectors.mapping import Context
from connectors.values import number
from territory.offline import InputError, read_units


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("length", [MAX_CELL_CHARS + 1, 100_000, 1_000_000])
def test_a_cell_over_the_limit_is_refused_naming_line_and_column(tmp_path: Path, length: int):
    path = write(
        tmp_path / "accounts.csv",
        "Id,Name,Annual Revenue\n001A,Fine GmbH,100\n001B,Long AG," + "9" * length + "\n001C,Next,1\n",
    )
    with CsvSource(path) as source:
        with pytest.raises(CsvFormatError) as refused:
            list(source)
    message = str(refused.value)
    assert refused.value.line == 3 and "line 3" in message
    assert f"{MAX_CELL_CHARS:,}" in message
    if length <= 131_072:  # beyond, the csv module stops before the column is known
        assert "Annual Revenue" in message


def test_a_cell_at_the_limit_is_read(tmp_path: Path):
    path = write(tmp_path / "accounts.csv", "Id,Notes\n001A," + "x" * MAX_CELL_CHARS + "\n")
    with CsvSource(path) as source:
        [row] = list(source)
    assert len(row.values["Notes"]) == MAX_CELL_CHARS


def test_the_offline_reader_refuses_an_over_long_cell_naming_line_and_column(tmp_path: Path):
    path = write(
        tmp_path / "units.csv",
        "unit_id,lat,lon,potential\nu1,52.5,13.4,10\nu2,52.5,13.4," + "1" * (MAX_CELL_CHARS + 1) + "\n",
    )
    with pytest.raises(InputError) as refused:
        read_units(path)
    message = str(refused.value)
    assert "line 3" in message and "potential" in message and f"{MAX_CELL_CHARS:,}" in message


@pytest.mark.parametrize(
    "text, value",
    [
        ("1840.5", 1840.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("-13.4", -13.4),
        ("1e3", 1000.0),
        ("+2.5E-1", 0.25),
        ("1,840.50", 1840.5),
        ("007", 7.0),
    ],
)
def test_numbers_read_as_before(text: str, value: float):
    assert number(text) == value


@pytest.mark.parametrize("text", ["1..2", ".", "1.2.3x", "e5", "1e", "--1", "1" * 5000 + "x"])
def test_non_numbers_are_refused(text: str):
    with pytest.raises(ValueError, match="must be a number"):
        number(text)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("anna@example.com", True),
        ("a@b.c", True),
        ("a@b..c", True),
        ("=x@y.de", True),
        ("a.b@c.d.e", True),
        ("a@.c", False),
        ("a@b.", False),
        ("a@bc", False),
        ("a b@c.d", False),
        ("a@b@c.d", False),
        ("@b.c", False),
        ("a@b.c ", False),
        ("a@" + "." * 5000 + " ", False),
        ("a@b.c\n", False),
    ],
)
def test_email_addresses_are_told_as_before(text: str, ok: bool):
    if ok:
        assert email(text, Context()) == text.lower()
    else:
        with pytest.raises(ValueError):
            email(text, Context())
