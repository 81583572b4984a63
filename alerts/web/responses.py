"""How the review server answers: HTML pages from the templates (with a per-response
Content-Security-Policy), JSON errors, and :class:`Refused` to answer with one at once."""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from alerts.web.keys import ENV


def html_page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page with a Content-Security-Policy: scripts only with this response's nonce,
    requests, style sheets and pictures only from this server (or inline: the report embeds
    its pictures)."""
    nonce = secrets.token_urlsafe(16)
    html = request.app[ENV].get_template(template).render(nonce=nonce, **context)
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return web.Response(text=html, content_type="text/html", status=status, headers={"Content-Security-Policy": policy})


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class Refused(Exception):
    """Raised by a handler's helper to answer at once with `response` (a JSON error)."""

    def __init__(self, response: web.Response):
        super().__init__(response.text)
        self.response = response


async def by_and_comment(request: web.Request) -> tuple[object, object]:
    """The ``by`` and ``comment`` members of a decision's or a restore's JSON body, as sent
    (each caller checks them by its own rules); 400 for a body that is not JSON."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Refused(json_error(400, 'the body must be JSON: {"by": "...", "comment": "..."}')) from None
    if not isinstance(body, dict):
        body = {}
    return body.get("by"), body.get("comment")
