"""process_pdf's work: small documents in the worker, large ones split across children,
and the pypdf fallback always in a child (pure-Python parsing of a hostile file is where
time and memory can run away)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from jobrunner.context import JobContext
from jobrunner.errors import PermanentError
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf import (
    POOL_MIN_PAGES,
    PdfInfo,
    PdfResult,
    extract_pages,
    inspect_pdf,
    pdf_result,
)
from jobrunner.pipelines.pdf_fallback import extract_with_pypdf
from jobrunner.pipelines.pdf_pages import Page, PageWriter
from jobrunner.pipelines.pdf_ranges import ranges, read_range, release_kept
from jobrunner.tasks.child import Call
from jobrunner.tasks.inputs import in_thread, percent_reporter
from jobrunner.tasks.offload import Caps, call_in, run_in_child
from jobrunner.tasks.pool import Child, ProcessPool
from jobrunner.tasks.wire import function_ref

__all__ = ["PdfJob", "extract"]

LOST = "pdf_worker_lost"


@dataclass(frozen=True)
class PdfJob:
    """One document to extract and where its outputs go."""

    source: Path
    password: str | None
    max_pages: int | None
    chunk_chars: int
    pages_out: Path
    chunks_out: Path


async def extract(
    ctx: JobContext,
    pool: ProcessPool,
    job: PdfJob,
    *,
    caps: Caps,
    limits: InputLimits,
    processes: int,
) -> PdfResult:
    """pdfium first; a file it refuses (``pdf_corrupt``) goes to pypdf in a child."""
    try:
        info = await in_thread(
            ctx, inspect_pdf, job.source, job.pages_out.parent, job.password, job.max_pages, limits
        )
        if info.limit < POOL_MIN_PAGES:
            report = percent_reporter(ctx, 0, 95)
            args = (info, job.password, job.pages_out, job.chunks_out, job.chunk_chars, report)
            result: PdfResult = await in_thread(ctx, extract_pages, *args)
            return result
        return await _in_children(ctx, pool, job, info, caps, processes)
    except PermanentError as exc:
        if exc.code != "pdf_corrupt":
            raise
        ctx.log.info("pdfium refused the file; trying pypdf", reason=exc.message)
    fallback: PdfResult = await run_in_child(
        ctx,
        pool,
        extract_with_pypdf,
        caps,
        lost_code=LOST,
        path=job.source,
        password=job.password,
        max_pages=job.max_pages,
        pages_out=job.pages_out,
        chunks_out=job.chunks_out,
        chunk_chars=job.chunk_chars,
        limits=limits,
    )
    return fallback


async def _in_children(
    ctx: JobContext, pool: ProcessPool, job: PdfJob, info: PdfInfo, caps: Caps, processes: int
) -> PdfResult:
    """Page ranges read by up to ``processes`` children (as many as are free, at least one),
    written in page order by this process as they come back."""
    children = [await pool.acquire()]
    try:
        while len(children) < (processes or pool.size):
            extra = await pool.acquire(wait=False)
            if extra is None:
                break
            children.append(extra)
        return await _read_ranges(ctx, [c for c in children if c], job, info, caps)
    finally:
        for child in children:
            if child is not None:
                pool.release(child)


async def _read_ranges(
    ctx: JobContext, children: list[Child], job: PdfJob, info: PdfInfo, caps: Caps
) -> PdfResult:
    todo = ranges(info.limit, len(children))
    done: dict[int, asyncio.Future[list[Page]]] = {
        i: asyncio.get_running_loop().create_future() for i in range(len(todo))
    }
    queue = iter(range(len(todo)))

    async def serve(child: Child) -> None:
        for index in queue:
            start, stop = todo[index]
            kwargs = {"path": info.path, "password": job.password, "start": start, "stop": stop}
            call = Call(function_ref(read_range), {**kwargs, "chunk_chars": job.chunk_chars},
                        caps.memory_bytes, caps.cpu_seconds, progress=False)  # fmt: skip
            done[index].set_result(await call_in(ctx, child, call, caps, lost_code=LOST))
        release = Call(function_ref(release_kept), progress=False)
        await call_in(ctx, child, release, caps, lost_code=LOST)

    report = percent_reporter(ctx, 0, 95)
    writer = await asyncio.to_thread(PageWriter, job.pages_out, job.chunks_out, info.limit, report)
    try:
        async with asyncio.TaskGroup() as group:
            for child in children:
                group.create_task(serve(child))
            for index in range(len(todo)):
                pages = await done[index]
                await asyncio.to_thread(writer.write, pages)
                del done[index]
    except ExceptionGroup as failed:  # the first child's error is the job's (the rest follow it)
        raise failed.exceptions[0] from None
    finally:
        await asyncio.to_thread(writer.__exit__, None, None, None)
    return pdf_result(info, writer, job.pages_out, job.chunks_out)
