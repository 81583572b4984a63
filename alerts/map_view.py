"""What the review page's interactive map shows of a proposal, as plain JSON for the browser.

The territories are drawn as areas (`alerts.boundaries.territory_areas`), before and after
the moves. Rep
colours are the charts' (`alerts.charts.rep_colors`), so the map, the PNGs and the e-mail
agree. The boundaries underneath are `alerts.boundaries`.

>>> from core.records import Proposal
>>> load = {"accounts": 1, "potential": 0.0, "fair_share": 0.5}
>>> proposal = Proposal.from_json({
...     "proposal_id": "p1", "created_at": "2026-01-05T09:00:00+00:00", "event_time": "2025-05-01T00:00:00+00:00",
...     "trigger_signals": [], "mode": "minimal_moves", "status": "optimal", "imbalance_before": 0.43,
...     "imbalance_after": 0.14, "seconds": 0.1, "tolerance": 0.1,
...     "accounts": [{"account_id": "a1", "lat": 52.5, "lon": 13.4, "rep_id": "A", "potential": 90.0},
...                  {"account_id": "a2", "lat": 52.6, "lon": 13.5, "rep_id": "A", "potential": 10.0},
...                  {"account_id": "b1", "lat": 53.5, "lon": 10.0, "rep_id": "B", "potential": 40.0}],
...     "reps": [{"rep_id": "A", "home_lat": 52.5, "home_lon": 13.4}, {"rep_id": "B", "home_lat": 53.5, "home_lon": 10.0}],
...     "moves": [{"account_id": "a1", "from_rep": "A", "to_rep": "B", "potential": 90.0, "workload": 0.0,
...                "distance_km": 200.0, "reason": "A over fair share by 30%"}],
...     "before": [{"rep_id": "A", "share": 0.71, "deviation": 0.43, **load}],
...     "after": [{"rep_id": "A", "share": 0.07, "deviation": -0.86, **load}],
... })
>>> view = map_view(proposal, with_boundaries=False)
>>> [(a["id"], a["before"], a["after"], a["moved"]) for a in view["accounts"]]
[('a1', 'A', 'B', True), ('a2', 'A', 'A', False), ('b1', 'B', 'B', False)]
>>> view["moves"][0]["to"], view["moves"][0]["path"]
('B', [[52.5, 13.4], [53.5, 10.0]])
>>> sorted(view["areas"]["before"]), view["reps"][0]["share_before"]
(['A', 'B'], 0.71)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.colors import to_hex
from shapely.geometry import mapping

from alerts.boundaries import boundaries_near, territory_areas
from alerts.charts import _finite, rep_colors
from core.records import Proposal


def _areas(accounts: Sequence[Mapping[str, Any]], side: str) -> dict[str, Any]:
    """Rep id -> GeoJSON polygon of their territory on that side ("before"/"after")."""
    points = ((str(a[side]), a["lat"], a["lon"]) for a in accounts if a[side] is not None)
    return {rep_id: mapping(area) for rep_id, area in territory_areas(points).items()}


def map_view(proposal: Proposal, *, with_boundaries: bool = True) -> dict[str, Any]:
    """The map's data: accounts (before / after rep, moved, figures, reason), rep homes with
    colour and share before / after against the band, each move's line from the account
    to its new rep's home, the territory areas before and after, the shocks that triggered
    the proposal, and (with `with_boundaries`) the boundaries around the accounts."""
    moves = {move.account_id: move for move in proposal.moves}
    accounts: list[dict[str, Any]] = []
    for row in proposal.accounts or ():
        if not _finite(row.get("lat"), row.get("lon")):
            continue
        account_id = str(row["account_id"])
        move = moves.get(account_id)
        accounts.append(
            {
                "id": account_id,
                "lat": float(row["lat"]),
                "lon": float(row["lon"]),
                "before": row.get("rep_id"),
                "after": move.to_rep if move else row.get("rep_id"),
                "moved": move is not None,
                "potential": row.get("potential"),
                "sales_12m": row.get("sales_12m"),
                "segment": row.get("segment"),
                "reason": move.reason if move else None,
            }
        )
    homes = {
        str(rep["rep_id"]): (float(rep["home_lat"]), float(rep["home_lon"]))
        for rep in proposal.reps or ()
        if _finite(rep.get("home_lat"), rep.get("home_lon"))
    }
    colours = rep_colors([*homes, *(a["before"] for a in accounts), *(a["after"] for a in accounts)])
    before = {row.rep_id: row for row in proposal.before}
    after = {row.rep_id: row for row in proposal.after}
    reps = []
    for rep_id, colour in sorted(colours.items()):
        was, now = before.get(rep_id), after.get(rep_id)
        either = was or now
        reps.append(
            {
                "id": rep_id,
                "colour": to_hex(colour),
                "home": list(homes[rep_id]) if rep_id in homes else None,
                "share_before": was.share if was else None,
                "share_after": now.share if now else None,
                "fair_share": either.fair_share if either else None,
                "deviation_before": was.deviation if was else None,
                "deviation_after": now.deviation if now else None,
            }
        )
    by_id = {a["id"]: a for a in accounts}
    lines = [
        {
            "account": account_id,
            "from": move.from_rep,
            "to": move.to_rep,
            "path": [[by_id[account_id]["lat"], by_id[account_id]["lon"]], list(homes[move.to_rep])],
        }
        for account_id, move in moves.items()
        if account_id in by_id and move.to_rep in homes
    ]
    points = [(a["lat"], a["lon"]) for a in accounts] + list(homes.values())
    return {
        "proposal_id": proposal.proposal_id,
        "tolerance": proposal.tolerance,
        "accounts": accounts,
        "reps": reps,
        "moves": lines,
        "areas": {"before": _areas(accounts, "before"), "after": _areas(accounts, "after")},
        "shocks": [dict(shock) for shock in proposal.shocks or ()],
        "boundaries": boundaries_near(points) if with_boundaries else {"type": "FeatureCollection", "features": []},
    }
