"""A proposal, its moves and its audit trail as the pages and the JSON API show them (the
JSON views, the templates and their filters), and the proposal a route names."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, overload
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from core.formatting import number, signed_number
from alerts.schema import AuditRow, MoveRow, ProposalRow
from alerts.web.keys import STORE
from alerts.web.responses import Refused, json_error
from core.formatting import percent
from core.records import proposal_kind

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: None) -> None: ...
def utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return moment.isoformat() if moment else None


def _when(moment: datetime | str | None) -> str:
    """A UTC time as the pages show it (2026-11-24 14:02), from a datetime or the ISO text
    the JSON views hold."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    moment = utc(moment)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, pct=partial(percent, digits=1, missing=""))  # 0.1234 -> "12.3%", None -> ""
    env.filters.update(number=number, signed_number=signed_number)  # 1234.5 -> "1,234" / "+1,234"
    return env


def proposal_url(proposal_id: str) -> str:
    return f"/proposals/{quote(proposal_id, safe='')}"


def summary(row: ProposalRow) -> dict[str, Any]:
    """A proposal as the list endpoints show it: the row's columns and its kind (no payload)."""
    return {
        "proposal_id": row.proposal_id,
        "status": row.status,
        "kind": proposal_kind(row.mode),
        "solver_status": row.solver_status,
        "move_count": row.move_count,
        "imbalance_before": row.imbalance_before,
        "imbalance_after": row.imbalance_after,
        "event_time": row.event_time,
        "stored_at": iso(row.stored_at),
        "decided_at": iso(row.decided_at),
        "decided_by": row.decided_by,
        "decision_comment": row.decision_comment,
        "applied_at": iso(row.applied_at),
        "superseded_by": row.superseded_by,
        "url": proposal_url(row.proposal_id),
    }


def move_dict(move: MoveRow) -> dict[str, Any]:
    return {
        "account_id": move.account_id,
        "from_rep": move.from_rep,
        "to_rep": move.to_rep,
        "potential": move.potential,
        "workload": move.workload,
        "reason": move.reason,
    }


def audit_dict(row: AuditRow) -> dict[str, Any]:
    return {"at": iso(row.at), "actor": row.actor, "action": row.action, "comment": row.comment, "detail": row.detail}


def route_proposal_id(request: web.Request) -> str:
    return request.match_info["proposal_id"]


async def load_proposal(request: web.Request) -> ProposalRow:
    """The proposal the route names; answers 404 (:class:`Refused`) for an unknown id."""
    row = await asyncio.to_thread(request.app[STORE].proposal, route_proposal_id(request))
    if row is None:
        raise Refused(json_error(404, f"no proposal {route_proposal_id(request)!r}"))
    return row
