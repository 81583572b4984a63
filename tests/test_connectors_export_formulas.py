"""A cell a spreadsheet would run as a formula is neutralised in every
export format (a leading ' makes Excel, LibreOffice and Sheets show it as text)."""

from __future__ import annotations

import csv
import io

import pytest

from connectors.export import COLUMNS, Assignment, export_rows, write_csv

DANGEROUS = ['=HYPERLINK("http://evil.example")@x.de', "+cmd@x.de", "-2+3@x.de", "@SUM(A1)@x.de"]


def written(format: str, rows: list[tuple[str, str]]) -> list[list[str]]:
    out = io.StringIO()
    write_csv(out, format, rows)
    return list(csv.reader(io.StringIO(out.getvalue())))


@pytest.mark.parametrize("owner", ['=HYPERLINK("http://evil.example")@x.de', "+cmd@x.de", "-2+3@x.de"])
def test_hubspot_owner_that_looks_like_a_formula_is_written_as_text(owner: str):
    rows, problems = export_rows([Assignment(account_id="123", to_rep=owner)], "hubspot")
    assert problems == []
    [header, row] = written("hubspot", rows)
    assert header == list(COLUMNS["hubspot"])
    assert row == ["123", "'" + owner.lower()]


@pytest.mark.parametrize("format", sorted(COLUMNS))
@pytest.mark.parametrize("cell", DANGEROUS + ["\tx", "\rx", "=1+1"])
def test_every_format_neutralises_formula_cells(format: str, cell: str):
    [_, row] = written(format, [(cell, "plain")])
    assert row == ["'" + cell, "plain"]


@pytest.mark.parametrize("cell", ["0013000000AbCdEAAZ", "12345", "anna@example.com", "a=b", "x-1", ""])
def test_ordinary_cells_are_unchanged(cell: str):
    [_, row] = written("salesforce", [(cell, cell)])
    assert row == [cell, cell]
