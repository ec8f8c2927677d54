"""Workers: arq WorkerSettings, the multi-queue runner, the hooks that keep records true.

``WorkerSettings`` is built on first access, so importing this package reads no environment.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WorkerSettings"]


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        from jobrunner.settings import Settings
        from jobrunner.worker.build import arq_worker_settings

        return arq_worker_settings(Settings())
    raise AttributeError(name)
