"""Where a rep lives when the users export does not say (HubSpot's users export has no
location at all).

A rep row without coordinates gets its home, in this order:

1. coordinates on the row itself (the export has them, or `--map home_lat=...`);
2. the `--rep-homes FILE` entry for the rep (by rep id or e-mail): lat/lon, or postal
   code + country (resolved by the contract's offline postal lookup);
3. the postal code + country on the row (the export has them);
4. with `--home-from-accounts`, the centre of the rep's current accounts in the accounts /
   companies file imported in the same command (`--accounts FILE`), said in the output.

Nothing is invented beyond that: a rep with none of these is refused by the contract.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.csv_source import CsvSource
from connectors.mapping import MappingError
from connectors.values import NumberStyle, number, show

ID_COLUMNS = ("rep_id", "Rep ID", "User ID", "Id", "Owner ID")
EMAIL_COLUMNS = ("email", "E-mail", "Email Address", "Primary Email")
LAT_COLUMNS = ("home_lat", "lat", "latitude")
LON_COLUMNS = ("home_lon", "lon", "lng", "longitude")
POSTAL_COLUMNS = ("postal_code", "Postal Code", "Zip/Postal Code", "zip", "postcode")
COUNTRY_COLUMNS = ("country", "Country/Region")


@dataclass(frozen=True)
class Home:
    lat: float | None = None
    lon: float | None = None
    postal_code: str | None = None
    country: str | None = None
    accounts: int = 0  # > 0: the centre of this many accounts


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


class RepHomes:
    """Homes by rep id / e-mail (`--rep-homes`) and account centres by rep id."""

    def __init__(self) -> None:
        self._listed: dict[str, Home] = {}
        self._centres: dict[str, Home] = {}
        self.centred: dict[str, Home] = {}  # reps whose home came from their accounts

    def add(self, key: str, home: Home) -> None:
        self._listed[_key(key)] = home

    def add_centre(self, rep_id: str, lat: float, lon: float, accounts: int) -> None:
        self._centres[rep_id] = Home(lat=lat, lon=lon, accounts=accounts)

    def __len__(self) -> int:
        return len(self._listed)

    def _listed_home(self, values: dict[str, Any]) -> Home | None:
        for candidate in (values.get("rep_id"), values.get("_email")):
            if isinstance(candidate, str) and candidate:
                for key in (candidate, candidate[:15]):  # Salesforce: 15- or 18-character id
                    home = self._listed.get(_key(key))
                    if home is not None:
                        return home
        return None

    def fill(self, values: dict[str, Any]) -> None:
        """Complete a rep row's payload values in place (see the module's order)."""
        if values.get("home_lat") is not None and values.get("home_lon") is not None:
            return
        home = self._listed_home(values)
        if home is not None:
            if home.lat is not None and home.lon is not None:
                values["home_lat"], values["home_lon"] = home.lat, home.lon
            else:
                values["postal_code"], values["country"] = home.postal_code, home.country
            return
        if values.get("postal_code") and values.get("country"):
            return
        rep_id = values.get("rep_id")
        centre = self._centres.get(rep_id) if isinstance(rep_id, str) else None
        if centre is not None:
            values["home_lat"], values["home_lon"] = centre.lat, centre.lon
            self.centred[rep_id] = centre  # type: ignore[index]

    def notes(self) -> list[str]:
        return [
            f"rep {rep}: home set to the centre of their {home.accounts} account{'s' if home.accounts != 1 else ''}"
            for rep, home in sorted(self.centred.items())
        ]


def load_rep_homes(path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8-sig") -> RepHomes:
    """A small CSV of rep homes: a rep id and/or e-mail column, and `lat`, `lon` or
    `postal_code`, `country`. A bad row stops the import, naming file, line and column."""
    path = Path(path)
    homes = RepHomes()
    with CsvSource(path, delimiter=delimiter, encoding=encoding) as source:
        ids = [column for column in (source.find(ID_COLUMNS), source.find(EMAIL_COLUMNS)) if column]
        lat, lon = source.find(LAT_COLUMNS), source.find(LON_COLUMNS)
        postal, country = source.find(POSTAL_COLUMNS), source.find(COUNTRY_COLUMNS)
        header = ", ".join(h for h in source.header if h)
        if not ids:
            raise MappingError(f"--rep-homes {path.name}: no rep_id or email column; header: {header}")
        if not (lat and lon) and not (postal and country):
            raise MappingError(
                f"--rep-homes {path.name}: needs lat and lon columns, or postal_code and country; header: {header}"
            )
        style = NumberStyle(decimal_comma=source.delimiter == ";")
        for row in source:

            def fail(column: str | None, reason: str) -> MappingError:
                where = f"column {column!r}" if column else "row"
                return MappingError(f"--rep-homes {path.name}, line {row.line}, {where}: {reason}")

            keys = [row.values.get(column) for column in ids]
            if not any(keys):
                raise fail(ids[0], "no rep id or e-mail")
            home = _home(row.values, lat, lon, postal, country, style, fail)
            for key in keys:
                if key:
                    homes.add(key, home)
    return homes


def _home(values, lat, lon, postal, country, style, fail) -> Home:
    lat_text = values.get(lat) if lat else None
    lon_text = values.get(lon) if lon else None
    if lat_text or lon_text:
        coordinates = []
        for column, text, limit in ((lat, lat_text, 90.0), (lon, lon_text, 180.0)):
            if not text:
                raise fail(column, "empty, while the other coordinate is given")
            try:
                value = number(text, style)
            except ValueError as error:
                raise fail(column, str(error)) from None
            if abs(value) > limit:
                raise fail(column, f"must be between -{limit:g} and {limit:g}, got {show(text)}")
            coordinates.append(value)
        return Home(lat=coordinates[0], lon=coordinates[1])
    postal_text = values.get(postal) if postal else None
    country_text = values.get(country) if country else None
    if postal_text and country_text:
        return Home(postal_code=postal_text, country=country_text)
    missing = (postal if not postal_text else country) or lat
    raise fail(missing, "no home: give lat and lon, or postal_code and country")


def centre(points: Iterable[tuple[float, float]]) -> tuple[float, float, int]:
    """The centre of points on the sphere (mean of unit vectors): right across the
    antimeridian too, where averaging degrees is not.

    >>> centre([(0.0, 179.0), (0.0, -179.0)])[:2]
    (0.0, 180.0)
    """
    x = y = z = 0.0
    count = 0
    for lat, lon in points:
        phi, lam = math.radians(lat), math.radians(lon)
        x += math.cos(phi) * math.cos(lam)
        y += math.cos(phi) * math.sin(lam)
        z += math.sin(phi)
        count += 1
    if not count:
        raise ValueError("no points")
    lat_c = math.degrees(math.atan2(z, math.hypot(x, y)))
    lon_c = math.degrees(math.atan2(y, x))
    return round(lat_c, 6), round(lon_c, 6), count
