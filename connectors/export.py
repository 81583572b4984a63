"""Approved assignments (topic `territory.assignments`) -> a CSV the CRM re-imports.

Each message value is `{"account_id", "from_rep", "to_rep", "proposal_id", "approved_at",
"approved_by"}`, keyed by account id. The latest message per account wins: log order
within a partition (messages of one account share its partition), `approved_at` should
one account ever show up in two partitions.

Formats, two columns each, one row per account, sorted by account id, UTF-8 without BOM,
CRLF line ends:

* `salesforce`: `Id,OwnerId` - a Data Loader *update* file for Account (Data Loader's
  Auto-Match maps both columns by name). Ids are written in 18-character form.
* `hubspot`: `Record ID,Company owner` - a company import that updates existing
  companies by Record ID; HubSpot's import sets the owner from the owner's e-mail
  address in a `[Object] owner` column, so `Company owner` holds the rep id, which is
  the e-mail address for reps imported from HubSpot.

Rows the CRM would reject (an OwnerId that is not a User Id, an owner that is not an
e-mail address, a Record ID that is not a number) are left out and reported. A cell that
starts like a spreadsheet formula (= + - @, tab, CR) is written with a leading ' so a
spreadsheet shows it as text instead of running it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from connectors import hubspot, salesforce
from connectors.mapping import Context

COLUMNS: dict[str, tuple[str, str]] = {
    "salesforce": ("Id", "OwnerId"),
    "hubspot": ("Record ID", "Company owner"),
}


@dataclass(frozen=True)
class Assignment:
    account_id: str
    to_rep: str
    from_rep: str | None = None
    proposal_id: str | None = None
    approved_at: str | None = None
    approved_by: str | None = None
    partition: int = 0
    offset: int = 0


def parse_assignment(key: bytes | None, value: bytes | None, *, partition: int = 0, offset: int = 0) -> Assignment:
    """One message of territory.assignments; ValueError with the reason if unusable."""
    if value is None:
        raise ValueError("empty message")
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    account_id = document.get("account_id") or (key.decode("utf-8", "replace") if key else None)
    to_rep = document.get("to_rep")
    if not isinstance(account_id, str) or not account_id.strip():
        raise ValueError("account_id missing or not a string")
    if not isinstance(to_rep, str) or not to_rep.strip():
        raise ValueError("to_rep missing or not a string")
    return Assignment(
        account_id=account_id.strip(),
        to_rep=to_rep.strip(),
        from_rep=document.get("from_rep"),
        proposal_id=document.get("proposal_id"),
        approved_at=document.get("approved_at"),
        approved_by=document.get("approved_by"),
        partition=partition,
        offset=offset,
    )


def latest_per_account(assignments: Iterable[Assignment]) -> dict[str, Assignment]:
    latest: dict[str, Assignment] = {}
    for item in sorted(assignments, key=lambda a: (a.partition, a.offset)):
        current = latest.get(item.account_id)
        if current is None or current.partition == item.partition or _moment(item) >= _moment(current):
            latest[item.account_id] = item
    return latest


def _moment(item: Assignment) -> datetime:
    try:
        moment = datetime.fromisoformat((item.approved_at or "").replace("Z", "+00:00"))
    except ValueError:
        return _NEVER
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


_NEVER = datetime.min.replace(tzinfo=timezone.utc)


def export_rows(assignments: Iterable[Assignment], format: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(rows without header, problems) for `format`; one row per account, latest wins."""
    if format not in COLUMNS:
        raise ValueError(f"format must be one of {', '.join(COLUMNS)}, got {format!r}")
    rows: list[tuple[str, str]] = []
    problems: list[str] = []
    ctx = Context()
    for account_id, item in sorted(latest_per_account(assignments).items()):
        try:
            if format == "salesforce":
                row = (
                    _checked(salesforce.account_id, item.account_id, ctx, "Id"),
                    _checked(salesforce.user_id, item.to_rep, ctx, "OwnerId"),
                )
            else:
                row = (
                    _checked(hubspot.record_id, item.account_id, ctx, "Record ID"),
                    _checked(hubspot.email, item.to_rep, ctx, "Company owner"),
                )
        except ValueError as error:
            problems.append(f"account {account_id} -> {item.to_rep}: {error}; left out")
            continue
        rows.append(row)
    return rows, problems


def _checked(parse: Any, value: str, ctx: Context, column: str) -> str:
    try:
        return parse(value, ctx)
    except ValueError as error:
        raise ValueError(f"{column}: {error}") from None


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (tab and CR too: some strip them first); someone opening the file before the import
# would run it. An e-mail address may start with =, + or -.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(cell: str) -> str:
    """`cell` as a spreadsheet shows it verbatim: a leading ' makes a formula plain text.
    The one such helper: every file a spreadsheet may open goes through it (the CRM files
    here, ``territory export-alignment``'s CSV and xlsx).

    >>> as_text("=cmd|' /C calc'!A0"), as_text("-42"), as_text("a=b")
    ("'=cmd|' /C calc'!A0", "'-42", 'a=b')
    """
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_csv(out: TextIO, format: str, rows: Sequence[tuple[str, str]]) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS[format])
    writer.writerows(tuple(as_text(cell) for cell in row) for row in rows)


def write_csv_file(path: str | Path, format: str, rows: Sequence[tuple[str, str]]) -> None:
    """Write atomically: the file appears complete or not at all."""
    path = Path(path)
    buffer = io.StringIO()
    write_csv(buffer, format, rows)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    os.replace(temporary, path)
