"""`territory rebalance --accounts EXPORT --format F`: the rebalance command's CRM side, the
units and reps built from a CRM export (connectors.units) and the proposal's owner changes
written as the CRM's own update file (connectors.writeback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def crm_inputs(
    accounts: Optional[Path],
    format: Optional[str],
    *,
    units: Optional[Path],
    reps: Optional[Path],
    adjacency: Optional[Path],
    **options: Any,
) -> tuple[Any, Any]:
    """`--accounts EXPORT --format F`: the units and reps built from a CRM export (connectors.units)."""
    from connectors.csv_source import CsvFormatError
    from connectors.mapping import MappingError, parse_mappings
    from connectors.units import ACCOUNT_FORMATS, build_units
    from territory import offline

    if units is not None or reps is not None:
        raise offline.InputError("give either --units/--reps or --accounts/--format, not both")
    if accounts is None:
        raise offline.InputError("--format goes with --accounts EXPORT.csv")
    if format is None:
        raise offline.InputError(f"--accounts needs --format ({'|'.join(ACCOUNT_FORMATS)})")
    try:
        crm = build_units(
            accounts,
            format,
            owners=options["owners"],
            rep_homes=options["rep_homes"],
            home_from_accounts=options["home_from_accounts"],
            sales=options["sales"],
            sales_map=parse_mappings(options["sales_map"]) or None,
            potential_column=options["potential_column"],
            segment_from_industry=options["segment_from_industry"],
            mappings=parse_mappings(options["account_map"]) or None,
            date_format=options["date_format"],
        )
    except (MappingError, CsvFormatError, ValueError) as error:
        raise offline.InputError(str(error)) from None
    edges = offline.read_edges(adjacency, crm.accounts, units_name=accounts.name) if adjacency is not None else None
    return crm, offline.Inputs(crm.accounts, crm.reps, edges)


def writeback_layout(
    crm: Any, crm_input: Optional[str], crm_format: Optional[str], write_back: Optional[Path], dry_run: bool
) -> Optional[str]:
    """The --write-back layout, checked before solving."""
    from connectors.writeback import CRMS
    from territory import offline

    if write_back is None:
        if dry_run or crm_format is not None:
            raise offline.InputError(f"{'--dry-run' if dry_run else '--crm-format'} goes with --write-back FILE")
        return None
    if crm is None:
        raise offline.InputError("--write-back needs --accounts EXPORT.csv --format FORMAT (the CRM's own ids)")
    chosen = crm_format or crm.crm
    if chosen not in CRMS:
        raise offline.InputError(f"--crm-format must be one of {', '.join(CRMS)}, got {chosen!r}")
    if chosen != crm.crm:
        raise offline.InputError(
            f"--crm-format {chosen} does not fit --format {crm_input}: the write-back names the export's own ids"
        )
    return str(chosen)


def assumed_block(crm: Any) -> str:
    lines = ["assumed:"] + [f"  {line}" for line in crm.assumed]
    lines += [f"  skipped: {line}" for line in crm.skipped]
    return "\n".join(lines) + "\n"


def write_back_file(proposals: Any, crm: Any, layout: str, path: Optional[Path], scenario: str, dry_run: bool) -> None:
    from connectors.writeback import WITH_BOM, Change, render, write_file, writeback_rows

    chosen = next((p for p in proposals if p.scenario.name == scenario), None)
    if chosen is None:
        names = ", ".join(p.scenario.name for p in proposals)
        typer.echo(f"error: --write-back-scenario {scenario!r}: no such scenario ({names})", err=True)
        raise typer.Exit(2)
    if not chosen.has_proposal:
        typer.echo(f"write-back: no proposal for {scenario} ({chosen.result.status}); nothing to write", err=True)
        return
    changes = [Change(m.account_id, m.to_rep, m.from_rep) for m in chosen.result.moves]
    header, rows, problems = writeback_rows(changes, layout, owner_names=crm.owner_names, passthrough=crm.passthrough)
    for problem in problems:
        typer.echo(f"write-back skipped: {problem}", err=True)
    owners = f"{len(rows)} changed owner{'s' if len(rows) != 1 else ''}"
    if dry_run:
        shown = render(header, rows[:10]).rstrip("\r\n").replace("\r\n", "\n")
        count = f"{len(rows)} owner{'s' if len(rows) != 1 else ''}"
        typer.echo(f"dry run: {layout} write-back ({','.join(header)}) would change {count} ({scenario}); first rows:")
        typer.echo(shown)
        if len(rows) > 10:
            typer.echo(f"... {len(rows) - 10} more")
        typer.echo("dry run: nothing written")
        return
    assert path is not None
    write_file(path, header, rows, bom=layout in WITH_BOM)
    typer.echo(f"wrote {path}: {owners} ({scenario}), {layout} layout {','.join(header)}")
