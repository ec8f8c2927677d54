"""Functions the pool tests run in child processes (children import them by name)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import polars as pl

from jobrunner.errors import PermanentError

Progress = Callable[[float, str | None], None]


def whoami(on_progress: Progress) -> int:
    on_progress(0.5, "half way")
    on_progress(1.0, "done")
    return os.getpid()


def steps_until_stopped(on_progress: Progress) -> int:
    """Reports progress forever (a cooperative pipeline): only a stop ends it."""
    pause = threading.Event()
    step = 0
    while True:
        step += 1
        on_progress(min(step / 1e6, 1.0), f"step {step}")
        pause.wait(0.01)


def busy_without_reports(on_progress: Progress) -> None:
    """Never reports (like one long polars batch): a stop cannot reach it."""
    threading.Event().wait(600)


def refuses(on_progress: Progress) -> None:
    raise PermanentError("not this input", code="bad_input", row=7)


def breaks(on_progress: Progress) -> None:
    raise KeyError("surprise")


def allocates_in_python(on_progress: Progress, megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def allocates_in_polars(on_progress: Progress, rows: int) -> int:
    """Rust allocations: past RLIMIT_AS they abort the process (no MemoryError)."""
    frame = pl.select(pl.int_range(0, rows).cast(pl.String) + "x" * 200)
    return frame.height


def dies(on_progress: Progress) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def echo(on_progress: Progress, **values: object) -> dict[str, object]:
    """Its kwargs back, as the child received them (what crossed, both ways)."""
    return {"types": {k: type(v).__name__ for k, v in values.items()}, "values": values}


def returns_bytes(on_progress: Progress) -> bytes:
    return b"not JSON"


def refuses_with_odd_details(on_progress: Progress) -> None:
    raise PermanentError("not this input", code="bad_input", rows={1, 2})
