"""The app's frame: problem+json for Starlette's own errors, correlation ids, admin keys, auth."""

from __future__ import annotations

import httpx
import structlog

from tests.api.conftest import MakeKey, admin, assert_problem, bearer


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
