"""Tables with fixed columns: the CSV files of `territory rebalance` (units, reps, edges).

Reading is :class:`connectors.csv_source.CsvSource`, as for `territory import`: UTF-8
with or without BOM, the delimiter (``,`` ``;`` tab ``|``) sniffed from the header or
named by an Excel ``sep=`` line, quoted cells (delimiters, quotes, line breaks inside),
header names compared case- and whitespace-insensitively (a name twice is refused),
extra columns ignored, physical line numbers (the header is line 1), at most
``MAX_CELL_CHARS`` characters a cell. Cells are stripped; an empty cell reads as ``""``.

Cells are parsed by :mod:`connectors.values`, the toolkit of `territory import`, so both
commands accept the same cells: numbers with a decimal comma, digit grouping
(``1,840.50``, ``1.840,50``, ``1 840``, ``12'000``); in a ``;`` file the ambiguous
``1,200`` / ``1.200`` read as locales with a decimal comma write them (1.2 / 1200), in
other files as 1200 / 1.2; booleans true/t/yes/y/1/x/on/wahr/ja and
false/f/no/n/0/off/falsch/nein in any case. What this module adds is the wording of the
offline command: ``FILE line N, column C: must be a number >= 0, got 'abc'``, problems of
one file collected and raised together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.csv_source import CsvFormatError, CsvSource
from connectors.values import NumberStyle, boolean, number

__all__ = [
    "BAD",
    "MAX_ERRORS",
    "CellError",
    "InputError",
    "Problems",
    "Table",
    "flag",
    "identifier",
    "labels",
    "number_above_0",
    "number_at_least_0",
    "number_in",
    "optional",
    "read_table",
    "whole_number_at_least_0",
]

#: Row problems listed per file before "... and N more".
MAX_ERRORS = 20

#: A cell parser: stripped cell text (and the file's number style) -> value, or CellError.
Parse = Callable[..., Any]


class InputError(ValueError):
    """A file (or a value given on the command line) that cannot be used; the message
    says where and why."""


class CellError(ValueError):
    """What is wrong with one cell (without where)."""


BAD = object()  # a cell that failed, where None is a valid value


@dataclass(frozen=True)
class Table:
    """A file's rows as ``(line, {column: stripped text})``, blank rows left out; every
    expected column is a key ("" when the file has no such column or the cell is empty)."""

    name: str
    rows: tuple[tuple[int, dict[str, str]], ...]
    style: NumberStyle = NumberStyle()


def read_table(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> Table:
    """Read ``path`` and check its header against the ``required`` columns; raises
    :class:`InputError` naming the file (and the line) for a file that cannot be read."""
    name = str(path)
    expected = list(required) + list(optional)
    try:
        with CsvSource(path, encoding_option=None) as source:
            found = {column: source.find([column]) for column in expected}
            missing = [column for column in required if found[column] is None]
            if missing:
                header = ", ".join(h for h in source.header if h) or "none"
                raise InputError(
                    f"{name}: missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (found: {header}; expected: {', '.join(expected)})"
                )
            rows = []
            for row in source:
                if row.extra:
                    raise InputError(
                        f"{name} line {row.line}: more cells than the header has columns "
                        "(a delimiter inside an unquoted cell?)"
                    )
                values = {column: (row.values.get(header) or "") if header else "" for column, header in found.items()}
                if any(values.values()):
                    rows.append((row.line, values))
            style = NumberStyle(decimal_comma=source.delimiter == ";")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a CSV file") from None
    except CsvFormatError as error:
        if error.line is None:  # nothing to read: no header line
            raise InputError(
                f"{name}: {error.message}; expected a header line with columns {', '.join(expected)}"
            ) from None
        raise InputError(f"{name} line {error.line}: {error.message}") from None
    except OSError as error:
        raise InputError(f"{name}: cannot read: {error.strerror or error}") from None
    return Table(name, tuple(rows), style)


class Problems:
    """Row problems of one file, raised together (up to MAX_ERRORS listed)."""

    def __init__(self, name: str, style: NumberStyle = NumberStyle()):
        self.name = name
        self.style = style
        self.messages: list[str] = []

    @classmethod
    def of(cls, table: Table) -> "Problems":
        return cls(table.name, table.style)

    def add(self, line: int, column: str, problem: str) -> None:
        self.messages.append(f"{self.name} line {line}, column {column}: {problem}")

    def at(self, line: int, row: dict[str, str]) -> Callable[..., Any]:
        """``cell(column, parse, none_ok=False)``: the parsed cell of ``row``, or None
        (``BAD`` with ``none_ok``, None being a value then) after noting the problem."""

        def cell(column: str, parse: Parse, *, none_ok: bool = False) -> Any:
            try:
                return parse(row.get(column, ""), self.style)
            except CellError as error:
                self.add(line, column, str(error))
                return BAD if none_ok else None

        return cell

    def build(self, line: int, cls: type, **fields: Any) -> Any:
        # The readers check every field first; this only catches what they might miss.
        try:
            return cls(**fields)
        except ValueError as error:
            self.messages.append(f"{self.name} line {line}: {error}")
            return None

    def raise_if_any(self) -> None:
        if self.messages:
            shown = self.messages[:MAX_ERRORS]
            if len(self.messages) > MAX_ERRORS:
                shown.append(f"... and {len(self.messages) - MAX_ERRORS} more problems in {self.name}")
            raise InputError("\n".join(shown))


# --------------------------------------------------------------------------- cell parsers
# Each takes the stripped cell text and the file's NumberStyle (default: a `,` file, as
# for a value given on the command line) and raises CellError.


def identifier(text: str, style: NumberStyle = NumberStyle()) -> str:
    if not text:
        raise CellError("required; the cell is empty")
    return text


def _number(text: str, style: NumberStyle, expectation: str) -> float:
    if not text:
        raise CellError(f"required; must be {expectation}, the cell is empty")
    try:
        return number(text, style)
    except ValueError:
        raise CellError(f"must be {expectation}, got {text!r}") from None


def number_in(low: float, high: float) -> Parse:
    """
    >>> number_in(-90, 90)("52,52"), number_in(-90, 90)("52.52", NumberStyle(decimal_comma=True))
    (52.52, 52.52)
    """
    expectation = f"a number in [{low:g}, {high:g}]"

    def parse(text: str, style: NumberStyle = NumberStyle()) -> float:
        value = _number(text, style, expectation)
        if not low <= value <= high:
            raise CellError(f"must be {expectation}, got {text!r}")
        return value

    return parse


def number_at_least_0(text: str, style: NumberStyle = NumberStyle()) -> float:
    """
    >>> number_at_least_0("1,840.50"), number_at_least_0("1.200", NumberStyle(decimal_comma=True))
    (1840.5, 1200.0)
    """
    value = _number(text, style, "a number >= 0")
    if value < 0:
        raise CellError(f"must be a number >= 0, got {text!r}")
    return value


def whole_number_at_least_0(text: str, style: NumberStyle = NumberStyle()) -> int:
    """A count: a whole number >= 0 (``12``, ``12.0``, ``1,200``).

    >>> whole_number_at_least_0("12"), whole_number_at_least_0("1,200"), whole_number_at_least_0("3.0")
    (12, 1200, 3)
    """
    value = _number(text, style, "a whole number >= 0")
    if value < 0 or not value.is_integer():
        raise CellError(f"must be a whole number >= 0, got {text!r}")
    return int(value)


def labels(text: str, style: NumberStyle = NumberStyle()) -> tuple[str, ...]:
    """A ``;``-separated list of names, each stripped, empty items dropped; an empty cell
    is the empty tuple.

    >>> labels("key account; smb"), labels(""), labels(" smb ;; ")
    (('key account', 'smb'), (), ('smb',))
    """
    return tuple(item.strip() for item in text.split(";") if item.strip())


def number_above_0(text: str, style: NumberStyle = NumberStyle()) -> float:
    value = _number(text, style, "a number > 0")
    if value <= 0:
        raise CellError(f"must be a number > 0, got {text!r}")
    return value


def flag(text: str, style: NumberStyle = NumberStyle()) -> bool:
    """A boolean cell; empty is false (an optional flag column).

    >>> flag("X"), flag("on"), flag("n"), flag("")
    (True, True, False, False)
    """
    if not text:
        return False
    try:
        return boolean(text)
    except ValueError:
        raise CellError(f"must be true or false (or yes/no, 1/0), got {text!r}") from None


def optional(parse: Parse, default: Any) -> Parse:
    """``parse`` for a cell that may be empty: empty gives ``default``."""
    return lambda text, style=NumberStyle(): parse(text, style) if text else default
