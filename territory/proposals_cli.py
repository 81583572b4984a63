"""`territory proposals`: review and decide proposals from the command line.

The same decisions as the review page (alerts/decisions.py), for people who live in a
terminal and for scripts: the store is read and written directly (TERRITORY_DB_URL), and
an approval publishes through its own aiokafka producer to TERRITORY_KAFKA_URL (from
`territory broker`, as for `territory simulate`).

Exit status: 0 done; 1 approved, but publishing failed (the approval stands: retry with
`territory proposals apply ID`; a running worker also retries); 2 nothing done (unknown
proposal, not pending, stale moves, no broker, bad option); 3 the store is locked (another
writer holds a SQLite database longer than its busy timeout) or unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional

import typer

from core.formatting import percent
from core.records import proposal_kind
from core.settings import Settings

if TYPE_CHECKING:
    from alerts.decisions import Outcome
    from alerts.store import Store

app = typer.Typer(
    help="Review proposals: list, show, approve, reject, apply (publish an approval again).",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except ValueError as error:  # one line naming the TERRITORY_ variable, as every command
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # aiokafka logs each failed connection attempt; the command says what failed once, below.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return settings


def _store(settings: Settings) -> "Store":
    from alerts.store import Store

    store = Store(settings.db_url)
    store.migrate()
    return store


#: Exit status when the store is locked or unreachable (see the module docstring).
STORE_UNAVAILABLE = 3


@contextmanager
def _store_available(what: str) -> Iterator[None]:
    """A locked or unreachable database is its own answer (exit 3), not a traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as error:
        brief = str(error.orig if error.orig is not None else error).strip().splitlines()[0][:300]
        raise _fail(f"the store is locked or unreachable ({brief}); {what}", STORE_UNAVAILABLE) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


@app.command("list")
def list_command(
    status: Optional[str] = typer.Option(
        None, help="Only proposals in this state: pending, approved, rejected, superseded, applied."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many (a page)."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many first (the next page)."),
) -> None:
    """List proposals, oldest first, a page at a time."""
    from alerts.schema import PROPOSAL_STATES
    from alerts.web import summary

    if status is not None and status not in PROPOSAL_STATES:
        raise _fail(f"--status must be one of {', '.join(PROPOSAL_STATES)}, got {status!r}")
    with _store_available("nothing listed"):
        rows = _store(_settings()).proposals(status, limit=limit, offset=offset)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(summary(row)))
        return
    if not rows:
        typer.echo(f"no {status + ' ' if status else ''}proposals")
        return
    typer.echo(
        _table(
            ["proposal", "status", "kind", "moves", "imbalance", "event time", "decided by"],
            [
                [
                    r.proposal_id,
                    r.status,
                    proposal_kind(r.mode),
                    str(r.move_count),
                    f"{percent(r.imbalance_before, 1, missing='-')} -> {percent(r.imbalance_after, 1, missing='-')}",
                    r.event_time[:10],
                    r.decided_by or "",
                ]
                for r in rows
            ],
        )
    )


@app.command()
def show(proposal_id: str = typer.Argument(..., help="The proposal id (see `territory proposals list`).")) -> None:
    """A proposal: its figures, its moves and its audit trail."""
    store = _store(_settings())
    row = store.proposal(proposal_id)
    if row is None:
        raise _fail(f"no proposal {proposal_id!r} (see `territory proposals list`)")
    proposal = row.record()
    typer.echo(f"proposal {row.proposal_id}: {row.status}")
    typer.echo(f"  kind           {proposal_kind(proposal.mode)} (solver: {row.solver_status})")
    typer.echo(f"  moves          {row.move_count}")
    typer.echo(
        f"  imbalance      {percent(row.imbalance_before, 1, missing='-')} -> "
        f"{percent(row.imbalance_after, 1, missing='-')} (band ±{percent(proposal.tolerance, 1, missing='-')})"
    )
    typer.echo(f"  event time     {row.event_time}")
    typer.echo(f"  proposed       {_when(row.stored_at)}")
    if row.decided_at is not None:
        typer.echo(f"  decided        {_when(row.decided_at)} by {row.decided_by}: {row.decision_comment or ''}")
    if row.applied_at is not None:
        typer.echo(f"  applied        {_when(row.applied_at)}")
    if row.superseded_by:
        typer.echo(f"  superseded by  {row.superseded_by}")
    if proposal.explanation:
        typer.echo(f"  explanation    {proposal.explanation}")
    if proposal.trigger_signals:
        typer.echo(f"  signals        {', '.join(proposal.trigger_signals)}")
    if proposal.before and proposal.after:
        after = {load.rep_id: load for load in proposal.after}
        typer.echo("\nreps (share of potential / fair share):")
        rows = []
        for load in proposal.before:
            now = after.get(load.rep_id)
            rows.append(
                [
                    load.rep_id,
                    percent(load.share, 1, missing="-"),
                    percent(now.share if now else None, 1, missing="-"),
                    percent(load.fair_share, 1, missing="-"),
                    f"{load.accounts} -> {now.accounts if now else '-'}",
                ]
            )
        typer.echo(_table(["rep", "before", "after", "fair", "accounts"], rows))
    moves = store.moves(proposal_id)
    typer.echo(f"\nmoves ({len(moves)}):")
    if moves:
        typer.echo(
            _table(
                ["account", "from", "to", "potential", "reason"],
                [[m.account_id, m.from_rep or "(none)", m.to_rep, f"{m.potential:,.0f}", m.reason] for m in moves],
            )
        )
    typer.echo("\naudit trail:")
    typer.echo(
        _table(
            ["when (UTC)", "who", "what", "why"],
            [[_when(a.at), a.actor, a.action, a.comment or ""] for a in reversed(store.audit(proposal_id))],
        )
    )


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_url:
        raise _fail("set TERRITORY_KAFKA_URL (e.g. from `territory broker`): an approval is published to Kafka")
    return settings.bootstrap_servers


async def _with_publisher(bootstrap: str, action: Any) -> "Outcome":
    """Run `action(publisher)` with a started producer; a broker that cannot be reached
    is reported before anything is decided."""
    from aiokafka.errors import KafkaError

    from alerts.decisions import KafkaPublisher
    from core.kafka_auth import client_options

    publisher = KafkaPublisher(bootstrap, **client_options(_settings()))
    try:
        await publisher.__aenter__()
    except (KafkaError, OSError) as error:
        raise _fail(f"cannot reach the broker at {bootstrap} ({error}); nothing decided")
    try:
        return await action(publisher)
    finally:
        await publisher.__aexit__(None, None, None)


def _report(outcome: "Outcome", verb: str) -> None:
    if outcome.ok:
        typer.echo(
            f"proposal {outcome.proposal_id} {verb}: {outcome.status}"
            + (
                f", {outcome.moves} moves published to territory.assignments and territory.overrides"
                if outcome.moves
                else ""
            )
        )
        return
    typer.echo(
        f"proposal {outcome.proposal_id} is approved, but publishing failed ({outcome.error}); "
        f"the approval stands: run `territory proposals apply {outcome.proposal_id}` "
        f"(a running worker also retries)",
        err=True,
    )
    raise typer.Exit(1)


def _pending(store: "Store", proposal_id: str) -> None:
    row = store.proposal(proposal_id)
    if row is None:
        raise _fail(f"no proposal {proposal_id!r} (see `territory proposals list`)")
    if row.status != "pending":
        decided = f" by {row.decided_by} on {_when(row.decided_at)}" if row.decided_by else ""
        raise _fail(f"proposal {proposal_id} is {row.status}{decided}, not pending: it cannot be decided")


@app.command()
def approve(
    proposal_id: str = typer.Argument(..., help="The pending proposal to approve."),
    comment: str = typer.Option(..., "--comment", "-m", help="Why (kept in the audit log)."),
    by: str = typer.Option(..., "--by", help="Who decides (kept in the audit log and on the assignments)."),
    only_valid: bool = typer.Option(
        False,
        "--only-valid",
        help="Approve the moves that still fit the accounts' "
        "current owners and leave the stale ones out (listed in the audit log).",
    ),
) -> None:
    """Approve a pending proposal and publish its moves to territory.assignments (and the worker's state).

    A move is stale when its account changed owner, was closed or its target rep left since
    the proposal: then nothing is approved and the stale moves are listed, unless --only-valid."""
    from alerts.decisions import DecisionError
    from alerts.decisions import approve as approve_proposal

    settings = _settings()
    if not by.strip() or not comment.strip():
        raise _fail("--by and --comment must not be empty: the audit log keeps who decided and why")
    bootstrap = _bootstrap(settings)
    with _store_available("nothing was decided"):
        store = _store(settings)
        _pending(store, proposal_id)
    with _store_available(
        f"nothing was decided, or, if `territory proposals show {proposal_id}` says approved, "
        f"`territory proposals apply {proposal_id}` finishes it"
    ):
        try:
            outcome = asyncio.run(
                _with_publisher(
                    bootstrap,
                    lambda publisher: approve_proposal(
                        store,
                        publisher,
                        proposal_id,
                        actor=by.strip(),
                        comment=comment.strip(),
                        only_valid_moves=only_valid,
                    ),
                )
            )
        except DecisionError as error:
            raise _fail(str(error))
    _report(outcome, "approved")


@app.command()
def reject(
    proposal_id: str = typer.Argument(..., help="The pending proposal to reject."),
    comment: str = typer.Option(..., "--comment", "-m", help="Why (kept in the audit log)."),
    by: str = typer.Option(..., "--by", help="Who decides (kept in the audit log)."),
) -> None:
    """Reject a pending proposal; nothing is published."""
    from alerts.decisions import DecisionError
    from alerts.decisions import reject as reject_proposal

    if not by.strip() or not comment.strip():
        raise _fail("--by and --comment must not be empty: the audit log keeps who decided and why")
    with _store_available("nothing was decided"):
        store = _store(_settings())
        _pending(store, proposal_id)
        try:
            outcome = asyncio.run(reject_proposal(store, None, proposal_id, actor=by.strip(), comment=comment.strip()))
        except DecisionError as error:
            raise _fail(str(error))
    _report(outcome, "rejected")


@app.command("apply")
def apply_command(
    proposal_id: str = typer.Argument(..., help="An approved proposal whose publishing failed."),
    by: str = typer.Option("cli", "--by", help="Who publishes it (kept in the audit log)."),
) -> None:
    """Publish an approved proposal again (after a broker outage); an applied one is left as it is."""
    from alerts.decisions import DecisionError
    from alerts.decisions import apply as apply_proposal

    settings = _settings()
    store = _store(settings)
    row = store.proposal(proposal_id)
    if row is None:
        raise _fail(f"no proposal {proposal_id!r} (see `territory proposals list`)")
    if row.status == "applied":
        typer.echo(f"proposal {proposal_id} was applied on {_when(row.applied_at)}: nothing to publish")
        return
    if row.status != "approved":
        raise _fail(f"proposal {proposal_id} is {row.status}: only an approved proposal can be applied")
    bootstrap = _bootstrap(settings)
    try:
        outcome = asyncio.run(
            _with_publisher(bootstrap, lambda publisher: apply_proposal(store, publisher, proposal_id, actor=by))
        )
    except DecisionError as error:
        raise _fail(str(error))
    _report(outcome, "applied")
