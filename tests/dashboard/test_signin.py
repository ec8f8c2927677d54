"""Signing in and out: the session cookie's attributes, CSRF on every POST, who may sign in,
what signs a session out (revoked key, another admin token, a forged cookie), safe redirects
and the per-address attempt limit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from jobrunner.api.services import ApiServices
from jobrunner.dashboard.session import COOKIE
from jobrunner.dashboard.signin import safe_next
from tests.api.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import Browser, MakeKey, csrf_of, dashboard_settings, serving, sign_in

PAGES = ["/dashboard", "/dashboard/jobs", "/dashboard/tenants", "/dashboard/workers"]


def cookie_header(reply: httpx.Response) -> str:
    found = [v for k, v in reply.headers.multi_items() if k == "set-cookie" and COOKIE in v]
    assert found, "no session cookie set"
    return found[-1]


@pytest.mark.parametrize("page", PAGES)
async def test_every_page_wants_a_session(browser: Browser, page: str) -> None:
    anonymous = await browser()
    reply = await anonymous.get(page)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/dashboard/login?next=%2Fdashboard")


async def test_admin_signs_in_with_a_strict_httponly_cookie(browser: Browser) -> None:
    client = await browser()
    reply = await sign_in(client, ADMIN_TOKEN, next_url="/dashboard/jobs?status=failed")
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/jobs?status=failed"
    cookie = cookie_header(reply).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    assert "max-age=28800" in cookie and "secure" not in cookie  # plain HTTP here
    page = await client.get("/dashboard")
    assert page.status_code == 200 and "Workers" in page.text and "Sign out" in page.text
    assert ADMIN_TOKEN not in page.text and ADMIN_TOKEN not in cookie


async def test_the_cookie_is_secure_behind_tls(browser: Browser) -> None:
    client = await browser(base_url="https://dash.test")
    reply = await sign_in(client, ADMIN_TOKEN)
    assert reply.status_code == 303
    assert "secure" in cookie_header(reply).lower()


async def test_a_tenant_key_signs_in_read_only(browser: Browser, make_key: MakeKey) -> None:
    key = await make_key("acme", "pro")
    tenant = await browser(key)
    page = await tenant.get("/dashboard")
    assert page.status_code == 200 and "tenant acme" in page.text and "read-only" in page.text
    assert "/dashboard/workers" not in page.text
    refused = await tenant.get("/dashboard/workers")
    assert refused.status_code == 403 and "operators" in refused.text


async def test_wrong_secrets_are_refused(browser: Browser) -> None:
    client = await browser()
    for secret in ("nope", "jr_abc_def", "x" * 600):
        reply = await sign_in(client, secret)
        assert reply.status_code == 401 and "neither the admin token" in reply.text
    assert (await client.get("/dashboard")).status_code == 303


async def test_sign_in_needs_the_forms_csrf_token(browser: Browser) -> None:
    client = await browser()
    form = await client.get("/dashboard/login")
    token = csrf_of(form.text)
    no_token = await client.post("/dashboard/login", data={"secret": ADMIN_TOKEN})
    wrong = await client.post(
        "/dashboard/login", data={"secret": ADMIN_TOKEN, "csrf_token": "x" * 43}
    )
    assert no_token.status_code == 403 and wrong.status_code == 403
    other = await browser()  # a token from another visitor's form is not this visitor's
    stolen = await other.post("/dashboard/login", data={"secret": ADMIN_TOKEN, "csrf_token": token})
    assert stolen.status_code == 403
    assert (await client.get("/dashboard")).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
async def test_posts_from_another_site_are_refused(
    browser: Browser, headers: dict[str, str]
) -> None:
    client = await browser()
    token = csrf_of((await client.get("/dashboard/login")).text)
    reply = await client.post(
        "/dashboard/login", data={"secret": ADMIN_TOKEN, "csrf_token": token}, headers=headers
    )
    assert reply.status_code == 403 and "another site" in reply.text


async def test_sign_out_is_a_csrf_checked_post(browser: Browser) -> None:
    client = await browser("admin")
    assert (await client.get("/dashboard/logout")).status_code == 404  # only a POST signs out
    assert (await client.post("/dashboard/logout", data={})).status_code == 403
    assert (await client.get("/dashboard")).status_code == 200
    page = await client.get("/dashboard")
    reply = await client.post("/dashboard/logout", data={"csrf_token": csrf_of(page.text)})
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/login"
    assert "max-age=0" in cookie_header(reply).lower()
    assert (await client.get("/dashboard")).status_code == 303


async def test_signing_in_again_gets_a_new_csrf_token(browser: Browser) -> None:
    client = await browser()
    before = csrf_of((await client.get("/dashboard/login")).text)
    await sign_in(client, ADMIN_TOKEN)
    after = csrf_of((await client.get("/dashboard")).text)
    assert before != after


async def test_revoking_the_key_signs_its_sessions_out(browser: Browser, api: ApiServices) -> None:
    key, text = await api.api_keys.create("acme", "pro")
    tenant = await browser(text)
    assert (await tenant.get("/dashboard")).status_code == 200
    assert await api.api_keys.revoke(key.key_id)
    assert (await tenant.get("/dashboard")).status_code == 303
    assert (await tenant.get("/dashboard/overview/stream")).status_code == 303


async def test_a_forged_or_edited_cookie_is_anonymous(browser: Browser) -> None:
    client = await browser("admin")
    raw = client.cookies[COOKIE]
    client.cookies.set(COOKIE, raw[:-4] + "AAAA", domain="dash.test", path="/dashboard")
    assert (await client.get("/dashboard")).status_code == 303
    forged = await browser()
    forged.cookies.set(COOKIE, '{"role": "admin", "csrf": "' + "x" * 40 + '"}', path="/dashboard")
    assert (await forged.get("/dashboard")).status_code == 303


async def test_another_admin_token_ends_admin_sessions(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Signed with the same secret, a session opened under one admin token is void once
    another is configured: rotating the token signs the operator out."""
    first = dashboard_settings(redis_url, key_prefix, tmp_path, dashboard_secret="s" * 32)
    rotated = first.model_copy(update={"admin_token": SecretStr("rotated-token-0123456789")})
    async with serving(first) as client:
        assert (await sign_in(client, ADMIN_TOKEN)).status_code == 303
        assert (await client.get("/dashboard")).status_code == 200
        raw = client.cookies[COOKIE]
    async with serving(rotated) as client:
        client.cookies.set(COOKIE, raw, path="/dashboard")
        assert (await client.get("/dashboard")).status_code == 303


async def test_sign_in_attempts_are_rate_limited_per_address(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = dashboard_settings(redis_url, key_prefix, tmp_path, dashboard_signin_rate_per_s=0.01)
    async with serving(settings) as client:
        assert (await sign_in(client, "wrong")).status_code == 401
        limited = await sign_in(client, ADMIN_TOKEN)  # even the right token waits its turn
        assert limited.status_code == 429 and "Too many attempts" in limited.text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/jobs?status=failed", "/dashboard/jobs?status=failed"),
        ("/dashboard", "/dashboard"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboardevil", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("/api/v1/jobs", "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_after_sign_in_only_dashboard_paths(target: str, expected: str) -> None:
    assert safe_next(target) == expected
