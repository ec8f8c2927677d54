"""Tenants: this month's usage against quota, rate limits, and (for the operator) API keys,
created and revoked here. A tenant's viewer sees its own row and no keys."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.admin import KeyCreate, KeyCreated, issue_key, key_view
from jobrunner.api.operations import route
from jobrunner.dashboard.access import Viewer, checked_form, viewer
from jobrunner.dashboard.render import html_errors, redirect, render
from jobrunner.dashboard.session import PATH
from jobrunner.errors import InvalidInputError
from jobrunner.store.limits import billing_period

__all__ = ["routes"]

PAGE = 50


async def _rows(who: Viewer, page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of tenants (by name) with usage and keys, and how many tenants there are."""
    api, period = who.api, billing_period(datetime.now(tz=UTC))
    async with api.guard("tenants"):
        keys = await api.api_keys.list(who.tenant)
        names = {who.tenant} if who.tenant else set(await who.state.index.tenants())
        names |= {k.tenant for k in keys}
        shown = sorted(names)[page * PAGE : (page + 1) * PAGE]
        used = await api.limits.used_by(shown, period)
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for key in keys:
        view = key_view(key, api.settings)
        if who.is_admin or key.key_id == who.session.key_id:
            by_tenant[key.tenant].append(view)
    rows = [{"tenant": t, "used": used[t], "keys": by_tenant.get(t, [])} for t in shown]
    return rows, len(names)


async def _page(request: Request, who: Viewer, *, status: int = 200, **extra: Any) -> Response:
    try:
        page = max(int(request.query_params.get("page", "0")), 0)
    except ValueError:
        page = 0
    rows, total = await _rows(who, page)
    return render(
        request,
        "tenants.html",
        status=status,
        title="Tenants",
        rows=rows,
        page=page,
        pages=max((total + PAGE - 1) // PAGE, 1),
        total=total,
        period=billing_period(datetime.now(tz=UTC)),
        plans=list(who.settings.plans),
        notice={"revoked": "Key revoked: it is refused from now on."}.get(
            request.query_params.get("notice", "")
        ),
        **{"created": None, "error": None, **extra},
    )


@html_errors
async def tenants_page(request: Request) -> Response:
    return await _page(request, await viewer(request))


def _key_spec(form: dict[str, str]) -> KeyCreate:
    values = {k: v.strip() for k, v in form.items() if k != "csrf_token" and v.strip()}
    try:
        return KeyCreate.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidInputError(problems) from exc


@html_errors
async def create_key(request: Request) -> Response:
    who = await viewer(request, admin=True)
    form = await checked_form(request, who.session)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        spec = _key_spec(fields)
        async with who.api.guard("create key"):
            created: KeyCreated = await issue_key(who.api.api_keys, who.settings, spec)
    except InvalidInputError as exc:
        return await _page(request, who, status=422, error=exc.message)
    return await _page(request, who, status=201, created=created)


@html_errors
async def revoke_key(request: Request) -> Response:
    who = await viewer(request, admin=True)
    await checked_form(request, who.session)
    async with who.api.guard("revoke key"):
        await who.api.api_keys.revoke(request.path_params["key_id"])
    return redirect(f"{PATH}/tenants?notice=revoked")


routes: list[BaseRoute] = [
    route(f"{PATH}/tenants", GET=tenants_page),
    route(f"{PATH}/tenants/keys", POST=create_key),
    route(f"{PATH}/tenants/keys/{{key_id}}/revoke", POST=revoke_key),
]
