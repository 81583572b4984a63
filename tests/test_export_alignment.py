"""`territory export-alignment`: every account of the current alignment, as the store knows
it, to CSV, xlsx or GeoJSON, optionally with a proposal's new reps.

Owners come from the store's owner mirror (known_accounts: what an approval on the review
page is checked against); figures (lat, lon, potential) and districts from the newest stored
proposal whose rows carry the account. Text cells that a spreadsheet would run as a formula
are written with a leading ' (read back with csv and openpyxl); numbers stay numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from typer.testing import CliRunner

from alerts.store import KnownOwner, Store
from territory.cli import app
from tests import records
from tests.geojson_checks import (
    DISTRICT_FORMULA,
    FORMULA,
    KANJI,
    MINUS,
    QUOTED,
    REP_COMMA,
    REP_CYRILLIC,
    REP_FORMULA,
    valid_geojson,
)
from tests.test_proposal_geojson import PROPOSAL_ID, UNLOCATED, payload

COLUMNS = ["account_id", "rep_id", "rep_source", "district", "segment", "potential", "potential_as_of", "lat", "lon"]
WITH_PROPOSAL = COLUMNS + ["new_rep_id", "proposal_id"]
OLDER = "prop-older"
NO_FIGURES = "nur-im-Spiegel"  # mirrored, in no proposal's rows
FROM_OLDER = "aus-älterem"  # mirrored, only in an older proposal's rows
CLOSED = "geschlossen"


def older_payload() -> dict[str, Any]:
    """An earlier proposal: its figure for MINUS is stale, its row for FROM_OLDER the only one."""

    def row(account_id: str, potential: float, lat: float, lon: float) -> dict[str, Any]:
        return {"account_id": account_id, "lat": lat, "lon": lon, "rep_id": REP_FORMULA, "potential": potential,
                "sales_12m": 1.0, "active_months_12m": 1, "last_order_month": None, "typical_gap_months": None,
                "activity_minutes_12m": 0.0}  # fmt: skip

    return records.proposal(
        {
            "proposal_id": OLDER,
            "event_time": "2025-02-01T00:00:00+00:00",
            "accounts": [row(MINUS, 1.0, 1.0, 1.0), row(FROM_OLDER, 77.0, 48.1, 11.6)],
            "accounts_scope": "touched",
            "accounts_as_of": "2025-01",
            "reps": [{"rep_id": REP_FORMULA, "home_lat": 40.4, "home_lon": -3.68, "district": "old district"}],
        }
    ).to_json()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    made.migrate()
    made.save_proposal(records.proposal(older_payload()))
    made.save_proposal(records.proposal(payload()))
    owners = {
        FORMULA: KnownOwner(REP_COMMA, False),
        QUOTED: KnownOwner(REP_COMMA, False),
        KANJI: KnownOwner(REP_CYRILLIC, False),
        MINUS: KnownOwner(REP_FORMULA, False),
        NO_FIGURES: KnownOwner(REP_CYRILLIC, False),
        FROM_OLDER: KnownOwner(REP_FORMULA, False),
        CLOSED: KnownOwner(REP_COMMA, True),
    }
    made.record_owners(owners, {REP_COMMA: True, REP_CYRILLIC: True, REP_FORMULA: True}, "2025-04-30T00:00:00+00:00")
    return made


def export(store: Store, *args: str, expect: int = 0):
    result = CliRunner().invoke(app, ["export-alignment", *args], env={"TERRITORY_DB_URL": store.url})
    assert result.exit_code == expect, result.output
    assert "Traceback" not in result.output
    return result


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def by_id(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    header = rows[0]
    return {row[0]: dict(zip(header, row)) for row in rows[1:]}


# --------------------------------------------------------------------------- CSV


def test_csv_holds_every_known_account_with_owner_figures_and_district(store: Store, tmp_path: Path):
    out = tmp_path / "alignment.csv"
    result = export(store, "--format", "csv", "--out", str(out))
    rows = csv_rows(out)
    assert rows[0] == COLUMNS
    table = by_id(rows)
    assert set(table) == {"'" + FORMULA, QUOTED, KANJI, "'" + MINUS, NO_FIGURES, FROM_OLDER, UNLOCATED}
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: spreadsheets read the letters

    minus = table["'" + MINUS]
    assert minus == {
        "account_id": "'" + MINUS,  # text that starts like a formula: neutralised
        "rep_id": "'" + REP_FORMULA,
        "rep_source": "known_accounts",
        "district": "",  # REP_FORMULA's row in the newest proposal names no district
        "segment": "",
        "potential": "125.5",  # the newest proposal's figure, not the older 1.0
        "potential_as_of": "2025-03",
        "lat": "40.42",
        "lon": "-3.7",  # a number: never prefixed
    }
    formula = table["'" + FORMULA]
    assert formula["rep_id"] == REP_COMMA and formula["district"] == "'" + DISTRICT_FORMULA
    assert table[QUOTED]["lat"] == "52.4" and table[KANJI]["rep_id"] == REP_CYRILLIC
    assert table[FROM_OLDER]["potential"] == "77.0" and table[FROM_OLDER]["potential_as_of"] == "2025-01"
    assert [table[NO_FIGURES][c] for c in ("potential", "potential_as_of", "lat", "lon")] == ["", "", "", ""]
    assert table[UNLOCATED]["rep_source"] == f"proposal {PROPOSAL_ID}"  # not mirrored: the proposal's owner
    assert table[UNLOCATED]["lat"] == "" and table[UNLOCATED]["potential"] == "10.0"
    assert CLOSED not in table

    note = result.output
    assert "6 accounts from the store's owner mirror" in note
    assert f"1 account not in the mirror ({UNLOCATED!r}): owner from proposal" in note
    assert f"1 account without figures ({NO_FIGURES!r})" in note
    assert "1 closed account left out" in note
    assert "names are not stored" in note and "segment" in note
    assert f"wrote 7 accounts to {out}" in note


@pytest.mark.parametrize("cell", ["=1+1", "+49 30 1234", "-2+3", "@SUM(A1)", "\tx", "\rx", FORMULA])
def test_every_text_cell_that_starts_like_a_formula_is_neutralised(store: Store, tmp_path: Path, cell: str):
    store.record_owners({cell: KnownOwner(cell, False)}, {}, None)
    out = tmp_path / "alignment.csv"
    export(store, "--format", "csv", "--out", str(out))
    row = by_id(csv_rows(out))["'" + cell]
    assert row["rep_id"] == "'" + cell


# --------------------------------------------------------------------------- xlsx


def test_xlsx_cells_are_text_or_numbers_never_formulas(store: Store, tmp_path: Path):
    out = tmp_path / "alignment.xlsx"
    export(store, "--format", "xlsx", "--out", str(out), "--pending")
    book = openpyxl.load_workbook(out)
    sheet = book["alignment"]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == WITH_PROPOSAL
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    table = {row[0]: dict(zip(WITH_PROPOSAL, row)) for row in rows[1:]}
    formula = table["'" + FORMULA]
    assert formula["new_rep_id"] == REP_CYRILLIC and formula["proposal_id"] == PROPOSAL_ID
    assert formula["district"] == "'" + DISTRICT_FORMULA
    minus = table["'" + MINUS]
    assert minus["rep_id"] == "'" + REP_FORMULA and minus["new_rep_id"] in (None, "")
    assert isinstance(minus["lon"], float) and minus["lon"] == -3.7
    assert isinstance(minus["potential"], float) and minus["potential"] == 125.5
    assert table[KANJI]["account_id"] == KANJI and table[QUOTED]["account_id"] == QUOTED
    notes = [row[0] for row in book["notes"].iter_rows(values_only=True)]
    assert any("owner mirror" in str(line) for line in notes)


# --------------------------------------------------------------------------- GeoJSON


def test_geojson_is_a_feature_collection_of_account_points(store: Store, tmp_path: Path):
    out = tmp_path / "alignment.geojson"
    export(store, "--format", "geojson", "--out", str(out), "--with-proposal", PROPOSAL_ID)
    document = valid_geojson(json.loads(out.read_text(encoding="utf-8")))
    assert "crs" not in document and document["type"] == "FeatureCollection"
    assert all(f["geometry"] is None or f["geometry"]["type"] == "Point" for f in document["features"])
    found = {f["properties"]["account_id"]: f for f in document["features"]}
    assert set(found) == {FORMULA, QUOTED, KANJI, MINUS, NO_FIGURES, FROM_OLDER, UNLOCATED}  # JSON: as they are
    assert found[MINUS]["geometry"]["coordinates"] == [-3.7, 40.42]
    assert found[MINUS]["properties"]["potential"] == 125.5 and found[MINUS]["properties"]["new_rep_id"] is None
    assert found[FORMULA]["properties"]["new_rep_id"] == REP_CYRILLIC
    assert found[NO_FIGURES]["geometry"] is None and found[NO_FIGURES]["properties"]["potential"] is None
    assert any("owner mirror" in line for line in document["notes"])


# --------------------------------------------------------------------------- options


def test_a_proposal_names_its_new_reps_and_empty_for_those_that_stay(store: Store, tmp_path: Path):
    out = tmp_path / "alignment.csv"
    export(store, "--format", "csv", "--out", str(out), "--with-proposal", PROPOSAL_ID)
    rows = csv_rows(out)
    assert rows[0] == WITH_PROPOSAL
    table = by_id(rows)
    assert table["'" + FORMULA]["new_rep_id"] == REP_CYRILLIC
    assert {row["new_rep_id"] for key, row in table.items() if key != "'" + FORMULA} == {""}


def test_unknown_proposal_both_options_and_a_bad_format_are_refused(store: Store, tmp_path: Path):
    out = tmp_path / "x.csv"
    missing = export(store, "--format", "csv", "--out", str(out), "--with-proposal", "prop-missing", expect=2)
    assert "no proposal 'prop-missing'" in missing.output
    both = export(store, "--format", "csv", "--out", str(out), "--with-proposal", PROPOSAL_ID, "--pending", expect=2)
    assert "either" in both.output
    assert "csv, geojson or xlsx" in export(store, "--format", "ods", "--out", str(out), expect=2).output
    assert not out.exists()


def test_pending_without_a_pending_proposal_is_refused(tmp_path: Path):
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    empty.migrate()
    result = export(empty, "--format", "csv", "--out", str(tmp_path / "x.csv"), "--pending", expect=2)
    assert "no pending proposal" in result.output


def test_an_empty_store_writes_the_header_and_says_it_knows_no_alignment(tmp_path: Path):
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    empty.migrate()
    out = tmp_path / "alignment.csv"
    result = export(empty, "--format", "csv", "--out", str(out))
    assert csv_rows(out) == [COLUMNS]
    assert "the store knows no account" in result.output
