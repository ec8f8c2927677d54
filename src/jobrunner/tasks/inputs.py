"""Where pipeline inputs come from and outputs go: the blob store (and, if allowed, files)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlparse

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from jobrunner.context import JobContext
from jobrunner.errors import BlobNotFoundError, PermanentError

T = TypeVar("T")
STOP_WAIT = 5.0  # seconds a stopped pipeline thread gets to notice and finish
_SCHEMES = ("blob://", "upload://", "file://")


def _refuse_unreadable(uri: str) -> str:
    """At enqueue (params validation), not in the worker: a plain local path names a file on
    the client's machine, which the worker may not share; the blob store is what both see."""
    if uri.startswith(_SCHEMES):
        return uri
    if "://" not in uri:
        why = (
            "{uri} is a local path; workers read inputs from the blob store: run "
            "`jobrunner upload {uri}` (or POST the file to /api/v1/uploads) and pass the "
            "upload:// uri you get back"
        )
        raise PydanticCustomError("local_path", why, {"uri": uri})
    if uri.startswith(("http://", "https://")):
        why = (
            "{uri} is remote: the sync_connector task fetches it into the blob store and "
            "returns the upload:// uri to give here"
        )
        raise PydanticCustomError("remote_input", why, {"uri": uri})
    why = "input_uri must be upload://, blob:// or file://, not {uri}"
    raise PydanticCustomError("input_uri_scheme", why, {"uri": uri})


InputUri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="An upload:// or blob:// ref (`jobrunner upload FILE` prints one); file:// "
        "only where JOBRUNNER_ALLOW_FILE_INPUTS is on.",
    ),
    AfterValidator(_refuse_unreadable),
]


async def input_path(ctx: JobContext, uri: str) -> Path:
    """A local path for ``blob://``, ``upload://`` or (when allowed) ``file://`` inputs."""
    if uri.startswith(("blob://", "upload://")):
        try:
            return await ctx.blobs.local_path(uri)
        except BlobNotFoundError as exc:
            raise PermanentError(f"input {uri} does not exist", code="input_not_found") from exc
    if uri.startswith("file://"):
        if not (ctx.settings and ctx.settings.allow_file_inputs):
            raise PermanentError(
                "file:// inputs are disabled (JOBRUNNER_ALLOW_FILE_INPUTS)",
                code="input_not_allowed",
            )
        path = Path(unquote(urlparse(uri).path))
        if not await asyncio.to_thread(path.is_file):
            raise PermanentError(f"input {uri} does not exist", code="input_not_found")
        return path
    raise PermanentError(
        f"input_uri must be blob://, upload:// or file://, not {uri!r}", code="input_uri_invalid"
    )


@contextlib.asynccontextmanager
async def scratch_dir() -> AsyncIterator[Path]:
    """A private temporary folder for one run's outputs, removed afterwards."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="jobrunner-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


class PipelineStopped(Exception):
    """Raised in a pipeline's thread, at its next progress report, once its job has gone
    (cancelled, timed out, or the worker shutting down)."""


def percent_reporter(
    ctx: JobContext, start: float = 0.0, end: float = 100.0
) -> Callable[..., None]:
    """A thread-safe callback for pure pipeline code reporting a 0..1 fraction. It is also
    where that code learns that its job has gone: the call raises PipelineStopped."""

    def report(fraction: float, message: str | None = None) -> None:
        if ctx.cancel_token.is_set():
            raise PipelineStopped(f"job {ctx.job_id} stopped")
        ctx.progress_threadsafe(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


async def in_thread(ctx: JobContext, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread. If the job goes meanwhile, the thread is told (see
    percent_reporter) and given ``STOP_WAIT`` seconds to finish before the cancellation goes
    on, so that the scratch files it writes are not removed under it."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        ctx.cancel_token.set()
        await asyncio.wait({work}, timeout=STOP_WAIT)
        if work.done() and not work.cancelled():
            work.exception()  # retrieved: a PipelineStopped here is the expected end
        raise
