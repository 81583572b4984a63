"""Owner changes (account -> new owner) -> the update file each CRM's own loader takes.

Used by `territory rebalance ... --write-back FILE` (the moves of a proposal) and by
`territory export-assignments` (approved assignments, `connectors.export`). One row per
changed account, sorted by account id, CRLF line ends. The layouts:

* `salesforce`: `Id,OwnerId`, a Data Loader *update* file for Account, which Bulk API 2.0
  (`sf data update bulk --sobject Account`) takes as well: the first column is the record Id
  and the others are field API names, matched exactly. Ids in 18-character form; OwnerId a
  User Id (prefix 005). UTF-8 without BOM.
* `hubspot`: `Record ID,Company owner`, a company import that updates existing companies by
  Record ID; HubSpot's import sets an owner from the owner's e-mail address in the
  `Company owner` column, and the rep id of a company read from HubSpot is that address.
* `pipedrive`: `Organization - ID,Organization - Owner`, the columns of Pipedrive's own
  organizations export, which its spreadsheet import maps back to the fields (an update
  matches existing organizations by the Pipedrive system ID). The owner is written as the
  user's name from the users list (`--owners`: Name, Email), as the export writes it; without
  one, as the e-mail address (map it to Owner when importing).
* `dynamics`: `(Do Not Modify) Account,(Do Not Modify) Row Checksum,(Do Not Modify) Modified
  On,Owner`, the re-import layout of Dynamics 365 "Export to Excel" (with "make this data
  available for re-importing"): the hidden columns are repeated exactly as exported (the
  import matches the row by the GUID and refuses it when the record changed since the
  export, by the checksum and Modified On), `Owner` holds the user's full name (the lookup's
  primary name). Saved as Excel's "CSV UTF-8" (with BOM).

Rows the CRM would refuse (an OwnerId that is not a User Id, an owner that is not an e-mail
address, a Dynamics owner without a name in the users file, an account without its exported
checksum) are left out and reported. A cell that starts like a spreadsheet formula (= + - @,
tab, CR) is written with a leading ' (:func:`as_text`), except Dynamics' row checksum and
modification time, which are the CRM's own cells copied back unchanged (the import matches on
them; a checksum is base64 and may start with "+").

:func:`read_back` reads such a file with the accounts profile of the same CRM (the
connectors' reading code of `territory import`, before the contract's location check, which
an update file without addresses would fail): account id -> owner, to check a file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from connectors import dynamics, hubspot, pipedrive, salesforce
from connectors.csv_source import CsvSource
from connectors.mapping import Context, MappingError, bind, build

#: The header of each CRM's update file.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "salesforce": ("Id", "OwnerId"),
    "hubspot": ("Record ID", "Company owner"),
    "pipedrive": ("Organization - ID", "Organization - Owner"),
    "dynamics": (
        "(Do Not Modify) Account",
        "(Do Not Modify) Row Checksum",
        "(Do Not Modify) Modified On",
        "Owner",
    ),
}
CRMS = tuple(LAYOUTS)
#: The accounts profile that reads each layout back.
PROFILES = {
    "salesforce": salesforce.ACCOUNTS,
    "hubspot": hubspot.COMPANIES,
    "pipedrive": pipedrive.ORGANIZATIONS,
    "dynamics": dynamics.ACCOUNTS,
}
#: Users export that resolves the owner names of a layout when read back.
OWNER_DIRECTORIES = {"salesforce": salesforce.owner_directory, "hubspot": hubspot.owner_directory}
OWNER_DIRECTORIES.update({"pipedrive": pipedrive.owner_directory, "dynamics": dynamics.owner_directory})
#: Columns copied verbatim from the CRM's own export (not neutralised): Dynamics matches the row by
#: its exported checksum, a base64 text that may start with "+".
VERBATIM = {"dynamics": (1, 2)}
#: Excel opens "CSV UTF-8" as UTF-8 only with a BOM; Dynamics' import expects what Excel saves.
WITH_BOM = frozenset({"dynamics"})


@dataclass(frozen=True)
class Change:
    """An account's new owner (ids as the CRM writes them)."""

    account_id: str
    to_rep: str
    from_rep: str | None = None


def row_of(
    change: Change,
    crm: str,
    *,
    owner_names: Mapping[str, str] | None = None,
    passthrough: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[str, ...]:
    """The update row of one change, cells as the CRM needs them (before :func:`as_text`);
    ValueError naming the column when the CRM would refuse it."""
    if crm not in LAYOUTS:
        raise ValueError(f"write-back format must be one of {', '.join(CRMS)}, got {crm!r}")
    ctx = Context()
    names = owner_names or {}
    columns = LAYOUTS[crm]
    if crm == "salesforce":
        return (
            _checked(salesforce.account_id, change.account_id, ctx, columns[0]),
            _checked(salesforce.user_id, change.to_rep, ctx, columns[1]),
        )
    if crm == "hubspot":
        return (
            _checked(hubspot.record_id, change.account_id, ctx, columns[0]),
            _checked(hubspot.email, change.to_rep, ctx, columns[1]),
        )
    if crm == "pipedrive":
        owner = names.get(change.to_rep) or _checked(hubspot.email, change.to_rep, ctx, columns[1])
        return (_checked(pipedrive.organization_id, change.account_id, ctx, columns[0]), owner)
    account = _checked(dynamics.guid, change.account_id, ctx, columns[0])
    name = names.get(change.to_rep)
    if not name:
        raise ValueError(f"Owner: no full name for user {change.to_rep} (give the users export with --owners)")
    exported = (passthrough or {}).get(change.account_id) or {}
    checksum, modified = exported.get(columns[1]), exported.get(columns[2])
    if not checksum or not modified:
        raise ValueError(
            f"{columns[1]}: the account's row checksum and modification time are not in the accounts export "
            "(export the view with 'make this data available for re-importing')"
        )
    return (account, checksum, modified, name)


def writeback_rows(
    changes: Iterable[Change],
    crm: str,
    *,
    owner_names: Mapping[str, str] | None = None,
    passthrough: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[tuple[str, ...], list[tuple[str, ...]], list[str]]:
    """(header, rows as written, problems): one row per account (the last change wins),
    sorted by account id, formula-like cells neutralised."""
    if crm not in LAYOUTS:
        raise ValueError(f"write-back format must be one of {', '.join(CRMS)}, got {crm!r}")
    latest = {change.account_id: change for change in changes}
    rows: list[tuple[str, ...]] = []
    problems: list[str] = []
    for account_id in sorted(latest):
        change = latest[account_id]
        try:
            row = row_of(change, crm, owner_names=owner_names, passthrough=passthrough)
        except ValueError as error:
            problems.append(f"account {account_id} -> {change.to_rep}: {error}; left out")
            continue
        verbatim = VERBATIM.get(crm, ())
        rows.append(tuple(cell if k in verbatim else as_text(cell) for k, cell in enumerate(row)))
    return LAYOUTS[crm], rows, problems


def render(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The file's text (CRLF line ends), cells as given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_file(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]], *, bom: bool = False) -> None:
    """Write atomically: the file appears complete or not at all."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(("\ufeff" if bom else "") + render(header, rows), encoding="utf-8", newline="")
    os.replace(temporary, path)


def read_back(
    path: str | Path, crm: str, *, owners: str | Path | None = None, encoding: str = "utf-8-sig"
) -> dict[str, str]:
    """account id -> owner (rep id) of an update file, read as `territory import --format
    <crm's accounts format> --owners USERS` reads the export. MappingError on a bad row."""
    directory = None
    if owners is not None:
        with CsvSource(owners, encoding=encoding) as users:
            directory = OWNER_DIRECTORIES[crm](users.header, users)
    pairs: dict[str, str] = {}
    with CsvSource(path, encoding=encoding) as source:
        binding = bind(PROFILES[crm], source.header)
        ctx = Context(owners=directory, event_time="import")
        for row in source:
            _, _, envelope, errors = build(binding, row, ctx)
            if envelope is None:
                raise MappingError(f"{Path(path).name} {errors[0]}")
            data = envelope["data"]
            pairs[data["account_id"]] = data.get("rep_id")
    return pairs


def _checked(parse: Callable[[str, Context], Any], value: str, ctx: Context, column: str) -> str:
    try:
        result: str = parse(value, ctx)
    except ValueError as error:
        raise ValueError(f"{column}: {error}") from None
    return result


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (tab and CR too: some strip them first); someone opening the file before the import
# would run it. An e-mail address may start with =, + or -.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(cell: str) -> str:
    """`cell` as a spreadsheet shows it verbatim: a leading ' makes a formula plain text.
    The one such helper: every file a spreadsheet may open goes through it (the CRM files
    here and in ``connectors.export``, ``territory export-alignment``'s CSV and xlsx).

    >>> as_text("=cmd|' /C calc'!A0"), as_text("-42"), as_text("a=b")
    ("'=cmd|' /C calc'!A0", "'-42", 'a=b')
    """
    return "'" + cell if cell.startswith(_FORMULA_START) else cell
