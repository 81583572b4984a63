"""`territory alignment`: the history of approved alignments (alerts/history.py).

Every approval and every apply keeps a dated snapshot of account -> rep (the rep's district,
the account's segment) in the store, after a baseline of the alignment before the first
approval. These commands read them; `restore` asks for an old one back as a pending proposal,
which is reviewed and approved like any other: nothing here changes an owner.

A snapshot is named by its id (`territory alignment list`) or by a date: `YYYY-MM-DD` (or
`YYYY-MM-DDTHH:MM`, UTC) means the last snapshot taken on or before it.

Exit status: 0 done; 1 the restore proposal is stored, but publishing it for the alert failed
(it is pending all the same: the review page and `territory proposals list` show it); 2
nothing done (unknown snapshot or date, bad option, nothing to restore); 3 the store is locked
or unreachable.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from territory.proposals_cli import _fail, _settings, _store, _store_available, _table, _when

if TYPE_CHECKING:
    from alerts.history import Aligned
    from alerts.schema import AlignmentSnapshotRow
    from alerts.store import Store

app = typer.Typer(
    help="The history of approved alignments: list, show, diff, export, restore (as a proposal).",
    no_args_is_help=True,
    add_completion=False,
)

FORMATS = ("salesforce", "hubspot", "csv")
CSV_COLUMNS = ("account_id", "rep_id", "district", "segment")
SNAPSHOT_HELP = "A snapshot id, or a date (YYYY-MM-DD: the last snapshot on or before that day, UTC)."


def _resolve(store: "Store", text: str, name: str) -> "AlignmentSnapshotRow":
    """The snapshot `text` names; exit 2 with an error naming the argument when there is none."""
    from alerts.restore import RestoreError, resolve

    try:
        return resolve(store, text)
    except RestoreError as error:
        raise _fail(f"{name}: {error}")


def _label(snapshot: "AlignmentSnapshotRow") -> str:
    from alerts.restore import label

    return label(snapshot)


@app.command("list")
def list_command() -> None:
    """Every alignment snapshot, oldest first: when (UTC), why, the proposal, accounts and reps."""
    with _store_available("nothing listed"):
        snapshots = _store(_settings()).alignment_snapshots()
    if not snapshots:
        typer.echo("no alignment snapshot yet (the first approval takes one, and a baseline of the alignment before)")
        return
    typer.echo(
        _table(
            ["id", "taken (UTC)", "reason", "proposal", "by", "accounts", "reps"],
            [
                [str(s.id), _when(s.taken_at), s.reason, s.proposal_id or "", s.actor, str(s.accounts), str(s.reps)]
                for s in snapshots
            ],
        )
    )


@app.command()
def show(snapshot: str = typer.Argument(..., metavar="SNAPSHOT", help=SNAPSHOT_HELP)) -> None:
    """A snapshot: accounts per rep (with district), then every account with its rep and segment."""
    with _store_available("nothing shown"):
        store = _store(_settings())
        found = _resolve(store, snapshot, "SNAPSHOT")
        rows = store.alignment_rows(found.id)
    per_rep: dict[str, list[str]] = {}
    districts: dict[str, str] = {}
    for account_id, entry in rows.items():
        rep = entry.rep_id if entry.rep_id is not None else "(none)"
        per_rep.setdefault(rep, []).append(account_id)
        if entry.district:
            districts[rep] = entry.district
    typer.echo(f"alignment snapshot {_label(found)}, by {found.actor}")
    typer.echo(f"  {len(rows)} accounts, {len([r for r in per_rep if r != '(none)'])} reps")
    typer.echo("")
    typer.echo(
        _table(
            ["rep", "district", "accounts"],
            [[rep, districts.get(rep, ""), str(len(accounts))] for rep, accounts in sorted(per_rep.items())],
        )
    )
    typer.echo("")
    typer.echo(
        _table(
            ["account", "rep", "district", "segment"],
            [[a, e.rep_id or "(none)", e.district or "", e.segment or ""] for a, e in rows.items()],
        )
    )


@app.command()
def diff(
    first: str = typer.Argument(..., metavar="A", help=SNAPSHOT_HELP),
    second: str = typer.Argument(..., metavar="B", help=SNAPSHOT_HELP),
) -> None:
    """The accounts whose rep changed from snapshot A to snapshot B (from -> to), with counts."""
    with _store_available("nothing compared"):
        store = _store(_settings())
        a, b = _resolve(store, first, "A"), _resolve(store, second, "B")
        changes = store.alignment_diff(a.id, b.id)
    typer.echo(f"A: {_label(a)}")
    typer.echo(f"B: {_label(b)}")
    moved = [c for c in changes if c.kind == "moved"]
    added = [c for c in changes if c.kind == "added"]
    removed = [c for c in changes if c.kind == "removed"]
    if not changes:
        typer.echo("no account changed rep")
        return
    typer.echo(
        f"{len(moved)} account{'s' if len(moved) != 1 else ''} changed rep"
        + (f"; {len(added)} only in B" if added else "")
        + (f"; {len(removed)} only in A (closed or erased since)" if removed else "")
    )
    headers = ["account", "from (A)", "to (B)"] + (["only in"] if added or removed else [])
    typer.echo(
        _table(
            headers,
            [
                [
                    c.account_id,
                    c.from_rep or "(none)",
                    c.to_rep or "(none)",
                    {"added": "B", "removed": "A"}.get(c.kind, ""),
                ][: len(headers)]
                for c in changes
            ],
        )
    )
    from alerts.restore import rep_counts

    typer.echo("")
    typer.echo(_table(["rep", "gave", "got"], [[rep, str(g), str(t)] for rep, (g, t) in rep_counts(moved).items()]))


def csv_text(rows: dict[str, "Aligned"]) -> str:
    """account_id, rep_id, district, segment per account (CRLF), text cells formula-safe."""
    from connectors.export import as_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for account_id, e in rows.items():
        writer.writerow([as_text(value or "") for value in (account_id, e.rep_id, e.district, e.segment)])
    return buffer.getvalue()


@app.command()
def export(
    snapshot: str = typer.Argument(..., metavar="SNAPSHOT", help=SNAPSHOT_HELP),
    format: str = typer.Option(..., "--format", "-f", help="salesforce | hubspot | csv"),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="The file to write (replaced whole)."),
) -> None:
    """Write a snapshot for the CRM or a spreadsheet.

    salesforce: `Id,OwnerId` (a Data Loader update file); hubspot: `Record ID,Company owner`
    (as `territory export-assignments`: UTF-8 without BOM; rows the CRM would refuse are left
    out and listed). csv: account_id, rep_id, district, segment (UTF-8 with BOM). Text cells
    starting with = + - @, tab or CR get a leading ' so a spreadsheet shows them as text."""
    from connectors.export import Assignment, export_rows, write_csv_file

    if format not in FORMATS:
        raise _fail(f"--format must be salesforce, hubspot or csv, got {format!r}")
    with _store_available("nothing written"):
        store = _store(_settings())
        found = _resolve(store, snapshot, "SNAPSHOT")
        rows = store.alignment_rows(found.id)
    if format == "csv":
        temporary = out.with_name(f".{out.name}.tmp")
        try:
            temporary.write_text(csv_text(rows), encoding="utf-8-sig", newline="")
            os.replace(temporary, out)
        finally:
            temporary.unlink(missing_ok=True)
        written = len(rows)
    else:
        without_rep = [a for a, e in rows.items() if e.rep_id is None]
        assignments = [Assignment(a, e.rep_id) for a, e in rows.items() if e.rep_id is not None]
        crm_rows, problems = export_rows(assignments, format)
        write_csv_file(out, format, crm_rows)
        for problem in problems:
            typer.echo(f"note: {problem}", err=True)
        if without_rep:
            typer.echo(f"note: {len(without_rep)} accounts without a rep left out", err=True)
        written = len(crm_rows)
    typer.echo(f"wrote {written} accounts of alignment snapshot {_label(found)} to {out} ({format})")


@app.command()
def restore(
    snapshot: str = typer.Argument(..., metavar="SNAPSHOT", help=SNAPSHOT_HELP),
    by: str = typer.Option(..., "--by", help="Who asks for it (kept in the audit log and the proposal's notes)."),
    comment: str = typer.Option("", "--comment", "-m", help="Why (kept in the audit log)."),
) -> None:
    """Ask for an old alignment back: a pending proposal (kind restore) whose moves give every
    account whose rep differs now its rep of the snapshot. It is reviewed, approved or rejected
    like any other proposal (`territory proposals`, the review page); nothing changes before.

    With TERRITORY_KAFKA_URL the proposal is also published to territory.proposals, so the
    worker alerts the reviewers as for any proposal."""
    from alerts.restore import RestoreError, propose_restore, requester

    try:
        by, comment = requester(by, comment, by_name="--by", comment_name="--comment")
    except RestoreError as error:
        raise _fail(str(error))
    settings = _settings()
    with _store_available("nothing proposed"):
        store = _store(settings)
        found = _resolve(store, snapshot, "SNAPSHOT")
        try:
            made = propose_restore(store, found, by=by, comment=comment)
        except RestoreError as error:
            raise _fail(f"SNAPSHOT: {error}" if error.kind == "unchanged" else str(error))
    proposal, superseded = made.proposal, made.superseded
    typer.echo(
        f"proposal {proposal.proposal_id} (restore {_label(found)}): pending, {len(proposal.moves)} moves; "
        f"approve or reject it as any proposal (`territory proposals show {proposal.proposal_id}`)"
    )
    for note in proposal.notes:
        typer.echo(f"note: {note}")
    if superseded:
        typer.echo(f"it supersedes the pending proposal(s) {', '.join(superseded)} (they touch the same reps)")
    if not settings.kafka_url:
        typer.echo(
            "not alerted: TERRITORY_KAFKA_URL is not set (with it the proposal is published to territory.proposals "
            "and the worker alerts the reviewers)"
        )
        return
    try:
        asyncio.run(_publish(settings, proposal))
    except Exception as error:  # noqa: BLE001 - any publishing failure: the proposal stands
        typer.echo(
            f"the proposal is stored and pending, but publishing it for the alert failed ({error}); "
            "the review page and `territory proposals list` show it",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo("published to territory.proposals: the worker alerts the reviewers")


async def _publish(settings: Any, proposal: Any) -> None:
    from alerts.decisions import KafkaPublisher
    from alerts.restore import publish
    from core.kafka_auth import client_options

    async with KafkaPublisher(settings.bootstrap_servers, **client_options(settings)) as publisher:
        await asyncio.wait_for(publish(publisher, proposal), timeout=30)
