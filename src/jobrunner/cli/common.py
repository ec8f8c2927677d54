"""What every command shares: settings, the one ``asyncio.run``, errors as one line, output.

Output is for people by default; ``--json`` (on every command that prints data) is for scripts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from pydantic import ValidationError

from jobrunner.domain.models import JobRecord
from jobrunner.errors import ConfigError, InvalidParamsError, JobRunnerError
from jobrunner.logs import configure_logging
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.connection import redact
from jobrunner.submission import MAX_PARAMS_DEPTH

T = TypeVar("T")
P = ParamSpec("P")

_SCHEMES = ("redis://", "rediss://", "unix://")


def report(exc: JobRunnerError) -> NoReturn:
    """One line on stderr; a configuration problem exits 2, any other failure 1."""
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    raise click.exceptions.Exit(2 if isinstance(exc, ConfigError) else 1)


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        report(ConfigError(f"invalid settings: {problems}"))
    configure_logging(json=settings.log_json, level=settings.log_level)
    return settings


def run(make: Callable[[], Coroutine[Any, Any, T]], *, fast_loop: bool = False) -> T:
    """Run a coroutine (the only ``asyncio.run``); a JobRunnerError becomes one clear line,
    and Ctrl-C a quiet exit 130 (the coroutine has been cancelled and has cleaned up).

    ``fast_loop``: on uvloop where it is installed (the long-running worker and server
    commands: each loop iteration, socket read and wake-up costs less; a job's enqueue->start
    is a chain of them)."""
    try:
        with asyncio.Runner(loop_factory=_fast_loop_factory() if fast_loop else None) as runner:
            return runner.run(make())
    except JobRunnerError as exc:
        report(exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise click.exceptions.Exit(130) from None


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on Windows: the default loop then
        return None
    return uvloop.new_event_loop


def client_settings(**overrides: Any) -> Settings:
    """Settings for a command that talks to a running deployment: a Redis URL is required."""
    settings = load_settings(**overrides)
    if settings.redis_url is None:
        hint = "set it to your Redis, e.g. the URL `jobrunner up` prints"
        report(ConfigError(f"JOBRUNNER_REDIS_URL is not set: {hint}"))
    check_url(settings.redis_url)
    return settings


def check_url(url: str) -> None:
    if not url.startswith(_SCHEMES):
        schemes = ", ".join(_SCHEMES)
        report(ConfigError(f"JOBRUNNER_REDIS_URL {redact(url)!r} must start with {schemes}"))


def _task_registry(settings: Settings) -> Registry:
    # imported here: the task catalog loads polars and pdfium, which most commands never use
    from jobrunner.tasks.catalog import build_registry

    return build_registry(settings)


def with_client(use: Callable[[JobRunner], Awaitable[T]], *, tasks: bool = True) -> T:
    """Run ``use`` with a started JobRunner on the configured deployment. Commands that only
    read or control existing jobs pass ``tasks=False``: no task code (polars, pdfium) loads."""
    settings = client_settings()

    async def go() -> T:
        # the commands say themselves when no worker serves a queue, as a person reads it
        registry = _task_registry(settings) if tasks else Registry()
        async with JobRunner(settings, registry, warn_unserved=False) as runner:
            return await use(runner)

    return run(go)


def json_option(command: Callable[P, T]) -> Callable[P, T]:
    """``--json``: the command prints JSON for scripts instead of text for people."""
    option = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text."
    )
    return option(command)


def dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def record_json(record: JobRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_none=True)


def parse_params(text: str, task: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--params") from exc
    except RecursionError:  # nested past what the parser can hold: far past the params limit
        deep = f"nested deeper than {MAX_PARAMS_DEPTH} levels"
        report(InvalidParamsError(task, [{"loc": "(root)", "msg": deep}]))
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{}'", param_hint="--params")
    return parsed
