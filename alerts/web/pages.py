"""The HTML pages: pending proposals (``/``), a proposal's review page with its approve /
reject form and audit trail (``/proposals/{id}``), and the login that trades a token for
the read session cookie (``/login``, ``/logout``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from datetime import datetime
from urllib.parse import quote, urlsplit

from aiohttp import web
from markupsafe import Markup

from alerts.quota_pace import KIND as QUOTA_PACE
from alerts.quota_pace import quota_pace_rows
from alerts.schema import ProposalRow
from alerts.web.auth import SESSION_COOKIE, auth_failed, same_token, session_value
from alerts.web.keys import ENV, SECTIONS, SETTINGS, STORE
from alerts.web.responses import html_page
from alerts.web.views import load_proposal, proposal_url, summary, utc
from core.records import Proposal

log = logging.getLogger("territory.review")

#: Decided proposals listed on the index page.
RECENT_DECISIONS = 20
#: Rendered report sections kept (the charts take a second or two to draw).
SECTION_CACHE = 16


def _section(cache: OrderedDict, row: ProposalRow, proposal: Proposal, actions_html: str) -> str:
    """The report's section for this proposal, with the decision box under its headline.

    Drawing the map and charts takes a second or two, so sections are cached by the
    payload's digest (an erasure changes the payload and so the key) and the decision
    box, which is what changes when the proposal is decided.
    """
    from alerts.report import render_proposal_html  # pandas and matplotlib: loaded on the first page view

    digest = hashlib.sha256(json.dumps(row.payload, sort_keys=True, default=str).encode()).hexdigest()
    key = (row.proposal_id, digest, actions_html)
    if key not in cache:
        cache[key] = render_proposal_html(proposal, actions_html=actions_html)
        while len(cache) > SECTION_CACHE:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def _decided_at(row: ProposalRow) -> datetime:
    assert row.decided_at is not None  # a decided proposal
    return utc(row.decided_at)


async def index(request: web.Request) -> web.Response:
    store = request.app[STORE]
    rows = await asyncio.to_thread(store.proposals)
    paces = quota_pace_rows(await asyncio.to_thread(store.latest_signals, QUOTA_PACE))
    pending = [summary(r) for r in rows if r.status == "pending"]
    decided = sorted((r for r in rows if r.decided_at is not None), key=_decided_at, reverse=True)
    return html_page(
        request,
        "review_index.html.j2",
        pending=pending,
        decided=[summary(r) for r in decided[:RECENT_DECISIONS]],
        quota_pace=paces,
    )


async def proposal_page(request: web.Request) -> web.Response:
    row = await load_proposal(request)
    store = request.app[STORE]
    audit = await asyncio.to_thread(store.audit, row.proposal_id)
    view = {**summary(row), "superseded_url": proposal_url(row.superseded_by) if row.superseded_by else None}
    actions = (
        request.app[ENV]
        .get_template("review_actions.html.j2")
        .render(p=view, api_url=f"/api/proposals/{quote(row.proposal_id, safe='')}")
    )
    proposal = row.record()
    section = await asyncio.to_thread(_section, request.app[SECTIONS], row, proposal, actions)
    map_data = await asyncio.to_thread(_map, proposal) if proposal.accounts else None
    return html_page(
        request, "review_proposal.html.j2", p=view, section=Markup(section), map=map_data, audit=list(reversed(audit))
    )


def _map(proposal: Proposal) -> dict | None:
    """The interactive map's data; None (no map, the report's picture stays) if it fails."""
    from alerts.map_view import map_view  # shapely and the boundaries: loaded on the first page view

    try:
        return map_view(proposal)
    except Exception:  # noqa: BLE001 - the page without its map beats no page
        log.warning("proposal %s: the map could not be built", proposal.proposal_id, exc_info=True)
        return None


async def login_form(request: web.Request) -> web.Response:
    return html_page(request, "review_login.html.j2", next=_local_path(request.query.get("next")), failed=False)


async def login(request: web.Request) -> web.Response:
    """Trade the read (or write) token for a session cookie, so a browser can read pages."""
    settings = request.app[SETTINGS]
    form = await request.post()
    token, target = str(form.get("token", "")), _local_path(str(form.get("next", "/")))
    valid = [t for t in (settings.api_read_token, settings.api_token) if t and same_token(token, t)]
    if not valid:
        auth_failed(request)
        return html_page(request, "review_login.html.j2", status=401, next=target, failed=True)
    response = web.Response(status=303, headers={"Location": target})
    # Secure over https, or when told (behind a TLS-terminating proxy the request looks like http).
    response.set_cookie(
        SESSION_COOKIE,
        session_value(valid[0]),
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int(settings.session_max_age_s),
        secure=request.secure or bool(settings.cookie_secure),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """Drop the session cookie (POST: a link or a picture of another site cannot log one out)."""
    response = web.Response(status=303, headers={"Location": "/login"})
    settings = request.app[SETTINGS]
    response.set_cookie(
        SESSION_COOKIE,
        "",
        max_age=0,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.secure or bool(settings.cookie_secure),
    )
    return response


def _local_path(target: str | None) -> str:
    r"""Only paths of this server as a login's destination (no open redirect). Browsers drop
    tabs and newlines from URLs ("/\t/evil" becomes "//evil") and read "\" as "/", so a
    target with either, or a scheme or host, goes to "/" instead."""
    if (
        not target
        or not target.startswith("/")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target
