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
- ``POST /api/proposals/{id}/approve``, ``.../reject`` -- JSON body ``{"by", "comment"}``.
- ``GET /healthz`` -- liveness, never behind a token.
- ``GET /livez`` -- the process and its event loop answer: 200. No token.
- ``GET /readyz`` -- 200 when the broker connection works, the store answers ``SELECT 1``
  and every Faust agent runs; else 503 with a JSON body naming what is not ready, by
  category only (the driver's message can name hosts and users: it is logged). No token.
- ``GET /login``, ``POST /login``, ``POST /logout`` -- the read session cookie (HttpOnly,
  SameSite=Strict, Max-Age ``session_max_age_s``, Secure over https or ``cookie_secure``).

Host names. Only a Host header in ``allowed_hosts`` (default: loopback names and the bind
address) is answered, 421 otherwise, so a page of another site re-pointed at this
address by DNS (rebinding) cannot read it; the health endpoints answer any host.

Tokens. Writes need ``Authorization: Bearer <api_token>``: 401 without it, 403 with a
wrong one, and refused altogether while no token is configured. Because the write token
only ever travels in that header (the page's script sends it; the user types it once per
tab, it is kept in sessionStorage and never written into the HTML), another site cannot
make a browser approve anything: a cross-site form cannot set the header. Reads need
``api_read_token`` when one is set (the write token reads too): as a Bearer header, or,
for a browser, a session cookie from ``/login`` that holds a keyed hash of the token,
not the token.

Failed token checks (a missing or wrong write token, a wrong read token or session
cookie, a wrong token at ``/login``) are counted per client address: after
``auth_max_failures`` of them within ``auth_window_s`` seconds that address gets 429 with
``Retry-After`` on every request that needs a token, its tokens unchecked, until
``auth_window_s`` has passed (:class:`FailedAuthLimiter`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from mode import Service

from alerts import decisions
from alerts.decisions import DecisionError, Publisher
from alerts.schema import PROPOSAL_STATES, AuditRow, MoveRow, ProposalRow
from alerts.store import Store
from core.settings import Settings

__all__ = ["FailedAuthLimiter", "LOOPBACK", "ReviewServer", "register_review", "review_app"]

log = logging.getLogger("territory.review")

#: The review server's default address (Settings.bind_address overrides it).
LOOPBACK = "127.0.0.1"
#: The worker republishes approved-but-unpublished proposals this often ...
RETRY_INTERVAL_S = 30.0
#: ... once they have been approved at least this long (a fresh one is being published).
RETRY_AFTER_S = 60.0
#: Decided proposals listed on the index page.
RECENT_DECISIONS = 20
#: Rendered report sections kept (the charts take a second or two to draw).
SECTION_CACHE = 16
MAX_BY = 200        # alerts.schema: decided_by is String(200)
MAX_COMMENT = 2000  # the override event's reason is limited to 2000 characters by the contract
SESSION_COOKIE = "territory_review"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/login", "/logout"})
#: Answered whatever the Host header: probes address a pod by its IP.
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
#: How long the store may take to answer the readiness probe's SELECT 1.
STORE_PROBE_TIMEOUT_S = 3.0
#: How often the worker refreshes territory_worker_ready.
READY_INTERVAL_S = 5.0
#: Client addresses whose failed token checks are remembered; beyond this the stalest go.
MAX_TRACKED_CLIENTS = 10_000

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

STORE = web.AppKey("store", Store)
PUBLISHER = web.AppKey("publisher", object)
SETTINGS = web.AppKey("settings", Settings)
SECTIONS = web.AppKey("sections", OrderedDict)
ENV = web.AppKey("env", Environment)
READINESS = web.AppKey("readiness", object)  # async () -> dict[str, str]: what is not ready
LIMITER = web.AppKey("limiter", object)  # FailedAuthLimiter
ALLOWED_HOSTS = web.AppKey("allowed_hosts", object)  # frozenset[str] | None (any)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- rendering


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    moment = _utc(moment)
    return moment.isoformat() if moment else None


def _when(moment: datetime | str | None) -> str:
    """A UTC time as the pages show it (2026-11-24 14:02), from a datetime or the ISO text
    the JSON views hold."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=_when, pct=_pct)
    return env


def proposal_url(proposal_id: str) -> str:
    return f"/proposals/{quote(proposal_id, safe='')}"


def summary(row: ProposalRow) -> dict[str, Any]:
    """A proposal as the list endpoints show it: the row's columns, no payload."""
    return {
        "proposal_id": row.proposal_id,
        "status": row.status,
        "kind": "placement" if row.payload.get("mode") == "place" else "rebalance",
        "solver_status": row.solver_status,
        "move_count": row.move_count,
        "imbalance_before": row.imbalance_before,
        "imbalance_after": row.imbalance_after,
        "event_time": row.event_time,
        "stored_at": _iso(row.stored_at),
        "decided_at": _iso(row.decided_at),
        "decided_by": row.decided_by,
        "decision_comment": row.decision_comment,
        "applied_at": _iso(row.applied_at),
        "superseded_by": row.superseded_by,
        "url": proposal_url(row.proposal_id),
    }


def move_dict(move: MoveRow) -> dict[str, Any]:
    return {"account_id": move.account_id, "from_rep": move.from_rep, "to_rep": move.to_rep,
            "potential": move.potential, "workload": move.workload, "reason": move.reason}


def audit_dict(row: AuditRow) -> dict[str, Any]:
    return {"at": _iso(row.at), "actor": row.actor, "action": row.action, "comment": row.comment,
            "detail": row.detail}


def _section(cache: OrderedDict, row: ProposalRow, actions_html: str) -> str:
    """The report's section for this proposal, with the decision box under its headline.

    Drawing the map and charts takes a second or two, so sections are cached by the
    payload's digest (an erasure changes the payload and so the key) and the decision
    box, which is what changes when the proposal is decided.
    """
    from alerts.report import render_proposal_html  # pandas and matplotlib: loaded on the first page view

    digest = hashlib.sha256(json.dumps(row.payload, sort_keys=True, default=str).encode()).hexdigest()
    key = (row.proposal_id, digest, actions_html)
    if key not in cache:
        cache[key] = render_proposal_html(row.payload, actions_html=actions_html)
        while len(cache) > SECTION_CACHE:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


# --------------------------------------------------------------------------- access


@dataclass
class _Failures:
    """One client's failed token checks within the window, oldest first, and its lock."""

    times: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class FailedAuthLimiter:
    """Failed token checks per client address in a sliding window of `window_s` seconds.

    The `max_failures`-th failure within the window locks the address out for `window_s`
    seconds from then; the lock ends with a clean slate. Successes are not counted. At most
    `max_clients` addresses are remembered, the least recently failed forgotten first (its
    lock, if any, is the one that ends first), so a flood from many addresses cannot grow
    memory. Used from the event loop only, so it needs no lock. `max_failures` of 0 or less
    turns limiting off.
    """

    def __init__(self, max_failures: int, window_s: float, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_TRACKED_CLIENTS):
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Failures] = OrderedDict()  # least recently failed first

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may be checked again; 0 when it is not locked out."""
        entry = self._clients.get(client)
        return 0.0 if entry is None else max(0.0, entry.locked_until - self._clock())

    def failed(self, client: str) -> None:
        """Count a failed token check by `client`; the last one allowed locks it out."""
        if self.max_failures <= 0:
            return
        now = self._clock()
        entry = self._clients.pop(client, None) or _Failures()
        while entry.times and entry.times[0] <= now - self.window_s:
            entry.times.popleft()
        entry.times.append(now)
        if len(entry.times) >= self.max_failures:
            entry.locked_until = now + self.window_s
            entry.times.clear()
        self._clients[client] = entry
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def tracked(self) -> int:
        """Addresses remembered."""
        return len(self._clients)


def _client(request: web.Request) -> str:
    """The address failures are counted for: the TCP peer. Behind a reverse proxy that is
    the proxy (X-Forwarded-For is not trusted: any client could set it)."""
    return request.remote or "unknown"


def _auth_failed(request: web.Request) -> None:
    request.app[LIMITER].failed(_client(request))


def _needs_token(request: web.Request, settings: Settings) -> bool:
    """Whether answering `request` involves checking a token: every POST (approve, reject,
    login), and reads outside the open paths once a read token is set."""
    if request.method == "POST":
        return True
    return bool(settings.api_read_token) and request.path not in OPEN_PATHS


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _session_value(token: str) -> str:
    """What the login cookie holds: a keyed hash of the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"territory-review-session", hashlib.sha256).hexdigest()


def _may_read(request: web.Request, settings: Settings) -> bool:
    if not settings.api_read_token:
        return True
    tokens = [t for t in (settings.api_read_token, settings.api_token) if t]
    bearer = _bearer(request)
    if bearer is not None and any(_same(bearer, t) for t in tokens):
        return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return any(_same(cookie, _session_value(t)) for t in tokens)


def _presented_credentials(request: web.Request) -> bool:
    return _bearer(request) is not None or SESSION_COOKIE in request.cookies


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _write_refusal(request: web.Request, settings: Settings) -> web.Response | None:
    """None when the request carries the write token; else the response that refuses it."""
    if not settings.api_token:
        return _error(403, "writes are disabled: no API token is configured (TERRITORY_API_TOKEN)")
    token = _bearer(request)
    if token is None:
        _auth_failed(request)
        return _error(401, "approve and reject need the API token: Authorization: Bearer <TERRITORY_API_TOKEN>",
                      **{"WWW-Authenticate": 'Bearer realm="territory"'})
    if not _same(token, settings.api_token):
        _auth_failed(request)
        return _error(403, "the API token is not valid")
    return None


class _Refused(Exception):
    """Raised by a handler's helper to answer at once with `response` (a JSON error)."""

    def __init__(self, response: web.Response):
        super().__init__(response.text)
        self.response = response


def _allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names the server answers to; None: any ("*")."""
    names = {name.strip().lower().rstrip(".") for name in settings.allowed_hosts.split(",") if name.strip()}
    if "*" in names:
        return None
    if not names:
        names = {"localhost", "127.0.0.1", "::1"}
        if settings.bind_address not in ("", "0.0.0.0", "::"):
            names.add(settings.bind_address.lower())
    return frozenset(name.strip("[]") for name in names)


def _host_name(host: str) -> str:
    """The name of a Host header without its port: "[::1]:8088" -> "::1", "a.b:80" -> "a.b"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return (name if colon and port.isdigit() else host).rstrip(".")


@web.middleware
async def _headers_and_read_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Host header the server does not answer to gets 421; a client locked out for failed
    token checks gets 429 wherever a token would be checked; reads need the read token when
    one is configured; every answer is kept out of caches and frames (it may show account
    data and carries the page's script)."""
    settings = request.app[SETTINGS]
    allowed = request.app[ALLOWED_HOSTS]
    locked_for = request.app[LIMITER].retry_after(_client(request)) if _needs_token(request, settings) else 0.0
    if allowed is not None and request.path not in HEALTH_PATHS and _host_name(request.host) not in allowed:
        response: web.StreamResponse = _error(
            421, "this server does not answer to that host name; add it to TERRITORY_ALLOWED_HOSTS")
    elif locked_for > 0:
        response = _error(
            429, "too many failed authentication attempts from this address; try again later",
            **{"Retry-After": str(math.ceil(locked_for))})
    elif request.method in ("GET", "HEAD") and request.path not in OPEN_PATHS and not _may_read(request, settings):
        if _presented_credentials(request):  # a browser's first visit (no cookie yet) is no failure
            _auth_failed(request)
        if request.path.startswith("/api/"):
            response = _error(
                401, "reading needs the read token: Authorization: Bearer <TERRITORY_API_READ_TOKEN>",
                **{"WWW-Authenticate": 'Bearer realm="territory"'})
        else:
            response = _html(request, "review_login.html.j2", status=401, next=request.path_qs, failed=False)
    else:
        try:
            response = await handler(request)
        except _Refused as refused:
            response = refused.response
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _html(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page with a Content-Security-Policy: scripts only with this response's nonce,
    requests only to this server, pictures only inline (the report embeds them)."""
    nonce = secrets.token_urlsafe(16)
    html = request.app[ENV].get_template(template).render(nonce=nonce, **context)
    policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src 'self' data:; "
              "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return web.Response(text=html, content_type="text/html", status=status,
                        headers={"Content-Security-Policy": policy})



# --------------------------------------------------------------------------- handlers


def _proposal_id(request: web.Request) -> str:
    return request.match_info["proposal_id"]


async def _load(request: web.Request) -> ProposalRow:
    row = await asyncio.to_thread(request.app[STORE].proposal, _proposal_id(request))
    if row is None:
        raise _Refused(_error(404, f"no proposal {_proposal_id(request)!r}"))
    return row


async def index(request: web.Request) -> web.Response:
    store = request.app[STORE]
    rows = await asyncio.to_thread(store.proposals)
    pending = [summary(r) for r in rows if r.status == "pending"]
    decided = sorted((r for r in rows if r.decided_at is not None), key=lambda r: _utc(r.decided_at), reverse=True)
    return _html(request, "review_index.html.j2", pending=pending,
                 decided=[summary(r) for r in decided[:RECENT_DECISIONS]])


async def proposal_page(request: web.Request) -> web.Response:
    row = await _load(request)
    store = request.app[STORE]
    audit = await asyncio.to_thread(store.audit, row.proposal_id)
    view = {**summary(row), "superseded_url": proposal_url(row.superseded_by) if row.superseded_by else None}
    actions = request.app[ENV].get_template("review_actions.html.j2").render(
        p=view, api_url=f"/api/proposals/{quote(row.proposal_id, safe='')}")
    section = await asyncio.to_thread(_section, request.app[SECTIONS], row, actions)
    return _html(request, "review_proposal.html.j2", p=view, section=Markup(section),
                 audit=list(reversed(audit)))


async def list_proposals(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in PROPOSAL_STATES:
        return _error(400, f"status must be one of {', '.join(PROPOSAL_STATES)}, got {status!r}")
    rows = await asyncio.to_thread(request.app[STORE].proposals, status)
    return web.json_response({"proposals": [summary(r) for r in rows]})


async def get_proposal(request: web.Request) -> web.Response:
    row = await _load(request)
    store = request.app[STORE]
    moves = await asyncio.to_thread(store.moves, row.proposal_id)
    audit = await asyncio.to_thread(store.audit, row.proposal_id)
    return web.json_response({**summary(row), "moves": [move_dict(m) for m in moves],
                              "audit": [audit_dict(a) for a in reversed(audit)], "proposal": row.payload})


async def _decision_body(request: web.Request) -> tuple[str, str]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Refused(_error(400, 'the body must be JSON: {"by": "...", "comment": "..."}')) from None
    if not isinstance(body, dict):
        body = {}
    by, comment = body.get("by"), body.get("comment")
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
        raise _Refused(_error(400, "; ".join(problems)))
    return by.strip(), comment.strip()


async def _decide(request: web.Request, decision: str) -> web.Response:
    refusal = _write_refusal(request, request.app[SETTINGS])
    if refusal is not None:
        return refusal
    by, comment = await _decision_body(request)
    await _load(request)  # 404 for an unknown id; the decision itself says 409 for the rest
    store, publisher = request.app[STORE], request.app[PUBLISHER]
    try:
        if decision == "approve":
            only_valid = (await request.json()).get("only_valid") is True  # leave stale moves out
            outcome = await decisions.approve(store, publisher, _proposal_id(request), actor=by, comment=comment,
                                              only_valid_moves=only_valid)
        else:
            outcome = await decisions.reject(store, publisher, _proposal_id(request), actor=by, comment=comment)
    except DecisionError as error:
        return _error(409, str(error))
    body = outcome.to_dict()
    if outcome.ok:
        body["message"] = (f"Approved and published: {outcome.moves} moves on territory.assignments."
                           if outcome.status == "applied" else f"Proposal {outcome.status}.")
        return web.json_response(body)
    # The approval holds; only publishing failed. 202: accepted, the worker publishes it later.
    body["message"] = (f"Approved, but not published yet ({outcome.error}); the worker retries every "
                       f"{RETRY_INTERVAL_S:g} s, or run `territory proposals apply {outcome.proposal_id}`.")
    return web.json_response(body, status=202)


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "approve")


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def livez(request: web.Request) -> web.Response:
    """Answered by the event loop: the process and its loop are alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    check = request.app.get(READINESS) or (lambda: store_problems(request.app[STORE]))
    problems = await check()
    if problems:
        return web.json_response({"status": "not ready", "not_ready": problems}, status=503)
    return web.json_response({"status": "ready"})


def _select_one(store: Store) -> None:
    from sqlalchemy import text

    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar_one()


_last_logged: dict[str, str] = {}


def _not_ready(component: str, category: str, detail: str) -> dict[str, str]:
    """{component: category} for /readyz, which anyone may read: the driver's message can
    name hosts, users and paths, so it goes to the log (once while it stays the same)."""
    if _last_logged.get(component) != detail:
        _last_logged[component] = detail
        log.warning("not ready: %s: %s", component, detail[:1000])
    return {component: category}


async def store_problems(store: Store) -> dict[str, str]:
    """{"store": category} unless the store answers SELECT 1 in time."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, store), STORE_PROBE_TIMEOUT_S)
    except asyncio.TimeoutError:
        return _not_ready("store", "database timeout",
                          f"SELECT 1 did not answer within {STORE_PROBE_TIMEOUT_S:g} s")
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        from sqlalchemy.exc import OperationalError

        category = "database unreachable" if isinstance(error, OperationalError) else "database error"
        return _not_ready("store", category, f"SELECT 1 failed: {type(error).__name__}: {error}")
    _last_logged.pop("store", None)
    return {}


def broker_problems(app: Any) -> dict[str, str]:
    """{"broker": reason} unless the Faust consumer has an assignment and its Kafka client
    holds at least one live connection (aiokafka drops a connection as soon as it closes)."""
    try:
        if not app.consumer.assignment():
            return {"broker": "the consumer has no partitions assigned"}
        client = app.consumer._thread._consumer._client  # aiokafka AIOKafkaConsumer's client
        # The consumer runs in its own thread: copy its connection table, retrying a copy
        # that raced with a change.
        for _ in range(3):
            try:
                conns = list(client._conns.values())
                break
            except RuntimeError:
                conns = []
        if not any(conn.connected() for conn in conns):
            return {"broker": "no live connection to the Kafka broker"}
    except Exception as error:  # noqa: BLE001 - a consumer not started yet, or gone
        return _not_ready("broker", "consumer unavailable", f"{type(error).__name__}: {error}")
    return {}


def agent_problems(app: Any) -> dict[str, str]:
    """{"agent:<name>": reason} for every Faust agent without a running actor: none
    started, or an actor whose task ended or crashed (mode's Service.crashed)."""
    problems: dict[str, str] = {}
    for agent in list(app.agents.values()):
        name = f"agent:{agent.name}"
        actors = list(agent._actors)
        if not actors:
            problems[name] = "no actor running"
            continue
        for actor in actors:
            task = getattr(actor, "actor_task", None)
            if actor.crashed:
                problems.update(_not_ready(name, "crashed", repr(actor.crash_reason)))
            elif task is None or task.done():
                problems[name] = "its task has ended"
    return problems


def worker_readiness(app: Any, store: Store) -> Callable[[], Awaitable[dict[str, str]]]:
    """The readiness check of a Faust worker: broker, store and agents."""

    async def check() -> dict[str, str]:
        problems = broker_problems(app)
        problems.update(await store_problems(store))
        problems.update(agent_problems(app))
        return problems

    return check


async def login_form(request: web.Request) -> web.Response:
    return _html(request, "review_login.html.j2", next=_local_path(request.query.get("next")), failed=False)


async def login(request: web.Request) -> web.Response:
    """Trade the read (or write) token for a session cookie, so a browser can read pages."""
    settings = request.app[SETTINGS]
    form = await request.post()
    token, target = str(form.get("token", "")), _local_path(str(form.get("next", "/")))
    valid = [t for t in (settings.api_read_token, settings.api_token) if t and _same(token, t)]
    if not valid:
        _auth_failed(request)
        return _html(request, "review_login.html.j2", status=401, next=target, failed=True)
    response = web.Response(status=303, headers={"Location": target})
    # Secure over https, or when told (behind a TLS-terminating proxy the request looks like http).
    response.set_cookie(SESSION_COOKIE, _session_value(valid[0]), httponly=True, samesite="Strict", path="/",
                        max_age=int(settings.session_max_age_s), secure=request.secure or bool(settings.cookie_secure))
    return response


async def logout(request: web.Request) -> web.Response:
    """Drop the session cookie (POST: a link or a picture of another site cannot log one out)."""
    response = web.Response(status=303, headers={"Location": "/login"})
    settings = request.app[SETTINGS]
    response.set_cookie(SESSION_COOKIE, "", max_age=0, httponly=True, samesite="Strict", path="/",
                        secure=request.secure or bool(settings.cookie_secure))
    return response


def _local_path(target: str | None) -> str:
    r"""Only paths of this server as a login's destination (no open redirect). Browsers drop
    tabs and newlines from URLs ("/\t/evil" becomes "//evil") and read "\" as "/", so a
    target with either, or a scheme or host, goes to "/" instead."""
    if (not target or not target.startswith("/") or "\\" in target
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


def review_app(store: Store, publisher: Publisher, settings: Settings, *,
               clock: Callable[[], float] = time.monotonic) -> web.Application:
    """The review page and HTTP API over `store`; approvals publish through `publisher`.
    `clock` times the failed-authentication window (a test moves it)."""
    app = web.Application(middlewares=[_headers_and_read_access], client_max_size=64 * 1024)
    app[STORE], app[PUBLISHER], app[SETTINGS] = store, publisher, settings
    app[ENV] = _environment()
    app[SECTIONS] = OrderedDict()
    app[LIMITER] = FailedAuthLimiter(settings.auth_max_failures, settings.auth_window_s, clock=clock)
    app[ALLOWED_HOSTS] = _allowed_hosts(settings)
    app.router.add_get("/", index)
    app.router.add_get("/proposals/{proposal_id}", proposal_page)
    app.router.add_get("/api/proposals", list_proposals)
    app.router.add_get("/api/proposals/{proposal_id}", get_proposal)
    app.router.add_post("/api/proposals/{proposal_id}/approve", approve)
    app.router.add_post("/api/proposals/{proposal_id}/reject", reject)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    return app


# --------------------------------------------------------------------------- in the worker


class ReviewServer(Service):
    """The review application on ``address:port`` (loopback unless told otherwise), as a
    service of the Faust worker.

    Started after table recovery, on the worker's event loop (so approvals publish
    through the worker's own producer), and cleaned up when the worker stops. A port
    that is taken is logged and the worker runs on without the page: the pipeline
    matters more than its review page, and a retry timer still publishes approvals
    made with the command line.
    """

    def __init__(self, web_app: web.Application, port: int, address: str = LOOPBACK, **kwargs: Any):
        super().__init__(**kwargs)
        self.web_app, self.port, self.address = web_app, port, address
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        runner = web.AppRunner(self.web_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.address, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            log.error("review page not served: cannot listen on %s:%s (%s); set TERRITORY_WEB_PORT to a free port "
                      "or TERRITORY_BIND_ADDRESS to an address of this host", self.address, self.port, error)
            return
        self._runner = runner
        log.info("review page on http://%s:%s/", self.address, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def register_review(app: Any, store: Store, settings: Settings, metrics: Any = None) -> None:
    """Serve the review page from the Faust worker `app` (unless ``web_port`` is 0), and
    republish approved proposals whose publishing failed, every ``RETRY_INTERVAL_S``.
    With `metrics`, territory_worker_ready mirrors /readyz every ``READY_INTERVAL_S``."""
    publisher = decisions.FaustPublisher(app)
    readiness = worker_readiness(app, store)

    if metrics is not None:
        @app.timer(READY_INTERVAL_S, name="export-readiness")
        async def export_readiness() -> None:
            problems = await readiness()
            metrics.worker_ready.set(0 if problems else 1)

    # On the leader only: with several workers one of them republishes (the events carry
    # deterministic ids, so a rare double publish during a leader change is a duplicate).
    @app.timer(RETRY_INTERVAL_S, name="publish-approved-proposals", on_leader=True)
    async def publish_approved_proposals() -> None:
        try:
            outcomes = await decisions.apply_approved(store, publisher, older_than_s=RETRY_AFTER_S)
        except Exception:  # noqa: BLE001 - a store or broker hiccup must not stop the worker
            log.exception("retrying approved proposals failed; next try in %g s", RETRY_INTERVAL_S)
            return
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("proposal %s still not published: %s", outcome.proposal_id, outcome.error)

    if not settings.web_port:
        log.info("review page off (TERRITORY_WEB_PORT=0)")
        return
    web_app = review_app(store, publisher, settings)
    web_app[READINESS] = readiness
    port, address = settings.web_port, settings.bind_address

    class WorkerReviewServer(ReviewServer):
        """ReviewServer bound to this worker's application (Faust builds services from a class)."""

        def __init__(self, **kwargs: Any):
            super().__init__(web_app, port, address, **kwargs)

    app.service(WorkerReviewServer)
