"""Asking for an old alignment back, and naming and comparing snapshots: the one code path of
`territory alignment` (territory/alignment_cli.py) and the review page's alignment history
(alerts/web/alignment.py).

:func:`resolve` finds the snapshot an id or a date names; :func:`propose_restore` stores the
pending restore proposal (:func:`alerts.history.restore_proposal` over what the store knows);
:func:`publish` sends it to ``territory.proposals``, where the worker alerts it like any proposal;
:func:`rep_counts` sums a diff per rep. Errors are :class:`RestoreError` with a ``kind`` the
callers map to an exit status or an HTTP status; their messages name no argument (the caller
prefixes ``SNAPSHOT:``, ``from:`` and the like).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable

from alerts.history import Change, RestoreFigures, parse_ref, restore_proposal
from alerts.store import CONTROL_CHARACTERS, MAX_ACTOR_LENGTH
from core import topics
from core.records import Proposal

if TYPE_CHECKING:
    from alerts.decisions import Publisher
    from alerts.schema import AlignmentSnapshotRow
    from alerts.store import Store

__all__ = [
    "MAX_COMMENT",
    "Restore",
    "RestoreError",
    "label",
    "propose_restore",
    "publish",
    "rep_counts",
    "requester",
    "resolve",
    "restore_figures",
]

#: A restore's comment goes into the audit log as a decision's does (alerts.web.api.MAX_COMMENT).
MAX_COMMENT = 2000


class RestoreError(ValueError):
    """What stops a restore or a look-up. ``kind``: ``invalid`` (a bad argument), ``unknown``
    (no such snapshot), ``unchanged`` (nothing to restore), ``pending`` (the same restore was
    asked for and alerted before and is pending: ``proposal_id``) or ``decided`` (the same
    restore was asked for before and is decided)."""

    def __init__(self, message: str, kind: str, *, proposal_id: str | None = None):
        super().__init__(message)
        self.kind, self.proposal_id = kind, proposal_id


def when(moment: datetime | None) -> str:
    """A snapshot's time as the commands and pages show it (UTC, to the minute)."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def label(snapshot: "AlignmentSnapshotRow") -> str:
    """``#3 of 2026-03-09 15:30 UTC (applied p2)``."""
    return f"#{snapshot.id} of {when(snapshot.taken_at)} UTC ({snapshot.reason})"


def _known(store: "Store") -> str:
    snapshots = store.alignment_snapshots()
    if not snapshots:
        return ": no alignment snapshot yet (the first approval takes one, and a baseline)"
    first, last = snapshots[0], snapshots[-1]
    return (
        f" (snapshots #{first.id} of {when(first.taken_at)} to #{last.id} of {when(last.taken_at)} UTC; "
        "see `territory alignment list`)"
    )


def resolve(store: "Store", text: str) -> "AlignmentSnapshotRow":
    """The snapshot `text` names: an id, or a date (the last snapshot taken on or before it).
    :class:`RestoreError` ``invalid`` when `text` is neither, ``unknown`` when there is none."""
    try:
        ref = parse_ref(text)
    except ValueError as error:
        raise RestoreError(str(error), "invalid") from None
    if ref.snapshot_id is not None:
        found = store.alignment_snapshot(ref.snapshot_id)
        if found is None:
            raise RestoreError(f"no alignment snapshot {ref.snapshot_id}{_known(store)}", "unknown")
        return found
    assert ref.until is not None
    found = store.alignment_snapshot_at(ref.until.astimezone(timezone.utc))
    if found is None:
        raise RestoreError(f"no alignment snapshot on or before {text}{_known(store)}", "unknown")
    return found


def rep_counts(changes: Iterable[Change]) -> dict[str, tuple[int, int]]:
    """Per rep (``(none)`` for no rep), how many accounts it lost and gained among the moved
    ones of a diff, by rep id.

    >>> rep_counts([Change("a", "A", "B"), Change("b", "A", "C"), Change("c", None, "A", "added")])
    {'A': (2, 0), 'B': (0, 1), 'C': (0, 1)}
    """
    counts: dict[str, list[int]] = {}
    for change in changes:
        if change.kind != "moved":
            continue
        counts.setdefault(change.from_rep or "(none)", [0, 0])[0] += 1
        counts.setdefault(change.to_rep or "(none)", [0, 0])[1] += 1
    return {rep: (lost, gained) for rep, (lost, gained) in sorted(counts.items())}


def requester(by: str, comment: str, *, by_name: str = "by", comment_name: str = "comment") -> tuple[str, str]:
    """Who asks for a restore and why, stripped; :class:`RestoreError` ``invalid`` naming the
    field (`by_name`, `comment_name`) when the name is missing or too long, the comment too
    long, or either holds control characters (they go into e-mail headers, alerts and logs)."""
    by, comment = by.strip(), comment.strip()
    if not by:
        raise RestoreError(
            f"{by_name}: who asks for the restore (a name) is required (kept in the audit log)", "invalid"
        )
    if len(by) > MAX_ACTOR_LENGTH:
        raise RestoreError(f"{by_name}: at most {MAX_ACTOR_LENGTH} characters", "invalid")
    if len(comment) > MAX_COMMENT:
        raise RestoreError(f"{comment_name}: at most {MAX_COMMENT} characters", "invalid")
    for name, value in ((by_name, by), (comment_name, comment)):
        if CONTROL_CHARACTERS.search(value):
            raise RestoreError(
                f"{name}: must not contain control characters (line breaks, tabs and the like)", "invalid"
            )
    return by, comment


def restore_figures(store: "Store") -> RestoreFigures:
    """Potentials, places, homes, fair shares and band from the stored proposals, newest first."""
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
        proposal = row.record()
        for account in proposal.accounts or ():
            account_id = account.get("account_id")
            if account_id is None or account_id in potentials:
                continue
            potentials[account_id] = float(account.get("potential") or 0.0)
            if account.get("lat") is not None and account.get("lon") is not None:
                places[account_id] = (float(account["lat"]), float(account["lon"]))
        for rep in proposal.reps or ():
            if rep.get("rep_id") not in homes and rep.get("home_lat") is not None and rep.get("home_lon") is not None:
                homes[rep["rep_id"]] = (float(rep["home_lat"]), float(rep["home_lon"]))
        if tolerance is None and proposal.mode != "restore" and proposal.before:
            tolerance = proposal.tolerance or Settings().tolerance
            fair = {load.rep_id: load.fair_share for load in proposal.before}
    return RestoreFigures(potentials, places, homes, fair, tolerance if tolerance is not None else Settings().tolerance)


@dataclass(frozen=True)
class Restore:
    """A stored, pending restore proposal: the proposal, the snapshot it brings back and the
    pending proposals it superseded (they touch the same reps)."""

    proposal: Proposal
    snapshot: "AlignmentSnapshotRow"
    superseded: list[str]


def propose_restore(store: "Store", snapshot: "AlignmentSnapshotRow", *, by: str, comment: str = "") -> Restore:
    """Store a pending proposal (mode ``restore``) whose moves give every account whose rep
    differs now its rep of `snapshot`; `by` and `comment` go into the audit log (check them with
    :func:`requester` first). Nothing changes an owner: it is approved like any proposal.

    :class:`RestoreError` ``unchanged`` when the current alignment already is the snapshot's,
    ``decided`` when the same restore (same snapshot, same moves) was asked for and decided,
    ``pending`` when it was asked for and alerted and is pending. Asked for again while pending
    and not yet alerted, it is that proposal again (:meth:`Store.save_proposal`)."""
    then = store.alignment_rows(snapshot.id)
    current = store.current_alignment()
    reps = sorted({e.rep_id for e in then.values() if e.rep_id is not None})
    proposal = restore_proposal(
        snapshot.id,
        f"{when(snapshot.taken_at)} UTC, {snapshot.reason}",
        then,
        current,
        active=store.known_reps(reps),
        figures=restore_figures(store),
        state_time=store.state_time(),
        requested_by=by,
        created_at=store.clock.now(),
    )
    if proposal is None:
        raise RestoreError(
            f"the current alignment already gives every account its rep of {label(snapshot)}", "unchanged"
        )
    stored = store.save_proposal(proposal, actor=by, comment=comment or None)
    row = store.proposal(proposal.proposal_id)
    assert row is not None
    if not stored and row.status == "pending":  # asked for and alerted before, still pending
        raise RestoreError(
            f"the same restore was asked for before: proposal {proposal.proposal_id} is pending "
            f"(`territory proposals show {proposal.proposal_id}`)",
            "pending",
            proposal_id=proposal.proposal_id,
        )
    if not stored or row.status != "pending":
        raise RestoreError(
            f"the same restore was asked for before: proposal {proposal.proposal_id} is {row.status} "
            f"(`territory proposals show {proposal.proposal_id}`)",
            "decided",
        )
    superseded = [r.proposal_id for r in store.proposals("superseded") if r.superseded_by == proposal.proposal_id]
    return Restore(proposal, snapshot, superseded)


async def publish(publisher: "Publisher", proposal: Proposal) -> None:
    """Send the restore proposal to ``territory.proposals``: the worker's alert stage stores it
    (already there) and alerts the reviewers as for any proposal."""
    await publisher.send(topics.PROPOSALS, proposal.proposal_id.encode(), proposal.to_json())
