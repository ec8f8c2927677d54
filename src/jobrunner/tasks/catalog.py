"""Builds the Registry an entry point runs: the demo tasks if enabled, plus configured lists."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from jobrunner.errors import ConfigError
from jobrunner.registry import Registry, Task
from jobrunner.settings import Settings
from jobrunner.tasks.demo import DEMO_TASKS
from jobrunner.tasks.pipelines import PipelineTasks
from jobrunner.tasks.webhook import webhook_task


def import_tasks(spec: str) -> list[Task[Any]]:
    """'package.module:NAME' where NAME is a Task or an iterable of Tasks."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"task spec {spec!r} must look like 'package.module:NAME'")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load tasks {spec!r}: {exc}") from exc
    items = [value] if isinstance(value, Task) else list(value)
    if not all(isinstance(item, Task) for item in items):
        raise ConfigError(f"{spec!r} is not a Task or a list of Tasks")
    return items


def build_registry(settings: Settings, extra: Iterable[Task[Any]] = ()) -> Registry:
    # webhook delivery is always there: any job may carry a callback_url
    tasks: list[Task[Any]] = [webhook_task(settings)]
    tasks.extend(DEMO_TASKS if settings.demo_tasks else [])
    closers = []
    if settings.pipeline_tasks:  # they own a pool of child processes: closed with the registry
        pipelines = PipelineTasks(settings)
        tasks.extend(pipelines.tasks())
        closers.append(pipelines.close)
    for spec in settings.tasks:
        tasks.extend(import_tasks(spec))
    return Registry([*tasks, *extra], closers)
