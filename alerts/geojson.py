"""Proposals and accounts as GeoJSON (RFC 7946): pure conversion, no web or database.

:func:`proposal_geojson` turns a proposal (a ``core.records.Proposal``, as stored and read
back) into a FeatureCollection, for ``GET /api/proposals/{id}.geojson`` and ``territory rebalance
--out-geojson``. Each feature's ``properties.kind`` says what it is:

- ``account``: a Point per row of the proposal's ``accounts`` (and per moved account
  without a row): ``account_id``, ``rep_id`` (before), ``new_rep_id`` (None when it stays),
  ``moved``, ``potential``, ``sales_12m``, ``reason`` (of its move; None when it stays);
- ``move``: a LineString per move, from the account to its new rep's home: ``account_id``,
  ``from_rep``, ``to_rep``, ``potential``, ``distance_km``, ``reason``; left out when
  either end has no location;
- ``rep_home``: a Point per ``reps`` row: ``rep_id``, and ``district`` when it has one.

Positions are [longitude, latitude] in WGS 84, as RFC 7946 3.1.1 orders them; there is no
``crs`` member (RFC 7946 4). A feature whose place is unknown (an account row without lat
and lon) has a ``null`` geometry (RFC 7946 3.2) rather than being dropped. The collection
carries ``proposal_id`` (and ``accounts_scope``, ``accounts_as_of`` when the proposal has
them) as foreign members (RFC 7946 6.1).

>>> from core.records import Proposal
>>> document = proposal_geojson(Proposal.from_json({
...     "proposal_id": "prop-1", "created_at": "2026-01-05T09:00:00+00:00", "event_time": "2025-05-01T00:00:00+00:00",
...     "trigger_signals": [], "mode": "minimal_moves", "status": "optimal", "before": [], "after": [],
...     "imbalance_before": 0.2, "imbalance_after": 0.05, "seconds": 0.1, "tolerance": 0.1,
...     "moves": [{"account_id": "a1", "from_rep": "A", "to_rep": "B", "potential": 10.0, "workload": 0.0,
...                "distance_km": 3.2, "reason": "closer to B"}],
...     "accounts": [{"account_id": "a1", "lat": 52.5, "lon": 13.4, "rep_id": "A", "potential": 10.0,
...                   "sales_12m": 4.0}],
...     "reps": [{"rep_id": "B", "home_lat": 52.52, "home_lon": 13.45}],
... }))
>>> [(f["properties"]["kind"], f["geometry"]["type"]) for f in document["features"]]
[('account', 'Point'), ('move', 'LineString'), ('rep_home', 'Point')]
>>> document["features"][0]["geometry"]["coordinates"]  # longitude first
[13.4, 52.5]
>>> document["features"][0]["properties"]["new_rep_id"], document["features"][0]["properties"]["moved"]
('B', True)
>>> document["features"][1]["geometry"]["coordinates"]
[[13.4, 52.5], [13.45, 52.52]]
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from core.records import Proposal

#: The media type of a GeoJSON document (RFC 7946 12).
MEDIA_TYPE = "application/geo+json"


def position(lat: Any, lon: Any) -> list[float] | None:
    """[lon, lat] of a place, or None when either is missing, not a number or out of range.

    >>> position(52.52, 13.4), position(None, 13.4), position(95.0, 0.0)
    ([13.4, 52.52], None, None)
    """
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)) or abs(lat_f) > 90 or abs(lon_f) > 180:
        return None
    return [lon_f, lat_f]


def point(lat: Any, lon: Any) -> dict[str, Any] | None:
    """A Point geometry, or None (a feature's ``null`` geometry) for an unknown place."""
    where = position(lat, lon)
    return {"type": "Point", "coordinates": where} if where is not None else None


def feature(geometry: Mapping[str, Any] | None, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": dict(properties)}


def feature_collection(features: Iterable[Mapping[str, Any]], **foreign: Any) -> dict[str, Any]:
    """A FeatureCollection; `foreign` members (not None) are added beside ``features``."""
    members = {name: value for name, value in foreign.items() if value is not None}
    if "crs" in members:
        raise ValueError("RFC 7946 has no crs member: positions are WGS 84 longitude, latitude")
    return {"type": "FeatureCollection", **members, "features": [dict(f) for f in features]}


def _number(value: Any) -> float | None:
    """A finite number as float; None otherwise (JSON has no NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def proposal_geojson(proposal: Proposal) -> dict[str, Any]:
    """The proposal as a FeatureCollection (see the module docstring for the features and
    their properties)."""
    moves = {move.account_id: move for move in proposal.moves}
    rows = list(proposal.accounts or ())
    homes = {r["rep_id"]: r for r in proposal.reps or ()}
    account_places: dict[str, list[float] | None] = {}
    features: list[dict[str, Any]] = []

    def account(account_id: str, row: Mapping[str, Any]) -> None:
        move = moves.get(account_id)
        geometry = point(row.get("lat"), row.get("lon"))
        account_places[account_id] = geometry["coordinates"] if geometry else None
        properties = {
            "kind": "account",
            "account_id": account_id,
            "rep_id": row.get("rep_id") if "rep_id" in row else (move.from_rep if move else None),
            "new_rep_id": move.to_rep if move else None,
            "moved": move is not None,
            "potential": _number(row.get("potential", move.potential if move else None)),
            "sales_12m": _number(row.get("sales_12m")),
            "reason": move.reason if move else None,
        }
        for extra in ("segment", "name"):  # offline units may carry them; worker rows do not
            if row.get(extra) is not None:
                properties[extra] = row[extra]
        features.append(feature(geometry, properties))

    seen = set()
    for row in rows:
        if row.get("account_id") is None or row["account_id"] in seen:
            continue
        seen.add(row["account_id"])
        account(row["account_id"], row)
    for account_id, move in moves.items():
        if account_id not in seen:  # no context row (touched_largest, or none at all)
            account(account_id, {"rep_id": move.from_rep, "potential": move.potential})

    for account_id, move in moves.items():
        start = account_places.get(account_id)
        home = homes.get(move.to_rep)
        end = position(home.get("home_lat"), home.get("home_lon")) if home else None
        if start is None or end is None:
            continue
        features.append(
            feature(
                {"type": "LineString", "coordinates": [start, end]},
                {
                    "kind": "move",
                    "account_id": account_id,
                    "from_rep": move.from_rep,
                    "to_rep": move.to_rep,
                    "potential": _number(move.potential),
                    "distance_km": _number(move.distance_km),
                    "reason": move.reason,
                },
            )
        )

    for rep_id, home in homes.items():
        properties = {"kind": "rep_home", "rep_id": rep_id}
        if home.get("district"):
            properties["district"] = home["district"]
        features.append(feature(point(home.get("home_lat"), home.get("home_lon")), properties))

    return feature_collection(
        features,
        proposal_id=proposal.proposal_id,
        accounts_scope=proposal.accounts_scope,
        accounts_as_of=proposal.accounts_as_of,
    )
