"""API fixtures: the app over httpx's ASGI transport, its lifespan run by asgi-lifespan, against
the session's real Redis; an admin token and a helper that issues tenant keys."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from jobrunner.api import create_app
from jobrunner.api.server import embedded_server, serve_until_cancelled
from jobrunner.api.services import ApiServices
from jobrunner.embedded import free_port
from jobrunner.settings import Settings
from tests.conftest import make_settings

ADMIN_TOKEN = "test-admin-token-0123456789"
MakeKey = Callable[..., Awaitable[str]]


def api_settings(redis_url: str, key_prefix: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"admin_token": ADMIN_TOKEN, "stream_heartbeat_seconds": 0.5}
    return make_settings(redis_url, key_prefix, data_dir, **{**values, **overrides})


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return api_settings(redis_url, key_prefix, tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


@pytest.fixture
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The same app behind a real uvicorn on a free port (for streams: httpx's ASGI transport
    hands a response over only once it is complete)."""
    port = free_port()
    server = embedded_server(app, "127.0.0.1", port, lifespan="off")
    task = asyncio.create_task(serve_until_cancelled(server))
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def api(app: Starlette) -> ApiServices:
    services: ApiServices = app.state.services
    return services


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_key(client: httpx.AsyncClient) -> MakeKey:
    """Issue a tenant key through the admin route: ``await make_key("acme", plan="pro")``."""

    async def make(tenant: str = "acme", plan: str = "pro", **limits: Any) -> str:
        body = {"tenant": tenant, "plan": plan, **limits}
        reply = await client.post("/api/v1/admin/keys", json=body, headers=admin())
        assert reply.status_code == 201, reply.text
        key: str = reply.json()["api_key"]
        return key

    return make


def assert_problem(reply: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The reply is problem+json with this status (and code, the type's last segment)."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and isinstance(body["status"], int)
    assert body["type"].startswith("/problems/") and body["title"] and "detail" in body
    if code is not None:
        assert body["type"] == f"/problems/{code}", body
    return body
