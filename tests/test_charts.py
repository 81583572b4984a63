"""Tests of the proposal charts (pure plotting: no Kafka, no database).

The PNGs of the synthetic company are also written to /tmp/charts/ so a person can look
at them after a run.
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path
from typing import Any

import pytest

import matplotlib  # noqa: E402,F401 - a project dependency: a missing install must fail, not skip
from matplotlib import image as mpimg  # noqa: E402

from alerts.charts import (  # noqa: E402
    MapAccount,
    MapRep,
    apply_moves,
    moves_curve_png,
    rep_colors,
    share_chart_png,
    territory_map_png,
)

CHART_DIR = Path("/tmp/charts")

# (name, lat, lon, weight): real German cities, weight ~ how many accounts sit there.
CITIES = [
    ("Hamburg", 53.551, 9.994, 6),
    ("Bremen", 53.079, 8.802, 3),
    ("Hannover", 52.375, 9.732, 4),
    ("Berlin", 52.520, 13.405, 7),
    ("Leipzig", 51.340, 12.375, 3),
    ("Dresden", 51.050, 13.738, 3),
    ("Köln", 50.938, 6.960, 6),
    ("Düsseldorf", 51.228, 6.774, 4),
    ("Dortmund", 51.514, 7.466, 4),
    ("Frankfurt", 50.110, 8.682, 5),
    ("Stuttgart", 48.776, 9.183, 5),
    ("Nürnberg", 49.452, 11.077, 3),
    ("München", 48.137, 11.576, 7),
]
REPS = [
    MapRep("R01", 53.551, 9.994),  # Hamburg
    MapRep("R02", 50.938, 6.960),  # Köln
    MapRep("R03", 48.137, 11.576),  # München
]
TOLERANCE = 0.10


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def make_company(n: int = 60, seed: int = 3) -> list[MapAccount]:
    """n accounts scattered around the cities, each owned by the nearest rep, with a
    skewed potential (a few big customers, many small ones)."""
    rng = random.Random(seed)
    cities = [c for c in CITIES for _ in range(c[3])]
    accounts = []
    for i in range(n):
        _, lat, lon, _ = rng.choice(cities)
        lat += rng.gauss(0, 0.18)
        lon += rng.gauss(0, 0.28)
        owner = min(REPS, key=lambda r: _km(lat, lon, r.home_lat, r.home_lon))
        accounts.append(MapAccount(f"A{i + 1:03d}", lat, lon, owner.rep_id, round(rng.lognormvariate(10.5, 0.9), 2)))
    return accounts


def balances(accounts: list[MapAccount]) -> list[dict[str, Any]]:
    """Before/after rows in the proposal's JSON form, equal capacity for every rep."""
    total = math.fsum(a.potential for a in accounts)
    fair = 1 / len(REPS)
    rows = []
    for rep in REPS:
        mine = [a for a in accounts if a.rep_id == rep.rep_id]
        share = math.fsum(a.potential for a in mine) / total
        rows.append(
            {
                "rep_id": rep.rep_id,
                "accounts": len(mine),
                "potential": math.fsum(a.potential for a in mine),
                "share": share,
                "fair_share": fair,
                "deviation": share / fair - 1,
            }
        )
    return rows


def make_proposal(accounts: list[MapAccount], n_moves: int = 6) -> dict[str, Any]:
    """A hand-made proposal: the most over-served rep hands its accounts nearest to the
    most under-served rep's home to that rep."""
    before = balances(accounts)
    over = max(before, key=lambda b: b["deviation"])["rep_id"]
    under = min(before, key=lambda b: b["deviation"])["rep_id"]
    home = next(r for r in REPS if r.rep_id == under)
    candidates = sorted(
        (a for a in accounts if a.rep_id == over), key=lambda a: _km(a.lat, a.lon, home.home_lat, home.home_lon)
    )
    moves = [
        {
            "account_id": a.account_id,
            "from_rep": over,
            "to_rep": under,
            "potential": a.potential,
            "workload": 0.0,
            "distance_km": round(_km(a.lat, a.lon, home.home_lat, home.home_lon), 1),
            "reason": f"{over} over fair share; {under} under",
        }
        for a in candidates[:n_moves]
    ]
    after = balances(apply_moves(accounts, moves))
    return {
        "proposal_id": "prop-test0001",
        "status": "optimal" if moves else "no_change",
        "moves": moves,
        "before": before,
        "after": after,
        "imbalance_before": max(abs(b["deviation"]) for b in before),
        "imbalance_after": max(abs(b["deviation"]) for b in after),
        "tolerance": TOLERANCE,
        "seconds": 0.1,
    }


def decode(png: bytes) -> Any:
    assert isinstance(png, bytes)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def company() -> list[MapAccount]:
    return make_company()


@pytest.fixture(scope="module")
def proposal(company: list[MapAccount]) -> dict[str, Any]:
    return make_proposal(company)


# ---------------------------------------------------------------------------- apply_moves


def test_apply_moves_changes_exactly_the_moved_accounts(company, proposal):
    after = apply_moves(company, proposal["moves"])
    moved = {m["account_id"]: m["to_rep"] for m in proposal["moves"]}
    assert len(moved) == 6
    assert [a.account_id for a in after] == [a.account_id for a in company]
    for old, new in zip(company, after):
        if old.account_id in moved:
            assert old.rep_id != new.rep_id == moved[old.account_id]
        else:
            assert new == old
    # Input untouched (frozen dataclasses, new list).
    assert all(a.rep_id == m["from_rep"] for a in company for m in proposal["moves"] if a.account_id == m["account_id"])


def test_apply_moves_ignores_accounts_not_on_the_map():
    accounts = [MapAccount("a1", 50.0, 8.0, "R01")]
    assert apply_moves(accounts, [{"account_id": "elsewhere", "from_rep": "R01", "to_rep": "R02"}]) == accounts


def test_rep_colors_are_stable_and_distinct():
    a = rep_colors(["R03", "R01", "R02", None])
    b = rep_colors(["R02", "R03", "R01"])
    assert a == b and len(set(a.values())) == 3


# ---------------------------------------------------------------------------- pictures


def test_territory_map_two_panels_is_wide(company, proposal):
    png = territory_map_png(company, REPS, proposal)
    img = decode(png)
    h, w = img.shape[:2]
    assert w > h
    assert 1100 <= w <= 1600  # ~12 in at 110 dpi
    CHART_DIR.mkdir(parents=True, exist_ok=True)
    (CHART_DIR / "territory_map.png").write_bytes(png)


def test_territory_map_without_proposal_is_one_panel(company, proposal):
    single = decode(territory_map_png(company, REPS, title="Territories today"))
    double = decode(territory_map_png(company, REPS, proposal))
    assert single.shape[1] < double.shape[1]
    CHART_DIR.mkdir(parents=True, exist_ok=True)
    (CHART_DIR / "territory_map_single.png").write_bytes(territory_map_png(company, REPS))


def test_share_chart(proposal):
    png = share_chart_png(proposal)
    h, w = decode(png).shape[:2]
    assert w > 600 and h > 200
    CHART_DIR.mkdir(parents=True, exist_ok=True)
    (CHART_DIR / "share_chart.png").write_bytes(png)


def test_moves_curve():
    curve = [
        {"moves": m, "imbalance": v}
        for m, v in [(0, 0.41), (1, 0.30), (2, 0.22), (3, 0.16), (4, 0.12), (5, 0.09), (6, 0.07), (8, 0.06)]
    ]
    png = moves_curve_png(curve, tolerance=TOLERANCE)
    h, w = decode(png).shape[:2]
    assert w > h > 200
    CHART_DIR.mkdir(parents=True, exist_ok=True)
    (CHART_DIR / "moves_curve.png").write_bytes(png)


def test_zero_moves_still_renders(company):
    proposal = make_proposal(company, n_moves=0)
    assert proposal["moves"] == [] and proposal["before"] == proposal["after"]
    decode(territory_map_png(company, REPS, proposal))
    decode(share_chart_png(proposal))


def test_degenerate_inputs_render():
    """Empty company, a single account, zero potential, an account without a rep, an
    infeasible proposal and an empty curve: nothing to show is still a picture."""
    decode(territory_map_png([], []))
    decode(territory_map_png([MapAccount("a1", 50.0, 8.0, None)], [MapRep("R01", 50.0, 8.0)]))
    infeasible = {
        "proposal_id": "p",
        "status": "infeasible",
        "moves": [],
        "before": [],
        "after": [],
        "imbalance_before": 0.5,
        "imbalance_after": 0.5,
        "tolerance": 0.1,
    }
    decode(share_chart_png(infeasible))
    decode(moves_curve_png([]))


def test_renders_are_deterministic_and_thread_safe(company, proposal):
    """No pyplot state: renders from several threads at once equal a lone render."""
    from concurrent.futures import ThreadPoolExecutor

    alone = territory_map_png(company, REPS, proposal)
    with ThreadPoolExecutor(4) as pool:
        maps = list(pool.map(lambda _: territory_map_png(company, REPS, proposal), range(4)))
        shares = list(pool.map(lambda _: share_chart_png(proposal), range(4)))
    assert all(m == alone for m in maps)
    assert len(set(shares)) == 1


def test_a_shock_among_the_triggers_is_drawn_where_it_hit(company, proposal):
    """A dashed red circle around the shocked accounts' centre, on both panels."""
    import numpy as np

    lats, lons = [a.lat for a in company], [a.lon for a in company]
    centre = [float(np.median(lats)), float(np.median(lons))]
    shocked = {
        **proposal,
        "shocks": [
            {
                "kind": "local_shock",
                "direction": "drop",
                "size": -0.3,
                "centre": centre,
                "radius_km": 60.0,
                "name": "test area",
            }
        ],
    }
    plain, marked = (
        decode(territory_map_png(company, REPS, proposal)),
        decode(territory_map_png(company, REPS, shocked)),
    )
    assert plain.shape == marked.shape
    red = (marked[..., 0] > 0.6) & (marked[..., 1] < 0.25) & (marked[..., 2] < 0.3)
    red_before = (plain[..., 0] > 0.6) & (plain[..., 1] < 0.25) & (plain[..., 2] < 0.3)
    assert red.sum() > red_before.sum() + 200  # the circle and its label
    # A shock without a usable centre is left out, not an error.
    broken = {**proposal, "shocks": [{"kind": "local_shock", "centre": None}]}
    assert decode(territory_map_png(company, REPS, broken)).shape == plain.shape
    CHART_DIR.mkdir(parents=True, exist_ok=True)
    (CHART_DIR / "territory_map_shock.png").write_bytes(territory_map_png(company, REPS, shocked))


def test_maps_draw_real_borders_under_the_territories_and_survive_without_them(monkeypatch):
    from alerts import boundaries
    from alerts.charts import _borders

    # Raleigh and Charlotte: the country, North Carolina and its neighbours, its counties.
    levels = {level for level, _ in _borders([(35.78, -78.64), (35.23, -80.84)])}
    assert levels == {"country", "admin1", "admin2"}
    accounts = [MapAccount("a1", 35.78, -78.64, "R1", 10.0), MapAccount("a2", 35.23, -80.84, "R2", 5.0)]
    reps = [MapRep("R1", 35.78, -78.64), MapRep("R2", 35.23, -80.84)]
    with_borders = territory_map_png(accounts, reps)

    def missing(points):
        raise OSError("boundaries.zip is missing")

    monkeypatch.setattr(boundaries, "boundaries_near", missing)
    without = territory_map_png(accounts, reps)  # degrees as before, no failure
    assert without.startswith(b"\x89PNG") and without != with_borders
