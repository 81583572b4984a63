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
* `pipedrive-organizations` (Organization - ID, - Name, - Owner, - Address - ZIP/Postal code,
  - Address - Country, ...) -> `account.upserted`;
* `dynamics-accounts` ((Do Not Modify) Account, Account Name, Owner, Address 1: ZIP/Postal
  Code, ...) and `dynamics-users` ((Do Not Modify) User, Full Name, Primary Email, ...);
* `generic` with `--type account|rep|order|activity|opportunity` and `--map field=Column`.

Exports as they come: report footers are skipped and counted (`csv_source`), locale dates
read with `--date-format` or detected (`importer.detect_date_format`), owner names resolved
through the CRM's users export (`--owners`), and reps without a location placed by
`--rep-homes` or `--home-from-accounts` (`homes`).

Every envelope passes `core.contract.validate_envelope` before it is produced;
rows that do not are reported with line (header = line 1), column and reason. Event ids
are deterministic, so importing the same export twice produces duplicates the worker
skips, not new events. See `connectors.mapping` for event_id / occurred_at / key.

Out: `territory export-assignments --format salesforce|hubspot --out FILE` reads the
approved changes on `territory.assignments` and writes the file the CRM re-imports
(`Id,OwnerId` for Data Loader; `Record ID,Company owner` for HubSpot).

Rebalancing without Kafka: `territory rebalance --accounts EXPORT --format F [--owners USERS]
[--sales ORDERS | --potential-column COL]` builds the rebalancer's units and reps from the
exports (`units`), prints what it assumed, and `--write-back FILE` writes the owner changes as
the CRM's update file (`writeback`: Salesforce, HubSpot, Pipedrive, Dynamics 365).

Layout, pure parts first (no Kafka, unit-tested alone):

* `csv_source`  reading: encoding and BOM, delimiter sniffing, quoted multi-line fields, line numbers
* `values`      cell text -> numbers (decimal comma, grouping), booleans, timestamps
* `mapping`     profiles, header binding, rows -> envelopes + contract validation, row errors, event ids
* `salesforce`, `hubspot`, `pipedrive`, `dynamics`, `generic`   the column names of each format
* `homes`       where reps without coordinates live (--rep-homes, account centres)
* `importer`    a file -> an ImportReport
* `units`       an accounts export (+ users, + sales history) -> the rebalancer's Accounts and Reps, and
                what was assumed (potential from the worker's model trained on the sales)
* `writeback`   owner changes -> each CRM's update file (layouts, formula neutralisation, read_back)
* `export`      assignment messages -> latest per account -> CSV rows (through `writeback`)
* `commands`    the Typer commands; the only module that talks to Kafka
"""
