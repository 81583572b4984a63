"""CRM import (CSV exports -> contract events) and export (approved assignments -> CSV).

The fixture files under tests/data/crm/ are written like the real exports: Salesforce
Data Loader (every cell quoted, BOM, CRLF, a street with a line break), a `;` report
export with field labels, 15-character ids and decimal commas, HubSpot company and user
exports, and a generic order file. Non-ASCII names throughout (Ø, Å, ß, ł, ...).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from connectors import generic
from connectors.commands import export_assignments_command, import_command, read_assignments
from connectors.csv_source import CsvFormatError, CsvSource, sniff_delimiter
from connectors.export import Assignment, export_rows, latest_per_account, parse_assignment, write_csv_file
from connectors.importer import load_owners, profile_for, read_export
from connectors.mapping import Context, MappingError, bind, build
from connectors.salesforce import to_18
from connectors.values import NumberStyle, integer, number, timestamp
from core.contract import ContractError, validate_envelope
from core import topics

DATA = Path(__file__).parent / "data" / "crm"
SF_ACCOUNTS = DATA / "salesforce_accounts.csv"
SF_ACCOUNTS_REPORT = DATA / "salesforce_accounts_semicolon.csv"
SF_USERS = DATA / "salesforce_users.csv"
HS_COMPANIES = DATA / "hubspot_companies.csv"
HS_USERS = DATA / "hubspot_users.csv"
ORDERS = DATA / "generic_orders.csv"

BERLIN_REP = "0058d000002bRLnAAM"
HAMBURG_REP = "0058d000002bHAMAA2"
MUNICH_REP = "0058d000002bMUCAA2"
ORDER_MAP = {"order_id": "OrderNo", "account_id": "AcctNo", "amount": "Total", "occurred_at": "OrderDate"}
IMPORTED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def errors_of(report) -> list[tuple[int, str | None, str]]:
    return [(error.line, error.column, error.reason) for error in report.errors]


def assert_all_pass_the_contract(report) -> None:
    for event in report.events:
        validated = validate_envelope(event.envelope, topic=event.topic, key=event.key)
        subject = "rep_id" if event.envelope["type"] == "rep.upserted" else "account_id"
        assert event.key == event.envelope["data"][subject] == validated.subject_id


def postal_only_outcome(path: Path, format: str, line: int, **kwargs):
    """What the contract says about an account with postal code + country and no
    coordinates: (envelope, None) if it accepts it (the worker resolves the postal code),
    else (envelope, the row error the import must report)."""
    source = CsvSource(path)
    try:
        binding = bind(profile_for(format), source.header)
        row = next(r for r in source if r.line == line)
        topic, key, envelope, cell_errors = build(binding, row, Context(**kwargs))
    finally:
        source.close()
    assert not cell_errors
    assert "lat" not in envelope["data"] and "lon" not in envelope["data"], "coordinates must never be invented"
    try:
        validate_envelope(envelope, topic=topic, key=key)
    except ContractError as error:
        assert error.field in ("data.lat", "data.postal_code")
        return envelope, (line, binding.column_of(error.field[5:]), error.reason)
    return envelope, None


# --- Salesforce accounts -----------------------------------------------------------------


def test_salesforce_account_export_becomes_contract_events_and_exact_row_errors():
    report = read_export(SF_ACCOUNTS, "salesforce-accounts", imported_at=IMPORTED_AT)
    envelope, postal_error = postal_only_outcome(SF_ACCOUNTS, "salesforce-accounts", 6)
    assert envelope["data"]["postal_code"] == "80331" and envelope["data"]["country"] == "Germany"

    expected = [
        (8, "Id", "required for account.upserted"),
        (9, "BillingLatitude", "must be <= 90, got 95.2"),
        (10, "NumberOfEmployees", 'must be an integer, got "about 50"'),
        (
            11,
            "OwnerId",
            "unknown owner format: expected a Salesforce User Id (15 or 18 characters starting "
            'with 005), got "Jane Doe"',
        ),
    ]
    assert errors_of(report) == sorted(expected + ([postal_error] if postal_error else []))
    assert report.rows_read == 9
    assert report.invalid == 4 + bool(postal_error)
    assert report.valid == 5 - bool(postal_error)
    assert report.summary() == f"rows read: 9, valid: {report.valid}, invalid: {report.invalid}"
    # Line numbers count physical lines: the first record spans lines 2-3 (a street with
    # a line break), so the second starts on line 4.
    assert [event.line for event in report.events][:3] == [2, 4, 5]
    assert_all_pass_the_contract(report)

    first = report.events[0].envelope
    assert first == {
        "event_id": first["event_id"],
        "type": "account.upserted",
        "occurred_at": "2025-01-02T08:00:00+00:00",
        "source": "salesforce",
        "data": {
            "account_id": "0018d00000AbC01AAF",
            "name": "Müller & Söhne GmbH",
            "lat": 52.520008,
            "lon": 13.404954,
            "postal_code": "10117",
            "country": "Germany",
            "industry": "Retail",
            "employees": 120,
            "rep_id": BERLIN_REP,
        },
    }
    assert first["event_id"].startswith("salesforce-account-0018d00000AbC01AAF-")
    assert all(event.topic == topics.ACCOUNTS for event in report.events)
    by_line = {event.line: event.envelope["data"] for event in report.events}
    assert by_line[4]["name"] == "Ørsted Handel, Nord"  # comma inside a quoted field
    assert by_line[4]["rep_id"] == HAMBURG_REP  # 15-character OwnerId -> 18
    assert by_line[5]["account_id"] == "0018d00000AbC03AAF"  # 15-character Id -> 18
    assert by_line[5]["name"] == 'Åkesson "Nord" AB'  # doubled quotes
    assert by_line[5]["employees"] == 1200  # "1,200"
    assert by_line[7]["name"] == "Łódź Logistics sp. z o.o."
    assert "street" not in json.dumps(by_line).lower()  # no field for it in the contract


def test_same_file_twice_gives_the_same_event_ids():
    first = read_export(SF_ACCOUNTS, "salesforce-accounts", imported_at=IMPORTED_AT)
    again = read_export(SF_ACCOUNTS, "salesforce-accounts", imported_at=datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert [e.envelope for e in first.events] == [e.envelope for e in again.events]
    assert len({e.event_id for e in first.events}) == len(first.events)


def test_report_export_with_semicolons_labels_and_15_character_ids_gives_the_same_events():
    data_loader = read_export(SF_ACCOUNTS, "salesforce-accounts")
    report = read_export(SF_ACCOUNTS_REPORT, "salesforce-accounts")
    assert report.errors == [] and report.rows_read == 3
    assert_all_pass_the_contract(report)
    # Same records, same instants (other offsets), other formatting: same ids and payloads.
    assert [e.event_id for e in report.events] == [e.event_id for e in data_loader.events[:3]]
    assert [e.envelope["data"] for e in report.events] == [e.envelope["data"] for e in data_loader.events[:3]]
    assert report.events[0].envelope["data"]["lat"] == 52.520008  # "52,520008"
    assert report.events[2].envelope["data"]["employees"] == 1200  # "1.200"


def test_a_changed_record_gets_a_new_event_id(tmp_path):
    changed = tmp_path / "changed.csv"
    changed.write_text(SF_ACCOUNTS_REPORT.read_text(encoding="utf-8").replace(";120;", ";125;"), encoding="utf-8")
    before = read_export(SF_ACCOUNTS_REPORT, "salesforce-accounts").events
    after = read_export(changed, "salesforce-accounts").events
    assert before[0].event_id != after[0].event_id
    assert [e.event_id for e in before[1:]] == [e.event_id for e in after[1:]]


def test_occurred_at_is_the_import_time_without_a_modification_column(tmp_path):
    lines = SF_ACCOUNTS_REPORT.read_text(encoding="utf-8").splitlines()
    stripped = tmp_path / "no_modified.csv"
    stripped.write_text("\n".join(line.rsplit(";", 1)[0] for line in lines) + "\n", encoding="utf-8")
    report = read_export(stripped, "salesforce-accounts", imported_at=IMPORTED_AT)
    assert {e.envelope["occurred_at"] for e in report.events} == {"2026-03-01T12:00:00+00:00"}
    again = read_export(stripped, "salesforce-accounts", imported_at=datetime(2026, 4, 1, tzinfo=timezone.utc))
    assert [e.event_id for e in report.events] == [e.event_id for e in again.events]

    forced = read_export(SF_ACCOUNTS_REPORT, "salesforce-accounts", event_time="import", imported_at=IMPORTED_AT)
    assert {e.envelope["occurred_at"] for e in forced.events} == {"2026-03-01T12:00:00+00:00"}


def test_a_report_with_locale_dates_imports_with_event_time_import(tmp_path):
    report_file = tmp_path / "report_de.csv"
    report_file.write_text(
        "Account ID;Account Name;Billing Latitude;Billing Longitude;Last Modified Date\n"
        "0018d00000AbC01;Müller;52,52;13,40;02.01.2025, 08:00\n",
        encoding="utf-8",
    )
    refused = read_export(report_file, "salesforce-accounts")
    assert errors_of(refused) == [
        (2, "Last Modified Date", 'not an ISO 8601 date or time (e.g. 2025-01-02T08:00:00Z), got "02.01.2025, 08:00"')
    ]
    accepted = read_export(report_file, "salesforce-accounts", event_time="import", imported_at=IMPORTED_AT)
    assert accepted.errors == [] and accepted.events[0].envelope["occurred_at"] == "2026-03-01T12:00:00+00:00"
    changed = tmp_path / "report_de_later.csv"
    changed.write_text(report_file.read_text(encoding="utf-8").replace("02.01.2025", "03.01.2025"), encoding="utf-8")
    later = read_export(changed, "salesforce-accounts", event_time="import", imported_at=IMPORTED_AT)
    assert later.events[0].event_id != accepted.events[0].event_id  # a new version is not a duplicate


def test_owner_names_of_a_report_export_resolve_through_the_user_export(tmp_path):
    report_file = tmp_path / "report.csv"
    report_file.write_text(
        "Account ID,Account Name,Billing Latitude,Billing Longitude,Account Owner\n"
        "0018d00000AbC01,Müller & Söhne GmbH,52.52,13.40,Jürgen Groß\n"
        "0018d00000AbC02,Ørsted Handel,56.15,10.21,Nobody Known\n",
        encoding="utf-8",
    )
    without = read_export(report_file, "salesforce-accounts")
    assert errors_of(without)[0] == (
        2,
        "Account Owner",
        "unknown owner format: expected a Salesforce User Id "
        '(15 or 18 characters starting with 005), got "Jürgen Groß"',
    )
    owners = load_owners(SF_USERS, "salesforce-accounts")
    report = read_export(report_file, "salesforce-accounts", owners=owners)
    assert report.events[0].envelope["data"]["rep_id"] == BERLIN_REP
    assert errors_of(report) == [(3, "Account Owner", 'owner "Nobody Known" not found in the --owners file')]


def test_salesforce_ids_are_checked():
    assert to_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    with pytest.raises(ValueError, match="checksum"):
        to_18("001a0000006vm9riac")  # case mangled by a spreadsheet
    with pytest.raises(MappingError, match="no column for account_id"):
        bind(profile_for("salesforce-accounts"), ["Name", "OwnerId"])
    users_as_accounts = read_export(SF_USERS, "salesforce-accounts")  # Id matches, but these are Users
    assert errors_of(users_as_accounts)[0] == (
        2,
        "Id",
        'not an Account Id (Account Ids start with 001), got "0058d000002bRLnAAM"',
    )


# --- Salesforce users ----------------------------------------------------------------------


def test_salesforce_users_become_reps():
    report = read_export(SF_USERS, "salesforce-users")
    assert errors_of(report) == []  # Søren Ærø has no coordinates: his postal code 50667 DE places him in Köln
    assert_all_pass_the_contract(report)
    reps = {e.key: e.envelope for e in report.events}
    assert set(reps) == {BERLIN_REP, HAMBURG_REP, MUNICH_REP, "0058d000002bKOEAA2"}
    assert "home_lat" not in reps["0058d000002bKOEAA2"]["data"]  # the worker resolves it, the import never invents
    berlin = reps[BERLIN_REP]
    assert berlin["type"] == "rep.upserted"
    assert berlin["occurred_at"] == "2024-12-01T07:00:00+00:00"
    assert berlin["data"] == {
        "rep_id": BERLIN_REP,
        "active": True,
        "home_lat": 52.52,
        "home_lon": 13.405,
        "city": "Berlin",
        "postal_code": "10117",
        "country": "Germany",
        "name": "Jürgen Groß",
    }
    assert reps[HAMBURG_REP]["data"]["name"] == "Paweł Kowalski"
    assert reps[MUNICH_REP]["data"]["active"] is False
    assert "email" not in json.dumps(reps)  # used for owner lookups only, never sent
    assert all(e.topic == topics.REPS for e in report.events)


# --- HubSpot ---------------------------------------------------------------------------------


def test_hubspot_companies_with_owner_names_resolved_through_the_users_export():
    owners = load_owners(HS_USERS, "hubspot-companies")
    zone = ZoneInfo("Europe/Berlin")
    report = read_export(HS_COMPANIES, "hubspot-companies", owners=owners, zone=zone)
    _, postal_error = postal_only_outcome(HS_COMPANIES, "hubspot-companies", 4)
    expected = [
        (5, "Record ID", "required for account.upserted"),
        (
            6,
            "Company owner",
            "unknown owner format: an owner id cannot be matched to a user; export the owner's "
            'name or e-mail address, got "4711"',
        ),
        (7, "Number of Employees", 'must be an integer, got "n/a"'),
    ]
    assert errors_of(report) == sorted(expected + ([postal_error] if postal_error else []))
    assert_all_pass_the_contract(report)
    first, second = report.events[0].envelope, report.events[1].envelope
    assert first["source"] == "hubspot"
    assert first["occurred_at"] == "2025-01-02T09:00:00+01:00"  # naive export time read in --timezone
    assert first["data"] == {
        "account_id": "18000000001",
        "name": "Bäckerei Weiß, Filiale Nord",
        "rep_id": "lena.schaefer@example.de",
        "lat": 52.5323,
        "lon": 13.3846,
        "postal_code": "10115",
        "country": "Germany",
        "industry": "Food & Beverage",
        "employees": 35,
    }
    assert second["data"]["rep_id"] == "pawel.kowalski@example.pl"  # "Paweł Kowalski" via --owners
    assert second["data"]["name"] == "Łukasz Wiśniewski Sp. J."


def test_hubspot_owner_name_without_owners_file_is_refused():
    report = read_export(HS_COMPANIES, "hubspot-companies")
    assert (
        3,
        "Company owner",
        "unknown owner format: expected the owner's e-mail address, or a name together "
        'with --owners (the users export), got "Paweł Kowalski"',
    ) in errors_of(report)


def test_hubspot_users_become_reps_keyed_by_email():
    report = read_export(HS_USERS, "hubspot-users", imported_at=IMPORTED_AT)
    assert errors_of(report) == [(4, "Latitude", "required for rep.upserted (or postal_code + country)")]
    assert_all_pass_the_contract(report)
    assert [e.key for e in report.events] == ["lena.schaefer@example.de", "pawel.kowalski@example.pl"]
    assert report.events[0].envelope["data"] == {
        "rep_id": "lena.schaefer@example.de",
        "home_lat": 52.52,
        "home_lon": 13.405,
        "name": "Lena Schäfer",
    }
    assert report.events[0].envelope["occurred_at"] == "2026-03-01T12:00:00+00:00"  # no modification column


# --- generic ----------------------------------------------------------------------------------


def test_generic_orders_with_column_mapping():
    report = read_export(ORDERS, "generic", record_type="order", mappings=ORDER_MAP)
    assert errors_of(report) == [
        (4, "Total", "must be >= 0, got -5"),
        (5, "OrderDate", 'not an ISO 8601 date or time (e.g. 2025-01-02T08:00:00Z), got "16.02.2025"'),
    ]
    assert_all_pass_the_contract(report)
    first, second = (e.envelope for e in report.events)
    assert first["type"] == "order.placed" and first["source"] == "csv"
    assert first["occurred_at"] == "2025-02-14T10:31:00+01:00"
    assert first["data"] == {
        "order_id": "778812",
        "account_id": "0018d00000AbC01AAF",
        "amount": 1840.5,
        "currency": "EUR",
    }
    assert second["data"]["amount"] == 12000.0  # "12,000.00"
    assert report.events[0].key == "0018d00000AbC01AAF" and report.events[0].topic == topics.ORDERS


def test_generic_mapping_mistakes_are_reported_before_any_row():
    with pytest.raises(MappingError, match="no column for occurred_at"):
        read_export(
            ORDERS, "generic", record_type="order", mappings={k: v for k, v in ORDER_MAP.items() if k != "occurred_at"}
        )
    with pytest.raises(MappingError, match="unknown field 'amout'"):
        read_export(ORDERS, "generic", record_type="order", mappings={**ORDER_MAP, "amout": "Total"})
    with pytest.raises(MappingError, match="no column 'Summe' in the header"):
        read_export(ORDERS, "generic", record_type="order", mappings={**ORDER_MAP, "amount": "Summe"})
    with pytest.raises(MappingError, match="needs --type"):
        read_export(ORDERS, "generic")
    with pytest.raises(MappingError, match="--type must be one of"):
        read_export(ORDERS, "generic", record_type="invoice")


def test_generic_accounts_by_field_named_columns_with_semicolons_and_decimal_commas(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_bytes(
        "\ufeffaccount_id;LAT;lon;rep_id;locked;employees;name\n"
        "A-1;52,52;13,405;R-berlin;ja;1.200;Weiß & Søn\n"
        "\n"
        "A-2;53,55;9,99;R-hamburg;false;;\n"
        "A-3;;;R-hamburg;;;\n".encode("utf-8")
    )
    report = read_export(path, "generic", record_type="account")
    assert_all_pass_the_contract(report)
    assert report.events[0].envelope["data"] == {
        "account_id": "A-1",
        "lat": 52.52,
        "lon": 13.405,
        "rep_id": "R-berlin",
        "locked": True,
        "employees": 1200,
        "name": "Weiß & Søn",
    }
    assert report.events[1].line == 4  # the blank line 3 is skipped, not renumbered
    assert report.events[1].envelope["data"] == {
        "account_id": "A-2",
        "lat": 53.55,
        "lon": 9.99,
        "rep_id": "R-hamburg",
        "locked": False,
    }
    assert errors_of(report) == [(5, "LAT", "required for account.upserted (or postal_code + country)")]


def test_generic_rep_activity_and_opportunity(tmp_path):
    reps = tmp_path / "reps.tsv"
    reps.write_text("Rep\tBreite\tLänge\tFTE\n R-1 \t48.1\t11.5\t0,5\n", encoding="utf-8")
    report = read_export(
        reps,
        "generic",
        record_type="rep",
        mappings={"rep_id": "Rep", "home_lat": "Breite", "home_lon": "Länge", "capacity_fte": "FTE"},
    )
    assert report.errors == []
    assert report.events[0].envelope["data"] == {
        "rep_id": "R-1",
        "home_lat": 48.1,
        "home_lon": 11.5,
        "capacity_fte": 0.5,
    }
    # Segments in one cell, `;`-separated; caps as whole numbers; a bad cap names its cell.
    reps.write_text(
        "rep_id,home_lat,home_lon,segments,min_accounts,max_accounts\n"
        "R-2,48.1,11.5, retail ; key account ,2,40\n"
        "R-3,48.1,11.5,,,12.5\n",
        encoding="utf-8",
    )
    report = read_export(reps, "generic", record_type="rep")
    assert report.events[0].envelope["data"]["segments"] == ["retail", "key account"]
    assert (report.events[0].envelope["data"]["min_accounts"], report.events[0].envelope["data"]["max_accounts"]) == (
        2,
        40,
    )
    assert len(report.errors) == 1 and "max_accounts" in str(report.errors[0])
    # Workload caps (minutes) and the district's sales region; bad caps name their line and column.
    reps.write_text(
        "rep_id,home_lat,home_lon,district,sales_region,min_workload,max_workload\n"
        "R-2,48.1,11.5,Nord, North ,600,2400.5\n"
        "R-3,48.1,11.5,Nord,North,,lots\n"
        "R-4,48.1,11.5,Nord,North,900,800\n",
        encoding="utf-8",
    )
    report = read_export(reps, "generic", record_type="rep")
    data = report.events[0].envelope["data"]
    assert (data["min_workload"], data["max_workload"], data["sales_region"]) == (600.0, 2400.5, "North")
    assert [(line, column) for line, column, _ in errors_of(report)] == [(3, "max_workload"), (4, "min_workload")]
    assert "must be <= max_workload (800), got 900" in errors_of(report)[1][2]
    activities = tmp_path / "activities.csv"
    activities.write_text(
        "activity_id,account_id,rep_id,kind,duration_min,occurred_at\n"
        "9912,A-1,R-1,Visit,60,2025-02-21T09:00:00+01:00\n"
        "9913,A-1,R-1,lunch,60,2025-02-21T12:00:00+01:00\n",
        encoding="utf-8",
    )
    report = read_export(activities, "generic", record_type="activity")
    assert report.events[0].envelope["data"]["kind"] == "visit"
    assert errors_of(report) == [(3, "kind", 'must be one of visit, call, video, got "lunch"')]
    opportunities = tmp_path / "opps.csv"
    opportunities.write_text(
        "opportunity_id,account_id,stage,amount,probability\n0061,A-1,Open,25000,40%\n", encoding="utf-8"
    )
    report = read_export(opportunities, "generic", record_type="opportunity", imported_at=IMPORTED_AT)
    assert report.events[0].envelope["data"] == {
        "opportunity_id": "0061",
        "account_id": "A-1",
        "stage": "open",
        "amount": 25000.0,
        "probability": 0.4,
    }


def test_generic_fields_cover_the_contract():
    from core.contract import _SCHEMAS

    for record_type, (event_type, topic, id_field, key_field) in generic.TYPES.items():
        required, optional = _SCHEMAS[event_type]
        assert set(required) | set(optional) <= set(generic.FIELDS[event_type]), record_type
        assert event_type in topics.TYPES_BY_TOPIC[topic]


def test_repeated_rows_are_counted_once(tmp_path):
    path = tmp_path / "twice.csv"
    text = SF_ACCOUNTS_REPORT.read_text(encoding="utf-8")
    path.write_text(text + text.splitlines()[1] + "\n", encoding="utf-8")
    report = read_export(path, "salesforce-accounts")
    assert report.rows_read == 4 and len(report.events) == 3 and report.duplicates == 1
    assert report.summary() == "rows read: 4, valid: 4, invalid: 0 (of the valid, 1 repeat an earlier row)"


# --- CSV reading and values ------------------------------------------------------------------


def test_csv_reading_details(tmp_path):
    assert sniff_delimiter('"Id","Name; Inc"') == ","
    assert sniff_delimiter("Id;Name;City") == ";"
    excel = tmp_path / "excel.csv"
    excel.write_text("sep=;\nId;Name\n001;Ærø\n", encoding="utf-8")
    with CsvSource(excel) as source:
        assert source.delimiter == ";" and source.header == ("Id", "Name")
        rows = list(source)
    assert rows[0].line == 3 and rows[0].values == {"Id": "001", "Name": "Ærø"}

    duplicate = tmp_path / "duplicate.csv"
    duplicate.write_text("Id,Name,ID\n1,a,2\n", encoding="utf-8")
    with pytest.raises(CsvFormatError, match="line 1: column 'ID' appears twice"):
        CsvSource(duplicate)

    legacy = tmp_path / "cp1252.csv"
    legacy.write_bytes("Id,Name\n1,Müller\n".encode("cp1252"))
    with pytest.raises(CsvFormatError, match="not utf-8"):
        with CsvSource(legacy) as source:
            list(source)
    with CsvSource(legacy, encoding="cp1252") as source:
        assert [row.values["Name"] for row in source] == ["Müller"]

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("account_id,lat,lon\nA,1,2,surplus\nB,3\n", encoding="utf-8")
    report = read_export(ragged, "generic", record_type="account")
    assert errors_of(report) == [
        (2, None, '1 more cell(s) than the header has columns: "surplus"...'),
        (3, "lon", "required for account.upserted (or postal_code + country)"),
    ]

    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CsvFormatError, match="empty file"):
        CsvSource(empty)


def test_number_and_time_parsing():
    comma = NumberStyle(decimal_comma=True)
    assert number("1.840,50") == number("1,840.50") == 1840.5
    assert number("52,52") == 52.52 and number("1 200") == 1200
    assert number("1,200") == 1200 and number("1,200", comma) == 1.2
    assert number("1.200") == 1.2 and number("1.200", comma) == 1200
    assert integer("1,200") == integer("1.200") == 1200
    for bad in ("abc", "1,2,3", "1.2.3", "nan", "inf", ""):
        with pytest.raises(ValueError, match="must be a number"):
            number(bad)
    with pytest.raises(ValueError, match="must be an integer"):
        integer("12.5")
    assert timestamp("2024-01-15T10:30:00.000+0000").isoformat() == "2024-01-15T10:30:00+00:00"
    assert timestamp("2025-01-02 09:00", ZoneInfo("Europe/Berlin")).isoformat() == "2025-01-02T09:00:00+01:00"
    with pytest.raises(ValueError, match="ISO 8601"):
        timestamp("1/2/2025, 8:00 AM")


# --- export ---------------------------------------------------------------------------------


def _assignment(account: str, to_rep: str, approved_at: str, offset: int, partition: int = 0) -> Assignment:
    return Assignment(
        account_id=account,
        to_rep=to_rep,
        from_rep="x",
        proposal_id="p",
        approved_at=approved_at,
        approved_by="m.keller",
        partition=partition,
        offset=offset,
    )


def test_export_keeps_the_latest_per_account_and_writes_data_loader_and_hubspot_files(tmp_path):
    items = [
        _assignment("0018d00000AbC02AAF", BERLIN_REP, "2025-03-01T10:00:00+01:00", 0),
        _assignment("0018d00000AbC01", HAMBURG_REP, "2025-03-01T11:00:00+01:00", 1),
        _assignment("0018d00000AbC02AAF", MUNICH_REP, "2025-03-02T10:00:00+01:00", 2),  # supersedes offset 0
        _assignment("0018d00000AbC05AAF", "R-berlin", "2025-03-02T10:00:00+01:00", 3),  # not a User Id
    ]
    assert latest_per_account(items)["0018d00000AbC02AAF"].to_rep == MUNICH_REP
    rows, problems = export_rows(items, "salesforce")
    assert rows == [("0018d00000AbC01AAF", HAMBURG_REP), ("0018d00000AbC02AAF", MUNICH_REP)]
    assert problems == [
        "account 0018d00000AbC05AAF -> R-berlin: OwnerId: must be a Salesforce id (15 or 18 "
        'letters and digits), got "R-berlin"; left out'
    ]
    out = tmp_path / "owners.csv"
    write_csv_file(out, "salesforce", rows)
    assert out.read_bytes() == (
        b"Id,OwnerId\r\n0018d00000AbC01AAF,0058d000002bHAMAA2\r\n0018d00000AbC02AAF,0058d000002bMUCAA2\r\n"
    )

    hubspot_items = [
        _assignment("18000000001", "Lena.Schaefer@example.de", "2025-03-01T10:00:00Z", 0),
        _assignment("18000000002", "pawel.kowalski@example.pl", "2025-03-01T10:00:00Z", 1),
        _assignment("18000000003", "Paweł Kowalski", "2025-03-01T10:00:00Z", 2),
    ]
    rows, problems = export_rows(hubspot_items, "hubspot")
    assert rows == [("18000000001", "lena.schaefer@example.de"), ("18000000002", "pawel.kowalski@example.pl")]
    assert problems == [
        "account 18000000003 -> Paweł Kowalski: Company owner: must be an e-mail address, "
        'got "Paweł Kowalski"; left out'
    ]
    write_csv_file(out, "hubspot", rows)
    assert out.read_text(encoding="utf-8").splitlines() == [
        "Record ID,Company owner",
        "18000000001,lena.schaefer@example.de",
        "18000000002,pawel.kowalski@example.pl",
    ]


def test_export_across_partitions_uses_approved_at():
    items = [
        _assignment("A", "new", "2025-03-02T10:00:00Z", 5, partition=0),
        _assignment("A", "old", "2025-03-01T10:00:00Z", 9, partition=1),
    ]
    assert latest_per_account(items)["A"].to_rep == "new"


def test_assignment_messages_are_parsed_or_refused():
    value = json.dumps(
        {
            "account_id": "A",
            "from_rep": "R1",
            "to_rep": "R2",
            "proposal_id": "p-1",
            "approved_at": "2025-03-01T10:00:00Z",
            "approved_by": "m.keller",
        }
    ).encode()
    assert parse_assignment(b"A", value, partition=1, offset=7) == Assignment(
        "A", "R2", "R1", "p-1", "2025-03-01T10:00:00Z", "m.keller", 1, 7
    )
    assert parse_assignment(b"B", b'{"to_rep": "R2"}').account_id == "B"  # the key names the account
    for bad, reason in (
        (b"nope", "not UTF-8 JSON"),
        (b"[]", "not a JSON object"),
        (b'{"account_id": "A"}', "to_rep missing"),
        (None, "empty message"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_assignment(b"A", bad)


# --- the commands ---------------------------------------------------------------------------


def cli() -> typer.Typer:
    """The commands registered as territory/cli.py is to register them."""
    app = typer.Typer()
    app.command("import")(import_command)
    app.command("export-assignments")(export_assignments_command)
    return app


def test_import_dry_run_prints_row_errors_and_a_summary():
    result = CliRunner().invoke(
        cli(),
        ["import", str(SF_ACCOUNTS), "--format", "salesforce-accounts", "--dry-run", "--no-progress"],
        env={"TERRITORY_KAFKA_URL": ""},
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "line 9, column 'BillingLatitude': must be <= 90, got 95.2" in lines
    assert "line 8, column 'Id': required for account.upserted" in lines
    assert lines[-2].startswith("rows read: 9, valid: ")
    assert lines[-1] == "dry run: nothing produced"


def test_import_command_refuses_a_file_that_does_not_fit_and_needs_a_broker(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli(), ["import", str(SF_USERS), "--format", "hubspot-companies", "--dry-run"])
    assert result.exit_code == 2
    assert "no column for account_id" in result.stderr
    result = runner.invoke(
        cli(), ["import", str(SF_ACCOUNTS_REPORT), "--format", "salesforce-accounts"], env={"TERRITORY_KAFKA_URL": ""}
    )
    assert result.exit_code == 2 and "TERRITORY_KAFKA_URL" in result.stderr
    result = runner.invoke(
        cli(), ["import", str(SF_ACCOUNTS_REPORT), "--format", "salesforce-accounts", "--dry-run", "--progress"]
    )  # progress bars must not get in the way
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == ["rows read: 3, valid: 3, invalid: 0", "dry run: nothing produced"]


# --- through a real broker --------------------------------------------------------------------


@pytest.mark.slow
def test_import_round_trip_through_a_real_broker_and_reimport_gives_duplicates():
    from territory.broker import EmbeddedBroker
    from tests.kafka_io import read_all

    expected = read_export(SF_ACCOUNTS_REPORT, "salesforce-accounts")
    with EmbeddedBroker(partitions=2) as broker:
        env = {"TERRITORY_KAFKA_URL": broker.url}
        args = ["import", str(SF_ACCOUNTS_REPORT), "--format", "salesforce-accounts", "--no-progress"]
        result = CliRunner().invoke(cli(), args, env=env)
        assert result.exit_code == 0, result.output + result.stderr
        assert f"produced 3 events to {topics.ACCOUNTS}" in result.stdout
        records = read_all(broker.bootstrap_servers, topics.ACCOUNTS, quiet_s=1.5)
        assert sorted((key.decode(), value["event_id"]) for key, value in records) == sorted(
            (event.key, event.event_id) for event in expected.events
        )
        for key, value in records:
            assert validate_envelope(value, topic=topics.ACCOUNTS, key=key).key == key.decode()
        assert {value["event_id"]: value for _, value in records} == {
            event.event_id: event.envelope for event in expected.events
        }

        assert CliRunner().invoke(cli(), args, env=env).exit_code == 0  # the same file again
        records = read_all(broker.bootstrap_servers, topics.ACCOUNTS, quiet_s=1.5)
        assert len(records) == 6 and len({value["event_id"] for _, value in records}) == 3


@pytest.mark.slow
def test_export_assignments_from_a_real_broker(tmp_path):
    from territory.broker import EmbeddedBroker
    from tests.kafka_io import produce

    def message(account: str, to_rep: str, approved_at: str) -> tuple[str, str, dict]:
        return (
            topics.ASSIGNMENTS,
            account,
            {
                "account_id": account,
                "from_rep": BERLIN_REP,
                "to_rep": to_rep,
                "proposal_id": "prop-1",
                "approved_at": approved_at,
                "approved_by": "m.keller",
            },
        )

    out = tmp_path / "owners.csv"
    with EmbeddedBroker(partitions=2) as broker:
        env = {"TERRITORY_KAFKA_URL": broker.url}
        produce(
            broker.bootstrap_servers,
            [
                message("0018d00000AbC02AAF", HAMBURG_REP, "2025-03-01T10:00:00Z"),
                message("0018d00000AbC01AAF", MUNICH_REP, "2025-03-01T10:05:00Z"),
            ],
        )
        result = CliRunner().invoke(cli(), ["export-assignments", "--format", "salesforce", "--out", str(out)], env=env)
        assert result.exit_code == 0, result.output + result.stderr
        assert out.read_text(encoding="utf-8").splitlines() == [
            "Id,OwnerId",
            f"0018d00000AbC01AAF,{MUNICH_REP}",
            f"0018d00000AbC02AAF,{HAMBURG_REP}",
        ]
        assert "read 2 assignment messages" in result.stdout

        # A later approval for the same account wins; a broken message is skipped.
        produce(
            broker.bootstrap_servers,
            [message("0018d00000AbC02AAF", BERLIN_REP, "2025-03-02T10:00:00Z"), (topics.ASSIGNMENTS, "x", b"not json")],
        )
        assignments, problems = asyncio.run(read_assignments(broker.bootstrap_servers))
        assert len(assignments) == 3 and len(problems) == 1 and "not UTF-8 JSON" in problems[0]
        result = CliRunner().invoke(cli(), ["export-assignments", "--format", "salesforce", "--out", str(out)], env=env)
        assert result.exit_code == 0, result.output + result.stderr
        assert out.read_text(encoding="utf-8").splitlines() == [
            "Id,OwnerId",
            f"0018d00000AbC01AAF,{MUNICH_REP}",
            f"0018d00000AbC02AAF,{BERLIN_REP}",
        ]
