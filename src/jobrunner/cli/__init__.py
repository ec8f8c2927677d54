"""The ``jobrunner`` command: the one place that wires Settings -> Registry -> JobRunner.

``asyncio.run`` appears only here (``common.run``), at the process edge. Each module holds one
family of commands; they are added to the group explicitly below, never by import side effects.
"""

from __future__ import annotations

import click

from jobrunner.cli import api, catalog, env, files, jobs, serve

__all__ = ["main"]


@click.group()
@click.version_option(package_name="jobrunner")
def main() -> None:
    """jobrunner: asyncio-native jobs on arq and Redis.

    `jobrunner up` runs everything locally; in another terminal, `eval "$(jobrunner env)"`
    points the other commands at it. Output is for people; `--json` gives JSON for scripts.
    A job is named by its id or its first 8+ characters. Errors are one line,
    `error [code]: message`; exit status 1 when an operation fails (or a waited job did not
    succeed), 2 for bad usage or configuration.
    """


for _command in (
    serve.up,
    serve.worker,
    api.api,
    api.keys,
    env.env,
    catalog.tasks,
    jobs.enqueue,
    jobs.wait,
    jobs.status,
    jobs.list_jobs,
    jobs.cancel,
    jobs.retry,
    jobs.workers,
    jobs.queues,
    files.upload,
    files.download,
):
    main.add_command(_command)
