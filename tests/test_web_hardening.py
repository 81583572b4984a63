"""The review server: the login's `next` stays on this site, other
Host headers are refused (DNS rebinding), the session cookie expires and can be dropped,
and /readyz names a category, not the driver's message."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.store import Store
from alerts.web import SESSION_COOKIE, review_app
from territory.broker import free_port
from core.settings import Settings
from tests.test_decisions import Recorder

READ_TOKEN = "read-token-for-hardening-tests"
WRITE_TOKEN = "write-token-for-hardening-tests"


def run(store: Store, settings: Settings, scenario: Callable[[TestClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with TestClient(TestServer(review_app(store, Recorder(), settings), host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    made.migrate()
    return made


def settings(**changes: Any) -> Settings:
    return Settings(api_token=WRITE_TOKEN, api_read_token=READ_TOKEN, web_port=0, **changes)


# --------------------------------------------------------------------------- login `next`


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "\t//evil.example",
        "/\\evil.example",
        "//evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        " /x",
        "/\r\n/evil.example",
        "/x\x00",
    ],
)
def test_login_next_accepts_only_paths_of_this_site(store: Store, target: str):
    async def scenario(client: TestClient) -> None:
        response = await client.post("/login", data={"token": READ_TOKEN, "next": target}, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/"
        form = await client.get("/login", params={"next": target})
        assert 'name="next" value="/"' in await form.text()

    run(store, settings(), scenario)


def test_login_next_keeps_a_path_with_its_query(store: Store):
    async def scenario(client: TestClient) -> None:
        response = await client.post(
            "/login", data={"token": READ_TOKEN, "next": "/proposals/p-1?x=1"}, allow_redirects=False
        )
        assert response.headers["Location"] == "/proposals/p-1?x=1"

    run(store, settings(), scenario)


# --------------------------------------------------------------------------- Host header


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8088", "127.0.0.1.evil.example", "localhost.evil"])
def test_a_foreign_host_header_is_refused_even_with_reads_open(store: Store, host: str):
    async def scenario(client: TestClient) -> None:
        for path in ("/", "/api/proposals", "/login"):
            response = await client.get(path, headers={"Host": host})
            assert response.status == 421, (path, response.status)
        # Probes address the pod by IP: health stays answerable.
        assert (await client.get("/livez", headers={"Host": host})).status == 200

    run(store, Settings(web_port=0), scenario)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8088", "localhost:8088", "LOCALHOST", "[::1]:8088"])
def test_loopback_host_headers_are_served(store: Store, host: str):
    async def scenario(client: TestClient) -> None:
        assert (await client.get("/api/proposals", headers={"Host": host})).status == 200

    run(store, Settings(web_port=0), scenario)


def test_allowed_hosts_setting_names_the_served_names(store: Store):
    configured = Settings.from_env({"TERRITORY_ALLOWED_HOSTS": "review.example.com, Territory.internal"}, web_port=0)

    async def scenario(client: TestClient) -> None:
        assert (await client.get("/api/proposals", headers={"Host": "review.example.com"})).status == 200
        assert (await client.get("/api/proposals", headers={"Host": "territory.internal:443"})).status == 200
        assert (await client.get("/api/proposals", headers={"Host": "localhost"})).status == 421

    run(store, configured, scenario)
    anything = Settings.from_env({"TERRITORY_ALLOWED_HOSTS": "*"}, web_port=0)

    async def any_host(client: TestClient) -> None:
        assert (await client.get("/api/proposals", headers={"Host": "whatever.example"})).status == 200

    run(store, anything, any_host)


# --------------------------------------------------------------------------- session cookie


def test_session_cookie_expires_is_strict_and_logout_drops_it(store: Store):
    async def scenario(client: TestClient) -> None:
        response = await client.post("/login", data={"token": READ_TOKEN}, allow_redirects=False)
        cookie = response.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert cookie["max-age"] == str(8 * 3600)
        assert not cookie["secure"]  # plain http and no setting: a browser would drop a Secure cookie
        assert (await client.get("/api/proposals")).status == 200  # the cookie reads

        logout = await client.post("/logout", allow_redirects=False)
        assert logout.status == 303 and logout.headers["Location"] == "/login"
        assert logout.cookies[SESSION_COOKIE]["max-age"] == "0"
        assert (await client.get("/api/proposals")).status == 401

    run(store, settings(), scenario)


def test_session_cookie_is_secure_behind_the_setting(store: Store):
    async def scenario(client: TestClient) -> None:
        response = await client.post("/login", data={"token": READ_TOKEN}, allow_redirects=False)
        assert response.cookies[SESSION_COOKIE]["secure"]
        assert response.cookies[SESSION_COOKIE]["max-age"] == "600"

    run(store, settings(cookie_secure=1, session_max_age_s=600), scenario)


# --------------------------------------------------------------------------- /readyz


def test_readyz_names_a_category_and_logs_the_driver_message(caplog):
    port = free_port()  # nothing listens there
    broken = Store(f"postgresql+psycopg://dbadmin:hunter2@127.0.0.1:{port}/territory?connect_timeout=2")

    async def scenario(client: TestClient) -> None:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["not_ready"] == {"store": "database unreachable"}
        text = await response.text()
        assert "dbadmin" not in text and "hunter2" not in text and str(port) not in text and "127.0.0.1" not in text

    with caplog.at_level(logging.WARNING, logger="territory.review"):
        run(broken, Settings(web_port=0), scenario)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "OperationalError" in logged and "hunter2" not in logged
