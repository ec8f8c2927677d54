"""Monthly quotas: every new job counts one against its tenant's month (UTC), atomically in
Redis; idempotent replays and failed submits give their unit back. ``GET /api/v1/usage``."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.auth import Principal, require_tenant
from jobrunner.api.models import Usage
from jobrunner.api.operations import Reply, operation, route
from jobrunner.api.problems import Problem
from jobrunner.api.replies import json_reply
from jobrunner.api.services import ApiServices, services
from jobrunner.domain.views import API_PREFIX
from jobrunner.runtime import Submitted
from jobrunner.store.gate import QuotaUnit
from jobrunner.store.limits import Period, billing_period

__all__ = ["Reservation", "counted", "give_back", "on_unit", "routes"]


async def counted(
    api: ApiServices,
    principal: Principal,
    submit: Callable[[], Awaitable[Submitted]],
    idempotency_key: str | None = None,
) -> Submitted:
    """Run ``submit`` with one unit of the tenant's quota reserved for it (429 when none is
    left, unless the request replays an existing idempotency key, which is never counted)."""
    quota = principal.monthly_quota
    if quota is None:
        return await submit()
    period = billing_period(datetime.now(tz=UTC))
    async with api.guard("quota"):
        allowed, used = await api.limits.reserve(principal.tenant, period, quota)
    unit = QuotaUnit(allowed, used, quota)
    return await on_unit(api, principal, (unit, period), submit, idempotency_key)


Reservation = tuple[QuotaUnit | None, Period]  # a unit (None: no quota) and its period


async def on_unit(
    api: ApiServices,
    principal: Principal,
    reservation: Reservation,
    submit: Callable[[], Awaitable[Submitted]],
    idempotency_key: str | None = None,
) -> Submitted:
    """``counted`` on a unit already reserved (``require_submitter``): a refused unit is 429
    unless the request is a replay; a reserved one is given back when ``submit`` fails or
    replays."""
    unit, period = reservation
    if unit is None:
        return await submit()
    if not unit.reserved:
        if idempotency_key and await _is_replay(api, principal, idempotency_key):
            return await submit()
        raise _over_quota(unit.quota, period)
    try:
        done = await submit()
    except BaseException:
        await _release(api, principal, period)
        raise
    if done.replayed:
        await _release(api, principal, period)
    return done


async def give_back(api: ApiServices, principal: Principal, reservation: Reservation) -> None:
    """Return a reserved unit whose request was refused before it reached ``on_unit``."""
    unit, period = reservation
    if unit is not None and unit.reserved:
        await _release(api, principal, period)


async def _is_replay(api: ApiServices, principal: Principal, key: str) -> bool:
    async with api.guard("idempotency"):
        return await api.runner.store.idempotent_job_id(principal.tenant, key) is not None


async def _release(api: ApiServices, principal: Principal, period: Period) -> None:
    async with api.guard("quota"):
        await api.limits.release(principal.tenant, period)


def _over_quota(quota: int, period: Period) -> Problem:
    wait = max(1, math.ceil((period.resets_at - datetime.now(tz=UTC)).total_seconds()))
    return Problem(
        429,
        "quota_exceeded",
        f"the monthly quota of {quota} jobs is used up until {period.resets_at.isoformat()}",
        headers={"Retry-After": str(wait)},
        quota=quota,
        period=period.name,
    )


@operation(
    "This month's usage",
    tag="account",
    auth="tenant",
    responses={200: Reply("Jobs submitted this month against the quota", Usage)},
)
async def usage(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    period = billing_period(datetime.now(tz=UTC))
    async with api.guard("usage"):
        used = await api.limits.used(principal.tenant, period)
    return json_reply(
        Usage(
            tenant=principal.tenant,
            plan=principal.plan,
            period=period.name,
            used=used,
            quota=principal.monthly_quota,
            resets_at=period.resets_at,
        )
    )


routes: list[BaseRoute] = [route(f"{API_PREFIX}/usage", GET=usage)]
