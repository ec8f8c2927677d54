"""Admin routes: API keys (create, list, revoke). Also what ``jobrunner keys`` runs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from jobrunner.api.auth import require_admin
from jobrunner.api.bodies import parse_model, read_json
from jobrunner.api.operations import Body, Reply, operation, route
from jobrunner.api.problems import Problem
from jobrunner.domain.views import API_PREFIX, UtcTime
from jobrunner.errors import InvalidInputError
from jobrunner.settings import Settings
from jobrunner.store.tenants import ApiKey, ApiKeys
from jobrunner.submission import NAME_PATTERN

__all__ = ["KeyCreate", "KeyCreated", "KeyView", "issue_key", "key_view", "routes"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=NAME_PATTERN, description="Tenant the key acts for.")
    plan: str = Field(pattern=NAME_PATTERN, description="Plan: its queue, quota and rate.")
    monthly_quota: int | None = Field(
        default=None, ge=1, le=10**12, description="Jobs a month; default: the plan's."
    )
    rate_limit_per_s: float | None = Field(
        default=None, gt=0, le=10**6, description="Requests a second; default: the plan's."
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Secret the tenant's callbacks are signed with (HMAC-SHA256).",
    )


class KeyView(BaseModel):
    """A key as listed: never its text, never its digest. Limits are those in force."""

    key_id: str
    tenant: str
    plan: str
    monthly_quota: int | None
    rate_limit_per_s: float | None
    created_at: UtcTime


class KeyCreated(KeyView):
    api_key: str = Field(description="The key itself: shown here once, stored only hashed.")


class KeyList(BaseModel):
    items: list[KeyView]


def key_view(key: ApiKey, settings: Settings) -> KeyView:
    return KeyView(
        key_id=key.key_id,
        tenant=key.tenant,
        plan=key.plan,
        monthly_quota=key.monthly_quota or settings.plan_quotas.get(key.plan),
        rate_limit_per_s=key.rate_limit_per_s or settings.plan_rate_limits.get(key.plan),
        created_at=key.created_at,
    )


async def issue_key(
    api_keys: ApiKeys, settings: Settings, spec: KeyCreate, *, api_key: str | None = None
) -> KeyCreated:
    """Create a key (and set the tenant's webhook secret when one is given)."""
    if spec.plan not in settings.plans:
        plans = list(settings.plans)
        raise InvalidInputError(
            f"unknown plan {spec.plan!r}; plans: {plans}",
            errors=[{"loc": "plan", "msg": f"must be one of {plans}"}],
        )
    key, text = await api_keys.create(
        spec.tenant,
        spec.plan,
        monthly_quota=spec.monthly_quota,
        rate_limit_per_s=spec.rate_limit_per_s,
        api_key=api_key,
    )
    if spec.webhook_secret:
        await api_keys.set_webhook_secret(spec.tenant, spec.webhook_secret)
    return KeyCreated(**key_view(key, settings).model_dump(), api_key=text)


@operation(
    "Create an API key",
    tag="admin",
    auth="admin",
    body=Body({"application/json": KeyCreate}),
    responses={201: Reply("The key; its text is shown only here", KeyCreated)},
)
async def create_key(request: Request) -> Response:
    api = await require_admin(request)
    spec = parse_model(KeyCreate, await read_json(request, api.settings.max_body_bytes))
    async with api.guard("create key"):
        created = await issue_key(api.api_keys, api.settings, spec)
    return JSONResponse(created.model_dump(mode="json"), status_code=201)


class KeyQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant: str | None = Field(default=None, pattern=NAME_PATTERN)


@operation(
    "List API keys",
    tag="admin",
    auth="admin",
    query=KeyQuery,
    responses={200: Reply("Every key (or one tenant's), oldest first", KeyList)},
)
async def list_keys(request: Request) -> Response:
    api = await require_admin(request)
    query = parse_model(KeyQuery, dict(request.query_params), prefix="query")
    async with api.guard("list keys"):
        keys = await api.api_keys.list(query.tenant)
    items = [key_view(k, api.settings) for k in keys]
    return JSONResponse(KeyList(items=items).model_dump(mode="json"))


@operation(
    "Revoke an API key",
    tag="admin",
    auth="admin",
    responses={204: Reply("Revoked: the key gets 401 from now on")},
)
async def revoke_key(request: Request) -> Response:
    api = await require_admin(request)
    key_id = request.path_params["key_id"]
    async with api.guard("revoke key"):
        revoked = await api.api_keys.revoke(key_id)
    if not revoked:
        raise Problem(404, "key_not_found", f"no API key with id {key_id!r}", key_id=key_id)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    route(f"{API_PREFIX}/admin/keys", GET=list_keys, POST=create_key),
    route(f"{API_PREFIX}/admin/keys/{{key_id}}", DELETE=revoke_key),
]
