"""Cell text -> typed values. Each parser raises ValueError whose message is the reason
shown to the user (`must be a number, got "abc"`), in the contract's wording.

Numbers accept what spreadsheets and CRM exports write: `1840.5`, `1840,5`, `1,840.50`,
`1.840,50`, `1 840`, `12'000`. A lone comma followed by exactly three digits (`1,200`) is
ambiguous; it is a decimal comma in `;`-delimited files (the convention of locales that
write a decimal comma) and a thousands separator otherwise; likewise `1.200` is 1200 in
`;`-delimited files and 1.2 otherwise. Anything else is read the one way it can be.
Python's digit grouping `1_000` (an underscore between two digits) is read too; `nan`,
`inf` and numbers beyond the float range (`1e999`) are refused. Currency symbols and
units are not numbers (`€12`, `12 EUR` are refused).

Booleans: `true t yes y 1 x on wahr ja` and `false f no n 0 off falsch nein`, in any case,
with surrounding spaces. An empty cell is no value here: each reader decides its default.

These parsers are the one cell toolkit of both `territory import` (connectors.mapping)
and `territory rebalance` (connectors.tables), so the two accept the same cells.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Any

_GROUPED = {",": re.compile(r"^[+-]?\d{1,3}(,\d{3})+$"), ".": re.compile(r"^[+-]?\d{1,3}(\.\d{3})+$")}
# Linear: no two quantifiers may split the same run of digits (r"\d+\.?\d*" tried every
# split of a long digit run before failing: 16 s for a 24 KB cell). fullmatch, not "$":
# "$" also matches before a trailing newline.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Python's rule for "_" in a number: one underscore between two digits.
_UNDERSCORE_GROUPING = re.compile(r"(?<=\d)_(?=\d)")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "x", "on", "wahr", "ja"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "falsch", "nein"})


@dataclass(frozen=True)
class NumberStyle:
    decimal_comma: bool = False  # how to read the ambiguous "1,200"


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def number(raw: str, style: NumberStyle = NumberStyle()) -> float:
    """
    >>> number("1.840,50"), number("1,840.50"), number("52,52"), number("-13.4"), number("1 200")
    (1840.5, 1840.5, 52.52, -13.4, 1200.0)
    >>> number("1,200"), number("1,200", NumberStyle(decimal_comma=True))
    (1200.0, 1.2)
    >>> number("12'000"), number("1_000"), number(" 1e3 ")
    (12000.0, 1000.0, 1000.0)
    """
    text = raw.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("'", "")
    canonical = _canonical_number(_UNDERSCORE_GROUPING.sub("", text), style)
    if canonical is None or not _PLAIN_NUMBER.fullmatch(canonical):
        raise ValueError(f"must be a number, got {show(raw)}")
    value = float(canonical)
    if not math.isfinite(value):  # "1e999"
        raise ValueError(f"must be a number, got {show(raw)}")
    return value


def _canonical_number(text: str, style: NumberStyle) -> str | None:
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        grouping = "." if decimal == "," else ","
        head, _, tail = text.rpartition(decimal)
        if not _GROUPED[grouping].match(head) and grouping in head:
            return None
        return head.replace(grouping, "") + "." + tail
    for separator in (",", "."):
        if separator not in text:
            continue
        # Only this separator occurs.
        if text.count(separator) > 1:
            return text.replace(separator, "") if _GROUPED[separator].match(text) else None
        if _GROUPED[separator].match(text):  # "1,200" / "1.200": grouping or decimal?
            is_grouping = style.decimal_comma == (separator == ".")
            return text.replace(separator, "") if is_grouping else text.replace(",", ".")
        return text.replace(",", ".")
    return text


def integer(raw: str, style: NumberStyle = NumberStyle()) -> int:
    """
    >>> integer("120"), integer("1,200"), integer("1.200"), integer("35.0")
    (120, 1200, 1200, 35)
    """
    text = raw.strip()
    for separator in (",", "."):
        if _GROUPED[separator].match(text):
            return int(text.replace(separator, ""))
    try:
        value = number(text, style)
    except ValueError:
        raise ValueError(f"must be an integer, got {show(raw)}") from None
    if value != int(value):
        raise ValueError(f"must be an integer, got {show(raw)}")
    return int(value)


def fraction(raw: str, style: NumberStyle = NumberStyle()) -> float:
    """A probability: `0.4`, `0,4` or `40%`.

    >>> fraction("40%"), fraction("0.25"), fraction("40")
    (0.4, 0.25, 40.0)
    """
    text = raw.strip()
    if text.endswith("%"):
        return number(text[:-1], style) / 100.0
    return number(text, style)


def boolean(raw: str) -> bool:
    """
    >>> boolean("Yes"), boolean(" x "), boolean("T"), boolean("nein"), boolean("0")
    (True, True, True, False, False)
    """
    text = raw.strip().casefold()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"must be true or false (or yes/no, 1/0), got {show(raw)}")


def timestamp(raw: str, zone: tzinfo = timezone.utc) -> datetime:
    """ISO 8601 date or date-time; without an offset it is read in `zone`.

    Salesforce writes `2025-01-02T08:00:00.000Z` (Data Loader, Data Export) or
    `...000+0000` (API); HubSpot `2025-01-02 08:00`. Report exports in a locale's format
    (`02/01/2025, 08:00`) are refused: day and month cannot be told apart.

    >>> timestamp("2025-01-02T08:00:00.000Z").isoformat()
    '2025-01-02T08:00:00+00:00'
    >>> timestamp("2025-01-02").isoformat()
    '2025-01-02T00:00:00+00:00'
    """
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or time (e.g. 2025-01-02T08:00:00Z), got {show(raw)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


#: Date orders that CRM report exports and spreadsheets write, tried by `detect_date_format`.
#: Dots are day-first only (no locale writes month.day.year); slashes and dashes go either way.
LOCALE_DATE_FORMATS = ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y")
_TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p", "%I:%M%p")


def check_date_format(date_format: str) -> str:
    """A --date-format value: strptime codes for day, month and year, e.g. `%d.%m.%Y`."""
    if not all(code in date_format for code in ("%d", "%m")) or not ("%Y" in date_format or "%y" in date_format):
        raise ValueError(
            f"--date-format wants the day, month and year codes, e.g. %m/%d/%Y or %d.%m.%Y, got {date_format!r}"
        )
    return date_format


def locale_timestamp(raw: str, date_format: str, zone: tzinfo = timezone.utc) -> datetime:
    """A date in `date_format` (strptime codes), alone or followed by a time, as report
    exports write them: `1/2/2025`, `1/2/2025, 8:00 AM`, `02.01.2025 08:00`.

    >>> locale_timestamp("1/15/2025, 9:30 AM", "%m/%d/%Y").isoformat()
    '2025-01-15T09:30:00+00:00'
    >>> locale_timestamp("02.01.2025", "%d.%m.%Y").isoformat()
    '2025-01-02T00:00:00+00:00'
    """
    text = " ".join(raw.split())
    formats = [date_format] + [f"{date_format}{sep}{t}" for t in _TIME_FORMATS for sep in (", ", " ")]
    for candidate in formats:
        try:
            moment = datetime.strptime(text, candidate)
        except ValueError:
            continue
        return moment.replace(tzinfo=zone)
    raise ValueError(f"not a date in the format {date_format} (--date-format), got {show(raw)}")


def is_iso(raw: str) -> bool:
    try:
        timestamp(raw)
    except ValueError:
        return False
    return True


def date_formats_fitting(raw: str, candidates: "tuple[str, ...] | list[str]" = LOCALE_DATE_FORMATS) -> list[str]:
    """The candidate formats `raw` reads in (`1/2/2025`: month or day first; `1/15/2025`: only month first)."""
    fitting = []
    for candidate in candidates:
        try:
            locale_timestamp(raw, candidate)
        except ValueError:
            continue
        fitting.append(candidate)
    return fitting


def iso(moment: datetime) -> str:
    """The envelope's form of a moment: ISO 8601 with offset, milliseconds at most."""
    if moment.microsecond % 1000 == 0 and moment.microsecond:
        return moment.isoformat(timespec="milliseconds")
    return moment.isoformat(timespec="seconds") if not moment.microsecond else moment.isoformat()
