"""The JSON API: ``GET /api/proposals[?status=]``, ``GET /api/proposals/{id}`` (the
proposal, its moves and its audit trail), ``GET /api/proposals/{id}.geojson`` (the proposal
as a GeoJSON FeatureCollection: :func:`alerts.geojson.proposal_geojson`), and ``POST /api/proposals/{id}/approve`` or
``.../reject`` with the body ``{"by", "comment"}`` (and ``"only_valid"`` to approve only
the moves that are still valid), behind the write token."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from alerts import decisions
from alerts.decisions import DecisionError
from alerts.geojson import MEDIA_TYPE as GEOJSON_MEDIA_TYPE
from alerts.geojson import proposal_geojson
from alerts.schema import PROPOSAL_STATES
from alerts.web.auth import write_refusal
from alerts.web.keys import PUBLISHER, SETTINGS, STORE
from alerts.web.responses import Refused, by_and_comment, json_error
from alerts.web.views import audit_dict, load_proposal, move_dict, route_proposal_id, summary

#: The worker republishes approved-but-unpublished proposals this often (alerts.web.app).
RETRY_INTERVAL_S = 30.0
MAX_BY = 200  # alerts.schema: decided_by is String(200)
MAX_COMMENT = 2000  # the override event's reason is limited to 2000 characters by the contract


async def list_proposals(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in PROPOSAL_STATES:
        return json_error(400, f"status must be one of {', '.join(PROPOSAL_STATES)}, got {status!r}")
    rows = await asyncio.to_thread(request.app[STORE].proposals, status)
    return web.json_response({"proposals": [summary(r) for r in rows]})


async def get_proposal(request: web.Request) -> web.Response:
    row = await load_proposal(request)
    store = request.app[STORE]
    moves = await asyncio.to_thread(store.moves, row.proposal_id)
    audit = await asyncio.to_thread(store.audit, row.proposal_id)
    return web.json_response(
        {
            **summary(row),
            "moves": [move_dict(m) for m in moves],
            "audit": [audit_dict(a) for a in reversed(audit)],
            "proposal": row.payload,
        }
    )


async def get_proposal_geojson(request: web.Request) -> web.Response:
    """The proposal as GeoJSON: accounts, moves as lines to the new rep's home, rep homes.
    Registered before ``/api/proposals/{proposal_id}``, which would otherwise take the
    ``.geojson`` suffix for part of the id."""
    row = await load_proposal(request)
    document = proposal_geojson(row.record())
    return web.json_response(
        document,
        content_type=GEOJSON_MEDIA_TYPE,
        dumps=lambda value: json.dumps(value, ensure_ascii=False, allow_nan=False),
    )


async def _decision_body(request: web.Request) -> tuple[str, str]:
    by, comment = await by_and_comment(request)
    problems = []
    if not isinstance(by, str) or not by.strip():
        problems.append("by: who decides (a name) is required")
    elif len(by.strip()) > MAX_BY:
        problems.append(f"by: at most {MAX_BY} characters")
    if not isinstance(comment, str) or not comment.strip():
        problems.append("comment: why (a reason for the audit log) is required")
    elif len(comment.strip()) > MAX_COMMENT:
        problems.append(f"comment: at most {MAX_COMMENT} characters")
    if problems:
        raise Refused(json_error(400, "; ".join(problems)))
    assert isinstance(by, str) and isinstance(comment, str)  # checked above
    return by.strip(), comment.strip()


async def _decide(request: web.Request, decision: str) -> web.Response:
    refusal = write_refusal(request, request.app[SETTINGS])
    if refusal is not None:
        return refusal
    by, comment = await _decision_body(request)
    await load_proposal(request)  # 404 for an unknown id; the decision itself says 409 for the rest
    store, publisher = request.app[STORE], request.app[PUBLISHER]
    try:
        if decision == "approve":
            only_valid = (await request.json()).get("only_valid") is True  # leave stale moves out
            outcome = await decisions.approve(
                store, publisher, route_proposal_id(request), actor=by, comment=comment, only_valid_moves=only_valid
            )
        else:
            outcome = await decisions.reject(store, publisher, route_proposal_id(request), actor=by, comment=comment)
    except DecisionError as error:
        return json_error(409, str(error))
    body = outcome.to_dict()
    if outcome.ok:
        body["message"] = (
            f"Approved and published: {outcome.moves} moves on territory.assignments."
            if outcome.status == "applied"
            else f"Proposal {outcome.status}."
        )
        return web.json_response(body)
    # The approval holds; only publishing failed. 202: accepted, the worker publishes it later.
    body["message"] = (
        f"Approved, but not published yet ({outcome.error}); the worker retries every "
        f"{RETRY_INTERVAL_S:g} s, or run `territory proposals apply {outcome.proposal_id}`."
    )
    return web.json_response(body, status=202)


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "approve")


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")
