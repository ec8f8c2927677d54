"""`jobrunner env`, and `up`'s hold on its data dir that it reads.

`up` owns its data dir (a lock file recording its pid, Redis URL and the variables clients
need); `jobrunner env` prints those variables as ``export`` lines for a second terminal:
``eval "$(jobrunner env)"``. The embedded Redis keeps its port, so they stay right across
restarts.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click

from jobrunner.cli.common import dump, json_option, load_settings, report, run, warn
from jobrunner.datalock import DataDirLock, read_owner
from jobrunner.embedded import embedded_redis
from jobrunner.errors import ConfigError
from jobrunner.settings import Settings

_DEFAULT_DATA_DIR = Settings.model_fields["data_dir"].default


def program() -> str:
    """How the user invoked us (``.venv/bin/jobrunner``), for commands we print."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "jobrunner" else "jobrunner"


def extra_env(settings: Settings) -> dict[str, str]:
    """The variables beyond URL and data dir that a client of this `up` must share with it."""
    extra = {}
    if settings.key_prefix != Settings.model_fields["key_prefix"].default:
        extra["JOBRUNNER_KEY_PREFIX"] = settings.key_prefix
    if settings.demo_tasks:
        extra["JOBRUNNER_DEMO_TASKS"] = "true"
    return extra


def client_env(redis_url: str, data_dir: str, extra: dict[str, str]) -> dict[str, str]:
    return {"JOBRUNNER_REDIS_URL": redis_url, "JOBRUNNER_DATA_DIR": data_dir, **extra}


def exports(variables: dict[str, str]) -> str:
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())


def env_command(settings: Settings) -> str:
    """The command a second terminal runs to join this `up`."""
    where = ""
    if settings.data_dir != _DEFAULT_DATA_DIR:
        where = f" --data-dir {shlex.quote(str(settings.data_dir.resolve()))}"
    return f'eval "$({program()} env{where})"'


@contextlib.asynccontextmanager
async def own_data_dir(settings: Settings) -> AsyncIterator[Settings]:
    """`up`'s data dir, owned for the block: its embedded Redis (which takes the lock) or, with
    an external Redis, the lock alone. Yields the settings with the Redis URL filled in."""
    owner = {"client_env": extra_env(settings)}
    if settings.redis_url is None:
        port = settings.embedded_redis_port
        async with embedded_redis(settings.data_dir, port=port, owner=owner) as url:
            yield settings.model_copy(update={"redis_url": url})
        return
    lock = await DataDirLock.acquire(settings.data_dir)
    try:
        await lock.update(redis_url=settings.redis_url, **owner)
        yield settings
    finally:
        await lock.release()


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The data dir of the `jobrunner up` to join (default: JOBRUNNER_DATA_DIR, ./.jobrunner).",
)
@json_option
def env(data_dir: Path | None, as_json: bool) -> None:
    """Print the `export` lines that point this shell at `jobrunner up`: eval "$(jobrunner env)"."""
    settings = load_settings(data_dir=data_dir)
    where = settings.data_dir.resolve()
    owner = run(lambda: read_owner(where))
    if owner is None or owner.redis_url is None:
        report(ConfigError(f"no `jobrunner up` has run with data dir {where}: start one first"))
    record = owner.record
    extra = record.get("client_env")
    extra = extra if isinstance(extra, dict) else {}
    variables = client_env(owner.redis_url, str(record.get("data_dir", where)), extra)
    if as_json:
        dump({"running": owner.running, "pid": owner.pid, "env": variables})
        return
    if not owner.running:
        warn(f"`jobrunner up` is not running on {where} now; these stay right when it starts again")
    click.echo(exports(variables))
