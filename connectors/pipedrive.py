"""Pipedrive organizations export -> `account.upserted`.

Pipedrive exports a list view (Organizations > ... > Export filter results, CSV) with
each column named `Organization - <field>`, the field being its label in Pipedrive:

`Organization - ID`                                   -> account_id (digits)
`Organization - Name`                                 -> name
`Organization - Owner`                                -> rep_id, see below
`Organization - Address - ZIP/Postal code`            -> postal_code
`Organization - Address - Country`                    -> country
`Organization - Industry`                             -> industry (a custom field in most accounts)
`Organization - Number of employees`                  -> employees
`Organization - Update time`                          -> occurred_at (`2025-01-02 08:00:00`,
                                                         in the company's time zone: --timezone)

The address parts (street, city, ...) and the combined `Organization - Address` have no
place in the contract. Pipedrive's export holds no coordinates: accounts are placed by
postal code + country (or `--map lat=... --map lon=...` for custom fields).

Reps are identified by their e-mail address, as for HubSpot. `Organization - Owner`
holds the owner's name: it is looked up in the users file given with `--owners` (a list of
the company's users with `Name` and `Email` columns, as Settings > Manage users shows them);
an owner cell holding an e-mail address is taken as is. There is no Pipedrive users format:
import reps with `--format generic --type rep`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connectors.csv_source import Row
from connectors.generic import extra_fields
from connectors.hubspot import email, owner
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
from connectors.values import show
from core import topics

SOURCE = "pipedrive"
_ID = re.compile(r"^\d+$")


def organization_id(raw: str, ctx: Context) -> str:
    if not _ID.match(raw):
        raise ValueError(f"must be a Pipedrive organization ID (digits), got {show(raw)}")
    return raw


ORGANIZATIONS = Profile(
    name="pipedrive-organizations",
    source=SOURCE,
    event_type="account.upserted",
    topic=topics.ACCOUNTS,
    id_field="account_id",
    key_field="account_id",
    required=("account_id",),
    rules=(
        FieldRule("account_id", ("Organization - ID",), organization_id),
        FieldRule("name", ("Organization - Name",), text),
        FieldRule("rep_id", ("Organization - Owner",), owner),
        FieldRule("lat", ("Organization - Latitude",), as_number),
        FieldRule("lon", ("Organization - Longitude",), as_number),
        FieldRule("postal_code", ("Organization - Address - ZIP/Postal code",), text),
        FieldRule("country", ("Organization - Address - Country",), text),
        FieldRule("industry", ("Organization - Industry",), text),
        FieldRule("employees", ("Organization - Number of employees",), as_integer),
        FieldRule(OCCURRED_AT, ("Organization - Update time",), as_timestamp),
    ),
    extra_fields=extra_fields("account.upserted"),
)

# The users list that resolves owner names (--owners): Name + Email.
USERS = Profile(
    name="pipedrive users (--owners)",
    source=SOURCE,
    event_type="rep.upserted",
    topic=topics.REPS,
    id_field="rep_id",
    key_field="rep_id",
    required=("rep_id",),
    rules=(
        FieldRule("rep_id", ("Email", "E-mail", "User - Email"), email),
        FieldRule("name", ("Name", "User - Name"), text),
    ),
)


def owner_directory(header: Iterable[str], rows: Iterable[Row]) -> OwnerDirectory:
    """Owner names -> e-mail addresses (the rep ids), from a users list with Name and Email."""
    return owners_from_users(USERS, header, rows, email, lambda rep_id, cells: rep_id)
