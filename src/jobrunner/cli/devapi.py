"""The HTTP API inside ``jobrunner up``: an admin token and a development key kept in the data
dir (the same across restarts), and uvicorn serving beside the worker in one process."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from pathlib import Path

import click
from pydantic import SecretStr

from jobrunner.api import create_app
from jobrunner.api.server import embedded_server, serve_until_cancelled
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.tenants import ApiKeys, new_key_text

__all__ = [
    "DEV_TENANT",
    "admin_token",
    "dev_key_text",
    "ensure_dev_key",
    "print_api_help",
    "serve_http",
]

DEV_TENANT = "dev"


def _kept_secret(path: Path, make: str) -> str:
    """The secret kept in ``path``, written there (owner-only) the first time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make + "\n")
    return path.read_text().strip()


def admin_token(settings: Settings) -> tuple[Settings, str]:
    """Settings with an admin token (JOBRUNNER_ADMIN_TOKEN, else one kept in the data dir),
    and where it came from."""
    if settings.admin_token is not None:
        return settings, "JOBRUNNER_ADMIN_TOKEN"
    path = settings.data_dir / "admin_token"
    token = _kept_secret(path, secrets.token_urlsafe(32))
    return settings.model_copy(update={"admin_token": SecretStr(token)}), str(path)


def dev_key_text(settings: Settings) -> str:
    return _kept_secret(settings.data_dir / "dev_api_key", new_key_text()[1])


def dev_plan(settings: Settings) -> str:
    return "pro" if "pro" in settings.plans else settings.default_plan


async def ensure_dev_key(runner: JobRunner, text: str) -> None:
    """Register the development key in Redis unless it is there (a fresh or reset Redis)."""
    keys = ApiKeys(runner.redis, runner.keys)
    if await keys.lookup(text) is None:
        await keys.create(DEV_TENANT, dev_plan(runner.settings), api_key=text)


def print_api_help(settings: Settings, url: str, token_source: str, dev_key: str) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    click.echo(f"  HTTP API:     {url}  (docs: {url}/docs)")
    click.echo(f"  dashboard:    {url}/dashboard  (sign in with the admin token or an API key)")
    click.echo(f"  admin token:  {token}  ({token_source})")
    click.echo(f"  dev API key:  {dev_key}  (tenant {DEV_TENANT}, plan {dev_plan(settings)})")
    click.echo(f'  try:          curl -H "Authorization: Bearer {dev_key}" {url}/api/v1/tasks')


async def serve_http(runner: JobRunner, settings: Settings, sock: socket.socket) -> None:
    """Serve the API on ``sock`` for ``runner`` until cancelled (then finish what is in
    flight). uvicorn's own signal handling is off: the worker's handlers end both."""
    host, port = sock.getsockname()[:2]
    server = embedded_server(create_app(settings, runner=runner), host, port)
    await serve_until_cancelled(server, [sock])
