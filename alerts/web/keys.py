"""What the review application holds (``app[KEY]``), shared by its handlers."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web
from jinja2 import Environment

from alerts.decisions import Publisher
from alerts.store import Store
from core.settings import Settings

if TYPE_CHECKING:
    from alerts.web.auth import FailedAuthLimiter  # which imports these keys

STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
SECTIONS = web.AppKey("sections", OrderedDict)
ENV = web.AppKey("env", Environment)
# Types that are no plain class (a protocol, a callable, a union) or not importable here: the
# key's type is given by its annotation.
PUBLISHER: web.AppKey[Publisher] = web.AppKey("publisher")
READINESS: web.AppKey[Callable[[], Awaitable[dict[str, str]]]] = web.AppKey("readiness")  # what is not ready
LIMITER: web.AppKey[FailedAuthLimiter] = web.AppKey("limiter")
ALLOWED_HOSTS: web.AppKey[frozenset[str] | None] = web.AppKey("allowed_hosts")  # None: any

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
