"""CRM import and export: for users without their own Kafka producers.

In: `territory import FILE --format ...` turns a CSV export into contract events
(docs/EVENTS.md) on the input topics:

* `salesforce-accounts` (Account: Id, Name, BillingLatitude, BillingLongitude,
  BillingPostalCode, BillingCountry, Industry, NumberOfEmployees, OwnerId,
  LastModifiedDate) -> `account.upserted` on crm.accounts;
* `salesforce-users` (User: Id, FirstName, LastName, IsActive, Latitude, Longitude,
  City, PostalCode, Country) -> `rep.upserted` on crm.reps;
* `hubspot-companies` (Record ID, Company name, Company owner, Postal Code,
  Country/Region, Industry, Number of Employees, Last Modified Date) -> `account.upserted`;
* `hubspot-users` (User ID, First Name, Last Name, Email) -> `rep.upserted`;
* `generic` with `--type account|rep|order|activity|opportunity` and `--map field=Column`.

Every envelope passes `core.contract.validate_envelope` before it is produced;
rows that do not are reported with line (header = line 1), column and reason. Event ids
are deterministic, so importing the same export twice produces duplicates the worker
skips, not new events. See `connectors.mapping` for event_id / occurred_at / key.

Out: `territory export-assignments --format salesforce|hubspot --out FILE` reads the
approved changes on `territory.assignments` and writes the file the CRM re-imports
(`Id,OwnerId` for Data Loader; `Record ID,Company owner` for HubSpot).

Layout, pure parts first (no Kafka, unit-tested alone):

* `csv_source`  reading: encoding and BOM, delimiter sniffing, quoted multi-line fields, line numbers
* `values`      cell text -> numbers (decimal comma, grouping), booleans, timestamps
* `mapping`     profiles, header binding, rows -> envelopes + contract validation, row errors, event ids
* `salesforce`, `hubspot`, `generic`   the column names of each format
* `importer`    a file -> an ImportReport
* `export`      assignment messages -> latest per account -> CSV rows
* `commands`    the Typer commands; the only module that talks to Kafka
"""
