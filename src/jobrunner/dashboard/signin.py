"""Signing in and out. One field takes the admin token (the operator: every tenant, actions)
or a tenant's API key (read-only: that tenant's jobs). Attempts are rate limited per client
address, and a successful sign-in gets a new session (and CSRF token), never the old one."""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.operations import route
from jobrunner.dashboard.access import checked_form, session_of
from jobrunner.dashboard.render import html_errors, redirect, render
from jobrunner.dashboard.session import PATH, Session
from jobrunner.dashboard.state import DashboardState, dashboard

__all__ = ["routes", "safe_next"]

log = structlog.get_logger("jobrunner.dashboard")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, never another site."""
    if not target:
        return PATH
    parts = urlsplit(target)
    inside = target == PATH or target.startswith(f"{PATH}/") or target.startswith(f"{PATH}?")
    if parts.scheme or parts.netloc or "\\" in target or not inside:
        return PATH
    return target


@html_errors
async def signin_form(request: Request) -> Response:
    session = await session_of(request)
    if session.signed_in:
        return redirect(safe_next(request.query_params.get("next")))
    return _form(request, session)


def _form(request: Request, session: Session, error: str = "", status: int = 200) -> Response:
    state = dashboard(request)
    nxt = safe_next(request.query_params.get("next"))
    response = render(request, "signin.html", status=status, title="Sign in", error=error, next=nxt)
    state.codec.store(request, response, session)  # the form's CSRF token lives here
    return response


@html_errors
async def signin(request: Request) -> Response:
    session = await session_of(request)
    form = await checked_form(request, session)
    state = dashboard(request)
    if not await _attempt_allowed(request, state):
        return _form(request, session, "Too many attempts: wait a second and try again.", 429)
    secret = str(form.get("secret", "")).strip()
    signed_in = await _open_session(state, secret)
    if signed_in is None:
        log.info("dashboard sign-in refused", client=_client(request))
        return _form(request, session, "That is neither the admin token nor an API key.", 401)
    log.info("dashboard sign-in", who=signed_in.who, client=_client(request))
    response = redirect(safe_next(str(form.get("next", "")) or None))
    state.codec.store(request, response, signed_in)
    return response


async def _open_session(state: DashboardState, secret: str) -> Session | None:
    if not secret or len(secret) > 512:
        return None
    if state.codec.is_admin_token(secret):
        return state.codec.admin()
    async with state.api.guard("sign in"):
        key = await state.api.api_keys.lookup(secret)
    return None if key is None else state.codec.tenant(key.tenant, key.key_id)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _attempt_allowed(request: Request, state: DashboardState) -> bool:
    """One token of this address's sign-in bucket (shared by every API process)."""
    rate = state.api.settings.dashboard_signin_rate_per_s
    async with state.api.guard("sign-in rate"):
        decision = await state.api.limits.take_signin(_client(request), rate)
    return decision.allowed


@html_errors
async def signout(request: Request) -> Response:
    session = await session_of(request)
    await checked_form(request, session)
    response = redirect(f"{PATH}/login")
    dashboard(request).codec.clear(request, response)
    return response


routes: list[BaseRoute] = [
    route(f"{PATH}/login", GET=signin_form, POST=signin),
    route(f"{PATH}/logout", POST=signout),
]
