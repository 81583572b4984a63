"""The review page and HTTP API: where a manager approves or rejects a proposal.

:func:`review_app` builds the aiohttp application; the worker serves it on
``<bind_address>:<web_port>`` (:func:`register_review`). The address is ``127.0.0.1`` by
default, so nothing outside the machine reaches it unless a reverse proxy is put in front
on purpose; in a container it is set to ``0.0.0.0`` (TERRITORY_BIND_ADDRESS).

Routes:

- ``GET /`` -- pending proposals (and the latest decisions), linked to their pages.
- ``GET /proposals/{id}`` -- the review page: the proposal's section of the weekly report
  (map, shares, curve, moves, sales intelligence: :func:`alerts.report.render_proposal_html`)
  with an approve / reject form, and the audit trail.
- ``GET /api/proposals[?status=]``, ``GET /api/proposals/{id}`` -- JSON (the latter with
  the proposal, its moves and its audit trail).
- ``GET /api/proposals/{id}.geojson`` -- the proposal as a GeoJSON FeatureCollection
  (:func:`alerts.geojson.proposal_geojson`); registered before ``/api/proposals/{id}``.
- ``POST /api/proposals/{id}/approve``, ``.../reject`` -- JSON body ``{"by", "comment"}``.
- ``GET /alignment`` -- the alignment history: every snapshot, links to compare two, and a
  "Propose restoring this alignment" form per snapshot; ``GET /alignment/diff?from=A&to=B``
  -- the accounts whose rep changed from A to B and what each rep lost and gained;
  ``GET /api/alignment``, ``GET /api/alignment/diff`` -- the same as JSON.
- ``POST /alignment/{snapshot}/restore`` -- JSON body ``{"by", "comment"}``, behind the write
  token as approve and reject: stores a pending restore proposal (:mod:`alerts.restore`, as
  `territory alignment restore`), publishes it for the alert and answers 303 to its page.
- ``GET /healthz`` -- liveness, never behind a token.
- ``GET /livez`` -- the process and its event loop answer: 200. No token.
- ``GET /readyz`` -- 200 when the broker connection works, the store answers ``SELECT 1``
  and every Faust agent runs; else 503 with a JSON body naming what is not ready, by
  category only (the driver's message can name hosts and users: it is logged). No token.
- ``GET /login``, ``POST /login``, ``POST /logout`` -- the read session cookie (HttpOnly,
  SameSite=Strict, Max-Age ``session_max_age_s``, Secure over https or ``cookie_secure``).

Host names, tokens, the session cookie and the failed-authentication limit: see
:mod:`alerts.web.auth`.

Modules, one job each:

- `app`: :func:`review_app`, :class:`ReviewServer`, :func:`register_review` (the worker's side).
- `auth`: Host allow-list, bearer tokens, session cookie, :class:`FailedAuthLimiter`, and
  the middleware that applies them and sets the security headers.
- `pages`: the HTML pages (index, proposal page, login / logout).
- `api`: the JSON API (list and get proposals, approve and reject).
- `alignment`: the alignment history pages, their JSON twins and the restore form's POST.
- `readiness`: ``/healthz``, ``/livez``, ``/readyz`` and the worker's readiness checks
  (what they know of Faust's internals is in :mod:`monitor.worker_health`).
- `views`: proposals, moves and audit rows as pages and JSON show them; the templates.
- `responses`: HTML pages with their Content-Security-Policy, JSON errors.
- `keys`: what the application holds (``app[KEY]``).
"""

from __future__ import annotations

from alerts.web.app import LOOPBACK, ReviewServer, register_review, review_app
from alerts.web.auth import SESSION_COOKIE, FailedAuthLimiter
from alerts.web.keys import READINESS
from alerts.web.readiness import agent_problems, broker_problems, store_problems, worker_readiness
from alerts.web.views import summary

__all__ = [
    "FailedAuthLimiter",
    "LOOPBACK",
    "READINESS",
    "ReviewServer",
    "SESSION_COOKIE",
    "agent_problems",
    "broker_problems",
    "register_review",
    "review_app",
    "store_problems",
    "summary",
    "worker_readiness",
]
