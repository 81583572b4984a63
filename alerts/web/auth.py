"""Who may ask what: host names, tokens, the session cookie, the failed-authentication
limiter, and the middleware that applies them and sets the security headers.

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

import hashlib
import hmac
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from aiohttp import web

from alerts.web.keys import ALLOWED_HOSTS, LIMITER, SETTINGS, Handler
from alerts.web.responses import Refused, html_page, json_error
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings

SESSION_COOKIE = "territory_review"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/login", "/logout"})
#: Answered whatever the Host header: probes address a pod by its IP.
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
#: Client addresses whose failed token checks are remembered; beyond this the stalest go.
MAX_TRACKED_CLIENTS = 10_000


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

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ):
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Failures] = OrderedDict()  # least recently failed first

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may be checked again; 0 when it is not locked out."""
        entry = self._clients.get(client)
        return 0.0 if entry is None else max(0.0, entry.locked_until - self._clock.monotonic())

    def failed(self, client: str) -> None:
        """Count a failed token check by `client`; the last one allowed locks it out."""
        if self.max_failures <= 0:
            return
        now = self._clock.monotonic()
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


def auth_failed(request: web.Request) -> None:
    request.app[LIMITER].failed(_client(request))


def _needs_token(request: web.Request, settings: Settings) -> bool:
    """Whether answering `request` involves checking a token: every POST (approve, reject,
    login), and reads outside the open paths once a read token is set."""
    if request.method == "POST":
        return True
    return bool(settings.api_read_token) and request.path not in OPEN_PATHS


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def session_value(token: str) -> str:
    """What the login cookie holds: a keyed hash of the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"territory-review-session", hashlib.sha256).hexdigest()


def _may_read(request: web.Request, settings: Settings) -> bool:
    if not settings.api_read_token:
        return True
    tokens = [t for t in (settings.api_read_token, settings.api_token) if t]
    bearer = _bearer(request)
    if bearer is not None and any(same_token(bearer, t) for t in tokens):
        return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return any(same_token(cookie, session_value(t)) for t in tokens)


def _presented_credentials(request: web.Request) -> bool:
    return _bearer(request) is not None or SESSION_COOKIE in request.cookies


def write_refusal(request: web.Request, settings: Settings) -> web.Response | None:
    """None when the request carries the write token; else the response that refuses it."""
    if not settings.api_token:
        return json_error(403, "writes are disabled: no API token is configured (TERRITORY_API_TOKEN)")
    token = _bearer(request)
    if token is None:
        auth_failed(request)
        return json_error(
            401,
            "approve and reject need the API token: Authorization: Bearer <TERRITORY_API_TOKEN>",
            **{"WWW-Authenticate": 'Bearer realm="territory"'},
        )
    if not same_token(token, settings.api_token):
        auth_failed(request)
        return json_error(403, "the API token is not valid")
    return None


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
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
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return (name if colon and port.isdigit() else host).rstrip(".")


@web.middleware
async def headers_and_read_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Host header the server does not answer to gets 421; a client locked out for failed
    token checks gets 429 wherever a token would be checked; reads need the read token when
    one is configured; every answer is kept out of caches and frames (it may show account
    data and carries the page's script)."""
    settings = request.app[SETTINGS]
    allowed = request.app[ALLOWED_HOSTS]
    locked_for = request.app[LIMITER].retry_after(_client(request)) if _needs_token(request, settings) else 0.0
    if allowed is not None and request.path not in HEALTH_PATHS and _host_name(request.host) not in allowed:
        response: web.StreamResponse = json_error(
            421, "this server does not answer to that host name; add it to TERRITORY_ALLOWED_HOSTS"
        )
    elif locked_for > 0:
        response = json_error(
            429,
            "too many failed authentication attempts from this address; try again later",
            **{"Retry-After": str(math.ceil(locked_for))},
        )
    elif request.method in ("GET", "HEAD") and request.path not in OPEN_PATHS and not _may_read(request, settings):
        if _presented_credentials(request):  # a browser's first visit (no cookie yet) is no failure
            auth_failed(request)
        if request.path.startswith("/api/"):
            response = json_error(
                401,
                "reading needs the read token: Authorization: Bearer <TERRITORY_API_READ_TOKEN>",
                **{"WWW-Authenticate": 'Bearer realm="territory"'},
            )
        else:
            response = html_page(request, "review_login.html.j2", status=401, next=request.path_qs, failed=False)
    else:
        try:
            response = await handler(request)
        except Refused as refused:
            response = refused.response
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
