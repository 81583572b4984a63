"""`territory export-alignment`: every account of the current alignment, as the store knows
it, to CSV, xlsx or GeoJSON, with a proposal's new reps when asked.

Where each column comes from (the store holds nothing else about an account):

- the accounts and their owners (``rep_id``): the store's owner mirror (table
  ``known_accounts``), which the worker keeps from its state snapshots and against which an
  approval on the review page or with ``territory proposals approve`` is checked; closed
  accounts are left out. An account that only a stored proposal's ``accounts`` rows know
  (the mirror began after the worker last reported it) is exported with that proposal's
  owner, and ``rep_source`` names the proposal instead of ``known_accounts``;
- ``potential``, ``lat``, ``lon``, ``segment`` (empty for an account without one): the
  newest stored proposal (by the moment it judged) whose ``accounts`` rows list the account,
  whatever its status; ``potential_as_of`` is the month those rows count (``accounts_as_of``);
- ``district``: the account's rep's district in the newest proposal's ``reps`` rows;
- ``new_rep_id``, ``proposal_id`` (with ``--with-proposal ID`` or ``--pending``): the rep the
  proposal moves the account to, empty when it stays.

Names are not exported: the worker keeps only a keyed hash of each name and the store not
even that. Every gap is said in the notes (printed, in the xlsx's ``notes`` sheet and in the
GeoJSON's ``notes`` member), not filled in.

Text cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) are
written with a leading ' in CSV and xlsx (:func:`connectors.export.as_text`); numbers stay
numbers. GeoJSON is JSON, so its values are written as they are.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from alerts.geojson import feature, feature_collection, point
from connectors.export import as_text

FORMATS = ("csv", "geojson", "xlsx")
COLUMNS = ("account_id", "rep_id", "rep_source", "district", "segment", "potential", "potential_as_of", "lat", "lon")
PROPOSAL_COLUMNS = ("new_rep_id", "proposal_id")
MIRROR = "known_accounts"


@dataclass(frozen=True)
class Owner:
    """An account's owner in the mirror (``alerts.store.KnownOwner`` fits)."""

    rep_id: str | None
    closed: bool = False


@dataclass
class Alignment:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]  # sorted by account id; values are str, float or None
    notes: list[str] = field(default_factory=list)


def build_alignment(
    owners: Mapping[str, Any],
    proposals: Iterable[Mapping[str, Any]],
    *,
    chosen: Sequence[Mapping[str, Any]] | None = None,
    state_time: str | None = None,
) -> Alignment:
    """The alignment from the mirror's `owners` (account id -> an object with ``rep_id`` and
    ``closed``) and stored proposal payloads, newest first (`proposals`); with `chosen`
    (proposal payloads, newest first) the new rep of each account they move. Pure.

    >>> result = build_alignment(
    ...     {"a1": Owner("A"), "a2": Owner("B"), "a3": Owner("A", closed=True)},
    ...     [{"proposal_id": "p1", "accounts_as_of": "2025-03",
    ...       "accounts": [{"account_id": "a1", "lat": 52.5, "lon": 13.4, "rep_id": "A", "potential": 10.0}],
    ...       "reps": [{"rep_id": "A", "district": "Nord"}],
    ...       "moves": [{"account_id": "a1", "from_rep": "A", "to_rep": "B"}]}],
    ...     chosen=[{"proposal_id": "p1", "moves": [{"account_id": "a1", "from_rep": "A", "to_rep": "B"}]}])
    >>> [(r["account_id"], r["rep_id"], r["district"], r["potential"], r["new_rep_id"]) for r in result.rows]
    [('a1', 'A', 'Nord', 10.0, 'B'), ('a2', 'B', None, None, None)]
    """
    figures: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}  # account -> (row, its proposal)
    districts: dict[str, str | None] = {}
    for payload in proposals:
        for row in payload.get("accounts") or ():
            if row.get("account_id") is not None:
                figures.setdefault(row["account_id"], (row, payload))
        for rep in payload.get("reps") or ():
            if rep.get("rep_id") is not None:
                districts.setdefault(rep["rep_id"], rep.get("district") or None)

    moves: dict[str, tuple[Mapping[str, Any], str]] = {}
    for payload in chosen or ():
        for move in payload.get("moves") or ():
            moves.setdefault(move["account_id"], (move, payload.get("proposal_id") or ""))

    rows: dict[str, dict[str, Any]] = {}
    closed, not_mirrored, stale = [], [], []
    for account_id, owner in owners.items():
        if owner.closed:
            closed.append(account_id)
            continue
        rows[account_id] = {"account_id": account_id, "rep_id": owner.rep_id, "rep_source": MIRROR}
    for account_id, (row, payload) in figures.items():
        if account_id not in rows and account_id not in owners:
            not_mirrored.append(account_id)
            rows[account_id] = {
                "account_id": account_id,
                "rep_id": row.get("rep_id"),
                "rep_source": f"proposal {payload.get('proposal_id')}",
            }
    for account_id, (move, proposal_id) in moves.items():
        if account_id not in rows and account_id not in owners:
            not_mirrored.append(account_id)
            rows[account_id] = {
                "account_id": account_id,
                "rep_id": move.get("from_rep"),
                "rep_source": f"proposal {proposal_id}",
            }
        elif account_id in rows and rows[account_id]["rep_id"] != move.get("from_rep"):
            stale.append(account_id)

    unfigured = []
    for account_id, out in rows.items():
        row, payload = figures.get(account_id, ({}, {}))
        if not row:
            unfigured.append(account_id)
        as_of = payload.get("accounts_as_of") or (payload.get("event_time") or "")[:10] or None
        out.update(
            district=districts.get(out["rep_id"]) if out["rep_id"] is not None else None,
            segment=row.get("segment"),
            potential=_number(row.get("potential")),
            potential_as_of=as_of if row else None,
            lat=_number(row.get("lat")),
            lon=_number(row.get("lon")),
        )
        if chosen is not None:
            chosen_move = moves.get(account_id)
            out.update(
                new_rep_id=chosen_move[0].get("to_rep") if chosen_move else None,
                proposal_id=chosen_move[1] if chosen_move else None,
            )

    columns = COLUMNS + (PROPOSAL_COLUMNS if chosen is not None else ())
    ordered = [{c: rows[a].get(c) for c in columns} for a in sorted(rows)]
    notes = _notes(owners, closed, not_mirrored, unfigured, stale, state_time, chosen)
    return Alignment(columns, ordered, notes)


def _notes(
    owners: Mapping[str, Any],
    closed: list[str],
    not_mirrored: list[str],
    unfigured: list[str],
    stale: list[str],
    state_time: str | None,
    chosen: Sequence[Mapping[str, Any]] | None,
) -> list[str]:
    mirrored = len(owners) - len(closed)
    if not owners and not not_mirrored:
        return [
            "the store knows no account: its owner mirror (known_accounts) is empty and no stored proposal lists "
            "accounts (is a worker writing to this TERRITORY_DB_URL?)"
        ]
    notes = [
        f"{_count(mirrored, 'account')} from the store's owner mirror (known_accounts, as the worker last "
        f"reported them{f'; its data clock at {state_time}' if state_time else ''})"
    ]
    if not owners:
        notes.append(
            "the owner mirror is empty: no worker has mirrored its state into this store, so the alignment is "
            "only what stored proposals list, with their owners at the time"
        )
    if not_mirrored:
        notes.append(
            f"{_count(len(not_mirrored), 'account')} not in the mirror ({_some(not_mirrored)}): owner from proposal "
            "rows (rep_source names the proposal), which may be out of date"
        )
    if unfigured:
        notes.append(
            f"{_count(len(unfigured), 'account')} without figures ({_some(unfigured)}): no stored proposal lists "
            "it, so potential, lat and lon are empty"
        )
    if closed:
        notes.append(f"{_count(len(closed), 'closed account')} left out")
    if stale:
        notes.append(
            f"{_count(len(stale), 'move')} of the proposal no longer start from the account's owner "
            f"({_some(stale)}): an approval would refuse them as stale"
        )
    if chosen is not None and not any(p.get("moves") for p in chosen):
        notes.append("the proposal moves no account: new_rep_id is empty throughout")
    notes.append(
        "potential, lat and lon: the newest stored proposal whose account rows list the account (potential_as_of: "
        "the month they count); district: the rep's district in the newest proposal's rep rows"
    )
    notes.append(
        "names are not stored (the worker keeps only a keyed hash of each name), so there is no name column; "
        "segment: from the same account rows (rows of proposals made before they carried it have none)"
    )
    return notes


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])  # quoted: ids may hold commas
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --------------------------------------------------------------------------- writing


def _cell(value: Any) -> Any:
    """A spreadsheet cell: text neutralised, numbers as numbers, None empty."""
    return as_text(value) if isinstance(value, str) else value


def csv_text(alignment: Alignment) -> str:
    """The CSV (header, one row per account, CRLF line ends), neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(alignment.columns)
    for row in alignment.rows:
        writer.writerow(["" if row[c] is None else _cell(row[c]) for c in alignment.columns])
    return buffer.getvalue()


def geojson_document(alignment: Alignment) -> dict[str, Any]:
    """A FeatureCollection of one Point per account (null geometry when its place is unknown),
    the row's values as properties, the notes as a foreign member."""
    return feature_collection(
        (feature(point(row["lat"], row["lon"]), {"kind": "account", **row}) for row in alignment.rows),
        notes=alignment.notes,
    )


def write(path: Path, format: str, alignment: Alignment) -> None:
    """Write `alignment` as `format` to `path`, atomically (complete or not at all). CSV is
    UTF-8 with a BOM, so spreadsheets read non-Latin letters right."""
    if format not in FORMATS:
        raise ValueError(f"format must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {format!r}")
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        if format == "csv":
            temporary.write_text(csv_text(alignment), encoding="utf-8-sig", newline="")
        elif format == "geojson":
            text = json.dumps(geojson_document(alignment), ensure_ascii=False, allow_nan=False, indent=1)
            temporary.write_text(text + "\n", encoding="utf-8")
        else:
            _write_xlsx(temporary, alignment)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_xlsx(path: Path, alignment: Alignment) -> None:
    import pandas as pd

    table = pd.DataFrame(
        [[_cell(row[c]) for c in alignment.columns] for row in alignment.rows],
        columns=list(alignment.columns),
        dtype=object,
    )
    notes = pd.DataFrame({"note": [_cell(note) for note in alignment.notes]}, dtype=object)
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        table.to_excel(book, sheet_name="alignment", index=False)
        notes.to_excel(book, sheet_name="notes", index=False, header=False)
