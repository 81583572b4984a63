"""Alignment history: what each approved (and applied) alignment was, account by account.

The store keeps a snapshot of the whole alignment (account -> rep, the rep's district, the
account's segment) when a proposal is approved and when it is applied, in the transaction
that records the decision, and a ``baseline`` (the alignment before) at the first approval.
Full snapshots, not changes: any two compare directly and a restore reads one, at the cost of
one row per account per snapshot: about 120 bytes with its indexes on SQLite (measured with
20,000 accounts and 18-character ids: 4.6 MB for an approval's baseline and snapshot), so some
12 MB per snapshot at 100,000 accounts, two snapshots per approval; PostgreSQL's row overhead
adds to that (not measured). Writing both took 0.6 s at 20,000 accounts on SQLite.

What a snapshot holds, account by account (:func:`next_alignment`): the owner the worker last
reported (the store's owner mirror, ``known_accounts``; closed accounts are left out), unless
the previous snapshot holds a newer one on the data's clock (an approved move the worker has
not reported yet: the mirror follows an approval only once the worker applied its overrides),
then the proposal's moves. Accounts the mirror does not know keep their rep of the previous
snapshot, or of the proposal's account rows. District: the rep's district in the approved
proposal's rep rows, else the previous snapshot's; segment: the proposal's account rows, else
the previous snapshot's.

Restoring an old alignment is a proposal (mode ``restore``), reviewed and approved like any
other (:func:`restore_proposal`); nothing here changes an owner.

Pure functions; :class:`alerts.store.Store` reads and writes the tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

from core.records import Proposal, ProposedMove, RepLoad, stable_id
from core.shares import rep_shares

__all__ = [
    "Aligned",
    "Change",
    "RestoreFigures",
    "SnapshotRef",
    "diff",
    "next_alignment",
    "parse_ref",
    "restore_proposal",
]


@dataclass(frozen=True)
class Aligned:
    """An account in an alignment: its rep (None: none), when it got that rep on the data's
    clock (None: unknown), the rep's district and the account's segment."""

    rep_id: str | None
    rep_at: str | None = None
    district: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class Change:
    """An account whose rep differs between two alignments. ``kind``: ``moved``, ``added``
    (only in the second: ``from_rep`` None) or ``removed`` (only in the first: ``to_rep`` None)."""

    account_id: str
    from_rep: str | None
    to_rep: str | None
    kind: str = "moved"


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _newer(moment: str | None, than: str | None) -> bool:
    """`moment` is strictly later than `than` (an unknown time is older than any)."""
    if moment is None:
        return False
    return than is None or _moment(moment) > _moment(than)


def next_alignment(
    previous: Mapping[str, Aligned] | None,
    mirror: Mapping[str, Any],
    *,
    account_rows: Iterable[Mapping[str, Any]] = (),
    districts: Mapping[str, str | None] | None = None,
    moves: Iterable[tuple[str, str]] = (),
    moved_at: str | None = None,
) -> dict[str, Aligned]:
    """The alignment after `moves` (account id, new rep), dated `moved_at` on the data's clock.

    `previous`: the last snapshot; `mirror`: account id -> an owner with ``rep_id``, ``closed``
    and ``owner_at`` (``alerts.store.KnownOwner``); `account_rows`: the proposal's account rows
    (``account_id``, ``rep_id``, ``segment``); `districts`: rep -> district of its rep rows.

    >>> from alerts.store import KnownOwner
    >>> before = {"a1": Aligned("B", "2025-05-01T00:00:00+00:00", "Nord")}  # approved, not yet reported
    >>> after = next_alignment(
    ...     before,
    ...     {"a1": KnownOwner("A", False, "2025-04-01T00:00:00+00:00"), "a2": KnownOwner("A", False)},
    ...     moves=[("a2", "C")], moved_at="2025-06-01T00:00:00+00:00")
    >>> {a: (e.rep_id, e.district) for a, e in after.items()}
    {'a1': ('B', 'Nord'), 'a2': ('C', None)}
    """
    previous = previous or {}
    result: dict[str, Aligned] = {}
    segments: dict[str, str | None] = {}
    for row in account_rows:
        account_id = row.get("account_id")
        if not isinstance(account_id, str):
            continue
        segments.setdefault(account_id, row.get("segment") or None)
        if account_id not in mirror and account_id not in previous and account_id not in result:
            result[account_id] = Aligned(row.get("rep_id"))
    for account_id, entry in previous.items():
        if account_id not in mirror:
            result[account_id] = entry
    for account_id, owner in mirror.items():
        if owner.closed:
            result.pop(account_id, None)
            continue
        before = previous.get(account_id)
        if before is not None and before.rep_at is not None and not _newer(owner.owner_at, before.rep_at):
            result[account_id] = before  # the worker has not reported this (approved) rep yet
        else:
            result[account_id] = Aligned(owner.rep_id, owner.owner_at)
    for account_id, to_rep in moves:
        result[account_id] = Aligned(to_rep, moved_at)

    earlier_districts = {e.rep_id: e.district for e in previous.values() if e.rep_id is not None and e.district}
    districts = districts or {}
    out = {}
    for account_id in sorted(result):
        entry = result[account_id]
        rep = entry.rep_id
        district = (districts.get(rep) or earlier_districts.get(rep)) if rep is not None else None
        earlier = previous.get(account_id)
        segment = segments.get(account_id) or (earlier.segment if earlier is not None else None)
        out[account_id] = Aligned(rep, entry.rep_at, district, segment)
    return out


def diff(first: Mapping[str, Aligned], second: Mapping[str, Aligned]) -> list[Change]:
    """The accounts whose rep differs from `first` to `second`, by account id. Pure.

    >>> diff({"a": Aligned("A"), "b": Aligned("B")}, {"a": Aligned("C"), "b": Aligned("B"), "c": Aligned("A")})
    [Change(account_id='a', from_rep='A', to_rep='C', kind='moved'), Change(account_id='c', from_rep=None, to_rep='A', kind='added')]
    """
    changes = []
    for account_id in sorted(set(first) | set(second)):
        before, after = first.get(account_id), second.get(account_id)
        if before is None and after is not None:
            changes.append(Change(account_id, None, after.rep_id, "added"))
        elif after is None and before is not None:
            changes.append(Change(account_id, before.rep_id, None, "removed"))
        elif before is not None and after is not None and before.rep_id != after.rep_id:
            changes.append(Change(account_id, before.rep_id, after.rep_id))
    return changes


# --------------------------------------------------------------------------- naming a snapshot


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot named on the command line: by id, or the last one taken at or before `until`."""

    text: str
    snapshot_id: int | None = None
    until: datetime | None = None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_ref(text: str) -> SnapshotRef:
    """A snapshot id (digits) or a date: ``YYYY-MM-DD`` (through the end of that day, UTC) or an
    ISO 8601 time (UTC unless it has an offset). ValueError when it is neither.

    >>> parse_ref("12").snapshot_id, parse_ref("2026-03-02").until.isoformat()
    (12, '2026-03-02T23:59:59.999999+00:00')
    """
    value = text.strip()
    if value.isdigit():
        return SnapshotRef(text, snapshot_id=int(value))
    try:
        if _DATE.match(value):
            until = datetime.combine(date.fromisoformat(value), time.max, timezone.utc)
        else:
            until = datetime.fromisoformat(value.replace("Z", "+00:00"))
            until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a snapshot id nor a date (YYYY-MM-DD, or YYYY-MM-DDTHH:MM in UTC)"
        ) from None
    return SnapshotRef(text, until=until)


# --------------------------------------------------------------------------- restore

#: The proposal mode of a restore (core.records.PROPOSAL_MODES).
RESTORE_MODE = "restore"
_RESTORE_ID = re.compile(r"^prop-restore-(\d+)-[0-9a-f]+$")


def restored_snapshot(proposal_id: str) -> int | None:
    """The snapshot a restore proposal brings back, from its id (None for other proposals).

    >>> restored_snapshot("prop-restore-3-0123abcd"), restored_snapshot("prop-81a5")
    (3, None)
    """
    found = _RESTORE_ID.match(proposal_id)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class RestoreFigures:
    """What the store knows besides owners, for the review's figures: potential, lat and lon
    per account and home per rep (the newest stored proposal rows listing them), each rep's fair
    share and the band (the newest proposal's ``before`` rows and tolerance)."""

    potentials: Mapping[str, float]
    places: Mapping[str, tuple[float, float]]
    homes: Mapping[str, tuple[float, float]]
    fair_shares: Mapping[str, float]
    tolerance: float


def _loads(alignment: Mapping[str, Aligned], figures: RestoreFigures) -> tuple[tuple[RepLoad, ...], float]:
    """Per rep with accounts: its load against its fair share (``core.shares.rep_shares``, the
    known fair shares as capacities, equal ones unless every rep has one), and the largest
    |deviation|. Workload is not counted."""
    counts: dict[str, int] = {}
    for entry in alignment.values():
        if entry.rep_id is not None:
            counts[entry.rep_id] = counts.get(entry.rep_id, 0) + 1
    reps = sorted(counts)
    known = {rep: figures.fair_shares[rep] for rep in reps if figures.fair_shares.get(rep)}
    capacities = known if len(known) == len(reps) and known else {rep: 1.0 for rep in reps}
    shares = rep_shares(
        ((entry.rep_id, figures.potentials.get(account_id, 0.0)) for account_id, entry in alignment.items()),
        capacities,
    )
    rows = tuple(
        RepLoad(
            rep_id=rep,
            accounts=counts[rep],
            potential=round(shares[rep].amount, 6),
            share=shares[rep].share,
            fair_share=shares[rep].fair_share,
            deviation=shares[rep].deviation,
        )
        for rep in reps
    )
    return rows, max((abs(row.deviation) for row in rows), default=0.0)


def restore_proposal(
    snapshot_id: int,
    snapshot_label: str,
    snapshot: Mapping[str, Aligned],
    current: Mapping[str, Aligned],
    *,
    active: Mapping[str, bool],
    figures: RestoreFigures,
    state_time: str | None,
    requested_by: str,
    created_at: datetime,
) -> Proposal | None:
    """A proposal (mode ``restore``) whose moves give back
    the `snapshot`'s rep to every account whose `current` rep differs; None when none differs.

    Left out, and said in the notes: accounts gone since (closed or erased), accounts new since
    (they keep their rep), and moves to a rep who is not active now (an approval would refuse
    them as stale). ``event_time`` is the data's clock (`state_time`), and at least a second
    after the newest rep change of a moved account: the worker applies an approval's override
    only when it is newer than the account's owner, and a restore moves accounts back over
    changes an approval made. Pure.
    """
    from core.geo import haversine_km

    moves: list[ProposedMove] = []
    back: list[tuple[str, str]] = []  # (account, its rep then) of each move
    inactive: list[tuple[str, str]] = []
    gone: list[str] = []
    for account_id, then in snapshot.items():
        now = current.get(account_id)
        if now is None:
            gone.append(account_id)
            continue
        if then.rep_id is None or then.rep_id == now.rep_id:
            continue
        if active.get(then.rep_id) is False:
            inactive.append((account_id, then.rep_id))
            continue
        place, home = figures.places.get(account_id), figures.homes.get(then.rep_id)
        back.append((account_id, then.rep_id))
        moves.append(
            ProposedMove(
                account_id=account_id,
                from_rep=now.rep_id,
                to_rep=then.rep_id,
                potential=figures.potentials.get(account_id, 0.0),
                workload=0.0,
                distance_km=round(haversine_km(*home, *place), 3) if place and home else 0.0,
                reason=f"restore the alignment of {snapshot_label}: back to {then.rep_id}",
            )
        )
    if not moves:
        return None
    new_since = [a for a in current if a not in snapshot]
    changed_at = [current[account_id].rep_at for account_id, _ in back]
    newest_change = max((_moment(moment) for moment in changed_at if moment is not None), default=None)
    clock = [_moment(state_time)] if state_time else []
    if newest_change is not None:
        clock.append(newest_change + timedelta(seconds=1))
    event_time = max(clock) if clock else created_at
    after = dict(current)
    for account_id, rep_id in back:
        after[account_id] = Aligned(rep_id)
    before_rows, before_worst = _loads(current, figures)
    after_rows, after_worst = _loads(after, figures)
    notes = [
        f"restores alignment snapshot #{snapshot_id} ({snapshot_label}), asked for by {requested_by}: "
        "each account whose rep differs now goes back to its rep then",
        "shares: potential of the newest stored proposal rows listing each account (0 where none does); "
        "workload not counted",
    ]
    if gone:
        notes.append(f"{_count(len(gone), 'account')} of the snapshot closed or erased since, left out: {_some(gone)}")
    if new_since:
        notes.append(f"{_count(len(new_since), 'account')} new since the snapshot keep their rep: {_some(new_since)}")
    if inactive:
        reps = sorted({rep for _, rep in inactive})
        notes.append(
            f"{_count(len(inactive), 'account')} left where they are: their rep then is not active now "
            f"({', '.join(reps)}): {_some([a for a, _ in inactive])}"
        )
    return Proposal(
        # Named by the snapshot and the moves: the same restore asked for again is the same
        # proposal; the prefix names the snapshot (`restored_snapshot`).
        proposal_id=stable_id(
            f"prop-restore-{snapshot_id}",
            str(snapshot_id),
            *(f"{move.account_id}\x1e{move.from_rep}" for move in moves),
        ),
        created_at=created_at,
        event_time=event_time,
        trigger_signals=(),
        mode=RESTORE_MODE,
        status="feasible",
        moves=tuple(moves),
        before=before_rows,
        after=after_rows,
        imbalance_before=before_worst,
        imbalance_after=after_worst,
        seconds=0.0,
        tolerance=figures.tolerance,
        objective=float(len(moves)),
        objective_kind="moves",
        notes=tuple(notes),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])  # quoted: ids may hold commas
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
