"""The app's frame: problem+json for Starlette's own errors, correlation ids, admin keys, auth."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager

from jobrunner.api import create_app
from jobrunner.api.services import ApiServices
from jobrunner.embedded import free_port
from jobrunner.settings import Settings
from tests.api.conftest import MakeKey, admin, api_settings, assert_problem, bearer
from tests.conftest import start_redis


async def test_unknown_route_is_a_problem_with_a_correlation_id(client: httpx.AsyncClient) -> None:
    reply = await client.get("/nowhere", headers={"X-Correlation-Id": "abc-123"})
    body = assert_problem(reply, 404, "not-found")
    assert body["instance"] == "/nowhere"
    assert reply.headers["X-Correlation-Id"] == "abc-123"


async def test_a_correlation_id_is_made_when_none_or_a_bad_one_is_sent(
    client: httpx.AsyncClient,
) -> None:
    made = (await client.get("/nowhere")).headers["X-Correlation-Id"]
    bad = (await client.get("/nowhere", headers={"X-Correlation-Id": "a b"})).headers
    assert len(made) == 32 and bad["X-Correlation-Id"] not in ("a b", made)


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    reply = await client.put("/api/v1/admin/keys", headers=admin())
    assert_problem(reply, 405, "method-not-allowed")
    assert "GET" in reply.headers["allow"] and "POST" in reply.headers["allow"]


async def test_admin_keys_create_list_revoke(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/admin/keys",
        json={"tenant": "acme", "plan": "pro", "rate_limit_per_s": 7},
        headers=admin(),
    )
    assert created.status_code == 201
    body = created.json()
    assert body["api_key"].startswith("jr_") and body["tenant"] == "acme"
    assert body["rate_limit_per_s"] == 7 and body["monthly_quota"] == 100_000
    listed = (await client.get("/api/v1/admin/keys", headers=admin())).json()["items"]
    assert [k["key_id"] for k in listed] == [body["key_id"]]
    assert "api_key" not in listed[0] and body["api_key"] not in str(listed)
    gone = await client.delete(f"/api/v1/admin/keys/{body['key_id']}", headers=admin())
    assert gone.status_code == 204
    assert (await client.get("/api/v1/admin/keys", headers=admin())).json()["items"] == []
    again = await client.delete(f"/api/v1/admin/keys/{body['key_id']}", headers=admin())
    assert_problem(again, 404, "key-not-found")


async def test_admin_routes_want_the_admin_token(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    none = await client.get("/api/v1/admin/keys")
    assert_problem(none, 401, "unauthorized")
    assert none.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get("/api/v1/admin/keys", headers=bearer("nope"))
    assert_problem(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    tenant_key = await make_key()
    assert_problem(await client.get("/api/v1/admin/keys", headers=bearer(tenant_key)), 403)


async def test_key_creation_is_validated(client: httpx.AsyncClient) -> None:
    unknown_plan = await client.post(
        "/api/v1/admin/keys", json={"tenant": "acme", "plan": "gold"}, headers=admin()
    )
    assert assert_problem(unknown_plan, 422)["errors"][0]["loc"] == "plan"
    bad = await client.post("/api/v1/admin/keys", json={"tenant": "a b"}, headers=admin())
    locs = {e["loc"] for e in assert_problem(bad, 422)["errors"]}
    assert locs == {"tenant", "plan"}
    malformed = await client.post(
        "/api/v1/admin/keys",
        content=b"{nope",
        headers={**admin(), "content-type": "application/json"},
    )
    assert_problem(malformed, 400, "malformed-json")


async def test_access_log_carries_correlation_id_route_and_status(
    client: httpx.AsyncClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        await client.get("/api/v1/admin/keys", headers={**admin(), "X-Correlation-Id": "c-1"})
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["correlation_id"] == "c-1" and line["status"] == 200
    assert line["route"] == "/api/v1/admin/keys" and line["duration_ms"] >= 0


async def test_an_unexpected_error_is_a_logged_500_problem(
    client: httpx.AsyncClient, make_key: MakeKey, api: ApiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await make_key()

    async def broken(job_id: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(api.runner, "get", broken)
    with structlog.testing.capture_logs() as logs:
        reply = await client.get(f"/api/v1/jobs/{'a' * 32}", headers=bearer(key))
    body = assert_problem(reply, 500, "internal-error")
    assert "boom" not in body["detail"] and reply.headers["X-Correlation-Id"]
    assert any(e["event"] == "unhandled error" and e.get("exc_info") for e in logs)


async def test_writes_answer_503_quickly_while_redis_is_down(tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis(tmp_path / "redis", port, persist=False)
    url = f"redis://127.0.0.1:{port}/0"
    settings = api_settings(url, "down", tmp_path, redis_timeout_seconds=0.5)
    app = create_app(settings)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://down.test"
            ) as client,
        ):
            made = await client.post(
                "/api/v1/admin/keys", json={"tenant": "acme", "plan": "pro"}, headers=admin()
            )
            key = made.json()["api_key"]
            proc.terminate()
            proc.wait(10)
            started = time.monotonic()
            reply = await client.post(
                "/api/v1/jobs", json={"task": "demo.echo"}, headers=bearer(key)
            )
            assert_problem(reply, 503, "redis-unavailable")
            assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


async def test_an_app_owning_its_process_freezes_its_start_up_heap(settings: Settings) -> None:
    gc.unfreeze()
    try:
        async with LifespanManager(create_app(settings, freeze_gc=True)):
            assert gc.get_freeze_count() > 0  # full collections no longer walk these objects
    finally:
        gc.unfreeze()
    async with LifespanManager(create_app(settings)):  # embedded: the GC is the host's
        assert gc.get_freeze_count() == 0
