"""Offline postal code lookup: plausible coordinates, clear reasons, normalisation."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest

from core.geocode import (
    DATA_PATH,
    PostalCodeResolver,
    PostalDataMissing,
    UnresolvedPostalCode,
    canonical_code,
    default_resolver,
    normalize_country,
)


@pytest.fixture(scope="module")
def resolver() -> PostalCodeResolver:
    return default_resolver()


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# (code, country, a point of the place it belongs to, how far the centroid may be)
KNOWN = [
    ("10115", "DE", (52.532, 13.385), 3),  # Berlin-Mitte
    ("80331", "DE", (48.137, 11.575), 3),  # München Altstadt
    ("20095", "DE", (53.551, 10.000), 3),  # Hamburg Altstadt
    ("01067", "DE", (51.050, 13.737), 5),  # Dresden
    ("50667", "DE", (50.938, 6.957), 3),  # Köln
    ("1010", "AT", (48.208, 16.373), 3),  # Wien Innere Stadt
    ("8001", "CH", (47.372, 8.542), 3),  # Zürich
    ("75001", "FR", (48.862, 2.336), 4),  # Paris 1er
    ("1011 AB", "NL", (52.373, 4.900), 4),  # Amsterdam
    ("SW1A 1AA", "GB", (51.501, -0.142), 4),  # Buckingham Palace, via outward code SW1A
    ("M1 1AE", "GB", (53.481, -2.237), 4),  # Manchester
    ("10001", "US", (40.750, -73.997), 4),  # Manhattan
    ("00-002", "PL", (52.236, 21.010), 5),  # Warszawa
    ("1050", "DK", (55.681, 12.585), 4),  # København K
    ("0150", "NO", (59.913, 10.746), 4),  # Oslo
    ("111 20", "SE", (59.333, 18.065), 4),  # Stockholm
    ("K1A 0B1", "CA", (45.420, -75.700), 10),  # Ottawa, via FSA K1A
    ("110 00", "CZ", (50.086, 14.424), 5),  # Praha 1
]


@pytest.mark.parametrize("code, country, near, within_km", KNOWN)
def test_known_codes_resolve_near_their_place(resolver, code, country, near, within_km):
    found = resolver.resolve(code, country)
    assert found is not None, resolver.explain(code, country)
    assert km(found, near) <= within_km, (found, near)


def test_the_demo_cities_resolve_to_their_own_city(resolver):
    berlin, munich, hamburg = (resolver.resolve(c, "DE") for c in ("10115", "80331", "20095"))
    assert round(berlin[0], 2) == 52.53 and round(berlin[1], 2) == 13.38
    assert km(berlin, munich) > 450 and km(berlin, hamburg) > 250


def test_required_countries_are_supported(resolver):
    assert set("DE AT CH FR NL GB US PL DK NO SE".split()) <= set(resolver.supported_countries)
    assert list(resolver.supported_countries) == sorted(resolver.supported_countries)


def test_unknown_code_returns_none_and_says_so(resolver):
    assert resolver.resolve("99999", "DE") is None
    assert resolver.explain("99999", "DE") == "unknown postal code 99999 for DE"
    assert resolver.resolve("ZZ9", "GB") is None
    assert resolver.explain("ZZ9 9ZZ", "GB") == "unknown postal code ZZ9 (from 'ZZ9 9ZZ') for GB"


def test_unsupported_and_unrecognised_countries(resolver):
    assert resolver.resolve("100-0001", "JP") is None
    reason = resolver.explain("100-0001", "JP")
    assert reason.startswith("country JP not supported (supported: AD, AS, AT,")
    assert "DE" in reason and "US" in reason
    assert resolver.explain("10115", "XX").startswith("country XX not supported")
    assert resolver.resolve("10115", "Narnia") is None
    assert resolver.explain("10115", "Narnia") == (
        "unrecognised country 'Narnia' (expected ISO 3166-1 alpha-2 such as DE)"
    )
    assert resolver.explain("10115", None).startswith("unrecognised country None")


def test_bad_codes_are_explained_not_raised(resolver):
    assert resolver.resolve("", "DE") is None
    assert resolver.explain(" - ", "DE") == "empty postal code"
    assert resolver.resolve(10115, "DE") is None  # type: ignore[arg-type]
    assert resolver.explain(10115, "DE") == "postal code must be a string, got 10115"  # type: ignore[arg-type]


def test_require_raises_with_the_reason(resolver):
    assert resolver.require("10115", "DE") == resolver.resolve("10115", "DE")
    with pytest.raises(UnresolvedPostalCode) as caught:
        resolver.require("99999", "DE")
    assert str(caught.value) == caught.value.reason == "unknown postal code 99999 for DE"
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize(
    "code, country",
    [
        (" 10115 ", "DE"),
        ("10115", "de"),
        ("10115", " De "),
        ("10115", "DEU"),
        ("10115", "deu"),
        ("10115", "Germany"),
        ("10115", "Deutschland"),
        ("D-10115", "DE"),
        ("DE 10115", "DE"),
        ("10 115", "DE"),
    ],
)
def test_normalisation_of_code_and_country(resolver, code, country):
    assert resolver.resolve(code, country) == resolver.resolve("10115", "DE")


def test_country_names_and_codes():
    assert normalize_country("gb") == normalize_country("UK") == normalize_country("GBR") == "GB"
    assert normalize_country("United Kingdom") == normalize_country("England") == "GB"
    assert normalize_country("Österreich") == normalize_country("AUT") == "AT"
    assert normalize_country("the Netherlands") == normalize_country("Nederland") == "NL"
    assert normalize_country("USA") == normalize_country("United States") == "US"
    assert normalize_country("") is None and normalize_country("Atlantis") is None
    assert normalize_country(7) is None and normalize_country(["DE"]) is None


def test_partial_and_long_forms(resolver):
    # GB: full postcode, outward code, and an unlisted sub-district falling back to the district.
    assert resolver.resolve("sw1a1aa", "gb") == resolver.resolve("SW1A", "GB") is not None
    assert resolver.resolve("W1X 1AA", "GB") == resolver.resolve("W1", "GB") is not None
    assert "via district W1" in resolver.explain("W1X 1AA", "GB")
    # CA full postcode -> FSA; IE Eircode -> routing key; US ZIP+4 -> ZIP5.
    assert resolver.resolve("k1a0b1", "CA") == resolver.resolve("K1A", "CA") is not None
    assert resolver.resolve("D02 X285", "IE") == resolver.resolve("D02", "IE") is not None
    assert resolver.resolve("10001-1234", "US") == resolver.resolve("10001", "US")
    # FR CEDEX, LU/LV with their prefixes, Excel-mangled leading zeros.
    assert resolver.resolve("75008 CEDEX 08", "FR") == resolver.resolve("75008", "FR") is not None
    assert resolver.resolve("L-1234", "LU") == resolver.resolve("1234", "LU") is not None
    assert resolver.resolve("LV-1050", "LV") == resolver.resolve("1050", "LV") is not None
    assert resolver.resolve("1067", "DE") == resolver.resolve("01067", "DE") is not None
    assert resolver.resolve("2134", "US") == resolver.resolve("02134", "US") is not None


def test_canonical_code_is_idempotent():
    for code, country in [
        ("SW1A 1AA", "GB"),
        ("K1A 0B1", "CA"),
        ("1011 AB", "NL"),
        ("D-1067", "DE"),
        ("75008 CEDEX", "FR"),
        ("00-950", "PL"),
        ("1000-001", "PT"),
        ("VLT 1117", "MT"),
    ]:
        once = canonical_code(code, country)
        assert canonical_code(once, country) == once


def test_never_zero_zero_and_always_in_range(resolver):
    for country in ("DE", "AT", "CH", "NL", "GB", "DK"):
        for lat, lon in resolver.table(country).values():
            assert (lat, lon) != (0.0, 0.0)
            assert -90 <= lat <= 90 and -180 <= lon <= 180
    # Every German code lies in Germany's bounding box.
    assert all(47.2 <= lat <= 55.1 and 5.8 <= lon <= 15.1 for lat, lon in resolver.table("DE").values())


def test_ten_thousand_lookups_run(resolver):
    """Not a benchmark: 10k mixed lookups complete (a few tens of ms here)."""
    codes = list(resolver.table("DE"))[:2000]
    queries = [(c, "DE") for c in codes] + [(" 10115 ", "de"), ("99999", "DE"), ("SW1A 1AA", "UK"), ("1", "JP")]
    resolved = 0
    for i in range(10_000):
        resolved += resolver.resolve(*queries[i % len(queries)]) is not None
    assert resolved > 9_000


def test_lazy_loading_and_one_resolver_per_process():
    fresh = PostalCodeResolver()
    assert fresh.loaded_countries == ()
    fresh.resolve("1010", "AT")
    assert fresh.loaded_countries == ("AT",)
    fresh.resolve("1020", "AT")
    assert fresh.table("AT") is fresh.table("AT")
    assert default_resolver() is default_resolver()


def test_data_file_is_small_and_attributed():
    assert DATA_PATH.stat().st_size < 5_000_000
    with zipfile.ZipFile(DATA_PATH) as archive:
        meta = json.loads(archive.read("meta.json"))
    assert "CC BY 4.0" in meta["licence"] and "GeoNames" in meta["licence"]
    assert meta["countries"]["DE"] > 8000


def test_missing_or_broken_data_fails_at_load_with_a_clear_error(tmp_path: Path):
    with pytest.raises(PostalDataMissing, match="not found at .*build_postal_codes"):
        PostalCodeResolver(tmp_path / "absent.zip")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(PostalDataMissing, match="unreadable"):
        PostalCodeResolver(broken)


def test_a_small_archive_of_its_own(tmp_path: Path):
    path = tmp_path / "tiny.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DE.tsv", "10115\t52.5323\t13.3846\n")
    tiny = PostalCodeResolver(path)
    assert tiny.supported_countries == ("DE",)
    assert tiny.resolve("10115", "DE") == (52.5323, 13.3846)
    assert tiny.explain("1010", "AT") == "country AT not supported (supported: DE)"
