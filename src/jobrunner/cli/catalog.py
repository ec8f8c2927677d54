"""`jobrunner tasks`: the tasks this configuration knows, with their params."""

from __future__ import annotations

import json
from typing import Any

import click

from jobrunner.cli.common import dump, json_option, load_settings, report
from jobrunner.cli.show import pretty, table
from jobrunner.errors import JobRunnerError
from jobrunner.registry import Registry, Task
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry


@click.command()
@click.argument("name", required=False)
@json_option
def tasks(name: str | None, as_json: bool) -> None:
    """The tasks you can enqueue: names, descriptions, params; NAME: one task's params schema."""
    settings = load_settings()
    try:
        registry = build_registry(settings)
        chosen = [registry.get(name)] if name else list(registry)
    except JobRunnerError as exc:
        report(exc)
    described = [_describe(t, settings) for t in sorted(chosen, key=lambda t: t.name)]
    if as_json:
        dump(described[0] if name else {**_switches(settings), "tasks": described})
    elif name:
        _show_one(described[0])
    else:
        _show_all(described, settings, registry)


def _describe(task: Task[Any], settings: Settings) -> dict[str, Any]:
    return {
        "name": task.name,
        "description": task.description.replace("``", "`"),  # docstrings' literals, as text
        "queue": task.queue or settings.default_plan,
        "timeout_seconds": task.timeout_seconds or settings.default_timeout_seconds,
        "params_schema": task.params_schema(),
    }


def _switches(settings: Settings) -> dict[str, bool]:
    return {"demo_tasks": settings.demo_tasks, "pipeline_tasks": settings.pipeline_tasks}


def params_line(schema: dict[str, Any]) -> str:
    """``input_uri (required), marketplace="default", auto_fix=false`` from a JSON schema."""
    required = set(schema.get("required", []))
    parts = []
    for field, spec in schema.get("properties", {}).items():
        if field in required:
            parts.append(f"{field} (required)")
        elif spec.get("default") is not None:
            parts.append(f"{field}={json.dumps(spec['default'], ensure_ascii=False)}")
        else:
            parts.append(field)
    if schema.get("additionalProperties") is not False:
        parts.append("any other field")
    return ", ".join(parts) or "none"


def _show_all(described: list[dict[str, Any]], settings: Settings, registry: Registry) -> None:
    rows = [[d["name"], d["description"]] for d in described]
    lines = table(["TASK", "DESCRIPTION"], rows)
    click.echo(lines[0])
    for line, d in zip(lines[1:], described, strict=True):
        click.echo(line)
        click.echo(f"    params: {params_line(d['params_schema'])}")
    demo = "on" if settings.demo_tasks else "off (JOBRUNNER_DEMO_TASKS=true turns them on)"
    click.echo(f"demo tasks: {demo}; `jobrunner tasks NAME` shows a task's params in full")
    if not len(registry):
        click.echo("no tasks: enable the pipeline or demo tasks, or list yours in JOBRUNNER_TASKS")


def _show_one(d: dict[str, Any]) -> None:
    click.echo(f"{d['name']}: {d['description']}")
    click.echo(f"  queue {d['queue']} · timeout {d['timeout_seconds']:g}s")
    click.echo(f"  params: {params_line(d['params_schema'])}")
    click.echo("params schema (JSON Schema):")
    click.echo(pretty(d["params_schema"]))
