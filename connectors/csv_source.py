"""Reading CRM CSV exports as they come out of Salesforce, HubSpot and Excel.

* Encoding: UTF-8, with or without the byte order mark Excel writes ("CSV UTF-8").
  Other encodings only when asked (`encoding="cp1252"`); a decoding error names the line.
* Delimiter: sniffed from the header line among `,` `;` tab `|` (Excel in locales with a
  decimal comma writes `;`), or an Excel `sep=;` first line, or given explicitly.
* Quoted fields may hold delimiters, doubled quotes and line breaks; spaces before the
  opening quote are skipped (`a, "b, c"` is two cells).
* Line numbers are physical lines of the file, the header being line 1 (or 2 after a
  `sep=` line). A record spanning several lines is numbered by the line it starts on.
* Cells are stripped; an empty cell is missing (`None`), never "".
* A cell longer than MAX_CELL_CHARS (10,000 characters) stops the read with its line and
  column (`CsvFormatError`).

No Kafka, no contract: rows out, with their line numbers.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES_BYTES = 64 * 1024
#: Longest cell read (characters). CRM fields are far shorter (Salesforce long text: 32,768
#: bytes, and never a field this service reads); a longer cell is a broken export or an attack.
MAX_CELL_CHARS = 10_000


class CsvFormatError(ValueError):
    """A problem with the file as a whole (not one row): encoding, header, quoting."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Row:
    """One record: the line it starts on and its cells by header name (None = empty)."""

    line: int
    values: Mapping[str, str | None]
    extra: tuple[str, ...] = ()  # non-empty cells beyond the header's columns


def normalize_header(name: str) -> str:
    """Header names compare case- and whitespace-insensitively (`OWNERID` == `OwnerId`)."""
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def sniff_delimiter(line: str) -> str:
    """The candidate delimiter occurring most often outside quotes in `line` (a header).

    >>> sniff_delimiter('"Id","Name","BillingCity"'), sniff_delimiter("Id;Name;Ort")
    (',', ';')
    >>> sniff_delimiter('"Record ID"\\t"Company name, legal"')
    '\\t'
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the earlier, so ',' wins
    return best if counts[best] else ","


class CsvSource:
    """An open CSV export: `header`, `delimiter`, and iteration over `Row`s.

    Use as a context manager (or call `close()`). `position` / `size` (bytes) drive a
    progress bar; `position` runs ahead by the reader's buffer, which is fine for that.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        delimiter: str | None = None,
        encoding: str = "utf-8-sig",
        encoding_option: str | None = "--encoding",
    ):
        # encoding_option: the command-line option that sets the encoding, named in the
        # hint of a decoding error (None: the command has none; the hint says save as UTF-8).
        self.path = Path(path)
        self._encoding_option = encoding_option
        self.size = self.path.stat().st_size
        self._binary = open(self.path, "rb")
        try:
            self._encoding = encoding
            self._text = io.TextIOWrapper(self._binary, encoding=encoding, newline="")
            self._first_line = 1
            head = self._read_head()
            if head and head[0].strip().lower().startswith("sep=") and len(head[0].strip()) == 5:
                delimiter = delimiter or head[0].strip()[4]
                head = head[1:]
                self._first_line = 2
            if delimiter is not None and len(delimiter) != 1:
                raise CsvFormatError(f"delimiter must be one character, got {delimiter!r}")
            first = next((line for line in head if line.strip()), "")
            self.delimiter = delimiter or sniff_delimiter(first)
            self._reader = csv.reader(
                itertools.chain(head, self._text),
                delimiter=self.delimiter,
                quotechar='"',
                doublequote=True,
                skipinitialspace=True,
                strict=False,
            )
            self._lines_before = self._first_line - 1
            self.header = self._read_header()
        except BaseException:
            self._binary.close()
            raise

    # -- setup -------------------------------------------------------------------------

    def _read_head(self) -> list[str]:
        lines: list[str] = []
        read = 0
        try:
            while read < SNIFF_LINES_BYTES:
                line = self._text.readline()
                if not line:
                    break
                lines.append(line)
                read += len(line)
        except UnicodeDecodeError as error:
            raise self._decode_error(error, len(lines) + 1) from None
        return lines

    def _read_header(self) -> tuple[str, ...]:
        for line, cells in self._records():
            if not any(cell.strip() for cell in cells):
                continue
            header = tuple(" ".join(cell.replace("\ufeff", "").split()) for cell in cells)
            seen: dict[str, str] = {}
            for name in header:
                if not name:
                    continue
                key = normalize_header(name)
                if key in seen:
                    raise CsvFormatError(f"column {name!r} appears twice in the header", line=line)
                seen[key] = name
            if not seen:
                raise CsvFormatError("the header names no column", line=line)
            self.header_line = line
            return header
        raise CsvFormatError("empty file: no header line")

    # -- reading -----------------------------------------------------------------------

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(starting line, cells) of each record, blank lines included (as [])."""
        while True:
            start = self._reader.line_num + self._lines_before + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise self._decode_error(error, self._reader.line_num + self._lines_before + 1) from None
            except csv.Error as error:
                if "field larger than field limit" in str(error):
                    raise CsvFormatError(
                        f"a cell is longer than the limit of {MAX_CELL_CHARS:,} characters", line=start
                    ) from None
                raise CsvFormatError(f"unreadable CSV record ({error})", line=start) from None
            for index, cell in enumerate(cells):
                if len(cell) > MAX_CELL_CHARS:
                    name = self._column_name(index)
                    raise CsvFormatError(
                        f"{name}: the cell has {len(cell):,} characters, more than the limit of {MAX_CELL_CHARS:,}",
                        line=start,
                    )
            yield start, cells

    def _decode_error(self, error: UnicodeDecodeError, guess: int) -> CsvFormatError:
        # The text layer decodes blocks ahead of the line being read, so the line is
        # found again by decoding the file's bytes line by line (only on this error path).
        return CsvFormatError(
            _decode_hint(error, self._encoding_option), line=_undecodable_line(self.path, self._encoding) or guess
        )

    def _column_name(self, index: int) -> str:
        header = getattr(self, "header", ())
        if index < len(header) and header[index]:
            return f"column {header[index]!r}"
        return f"column {index + 1}"

    def __iter__(self) -> Iterator[Row]:
        width = len(self.header)
        for line, cells in self._records():
            if not any(cell.strip() for cell in cells):
                continue  # blank line (or a row of empty cells, as Excel leaves at the end)
            values = {name: _cell(cells[i]) if i < len(cells) else None for i, name in enumerate(self.header) if name}
            extra = tuple(cell.strip() for cell in cells[width:] if cell.strip())
            yield Row(line=line, values=values, extra=extra)

    @property
    def position(self) -> int:
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return self.size

    def find(self, candidates: Sequence[str]) -> str | None:
        """The header name (as written in the file) matching the first candidate found."""
        return find_column(self.header, candidates)

    def close(self) -> None:
        self._binary.close()

    def __enter__(self) -> "CsvSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_column(header: Sequence[str], candidates: Sequence[str]) -> str | None:
    by_key = {normalize_header(name): name for name in header if name}
    for candidate in candidates:
        found = by_key.get(normalize_header(candidate))
        if found is not None:
            return found
    return None


def _cell(raw: str) -> str | None:
    value = raw.strip()
    return value or None


def _undecodable_line(path: Path, encoding: str) -> int | None:
    """The first physical line of `path` that does not decode (None: none found)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                decoder.decode(line)
    except UnicodeDecodeError:
        return number
    except (LookupError, OSError):
        return None
    return None


def _decode_hint(error: UnicodeDecodeError, option: str | None = "--encoding") -> str:
    hint = f"not {error.encoding} text ({error.reason}); save the export as 'CSV UTF-8'"
    return hint + (f" or pass the file's encoding, e.g. {option} cp1252" if option else "")
