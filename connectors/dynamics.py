"""Microsoft Dynamics 365 (Sales) account and user exports -> `account.upserted` /
`rep.upserted`.

"Export to Excel" from a view writes the record's id and version in hidden first columns,
`(Do Not Modify) Account` (a GUID), `(Do Not Modify) Row Checksum` and `(Do Not Modify)
Modified On`, then the view's columns by display name; saved from Excel as "CSV UTF-8"
(BOM, CRLF, quotes only where needed, dates in the Windows locale: `1/2/2025 8:00`, read
with --date-format or detected).

Account                        -> contract field
`(Do Not Modify) Account`      -> account_id (GUID, lower case, without braces)
`Account Name`                 -> name
`Owner`                        -> rep_id: the owner's full name, resolved through --owners
                                  (the users export below) to the user's GUID
`Address 1: Latitude` / `Address 1: Longitude` -> lat / lon
`Address 1: ZIP/Postal Code`   -> postal_code
`Address 1: Country/Region` (older: `Address 1: Country`) -> country
`Industry`                     -> industry
`Number of Employees`          -> employees
`(Do Not Modify) Modified On` (or a `Modified On` column) -> occurred_at

User (a view of Users exported the same way): `(Do Not Modify) User` -> rep_id, `Full Name`
-> name, `Primary Email` (owner lookups only), `Address 1: Latitude` / `Longitude`,
`Address 1: ZIP/Postal Code`, `Address 1: Country/Region` -> home, `Status` (Enabled /
Disabled) -> active.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connectors.csv_source import Row
from connectors.generic import extra_fields
from connectors.mapping import (
    OCCURRED_AT,
    Context,
    FieldRule,
    OwnerDirectory,
    Profile,
    as_integer,
    as_number,
    as_timestamp,
    owners_from_users,
    text,
)
from connectors.values import boolean, show
from core import topics

SOURCE = "dynamics365"
_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
MODIFIED = ("(Do Not Modify) Modified On", "Modified On")


def guid(raw: str, ctx: Context) -> str:
    found = _GUID.match(raw)
    if not found:
        raise ValueError(
            f"must be a Dynamics 365 record id (a GUID like 0f8fad5b-d9cb-469f-a165-70867728950e), got {show(raw)}"
        )
    return found.group(1).lower()


def owner(raw: str, ctx: Context) -> str:
    """Owner: the user's full name (what the export writes) through --owners, or a GUID."""
    if _GUID.match(raw):
        return guid(raw, ctx)
    if ctx.owners is not None:
        found = ctx.owners.resolve(raw)
        if found is not None:
            return found
        raise ValueError(f"owner {show(raw)} not found in the --owners file")
    raise ValueError(
        f"unknown owner format: expected a user's GUID, or a name together with --owners (the users export), got {show(raw)}"
    )


def status(raw: str, ctx: Context) -> bool:
    folded = raw.strip().casefold()
    if folded in ("enabled", "active"):
        return True
    if folded in ("disabled", "inactive"):
        return False
    return boolean(raw)


ACCOUNTS = Profile(
    name="dynamics-accounts",
    source=SOURCE,
    event_type="account.upserted",
    topic=topics.ACCOUNTS,
    id_field="account_id",
    key_field="account_id",
    required=("account_id",),
    rules=(
        FieldRule("account_id", ("(Do Not Modify) Account", "Account"), guid),
        FieldRule("name", ("Account Name",), text),
        FieldRule("rep_id", ("Owner",), owner),
        FieldRule("lat", ("Address 1: Latitude",), as_number),
        FieldRule("lon", ("Address 1: Longitude",), as_number),
        FieldRule("postal_code", ("Address 1: ZIP/Postal Code",), text),
        FieldRule("country", ("Address 1: Country/Region", "Address 1: Country"), text),
        FieldRule("industry", ("Industry",), text),
        FieldRule("employees", ("Number of Employees",), as_integer),
        FieldRule(OCCURRED_AT, MODIFIED, as_timestamp),
    ),
    extra_fields=extra_fields("account.upserted"),
)

USERS = Profile(
    name="dynamics-users",
    source=SOURCE,
    event_type="rep.upserted",
    topic=topics.REPS,
    id_field="rep_id",
    key_field="rep_id",
    required=("rep_id",),
    rules=(
        FieldRule("rep_id", ("(Do Not Modify) User", "User"), guid),
        FieldRule("name", ("Full Name",), text),
        FieldRule("_email", ("Primary Email",), text),
        FieldRule("active", ("Status",), status),
        FieldRule("home_lat", ("Address 1: Latitude",), as_number),
        FieldRule("home_lon", ("Address 1: Longitude",), as_number),
        FieldRule("city", ("Address 1: City",), text),
        FieldRule("postal_code", ("Address 1: ZIP/Postal Code",), text),
        FieldRule("country", ("Address 1: Country/Region", "Address 1: Country"), text),
        FieldRule(OCCURRED_AT, MODIFIED, as_timestamp),
    ),
    extra_fields=extra_fields("rep.upserted"),
)


def owner_directory(header: Iterable[str], rows: Iterable[Row]) -> OwnerDirectory:
    """Full names and e-mails -> user GUIDs, from the Dynamics 365 users export."""
    return owners_from_users(USERS, header, rows, guid, lambda rep_id, cells: cells.get("_email"))
