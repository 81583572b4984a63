"""HubSpot company and user exports -> `account.upserted` / `rep.upserted`.

Company export columns are the property labels (HubSpot knowledge base: "HubSpot's
default company properties"; import files match headers to these labels):

`Record ID` (older exports: `Company ID`) -> account_id (digits)
`Company name`                            -> name
`Company owner`                           -> rep_id, see below
`Postal Code`                             -> postal_code
`Country/Region`                          -> country
`Industry`                                -> industry (as exported)
`Number of Employees`                     -> employees
`Latitude`, `Longitude`                   -> lat, lon: NOT default HubSpot properties;
                                             add them as custom properties, or use --map
`Last Modified Date`                      -> occurred_at (HubSpot writes `2025-01-02 08:00`,
                                             in the account's time zone: pass --timezone)

City, Annual Revenue and the rest have no place in the contract and are not sent.

Reps are identified by their e-mail address (lower case), because that is the one
identifier the users export, the company export's owner column and HubSpot's import
(`Company owner` takes the owner's e-mail) all share; user ids and owner ids differ.

* `Company owner` holding an e-mail address -> that address.
* holding a name (what the export usually writes) -> looked up in the users export given
  with --owners (first + last name -> e-mail); without --owners, or when the name is not
  there, the row is refused.
* anything else (an owner id) -> "unknown owner format".

Users export (Settings > Users & Teams > Export users: User ID, First Name, Last Name,
Email, ...): `Email` -> rep_id, `First Name` + `Last Name` -> name. It holds no
location: every rep row is refused for missing home_lat / home_lon unless the file has
`Latitude` / `Longitude` columns (or --map home_lat=... home_lon=...).
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
    Profile,
    as_integer,
    as_number,
    as_timestamp,
    join_name,
    text,
)
from connectors.values import show
from core import topics

SOURCE = "hubspot"
_RECORD_ID = re.compile(r"^\d+$")
_WHITESPACE = re.compile(r"\s")


def _is_email(raw: str) -> bool:
    r"""local@domain with a dot inside the domain, no whitespace, one @. Checked by hand, in
    linear time: the regex r"^[^@\s]+@[^@\s]+\.[^@\s]+$" tried every dot of a long
    domain as the separating one (quadratic) and accepted a trailing newline."""
    local, at, domain = raw.partition("@")
    return bool(at) and bool(local) and "@" not in domain and "." in domain[1:-1] and _WHITESPACE.search(raw) is None


def record_id(raw: str, ctx: Context) -> str:
    if not _RECORD_ID.match(raw):
        raise ValueError(f"must be a HubSpot Record ID (digits), got {show(raw)}")
    return raw


def email(raw: str, ctx: Context) -> str:
    if not _is_email(raw):
        raise ValueError(f"must be an e-mail address, got {show(raw)}")
    return raw.lower()


def owner(raw: str, ctx: Context) -> str:
    if _is_email(raw):
        return raw.lower()
    if ctx.owners is not None and not raw.isdigit():
        found = ctx.owners.resolve(raw)
        if found is not None:
            return found
        raise ValueError(f"owner {show(raw)} not found in the --owners file")
    if raw.isdigit():
        raise ValueError(
            "unknown owner format: an owner id cannot be matched to a user; export the owner's "
            f"name or e-mail address, got {show(raw)}"
        )
    raise ValueError(
        "unknown owner format: expected the owner's e-mail address, or a name together with "
        f"--owners (the users export), got {show(raw)}"
    )


LAST_MODIFIED = ("Last Modified Date",)

COMPANIES = Profile(
    name="hubspot-companies",
    source=SOURCE,
    event_type="account.upserted",
    topic=topics.ACCOUNTS,
    id_field="account_id",
    key_field="account_id",
    required=("account_id",),
    rules=(
        FieldRule("account_id", ("Record ID", "Company ID"), record_id),
        FieldRule("name", ("Company name", "Name"), text),
        FieldRule("rep_id", ("Company owner",), owner),
        FieldRule("lat", ("Latitude",), as_number),
        FieldRule("lon", ("Longitude",), as_number),
        FieldRule("postal_code", ("Postal Code",), text),
        FieldRule("country", ("Country/Region", "Country"), text),
        FieldRule("industry", ("Industry",), text),
        FieldRule("employees", ("Number of Employees",), as_integer),
        FieldRule(OCCURRED_AT, LAST_MODIFIED, as_timestamp),
    ),
    extra_fields=extra_fields("account.upserted"),
)

USERS = Profile(
    name="hubspot-users",
    source=SOURCE,
    event_type="rep.upserted",
    topic=topics.REPS,
    id_field="rep_id",
    key_field="rep_id",
    required=("rep_id",),
    rules=(
        FieldRule("rep_id", ("Email", "Email Address"), email),
        FieldRule("_first_name", ("First Name",), text),
        FieldRule("_last_name", ("Last Name",), text),
        FieldRule("home_lat", ("Latitude",), as_number),
        FieldRule("home_lon", ("Longitude",), as_number),
        FieldRule("city", ("City",), text),
        FieldRule("postal_code", ("Postal Code",), text),
        FieldRule("country", ("Country/Region", "Country"), text),
        FieldRule(OCCURRED_AT, LAST_MODIFIED, as_timestamp),
    ),
    finish=join_name,
    extra_fields=extra_fields("rep.upserted"),
)


def owner_directory(header: Iterable[str], rows: Iterable[Row]) -> OwnerDirectory:
    """Owner names -> e-mail addresses (the rep ids), from the HubSpot users export."""
    return owners_from_users(USERS, header, rows, email, lambda rep_id, cells: rep_id)
