"""``jobrunner health``: the container health check (Redis answers; optionally a worker on this
host is beating, or an API answers ``/readyz``). Exit 0 when every check passes, else 1.

Docker reserves exit status 2 of a health command, so a configuration error exits 1 here too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

import click
import httpx
from redis.exceptions import RedisError

from jobrunner.cli.common import client_settings, dump, json_option, run
from jobrunner.errors import RedisUnavailableError
from jobrunner.settings import Settings
from jobrunner.store.connection import connect, redact
from jobrunner.store.keys import Keys
from jobrunner.store.workers import WorkerRegistry

__all__ = ["health"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@click.command()
@click.option("--worker", is_flag=True, help="Also: a worker process on this host is beating.")
@click.option("--api", "api_url", metavar="URL", help="Also: GET URL/readyz answers 200.")
@click.option(
    "--timeout",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0.1, 60),
    help="Seconds each check may take.",
)
@json_option
def health(worker: bool, api_url: str | None, timeout: float, as_json: bool) -> None:
    """Check this deployment for a container health check: exit 0 healthy, 1 not."""
    try:
        settings = client_settings()
    except click.exceptions.Exit as exc:  # the one-line error is out; 2 is Docker's reserved code
        raise click.exceptions.Exit(1) from exc
    checks = run(lambda: _checks(settings, worker=worker, api_url=api_url, timeout=timeout))
    healthy = all(c.ok for c in checks)
    if as_json:
        dump({"ok": healthy, "checks": [asdict(c) for c in checks]})
    else:
        for check in checks:
            click.echo(f"{check.name}: {'ok' if check.ok else 'FAIL'} ({check.detail})")
    if not healthy:
        raise click.exceptions.Exit(1)


async def _checks(
    settings: Settings, *, worker: bool, api_url: str | None, timeout: float
) -> list[Check]:
    checks = await _redis(settings, worker=worker, timeout=timeout)
    if api_url is not None:
        checks.append(await _api(api_url, timeout))
    return checks


async def _redis(settings: Settings, *, worker: bool, timeout: float) -> list[Check]:
    """Redis answers; with ``worker``, also a worker of this host in the registry."""
    url = settings.redis_url or ""
    keys = Keys(settings.key_prefix)
    started = time.monotonic()
    try:
        redis = await connect(url, timeout=timeout / 2, default_queue=keys.queue("health"))
    except RedisUnavailableError as exc:
        return [Check("redis", False, exc.message)]
    took = (time.monotonic() - started) * 1000
    checks = [Check("redis", True, f"{redact(url)} answered in {took:.0f} ms")]
    try:
        if worker:
            async with asyncio.timeout(timeout):
                checks.append(_worker_check(await WorkerRegistry(redis, keys).live()))
    except (TimeoutError, RedisError, OSError) as exc:
        checks.append(Check("worker", False, f"could not read the worker registry: {exc!r}"))
    finally:
        await redis.aclose(close_connection_pool=True)
    return checks


def _worker_check(live: list[dict[str, Any]]) -> Check:
    host = socket.gethostname()
    here = [w for w in live if w.get("host") == host and _alive(int(w.get("pid", 0)))]
    if not here:
        return Check("worker", False, f"no worker on {host} has a current heartbeat")
    running = sum(int(w.get("jobs_running", 0)) for w in here)
    return Check("worker", True, f"{len(here)} on {host}, {running} jobs running")


def _alive(pid: int) -> bool:
    """A process with this id exists here (the registry's pid may be another host's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def _api(url: str, timeout: float) -> Check:
    target = f"{url.rstrip('/')}/readyz"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            reply = await client.get(target)
    except httpx.HTTPError as exc:
        return Check("api", False, f"{target}: {exc!r}")
    return Check("api", reply.status_code == 200, f"{target} answered {reply.status_code}")
