"""Dashboard fixtures: the API app over httpx's ASGI transport against the session's Redis,
one cookie jar per person (``signed_in("admin")``, ``signed_in(key)``), and helpers that read
a page's CSRF token and post its forms."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
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
from tests.api.conftest import ADMIN_TOKEN, api_settings

BASE = "http://dash.test"
Browser = Callable[..., Awaitable[httpx.AsyncClient]]
MakeKey = Callable[..., Awaitable[str]]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard_settings(
    redis_url: str, key_prefix: str, data_dir: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {"dashboard_signin_rate_per_s": 1000, "dashboard_refresh_seconds": 0.2}
    return api_settings(redis_url, key_prefix, data_dir, **{**values, **overrides})


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app on ``settings`` (its lifespan running)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return dashboard_settings(redis_url, key_prefix, tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
def api(app: Starlette) -> ApiServices:
    services: ApiServices = app.state.services
    return services


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, secret: str, next_url: str = "") -> httpx.Response:
    form = await client.get("/dashboard/login")
    assert form.status_code == 200, form.text
    data = {"csrf_token": csrf_of(form.text), "secret": secret, "next": next_url}
    return await client.post("/dashboard/login", data=data)


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    """Load ``page`` (for its CSRF token), then POST ``fields`` to ``action``."""
    shown = await client.get(page)
    assert shown.status_code in (200, 201), shown.text
    return await client.post(action, data={"csrf_token": csrf_of(shown.text), **fields})


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[Browser]:
    """``await browser()`` is a fresh cookie jar; ``await browser(secret)`` one signed in."""
    async with AsyncExitStack() as stack:

        async def make(secret: str | None = None, base_url: str = BASE) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=base_url)
            )
            if secret is not None:
                reply = await sign_in(client, ADMIN_TOKEN if secret == "admin" else secret)
                assert reply.status_code == 303, reply.text
            return client

        yield make


@pytest.fixture
async def site(app: Starlette) -> AsyncIterator[str]:
    """The app behind a real uvicorn (its lifespan already run by the ``app`` fixture)."""
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
async def make_key(api: ApiServices) -> MakeKey:
    """A tenant's API key, made in the store: ``await make_key("acme", "pro")``."""

    async def make(tenant: str = "acme", plan: str = "pro") -> str:
        _, text = await api.api_keys.create(tenant, plan)
        return text

    return make
