"""A proposal as GeoJSON (alerts/geojson.py), served at ``GET /api/proposals/{id}.geojson``
and written by ``territory rebalance --out-geojson``: one Point per account row, one
LineString per move from the account to its new rep's home, one Point per rep home, in
[lon, lat] order without a crs member. Every document is checked against the schema and
read back with shapely (tests/geojson_checks.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from alerts.geojson import proposal_geojson
from alerts.store import Store
from alerts.web import review_app
from core.settings import Settings
from territory.cli import app
from tests import records
from tests.geojson_checks import (
    DISTRICT_FORMULA,
    FORMULA,
    KANJI,
    MINUS,
    PUBLISHED_SCHEMA,
    QUOTED,
    REP_COMMA,
    REP_CYRILLIC,
    REP_FORMULA,
    features,
    valid_geojson,
)
from tests.test_decisions import Recorder
from core.records import Proposal

READ_TOKEN, WRITE_TOKEN = "read-token-geojson-7d1", "write-token-geojson-2c9"
PROPOSAL_ID = "prop-geojson-1"
REASON = f"{FORMULA}, closer to {REP_CYRILLIC}'s home (12.5 km)"
UNLOCATED = "ohne Ort"


def payload(proposal_id: str = PROPOSAL_ID) -> dict[str, Any]:
    """A stored proposal (as the alert stage keeps it) whose ids would trip a spreadsheet."""

    def row(account_id: str, lat: float | None, lon: float | None, rep: str, potential: float) -> dict[str, Any]:
        return {"account_id": account_id, "lat": lat, "lon": lon, "rep_id": rep, "potential": potential,
                "sales_12m": potential / 2, "active_months_12m": 6, "last_order_month": "2025-03",
                "typical_gap_months": 1.0, "activity_minutes_12m": 30.0}  # fmt: skip

    return records.proposal(
        {
            "proposal_id": proposal_id,
            "moves": [
                {
                    "account_id": FORMULA,
                    "from_rep": REP_COMMA,
                    "to_rep": REP_CYRILLIC,
                    "potential": 600.0,
                    "workload": 5.0,
                    "distance_km": 12.5,
                    "reason": REASON,
                },  # fmt: skip
            ],
            "accounts": [
                row(FORMULA, 52.57, 13.45, REP_COMMA, 600.0),
                row(QUOTED, 52.4, 13.1, REP_COMMA, 300.0),
                row(KANJI, 35.68, 139.69, REP_CYRILLIC, 250.0),
                row(MINUS, 40.42, -3.7, REP_FORMULA, 125.5),
                row(UNLOCATED, None, None, REP_FORMULA, 10.0),
            ],
            "accounts_scope": "all",
            "accounts_as_of": "2025-03",
            "reps": [
                {"rep_id": REP_COMMA, "home_lat": 52.52, "home_lon": 13.4, "district": DISTRICT_FORMULA},
                {"rep_id": REP_CYRILLIC, "home_lat": 52.6, "home_lon": 13.5},
                {"rep_id": REP_FORMULA, "home_lat": 40.4, "home_lon": -3.68},
            ],
        }
    ).to_json()


def by_account(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["account_id"]: f for f in features(document, "account")}


# --------------------------------------------------------------------------- the conversion


def test_a_proposal_is_a_feature_collection_of_accounts_moves_and_rep_homes():
    document = valid_geojson(proposal_geojson(Proposal.from_json(payload())))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    assert document["proposal_id"] == PROPOSAL_ID
    accounts = by_account(document)
    assert set(accounts) == {FORMULA, QUOTED, KANJI, MINUS, UNLOCATED}

    moved = accounts[FORMULA]
    assert moved["geometry"] == {"type": "Point", "coordinates": [13.45, 52.57]}  # [lon, lat]
    assert moved["properties"] == {
        "kind": "account",
        "account_id": FORMULA,
        "rep_id": REP_COMMA,
        "new_rep_id": REP_CYRILLIC,
        "moved": True,
        "potential": 600.0,
        "sales_12m": 300.0,
        "reason": REASON,
    }
    stays = accounts[MINUS]
    assert stays["geometry"]["coordinates"] == [-3.7, 40.42]
    assert stays["properties"]["moved"] is False and stays["properties"]["new_rep_id"] is None
    assert stays["properties"]["reason"] is None and stays["properties"]["potential"] == 125.5
    assert accounts[UNLOCATED]["geometry"] is None  # RFC 7946 3.2: an unlocated feature

    [line] = features(document, "move")
    assert line["geometry"] == {"type": "LineString", "coordinates": [[13.45, 52.57], [13.5, 52.6]]}
    assert line["properties"] == {
        "kind": "move",
        "account_id": FORMULA,
        "from_rep": REP_COMMA,
        "to_rep": REP_CYRILLIC,
        "potential": 600.0,
        "distance_km": 12.5,
        "reason": REASON,
    }
    homes = {f["properties"]["rep_id"]: f for f in features(document, "rep_home")}
    assert set(homes) == {REP_COMMA, REP_CYRILLIC, REP_FORMULA}
    assert homes[REP_FORMULA]["geometry"]["coordinates"] == [-3.68, 40.4]
    assert homes[REP_COMMA]["properties"]["district"] == DISTRICT_FORMULA
    assert len(document["features"]) == 5 + 1 + 3


def test_a_move_without_an_account_row_or_rep_home_is_kept_without_a_line():
    """accounts_scope touched_largest may leave a moved account out; a rep may have no home
    row: the account is still there (unlocated), and no line is drawn to nowhere."""
    data = payload()
    data["accounts"] = [a for a in data["accounts"] if a["account_id"] != FORMULA]
    data["moves"].append({**data["moves"][0], "account_id": QUOTED, "to_rep": "R-gone", "reason": "no home known"})
    document = valid_geojson(proposal_geojson(Proposal.from_json(data)))
    accounts = by_account(document)
    assert accounts[FORMULA]["geometry"] is None
    assert accounts[FORMULA]["properties"]["moved"] is True
    assert accounts[FORMULA]["properties"]["rep_id"] == REP_COMMA  # the move's from_rep
    assert accounts[QUOTED]["properties"]["new_rep_id"] == "R-gone"
    assert features(document, "move") == []


def test_a_proposal_without_context_rows_still_shows_its_moves():
    bare = records.proposal(
        {"proposal_id": "p-bare", "moves": [{"account_id": "a1", "from_rep": "A", "to_rep": "B"}]}
    ).to_json()
    document = valid_geojson(proposal_geojson(Proposal.from_json(bare)))
    [account] = features(document, "account")
    assert account["geometry"] is None and account["properties"]["new_rep_id"] == "B"


def _without_properties(feature: dict[str, Any]) -> None:
    del feature["properties"]


def _one_position_line(feature: dict[str, Any]) -> None:
    feature["geometry"]["coordinates"] = feature["geometry"]["coordinates"][:1]


def _one_coordinate_point(feature: dict[str, Any]) -> None:
    feature["geometry"]["coordinates"] = feature["geometry"]["coordinates"][:1]


@pytest.mark.parametrize(
    ("kind", "breakage"),
    [("account", _without_properties), ("move", _one_position_line), ("rep_home", _one_coordinate_point)],
    ids=["feature without properties", "line of one position", "point of one coordinate"],
)
def test_the_published_schema_rejects_a_broken_feature(kind: str, breakage: Callable[[dict[str, Any]], None]):
    """The published FeatureCollection schema is a check that can fail: it accepts the
    document as written and rejects it once one feature is broken."""
    document = proposal_geojson(Proposal.from_json(payload()))
    jsonschema.Draft7Validator(PUBLISHED_SCHEMA).validate(document)
    breakage(features(document, kind)[0])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(PUBLISHED_SCHEMA).validate(document)
    with pytest.raises(jsonschema.ValidationError):
        valid_geojson(document)


def test_the_document_is_plain_utf8_json():
    text = json.dumps(proposal_geojson(Proposal.from_json(payload())), ensure_ascii=False, allow_nan=False)
    assert KANJI in text and REP_CYRILLIC in text
    assert json.loads(text)["features"][0]["properties"]["account_id"] == FORMULA


# --------------------------------------------------------------------------- the API


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    made.migrate()
    assert made.save_proposal(records.proposal(payload()))
    return made


def run(store: Store, scenario: Callable[[TestClient], Awaitable[Any]]) -> Any:
    settings = Settings(api_token=WRITE_TOKEN, api_read_token=READ_TOKEN, web_port=0)

    async def go() -> Any:
        async with TestClient(TestServer(review_app(store, Recorder(), settings), host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(go())


def read(token: str = READ_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_serves_a_proposal_as_geojson(store: Store):
    async def scenario(client: TestClient) -> None:
        response = await client.get(f"/api/proposals/{PROPOSAL_ID}.geojson", headers=read())
        assert response.status == 200, await response.text()
        assert response.content_type == "application/geo+json"
        document = valid_geojson(json.loads(await response.text()))
        assert document == proposal_geojson(Proposal.from_json(payload()))
        # The JSON route is still the JSON route.
        plain = await client.get(f"/api/proposals/{PROPOSAL_ID}", headers=read())
        assert plain.status == 200 and (await plain.json())["proposal_id"] == PROPOSAL_ID

    run(store, scenario)


def test_the_geojson_route_answers_404_for_an_unknown_id(store: Store):
    async def scenario(client: TestClient) -> None:
        response = await client.get("/api/proposals/prop-missing.geojson", headers=read())
        assert response.status == 404
        assert await response.json() == {"error": "no proposal 'prop-missing'"}

    run(store, scenario)


def test_the_geojson_route_needs_the_read_token(store: Store):
    async def scenario(client: TestClient) -> None:
        assert (await client.get(f"/api/proposals/{PROPOSAL_ID}.geojson")).status == 401
        wrong = await client.get(f"/api/proposals/{PROPOSAL_ID}.geojson", headers=read("wrong-token"))
        assert wrong.status in (401, 403)
        assert (await client.get(f"/api/proposals/{PROPOSAL_ID}.geojson", headers=read(WRITE_TOKEN))).status == 200

    run(store, scenario)


def test_an_id_with_odd_characters_is_found_through_its_percent_encoding(tmp_path: Path):
    odd = f"prop-{QUOTED} {KANJI}"
    store = Store(f"sqlite:///{tmp_path / 'odd.db'}")
    store.migrate()
    store.save_proposal(records.proposal(payload(odd)))

    async def scenario(client: TestClient) -> None:
        from urllib.parse import quote

        response = await client.get(f"/api/proposals/{quote(odd, safe='')}.geojson", headers=read())
        assert response.status == 200, await response.text()
        assert valid_geojson(json.loads(await response.text()))["proposal_id"] == odd

    run(store, scenario)


# --------------------------------------------------------------------------- territory rebalance --out-geojson

DATA = Path(__file__).parent / "data" / "rebalance"


def test_rebalance_writes_the_base_proposal_as_geojson(tmp_path: Path):
    out, proposal_json = tmp_path / "base.geojson", tmp_path / "proposal.json"
    result = CliRunner().invoke(
        app,
        [
            "rebalance",
            "--units",
            str(DATA / "units.csv"),
            "--reps",
            str(DATA / "reps.csv"),
            "--time-limit",
            "3",
            "--drop-rep",
            "R2",
            "--out",
            str(proposal_json),
            "--out-geojson",
            str(out),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    document = valid_geojson(json.loads(out.read_text(encoding="utf-8")))
    base = json.loads(proposal_json.read_text(encoding="utf-8"))
    assert [(m["unit_id"], m["from_rep"], m["to_rep"]) for m in base["moves"]] == [("U03", "R1", "R3")]
    units = by_account(document)
    assert len(units) == 12  # every unit of units.csv, not only the drop scenario's
    assert units["U03"]["properties"]["new_rep_id"] == "R3" and units["U03"]["properties"]["moved"] is True
    assert sum(1 for f in units.values() if f["properties"]["moved"]) == 1
    [line] = features(document, "move")
    assert line["properties"]["account_id"] == "U03"
    assert {f["properties"]["rep_id"] for f in features(document, "rep_home")} == {"R1", "R2", "R3"}
    with (DATA / "units.csv").open(encoding="utf-8") as handle:
        import csv

        u03 = next(r for r in csv.DictReader(handle) if r["unit_id"] == "U03")
    assert units["U03"]["geometry"]["coordinates"] == [float(u03["lon"]), float(u03["lat"])]


def test_rebalance_with_odd_unit_ids_writes_valid_geojson(tmp_path: Path):
    units, reps = tmp_path / "units.csv", tmp_path / "reps.csv"
    units.write_text(
        "unit_id,lat,lon,potential,rep_id\n"
        f'"{FORMULA}",52.5,13.4,80,"{REP_COMMA.replace(chr(34), chr(34) * 2)}"\n'
        f'"{QUOTED.replace(chr(34), chr(34) * 2)}",52.6,13.5,20,"{REP_COMMA.replace(chr(34), chr(34) * 2)}"\n'
        f"{KANJI},40.4,-3.7,10,{REP_CYRILLIC}\n",
        encoding="utf-8",
    )
    reps.write_text(
        "rep_id,home_lat,home_lon\n"
        f'"{REP_COMMA.replace(chr(34), chr(34) * 2)}",52.52,13.4\n'
        f"{REP_CYRILLIC},40.42,-3.7\n",
        encoding="utf-8",
    )
    out = tmp_path / "odd.geojson"
    result = CliRunner().invoke(
        app,
        [
            "rebalance",
            "--units",
            str(units),
            "--reps",
            str(reps),
            "--time-limit",
            "3",
            "--tolerance",
            "0.5",
            "--out-geojson",
            str(out),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    document = valid_geojson(json.loads(out.read_text(encoding="utf-8")))
    assert set(by_account(document)) == {FORMULA, QUOTED, KANJI}
    assert by_account(document)[FORMULA]["properties"]["rep_id"] == REP_COMMA
