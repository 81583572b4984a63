"""What the review application holds (``app[KEY]``), shared by its handlers."""

from __future__ import annotations

from collections import OrderedDict
from typing import Awaitable, Callable

from aiohttp import web
from jinja2 import Environment

from alerts.store import Store
from core.settings import Settings

STORE = web.AppKey("store", Store)
PUBLISHER = web.AppKey("publisher", object)
SETTINGS = web.AppKey("settings", Settings)
SECTIONS = web.AppKey("sections", OrderedDict)
ENV = web.AppKey("env", Environment)
READINESS = web.AppKey("readiness", object)  # async () -> dict[str, str]: what is not ready
LIMITER = web.AppKey("limiter", object)  # FailedAuthLimiter
ALLOWED_HOSTS = web.AppKey("allowed_hosts", object)  # frozenset[str] | None (any)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
