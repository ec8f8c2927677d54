"""A pipeline call run in a child process for a job: progress relayed, stopped for real.

When the job goes (cancelled, timed out, worker shutting down) the child is asked to stop
at its next progress report and given ``stop_grace`` seconds; a child still busy then (one
batch inside polars can run for minutes) is killed, and the pool starts a fresh one for the
next job. A child that meets its memory cap fails the job with ``input_too_large``
(permanent: another try would meet it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from jobrunner.context import JobContext
from jobrunner.errors import PermanentError, TransientError
from jobrunner.tasks.child import Call
from jobrunner.tasks.inputs import percent_reporter
from jobrunner.tasks.pool import Child, ChildLost, ProcessPool
from jobrunner.tasks.wire import from_wire, function_ref

__all__ = ["Caps", "ChildCrashed", "call_in", "run_in_child"]

log = structlog.get_logger("jobrunner.pool")
# What Rust, C++, C and Python print when an allocation fails (Rust and C++ then abort).
_ALLOCATION_FAILED = (
    "memory allocation of",
    "bad_alloc",
    "MemoryError",
    "Cannot allocate memory",
    "out of memory",
)


class ChildCrashed(Exception):
    """An unexpected exception inside a child: recorded with its type, and worth another try."""


@dataclass(frozen=True)
class Caps:
    """Per-call limits in the child and how long a stop may take."""

    memory_bytes: int | None
    cpu_seconds: int | None
    stop_grace: float

    @classmethod
    def for_job(cls, ctx: JobContext, memory_mb: int, stop_grace: float) -> Caps:
        """CPU time: the job's timeout on every core, plus slack; it only backs up the
        wall-clock timeout, for a child that would outlive its parent's watch."""
        settings = ctx.settings
        timeout = ctx.timeout_seconds or (settings.max_timeout_seconds if settings else 3600.0)
        cpu = math.ceil(timeout * (os.cpu_count() or 1)) + 10
        return cls(memory_mb * 1024 * 1024 if memory_mb else None, cpu, stop_grace)


async def run_in_child(
    ctx: JobContext,
    pool: ProcessPool,
    fn: Callable[..., Any],
    caps: Caps,
    *,
    lost_code: str = "pipeline_worker_lost",
    progress: tuple[float, float] | None = (0.0, 95.0),
    **kwargs: Any,
) -> Any:
    """``fn(**kwargs)`` in a child of ``pool`` (with ``on_progress=`` mapped onto the job's
    ``progress`` span unless that is None); its return value, or its TaskError raised again
    here. ``fn`` goes by name and must be a module-level function of a module the pool
    allows; kwargs and the value cross as JSON (WireError for one with no codec)."""
    ref = function_ref(fn)
    call = Call(ref, kwargs, caps.memory_bytes, caps.cpu_seconds, progress=progress is not None)
    child = await pool.acquire()
    assert child is not None  # acquire() waits for one
    try:
        span = progress or (0.0, 95.0)
        return await call_in(ctx, child, call, caps, lost_code=lost_code, progress=span)
    finally:
        pool.release(child)


async def call_in(
    ctx: JobContext,
    child: Child,
    call: Call,
    caps: Caps,
    *,
    lost_code: str,
    progress: tuple[float, float] = (0.0, 95.0),
) -> Any:
    """One call in an acquired ``child``, stopped (then killed) if the job goes."""
    report = percent_reporter(ctx, *progress)
    work = asyncio.ensure_future(child.call(call, lambda f, m: _relay(report, f, m)))
    try:
        reply = await asyncio.shield(work)
    except asyncio.CancelledError:
        ctx.cancel_token.set()
        stopping = asyncio.ensure_future(_stop(child, work, caps.stop_grace))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(stopping)  # cancelled again: the stop still runs to its end
        raise
    except ChildLost:
        raise await _lost(child, lost_code) from None
    return _outcome(reply, child, lost_code)


def _relay(report: Callable[..., None], fraction: float, message: str | None) -> None:
    try:
        report(fraction, message)
    except Exception:  # the job has gone: cancellation is on its way to this task
        return


async def _stop(child: Child, work: asyncio.Future[Any], grace: float) -> None:
    child.stop()
    await asyncio.wait({work}, timeout=grace)
    if not work.done():
        log.info("pipeline process did not stop in time; killed", pid=child.pid, grace=grace)
        child.kill()
        await asyncio.wait({work})
    if not work.cancelled():
        work.exception()  # retrieved: ChildLost after a kill is the expected end


async def _lost(child: Child, lost_code: str) -> Exception:
    """Why a child died mid-call, as the job's error."""
    code = await child.exit_code()
    tail = await asyncio.to_thread(child.stderr_tail)
    why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    if any(marker in tail for marker in _ALLOCATION_FAILED):
        log.warning("pipeline process met its memory cap", pid=child.pid, ended_by=why)
        return PermanentError(
            "the input needs more memory than a job may use (JOBRUNNER_PIPELINE_MEMORY_MB)",
            code="input_too_large",
        )
    if code == -signal.SIGXCPU:
        return PermanentError(
            "the job used more CPU time than its timeout allows", code="cpu_limit_exceeded"
        )
    log.error("pipeline process died", pid=child.pid, ended_by=why, stderr=tail[-2000:])
    return TransientError(f"a pipeline process died ({why})", code=lost_code)


def _outcome(reply: list[Any], child: Child, lost_code: str) -> Any:
    kind = reply[0]
    if kind == "ok":
        return from_wire(reply[1])
    if kind == "error":
        _, retry, code, message, details = reply
        error = TransientError if retry == "transient" else PermanentError
        raise error(message, code=code, **from_wire(details))
    if kind == "memory":
        raise PermanentError(
            f"the input needs more memory than a job may use ({reply[1]})",
            code="input_too_large",
        )
    if kind == "crash":
        _, name, message, trace = reply
        log.error("pipeline call raised", pid=child.pid, error=f"{name}: {message}", trace=trace)
        raise ChildCrashed(f"{name}: {message}")
    raise TransientError(f"unexpected reply {kind!r} from a pipeline process", code=lost_code)
