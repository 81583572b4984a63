"""Salesforce Account and User exports -> `account.upserted` / `rep.upserted`.

Column names are the API field names, which Data Loader and the weekly Data Export
write (Data Loader in upper case: `ID`, `BILLINGCITY`; headers compare
case-insensitively), or the field labels a report export writes. Both verified against
Salesforce's Object Reference / Field Reference for Account and User:

Account            label (report)             -> contract field
`Id`               `Account ID`               -> account_id (an Account Id: prefix 001)
`Name`             `Account Name`             -> name
`BillingLatitude`  `Billing Latitude`         -> lat
`BillingLongitude` `Billing Longitude`        -> lon
`BillingPostalCode` `Billing Zip/Postal Code` -> postal_code (passed on for the worker)
`BillingCountry`   `Billing Country`          -> country
`Industry`         `Industry`                 -> industry (the picklist value as is)
`NumberOfEmployees` `Employees`               -> employees
`OwnerId`          `Owner ID`, `Account Owner` -> rep_id (a User Id: prefix 005; a name,
                                                  as reports write, only with --owners)
`LastModifiedDate` `Last Modified Date`       -> occurred_at

BillingStreet, BillingCity, BillingState and AnnualRevenue have no place in the contract
and are not sent.

User: `Id` / `User ID` -> rep_id, `Full Name` (a users report) or `Name`, else
`FirstName` + `LastName` -> name, `IsActive` /
`Active` -> active, `Latitude` / `Longitude` (the User address' geocode) -> home_lat /
home_lon, `City`, `PostalCode` / `Zip/Postal Code`, `Country` -> city, postal_code,
country (sent along, for when the worker can place a rep by address; today a rep
needs coordinates), `Email` only to resolve owner names, `LastModifiedDate`.

Report exports (not Data Loader) write the labels above, the owner as a full name
(`Account Owner`: resolved to a User Id through `--owners`, a users report with `User ID`
and `Full Name` or a Data Loader User export), dates in the user's locale (`1/2/2025,
8:00 AM`, `02.01.2025 08:00`: `--date-format`, or detected when every date of the file fits
one format), and a footer after the rows (`Grand Totals (N records)`, `Confidential
Information - Do Not Distribute`, the copyright line, ...), which `csv_source` skips.

Ids: 15-character ids (reports) are turned into their 18-character form (Data Loader),
so both exports name an account the same way. An 18-character id whose last three
characters do not match the first 15 (mangled case) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connectors.csv_source import Row
from connectors.generic import extra_fields
from connectors.mapping import (
    owners_from_users,
    OCCURRED_AT,
    Context,
    FieldRule,
    OwnerDirectory,
    Parser,
    Profile,
    as_boolean,
    as_integer,
    as_number,
    as_timestamp,
    join_name,
    text,
)
from connectors.values import show
from core import topics

SOURCE = "salesforce"
ACCOUNT_PREFIX = "001"
USER_PREFIX = "005"
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to_18(record_id: str) -> str:
    """The 18-character, case-safe form of a 15- or 18-character Salesforce id.

    >>> to_18("001Dn00000AbCdE")
    '001Dn00000AbCdEIAV'
    >>> to_18("001Dn00000AbCdEiav")
    '001Dn00000AbCdEIAV'
    """
    if not _ID.match(record_id):
        raise ValueError(f"must be a Salesforce id (15 or 18 letters and digits), got {show(record_id)}")
    base = record_id[:15]
    suffix = ""
    for start in range(0, 15, 5):
        flags = sum(1 << bit for bit, char in enumerate(base[start : start + 5]) if "A" <= char <= "Z")
        suffix += _SUFFIX_CHARS[flags]
    if len(record_id) == 18 and record_id[15:].upper() != suffix:
        raise ValueError(
            f"not a valid 18-character Salesforce id (checksum {record_id[15:]} should be "
            f"{suffix}: has its case been changed?), got {show(record_id)}"
        )
    return base + suffix


def _id_with_prefix(prefix: str, article: str, noun: str) -> Parser:
    def parse(raw: str, ctx: Context) -> str:
        record_id = to_18(raw)
        if not record_id.startswith(prefix):
            raise ValueError(f"not {article} {noun} Id ({noun} Ids start with {prefix}), got {show(raw)}")
        return record_id

    return parse


account_id = _id_with_prefix(ACCOUNT_PREFIX, "an", "Account")
user_id = _id_with_prefix(USER_PREFIX, "a", "User")


def owner_id(raw: str, ctx: Context) -> str:
    """OwnerId: a User Id; a name or e-mail (report exports) only through --owners."""
    if _ID.match(raw):
        if raw[:3] != USER_PREFIX:
            raise ValueError(
                f"unknown owner format: {show(raw)} is not a User Id (prefix {USER_PREFIX}); "
                "accounts owned by a queue cannot be balanced"
            )
        return to_18(raw)
    if ctx.owners is not None:
        found = ctx.owners.resolve(raw)
        if found is not None:
            return found
        raise ValueError(f"owner {show(raw)} not found in the --owners file")
    raise ValueError(
        "unknown owner format: expected a Salesforce User Id (15 or 18 characters "
        f"starting with {USER_PREFIX}), got {show(raw)}"
    )


LAST_MODIFIED = ("LastModifiedDate", "Last Modified Date")

ACCOUNTS = Profile(
    name="salesforce-accounts",
    source=SOURCE,
    event_type="account.upserted",
    topic=topics.ACCOUNTS,
    id_field="account_id",
    key_field="account_id",
    required=("account_id",),
    rules=(
        FieldRule("account_id", ("Id", "Account ID"), account_id),
        FieldRule("name", ("Name", "Account Name"), text),
        FieldRule("lat", ("BillingLatitude", "Billing Latitude"), as_number),
        FieldRule("lon", ("BillingLongitude", "Billing Longitude"), as_number),
        FieldRule("postal_code", ("BillingPostalCode", "Billing Zip/Postal Code"), text),
        FieldRule("country", ("BillingCountry", "Billing Country"), text),
        FieldRule("industry", ("Industry",), text),
        FieldRule("employees", ("NumberOfEmployees", "Employees"), as_integer),
        FieldRule("rep_id", ("OwnerId", "Owner ID", "Account Owner"), owner_id),
        FieldRule(OCCURRED_AT, LAST_MODIFIED, as_timestamp),
    ),
    extra_fields=extra_fields("account.upserted"),
)

USERS = Profile(
    name="salesforce-users",
    source=SOURCE,
    event_type="rep.upserted",
    topic=topics.REPS,
    id_field="rep_id",
    key_field="rep_id",
    required=("rep_id",),
    rules=(
        FieldRule("rep_id", ("Id", "User ID"), user_id),
        FieldRule("name", ("Full Name", "Name"), text),
        FieldRule("_first_name", ("FirstName", "First Name"), text),
        FieldRule("_last_name", ("LastName", "Last Name"), text),
        FieldRule("_email", ("Email",), text),
        FieldRule("active", ("IsActive", "Active"), as_boolean),
        FieldRule("home_lat", ("Latitude",), as_number),
        FieldRule("home_lon", ("Longitude",), as_number),
        FieldRule("city", ("City",), text),
        FieldRule("postal_code", ("PostalCode", "Zip/Postal Code"), text),
        FieldRule("country", ("Country",), text),
        FieldRule(OCCURRED_AT, LAST_MODIFIED, as_timestamp),
    ),
    finish=join_name,
    extra_fields=extra_fields("rep.upserted"),
)


def owner_directory(header: Iterable[str], rows: Iterable[Row]) -> OwnerDirectory:
    """Names and e-mails -> User Ids, from a Salesforce User export (for --owners)."""
    return owners_from_users(USERS, header, rows, user_id, lambda rep_id, cells: cells.get("_email"))
