"""The ``jobrunner`` command: the one place that wires Settings -> Registry -> JobRunner.

``asyncio.run`` appears only here (``common.run``), at the process edge. Each module holds one
family of commands; they are listed in ``COMMANDS`` below (never registered by import side
effects) and imported only when used, so `jobrunner status` does not pay for the HTTP server,
the dashboard's templates or polars.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["COMMANDS", "main"]

# command name -> "module:attribute" under jobrunner.cli
COMMANDS: dict[str, str] = {
    "up": "serve:up",
    "worker": "serve:worker",
    "api": "api:api",
    "keys": "api:keys",
    "env": "env:env",
    "tasks": "catalog:tasks",
    "enqueue": "jobs:enqueue",
    "wait": "jobs:wait",
    "status": "jobs:status",
    "list": "jobs:list_jobs",
    "cancel": "jobs:cancel",
    "retry": "jobs:retry",
    "workers": "jobs:workers",
    "queues": "jobs:queues",
    "upload": "files:upload",
    "download": "files:download",
    "maintenance": "maintenance:maintenance",
    "health": "health:health",
}


class LazyGroup(click.Group):
    """A group whose commands are imported the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(f"jobrunner.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="jobrunner")
def main() -> None:
    """jobrunner: asyncio-native jobs on arq and Redis.

    `jobrunner up` runs everything locally; in another terminal, `eval "$(jobrunner env)"`
    points the other commands at it. Output is for people; `--json` gives JSON for scripts.
    A job is named by its id or its first 8+ characters. Errors are one line,
    `error [code]: message`; exit status 1 when an operation fails (or a waited job did not
    succeed), 2 for bad usage or configuration.
    """
