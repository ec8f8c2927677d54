"""Who is calling: ``Authorization: Bearer <key>``.

A handler's first line says what it needs: ``principal = await require_tenant(request)`` (a
tenant's API key, rate limited, RateLimit-* headers on the response) or
``await require_admin(request)`` (the admin token). No or bad credentials are 401 with
``WWW-Authenticate: Bearer``; the wrong kind of credentials (a tenant key on an admin route,
the admin token on a tenant route) is 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from jobrunner.api.middleware import response_headers
from jobrunner.api.problems import Problem
from jobrunner.api.services import ApiServices, services
from jobrunner.settings import Settings
from jobrunner.store.gate import QuotaUnit
from jobrunner.store.limits import Period, RateDecision
from jobrunner.store.tenants import ApiKey

__all__ = [
    "Principal",
    "authenticate",
    "bearer_token",
    "is_admin_token",
    "require_admin",
    "require_submitter",
    "require_tenant",
]

REALM = 'Bearer realm="jobrunner"'


@dataclass(frozen=True)
class Principal:
    """A tenant's API key with the limits in force for it."""

    key: ApiKey
    monthly_quota: int | None  # None: no quota
    rate_limit_per_s: float | None  # None: no rate limit

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def plan(self) -> str:
        return self.key.plan

    @property
    def key_id(self) -> str:
        return self.key.key_id


def bearer_token(conn: HTTPConnection) -> str | None:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_admin_token(settings: Settings, token: str) -> bool:
    admin = settings.admin_token
    return admin is not None and hmac.compare_digest(
        admin.get_secret_value().encode(), token.encode()
    )


def unauthorized(detail: str, *, invalid: bool = False) -> Problem:
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _token(conn: HTTPConnection, api: ApiServices) -> str:
    token = bearer_token(conn)
    if token is None:
        raise unauthorized("send an API key: 'Authorization: Bearer <key>'")
    if is_admin_token(api.settings, token):
        raise Problem(403, "forbidden", "the admin token is not a tenant key")
    return token


def _known(conn: HTTPConnection, key: ApiKey | None, api: ApiServices) -> Principal:
    if key is None:
        raise unauthorized("unknown or revoked API key", invalid=True)
    conn.scope.setdefault("state", {})["tenant"] = key.tenant
    return _principal(api.settings, key)


async def authenticate(conn: HTTPConnection) -> Principal:
    """The tenant key's principal, spending no rate."""
    api = services(conn)
    token = _token(conn, api)
    async with api.guard("authenticate"):
        key = await api.api_keys.lookup(token)
    return _known(conn, key, api)


def _principal(settings: Settings, key: ApiKey) -> Principal:
    quota = key.monthly_quota or settings.plan_quotas.get(key.plan)
    rate = key.rate_limit_per_s or settings.plan_rate_limits.get(key.plan)
    return Principal(key, quota, rate)


async def require_tenant(conn: HTTPConnection) -> Principal:
    """Authenticate a tenant key and spend one request of its rate (429 when none is left);
    both in one Redis call."""
    principal, _ = await _admit(conn, None)
    return principal


async def require_submitter(
    conn: HTTPConnection, period: Period
) -> tuple[Principal, QuotaUnit | None]:
    """``require_tenant`` that also reserves one unit of the tenant's monthly quota for
    ``period``, in the same Redis call: the unit (reserved, or refused when the quota is used
    up), or None when the key has no quota. A reserved unit the submit does not turn into a
    new job is the caller's to give back."""
    return await _admit(conn, period)


async def _admit(conn: HTTPConnection, period: Period | None) -> tuple[Principal, QuotaUnit | None]:
    api = services(conn)
    token = _token(conn, api)
    async with api.guard("authenticate"):
        admitted = await api.gate.admit(token, quota=period)
    if admitted is None:
        raise unauthorized("unknown or revoked API key", invalid=True)
    principal = _known(conn, admitted.key, api)
    if admitted.rate is not None:
        _spend_rate(conn, principal, admitted.rate)
    return principal, admitted.quota


def _spend_rate(conn: HTTPConnection, principal: Principal, decision: RateDecision) -> None:
    """RateLimit-* headers on the response; 429 when the bucket refused the request."""
    headers = _rate_headers(decision)
    response_headers(conn.scope).update(headers)
    if not decision.allowed:
        raise Problem(
            429,
            "rate_limited",
            f"more than {principal.rate_limit_per_s:g} requests a second on this key",
            headers={**headers, "Retry-After": str(decision.retry_after_s)},
        )


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }


async def require_admin(conn: HTTPConnection) -> ApiServices:
    """The admin token, or 401 (none / wrong) or 403 (a tenant key)."""
    token = bearer_token(conn)
    if token is None:
        raise unauthorized("send the admin token: 'Authorization: Bearer <token>'")
    api = services(conn)
    if is_admin_token(api.settings, token):
        return api
    async with api.guard("authenticate"):
        key = await api.api_keys.lookup(token)
    if key is not None:
        raise Problem(403, "forbidden", "admin routes need the admin token, not a tenant key")
    raise unauthorized("wrong admin token", invalid=True)
