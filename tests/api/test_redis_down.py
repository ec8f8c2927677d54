"""While Redis does not answer, the API says so at once: /readyz and every API route 503,
/healthz still 200. A throwaway redis-server of this test's own is frozen with SIGSTOP."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from jobrunner.api import create_app
from jobrunner.embedded import free_port
from tests.api.conftest import admin, api_settings, assert_problem
from tests.conftest import start_redis
from tests.polling import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = start_redis(tmp_path / "redis", port, persist=False)
    try:
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def frozen_client(
    own_redis: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    _, url = own_redis
    settings = api_settings(url, "down-test", tmp_path, redis_timeout_seconds=1.0)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        LifespanManager(app, shutdown_timeout=30),
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as client,
    ):
        yield client


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    reply = await request
    return reply, time.monotonic() - started


async def test_a_silent_redis_is_a_quick_503_and_recovery_is_seen(
    own_redis: tuple[subprocess.Popen[bytes], str], frozen_client: httpx.AsyncClient
) -> None:
    proc, _ = own_redis
    client = frozen_client
    new_key = {"tenant": "acme", "plan": "pro"}
    first = await client.post("/api/v1/admin/keys", json=new_key, headers=admin())
    assert first.status_code == 201

    proc.send_signal(signal.SIGSTOP)
    # before the probe has noticed, a request is still bounded by the call deadline
    early, took = await timed(client.post("/api/v1/admin/keys", json=new_key, headers=admin()))
    assert_problem(early, 503, "redis-unavailable")
    assert took < 4

    ready, took = await timed(client.get("/readyz"))
    assert_problem(ready, 503, "redis-unavailable")
    assert took < 2
    for method, path in [("POST", "/api/v1/admin/keys"), ("GET", "/api/v1/queues"),
                         ("GET", "/metrics"), ("GET", "/api/v1/workers")]:  # fmt: skip
        reply, took = await timed(client.request(method, path, json=new_key, headers=admin()))
        body = assert_problem(reply, 503, "redis-unavailable")
        assert reply.headers["Retry-After"] == "1"
        assert body["instance"] == path
        assert took < 0.5, (path, took)
    alive, took = await timed(client.get("/healthz"))
    assert alive.status_code == 200 and took < 0.5

    proc.send_signal(signal.SIGCONT)
    ready = await eventually(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
    assert ready.status_code == 200
    again = await eventually(
        lambda: client.post("/api/v1/admin/keys", json=new_key, headers=admin()),
        lambda r: r.status_code == 201,
    )
    assert again.status_code == 201
