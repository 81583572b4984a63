"""The map's static files, served by the review server itself: Leaflet from the
XStatic-Leaflet package and the page's own script (alerts/static). Nothing comes from a CDN
or a tile server, so the page works without internet access."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import xstatic.pkg.leaflet as leaflet
from aiohttp import web

LEAFLET_DIR = Path(leaflet.BASE_DIR)
#: What the page may load of Leaflet's package (no source maps, nothing else).
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png",
                 "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png")  # fmt: skip
OWN_FILES = ("review-map.js", "alignment.js", "alignment.css")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _file(path: Path) -> web.Response:
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


async def leaflet_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in LEAFLET_FILES:
        raise web.HTTPNotFound()
    return _file(LEAFLET_DIR / name)


async def own_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in OWN_FILES:
        raise web.HTTPNotFound()
    with resources.as_file(resources.files("alerts").joinpath("static", name)) as path:
        return _file(path)


def register_map_files(app: web.Application) -> None:
    app.router.add_get("/static/leaflet/{name:.+}", leaflet_file)
    app.router.add_get("/static/{name}", own_file)
