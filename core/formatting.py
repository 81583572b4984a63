"""How figures read in alerts, reports, pages and the CLI: one place, so a share reads the
same wherever it is shown.

>>> percent(0.1234), percent(0.1234, 1), percent(None), percent(float("nan"), missing="-")
('12%', '12.3%', '–', '-')
>>> share_percent(0.0234), share_percent(0.234)
('2.3%', '23%')
>>> distinct_percents(0.101, 0.104)
('10.1%', '10.4%')
>>> significant_percent(0.123456), amount(1234.5), amount(2_500_000.4)
('12.35%', '1,234.50', '2,500,000')
>>> signed_percent(-0.2), signed_percent(0.4), signed_percent(0.0123, 1), signed_percent(None)
('-20%', '+40%', '+1.2%', '–')
>>> signed_percent(-0.2, 1, typographic=True), signed_percent(0.0, 1, typographic=True)
('−20.0%', '±0.0%')
>>> number(1234.5), number(None), signed_number(-1234.5), signed_number(0.2), signed_number(None)
('1,234', '–', '−1,234', '±0', '–')
"""

from __future__ import annotations

import math
from typing import Any

#: What a missing or non-finite figure reads as.
MISSING = "–"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def percent(value: Any, digits: int = 0, *, missing: str = MISSING) -> str:
    """A fraction as a percentage with `digits` decimals (0.1234 -> "12%")."""
    number = _number(value)
    return missing if number is None else f"{number * 100:.{digits}f}%"


def signed_percent(value: Any, digits: int = 0, *, missing: str = MISSING, typographic: bool = False) -> str:
    """A change as a percentage with its sign, + included (-0.2 -> "-20%", 0.4 -> "+40%");
    `typographic`: the minus sign and "±" for no change, as the review pages print them."""
    number = _number(value)
    if number is None:
        return missing
    if not typographic:
        return f"{number * 100:+.{digits}f}%"
    return _signed(f"{abs(number) * 100:.{digits}f}%", number)


def number(value: Any, digits: int = 0, *, missing: str = MISSING) -> str:
    """A figure with thousands separators (1234.5 -> "1,234")."""
    figure = _number(value)
    return missing if figure is None else f"{figure:,.{digits}f}"


def signed_number(value: Any, *, missing: str = MISSING) -> str:
    """A gap in whole units with its sign ("+1,234", "−1,234", "±0")."""
    figure = _number(value)
    return missing if figure is None else _signed(f"{abs(figure):,.0f}", figure)


def _signed(text: str, value: float) -> str:
    if not any(c in "123456789" for c in text):
        return "±" + text
    return ("+" if value > 0 else "−") + text


def share_percent(value: Any, *, missing: str = MISSING) -> str:
    """A share of the company: one decimal below 10 % (a 40-rep company's shares would all
    read "2%" or "3%" otherwise), whole percent above."""
    number = _number(value)
    if number is None:
        return missing
    return percent(number, 1 if abs(number) < 0.1 else 0)


def significant_percent(value: Any, significant: int = 4, *, missing: str = MISSING) -> str:
    """A fraction as a percentage with `significant` significant digits (small deviations of
    an already balanced plan stay visible)."""
    number = _number(value)
    return missing if number is None else f"{number * 100:.{significant}g}%"


def distinct_percents(a: float, b: float) -> tuple[str, str]:
    """Two fractions as percentages with just enough decimals (up to 3) to tell them apart."""
    for decimals in range(4):
        first, second = f"{a:.{decimals}%}", f"{b:.{decimals}%}"
        if first != second:
            break
    return first, second


def amount(value: Any, *, missing: str = MISSING) -> str:
    """Money: cents below a million, whole units from there."""
    number = _number(value)
    if number is None:
        return missing
    return f"{number:,.2f}" if abs(number) < 1e6 else f"{number:,.0f}"
