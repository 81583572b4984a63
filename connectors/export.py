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
spreadsheet shows it as text instead of running it (`as_text`). The rows and both
layouts are `connectors.writeback`'s, which `territory rebalance --write-back` shares (with
Pipedrive's and Dynamics' layouts besides).
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
from typing import TextIO

from connectors.writeback import LAYOUTS, Change, as_text, row_of

#: The two-column layouts of `connectors.writeback` this command writes.
COLUMNS: dict[str, tuple[str, ...]] = {crm: LAYOUTS[crm] for crm in ("salesforce", "hubspot")}

__all__ = [
    "COLUMNS",
    "Assignment",
    "as_text",
    "export_rows",
    "latest_per_account",
    "parse_assignment",
    "write_csv",
    "write_csv_file",
]


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
    """(rows without header, problems) for `format`; one row per account, latest wins. The
    rows are those of `connectors.writeback` (the layouts `territory rebalance --write-back`
    writes too)."""
    if format not in COLUMNS:
        raise ValueError(f"format must be one of {', '.join(COLUMNS)}, got {format!r}")
    rows: list[tuple[str, str]] = []
    problems: list[str] = []
    for account_id, item in sorted(latest_per_account(assignments).items()):
        try:
            account, owner = row_of(Change(item.account_id, item.to_rep, item.from_rep), format)
        except ValueError as error:
            problems.append(f"account {account_id} -> {item.to_rep}: {error}; left out")
            continue
        rows.append((account, owner))
    return rows, problems


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
