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
from datetime import timezone
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
    from alerts.history import parse_ref

    try:
        ref = parse_ref(text)
    except ValueError as error:
        raise _fail(f"{name}: {error}")
    if ref.snapshot_id is not None:
        found = store.alignment_snapshot(ref.snapshot_id)
        if found is None:
            raise _fail(f"{name}: no alignment snapshot {ref.snapshot_id}{_known(store)}")
        return found
    assert ref.until is not None
    found = store.alignment_snapshot_at(ref.until.astimezone(timezone.utc))
    if found is None:
        raise _fail(f"{name}: no alignment snapshot on or before {text}{_known(store)}")
    return found


def _known(store: "Store") -> str:
    snapshots = store.alignment_snapshots()
    if not snapshots:
        return ": no alignment snapshot yet (the first approval takes one, and a baseline)"
    first, last = snapshots[0], snapshots[-1]
    return (
        f" (snapshots #{first.id} of {_when(first.taken_at)} to #{last.id} of {_when(last.taken_at)} UTC; "
        "see `territory alignment list`)"
    )


def _label(snapshot: "AlignmentSnapshotRow") -> str:
    return f"#{snapshot.id} of {_when(snapshot.taken_at)} UTC ({snapshot.reason})"


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
    counts: dict[str, list[int]] = {}
    for change in moved:
        counts.setdefault(change.from_rep or "(none)", [0, 0])[0] += 1
        counts.setdefault(change.to_rep or "(none)", [0, 0])[1] += 1
    typer.echo("")
    typer.echo(_table(["rep", "gave", "got"], [[rep, str(g), str(t)] for rep, (g, t) in sorted(counts.items())]))


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


def _figures(store: "Store") -> Any:
    """Potentials, places, homes, fair shares and band from the stored proposals, newest first."""
    from alerts.history import RestoreFigures
    from core.settings import Settings

    potentials: dict[str, float] = {}
    places: dict[str, tuple[float, float]] = {}
    homes: dict[str, tuple[float, float]] = {}
    fair: dict[str, float] = {}
    tolerance: float | None = None
    for proposal_id in store.proposal_ids_newest_first():
        row = store.proposal(proposal_id)
        if row is None:
            continue
        payload = row.payload
        for account in payload.get("accounts") or ():
            account_id = account.get("account_id")
            if account_id is None or account_id in potentials:
                continue
            potentials[account_id] = float(account.get("potential") or 0.0)
            if account.get("lat") is not None and account.get("lon") is not None:
                places[account_id] = (float(account["lat"]), float(account["lon"]))
        for rep in payload.get("reps") or ():
            if rep.get("rep_id") not in homes and rep.get("home_lat") is not None and rep.get("home_lon") is not None:
                homes[rep["rep_id"]] = (float(rep["home_lat"]), float(rep["home_lon"]))
        if tolerance is None and payload.get("mode") != "restore" and payload.get("before"):
            tolerance = float(payload.get("tolerance") or Settings().tolerance)
            fair = {r["rep_id"]: float(r.get("fair_share") or 0.0) for r in payload["before"]}
    return RestoreFigures(potentials, places, homes, fair, tolerance if tolerance is not None else Settings().tolerance)


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
    from alerts.history import restore_proposal
    from alerts.store import CONTROL_CHARACTERS, MAX_ACTOR_LENGTH
    from core.records import Proposal

    by, comment = by.strip(), comment.strip()
    if not by:
        raise _fail("--by must name who asks for the restore (kept in the audit log)")
    if len(by) > MAX_ACTOR_LENGTH:
        raise _fail(f"--by: at most {MAX_ACTOR_LENGTH} characters")
    for option, value in (("--by", by), ("--comment", comment)):
        if CONTROL_CHARACTERS.search(value):
            raise _fail(f"{option}: must not contain control characters (line breaks, tabs and the like)")
    settings = _settings()
    with _store_available("nothing proposed"):
        store = _store(settings)
        found = _resolve(store, snapshot, "SNAPSHOT")
        then = store.alignment_rows(found.id)
        current = store.current_alignment()
        reps = sorted({e.rep_id for e in then.values() if e.rep_id is not None})
        payload = restore_proposal(
            found.id,
            f"{_when(found.taken_at)} UTC, {found.reason}",
            then,
            current,
            active=store.known_reps(reps),
            figures=_figures(store),
            state_time=store.state_time(),
            requested_by=by,
            created_at=store.clock.now(),
        )
        if payload is None:
            raise _fail(f"SNAPSHOT: the current alignment already gives every account its rep of {_label(found)}")
        proposal = Proposal.from_json(payload)  # what the alert stage reads: refused here if not valid
        stored = store.save_proposal(proposal.to_json(), actor=by, comment=comment or None)
        row = store.proposal(proposal.proposal_id)
    assert row is not None
    if not stored or row.status != "pending":
        raise _fail(
            f"the same restore was asked for before: proposal {proposal.proposal_id} is {row.status} "
            f"(`territory proposals show {proposal.proposal_id}`)"
        )
    superseded = [r.proposal_id for r in store.proposals("superseded") if r.superseded_by == proposal.proposal_id]
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
    from core import topics
    from core.kafka_auth import client_options

    async with KafkaPublisher(settings.bootstrap_servers, **client_options(settings)) as publisher:
        await asyncio.wait_for(
            publisher.send(topics.PROPOSALS, proposal.proposal_id.encode(), proposal.to_json()), timeout=30
        )
