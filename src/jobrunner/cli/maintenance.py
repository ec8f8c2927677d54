"""`jobrunner maintenance ...`: the cron's maintenance jobs, run now by hand.

Each prints what it did, counted per kind (`--json` for scripts). Running one by hand does not
stop the cron's own runs; both are safe to overlap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from jobrunner.callbacks import Callbacks
from jobrunner.cli.common import dump, json_option, with_client
from jobrunner.runtime import JobRunner
from jobrunner.tasks.upkeep import Report, Upkeep


def _show(name: str, report: Report, as_json: bool) -> None:
    if as_json:
        dump({"job": name, **report})
        return
    click.echo(f"{name}: done in {report.get('seconds', 0):g}s")
    for kind, value in report.items():
        if kind == "seconds" or value == "":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        click.echo(f"  {kind.replace('_', ' '):<26} {value}")


def _run(
    name: str,
    as_json: bool,
    work: Callable[[Upkeep], Awaitable[Report]],
    *,
    webhooks: bool = False,
) -> None:
    """``webhooks``: jobs it ends get their callbacks (this loads the task catalog)."""

    async def go(runner: JobRunner) -> Report:
        callbacks = Callbacks(runner.settings, runner.registry, runner.store) if webhooks else None
        upkeep = Upkeep(runner.store, runner.blobs, runner.settings, callbacks)
        return await work(upkeep)

    _show(name, with_client(go, tasks=webhooks), as_json)


@click.group()
def maintenance() -> None:
    """Run a maintenance job now (the workers' cron runs each on its schedule)."""


@maintenance.command()
@json_option
def cleanup(as_json: bool) -> None:
    """Prune expired jobs' traces and delete blobs past retention (uploads after
    JOBRUNNER_UPLOAD_RETENTION_HOURS, outputs with their job's result)."""
    _run("cleanup", as_json, lambda upkeep: upkeep.cleanup())


@maintenance.command()
@json_option
def prune(as_json: bool) -> None:
    """Remove the index entries (and leftovers) of jobs whose records have expired."""
    _run("prune", as_json, lambda upkeep: upkeep.prune())


@maintenance.command()
@json_option
def reconcile(as_json: bool) -> None:
    """Make records and arq's queue agree: running jobs whose worker is gone go back to the
    queue (or fail with lease_lost when no tries are left), waiting jobs missing from arq's
    queue are put back, arq entries with nothing behind them are dropped."""
    _run("reconcile", as_json, lambda upkeep: upkeep.reconcile(), webhooks=True)


@maintenance.command("reset-quotas")
@click.option("--current", is_flag=True, help="Also zero this month's counters.")
@click.option("--tenant", help="Only this tenant's counters.")
@json_option
def reset_quotas(current: bool, tenant: str | None, as_json: bool) -> None:
    """Reset the per-tenant monthly job counters of the API's quotas: last month's (each
    month counts from zero by itself), and this month's too with --current."""
    options: dict[str, Any] = {"current": current, "tenant": tenant}
    _run("reset-quotas", as_json, lambda upkeep: upkeep.reset_quotas(**options))
