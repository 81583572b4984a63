"""What every GeoJSON the exports write must pass, and the odd ids the export tests use.

`valid_geojson` checks a document with `jsonschema` against the GeoJSON project's published
FeatureCollection schema (tests/data/geojson/FeatureCollection.json, source, version and licence
in the README beside it) and against this project's stricter one
(tests/data/geojson/feature_collection.schema.json: coordinate ranges, no crs), and round-trips
every located feature through shapely: ``shapely.geometry.shape`` gives a valid geometry with
exactly the coordinates written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
from shapely.geometry import mapping, shape

SCHEMAS = Path(__file__).parent / "data" / "geojson"
PUBLISHED_SCHEMA = json.loads((SCHEMAS / "FeatureCollection.json").read_text(encoding="utf-8"))
SCHEMA = json.loads((SCHEMAS / "feature_collection.schema.json").read_text(encoding="utf-8"))

# Ids and labels a spreadsheet, a CSV reader or a JSON writer could trip over.
FORMULA = "=cmd|' /C calc'!A0"
QUOTED = 'Kunde "Müller", GmbH'
KANJI = "東京-7"
MINUS = "-42"
REP_COMMA = 'Rép,"A"'
REP_CYRILLIC = "Иван"
REP_FORMULA = "=1+1"
DISTRICT_FORMULA = '=HYPERLINK("http://evil.example")'
DISTRICT_PLAIN = 'Nord, "Ost"'


def valid_geojson(document: dict[str, Any]) -> dict[str, Any]:
    """`document` after checking it is RFC 7946 GeoJSON that shapely reads back unchanged."""
    json.dumps(document, allow_nan=False)  # plain JSON: no NaN or Infinity
    for schema in (PUBLISHED_SCHEMA, SCHEMA):
        jsonschema.Draft7Validator.check_schema(schema)
        jsonschema.Draft7Validator(schema).validate(document)
    assert "crs" not in document
    for feature in document["features"]:
        geometry = feature["geometry"]
        if geometry is None:
            continue
        made = shape(geometry)
        assert made.is_valid and not made.is_empty, feature
        assert _same(mapping(made)["coordinates"], geometry["coordinates"]), feature
    return document


def _same(read: Any, written: Any) -> bool:
    if isinstance(written, (int, float)):
        return math.isclose(float(read), float(written), rel_tol=0, abs_tol=0)
    return len(read) == len(written) and all(_same(r, w) for r, w in zip(read, written))


def features(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in document["features"] if f["properties"]["kind"] == kind]
