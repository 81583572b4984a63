"""The alignment history on the review page: the snapshots (``GET /alignment``), what changed
between two of them (``GET /alignment/diff?from=A&to=B``, A and B an id or a date as for
`territory alignment diff`), their JSON twins (``GET /api/alignment``,
``GET /api/alignment/diff``), and ``POST /alignment/{snapshot}/restore``, which asks for a
snapshot back as a pending restore proposal.

The restore is :func:`alerts.restore.propose_restore`, as `territory alignment restore`; it is
a write, refused exactly as approve and reject are (:func:`alerts.web.auth.write_refusal`: the
write token in the Authorization header, which a cross-site form cannot set; failures count
towards the same lock-out). The body is JSON ``{"by", "comment"}`` (the page's script sends
it). It answers 303 to the proposal's review page; the proposal is published to
``territory.proposals`` through the application's publisher (in the worker: its own producer),
so the worker alerts it like any proposal. A publishing failure leaves it pending (the page
shows it) and is said in the 303's JSON body.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from alerts.history import Change
from alerts.restore import RestoreError, propose_restore, publish, rep_counts, requester, resolve
from alerts.schema import AlignmentSnapshotRow
from alerts.store import Store
from alerts.web.auth import write_refusal
from alerts.web.keys import PUBLISHER, SETTINGS, STORE
from alerts.web.responses import Refused, by_and_comment, html_page, json_error
from alerts.web.views import iso, proposal_url

log = logging.getLogger("territory.review")

#: How long a restore waits for the broker to take its proposal (it stays pending if not).
PUBLISH_TIMEOUT_S = 30.0
#: RestoreError kinds as HTTP statuses.
STATUS = {"invalid": 400, "unknown": 404, "unchanged": 409, "decided": 409, "pending": 409}


def restore_url(snapshot_id: int) -> str:
    return f"/alignment/{snapshot_id}/restore"


def snapshot_dict(snapshot: AlignmentSnapshotRow) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "taken_at": iso(snapshot.taken_at),
        "reason": snapshot.reason,
        "proposal_id": snapshot.proposal_id,
        "proposal_url": proposal_url(snapshot.proposal_id) if snapshot.proposal_id else None,
        "actor": snapshot.actor,
        "accounts": snapshot.accounts,
        "reps": snapshot.reps,
        "restore_url": restore_url(snapshot.id),
    }


def change_dict(change: Change) -> dict[str, Any]:
    return {"account_id": change.account_id, "from_rep": change.from_rep, "to_rep": change.to_rep, "kind": change.kind}


def _snapshot(store: Store, text: str | None, name: str) -> AlignmentSnapshotRow:
    """The snapshot the query argument `name` names; a JSON error naming it otherwise."""
    if text is None or not text.strip():
        raise Refused(json_error(400, f"{name}: a snapshot id or a date (YYYY-MM-DD) is required"))
    try:
        return resolve(store, text)
    except RestoreError as error:
        raise Refused(json_error(STATUS[error.kind], f"{name}: {error}")) from None


def _diff(store: Store, first: str | None, second: str | None) -> dict[str, Any]:
    a, b = _snapshot(store, first, "from"), _snapshot(store, second, "to")
    changes = store.alignment_diff(a.id, b.id)
    return {
        "from": snapshot_dict(a),
        "to": snapshot_dict(b),
        "changes": [change_dict(c) for c in changes],
        "reps": [
            {"rep_id": rep, "lost": lost, "gained": gained} for rep, (lost, gained) in rep_counts(changes).items()
        ],
    }


async def alignment_page(request: web.Request) -> web.Response:
    snapshots = await asyncio.to_thread(request.app[STORE].alignment_snapshots)
    return html_page(request, "alignment.html.j2", snapshots=[snapshot_dict(s) for s in snapshots])


async def alignment_diff_page(request: web.Request) -> web.Response:
    query = request.query
    view = await asyncio.to_thread(_diff, request.app[STORE], query.get("from"), query.get("to"))
    by_kind: dict[str, list[dict[str, Any]]] = {"moved": [], "added": [], "removed": []}
    for change in view["changes"]:
        by_kind[change["kind"]].append(change)
    return html_page(
        request,
        "alignment_diff.html.j2",
        diff=view,
        moved=by_kind["moved"],
        added=by_kind["added"],
        removed=by_kind["removed"],
    )


async def list_snapshots(request: web.Request) -> web.Response:
    snapshots = await asyncio.to_thread(request.app[STORE].alignment_snapshots)
    return web.json_response({"snapshots": [snapshot_dict(s) for s in snapshots]})


async def get_diff(request: web.Request) -> web.Response:
    query = request.query
    return web.json_response(await asyncio.to_thread(_diff, request.app[STORE], query.get("from"), query.get("to")))


async def _requester(request: web.Request) -> tuple[str, str]:
    by, comment = await by_and_comment(request)
    try:
        return requester(by if isinstance(by, str) else "", comment if isinstance(comment, str) else "")
    except RestoreError as error:
        raise Refused(json_error(400, str(error))) from None


def _propose(store: Store, text: str, by: str, comment: str) -> Any:
    snapshot = _snapshot(store, text, "snapshot")
    try:
        return propose_restore(store, snapshot, by=by, comment=comment)
    except RestoreError as error:
        if error.kind == "pending" and error.proposal_id:
            return error.proposal_id  # asked for and alerted before: its page
        raise Refused(json_error(STATUS[error.kind], str(error))) from None


async def restore(request: web.Request) -> web.Response:
    """Ask for the snapshot back as a pending restore proposal: 303 to its review page."""
    refusal = write_refusal(request, request.app[SETTINGS])
    if refusal is not None:
        return refusal
    by, comment = await _requester(request)
    made = await asyncio.to_thread(_propose, request.app[STORE], request.match_info["snapshot"], by, comment)
    if isinstance(made, str):
        url = proposal_url(made)
        body: dict[str, Any] = {"proposal_id": made, "url": url, "published": None, "message": "already pending"}
    else:
        proposal = made.proposal
        url = proposal_url(proposal.proposal_id)
        body = {
            "proposal_id": proposal.proposal_id,
            "url": url,
            "moves": len(proposal.moves),
            "notes": list(proposal.notes),
            "superseded": made.superseded,
            "published": True,
        }
        try:
            await asyncio.wait_for(publish(request.app[PUBLISHER], proposal), timeout=PUBLISH_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - any publishing failure: the proposal stands
            log.warning("restore proposal %s is pending, but publishing it failed: %s", proposal.proposal_id, error)
            body |= {"published": False, "error": f"stored and pending, but not alerted: publishing failed ({error})"}
    return web.json_response(body, status=303, headers={"Location": url})


def register_alignment(app: web.Application) -> None:
    app.router.add_get("/alignment", alignment_page)
    app.router.add_get("/alignment/diff", alignment_diff_page)
    app.router.add_post("/alignment/{snapshot}/restore", restore)
    app.router.add_get("/api/alignment", list_snapshots)
    app.router.add_get("/api/alignment/diff", get_diff)


__all__ = ["register_alignment", "restore_url", "snapshot_dict"]
