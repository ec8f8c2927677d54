"""Commands of the HTTP API: ``api`` (serve it) and ``keys`` (create, list, revoke API keys)."""

from __future__ import annotations

from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from jobrunner.api import create_app
from jobrunner.api.admin import KeyCreate, issue_key, key_view
from jobrunner.cli.common import client_settings, dump, json_option, with_client
from jobrunner.cli.show import keys_table
from jobrunner.errors import InvalidInputError
from jobrunner.runtime import JobRunner
from jobrunner.store.tenants import ApiKeys

__all__ = ["api", "keys"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API against JOBRUNNER_REDIS_URL (uvicorn, --workers processes)."""
    settings = client_settings()
    click.echo(f"jobrunner API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    if settings.admin_token is None:
        click.echo("  admin routes are off: JOBRUNNER_ADMIN_TOKEN is not set", err=True)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,  # structlog, set up from the settings, writes every line
        "access_log": False,  # the app logs each request itself
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, freeze_gc=True), **common)
    else:  # each process builds its settings from the same environment
        uvicorn.run("jobrunner.api:create_app", factory=True, workers=workers, **common)


@click.group()
def keys() -> None:
    """API keys of the HTTP API (kept in Redis as SHA-256 digests, never the key itself)."""


@keys.command("create")
@click.option("--tenant", required=True)
@click.option("--plan", required=True, help="Its queue, monthly quota and request rate.")
@click.option("--monthly-quota", type=int, help="Jobs a month (default: the plan's).")
@click.option("--rate-limit", "rate_limit_per_s", type=float, help="Requests a second.")
@click.option("--webhook-secret", help="Secret the tenant's callbacks are signed with.")
@json_option
def create(as_json: bool, **options: Any) -> None:
    """Create a key and print it (shown only this once)."""
    try:
        spec = KeyCreate(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(problems) from exc

    async def go(runner: JobRunner) -> dict[str, Any]:
        created = await issue_key(ApiKeys(runner.redis, runner.keys), runner.settings, spec)
        return created.model_dump(mode="json")

    made = with_client(go, tasks=False)
    if as_json:
        dump(made)
        return
    click.echo(f"created key {made['key_id']} for tenant {made['tenant']} (plan {made['plan']})")
    click.echo(f"api key (shown only now): {made['api_key']}")


@keys.command("list")
@click.option("--tenant", help="Only this tenant's keys.")
@json_option
def list_keys(tenant: str | None, as_json: bool) -> None:
    """Every key: id, tenant, plan, limits, creation time (never the key)."""

    async def go(runner: JobRunner) -> list[dict[str, Any]]:
        found = await ApiKeys(runner.redis, runner.keys).list(tenant)
        return [key_view(k, runner.settings).model_dump(mode="json") for k in found]

    listed = with_client(go, tasks=False)
    if as_json:
        dump(listed)
    elif not listed:
        click.echo("no API keys" + (f" for tenant {tenant}" if tenant else ""))
    else:
        click.echo("\n".join(keys_table(listed)))


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: it is refused (401) from the next request on."""

    async def go(runner: JobRunner) -> None:
        if not await ApiKeys(runner.redis, runner.keys).revoke(key_id):
            raise InvalidInputError(f"no API key with id {key_id!r}", key_id=key_id)

    with_client(go, tasks=False)
    click.echo(f"revoked {key_id}")
