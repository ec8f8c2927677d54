"""Pipeline tasks: thin async adapters over the pure code in ``jobrunner.pipelines``.

Heavy work runs in a thread (``asyncio.to_thread``) so the worker's event loop stays free;
outputs go to the blob store and the result carries their refs.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobrunner.context import JobContext
from jobrunner.errors import PermanentError
from jobrunner.pipelines.pdf import extract_pdf
from jobrunner.pipelines.report import ReportSpec, build_report
from jobrunner.pipelines.rows import count_rows
from jobrunner.registry import Task, task
from jobrunner.tasks.fetch import fetch_to_file
from jobrunner.tasks.inputs import input_path, percent_reporter, scratch_dir


class PdfParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_uri: str
    password: str | None = Field(default=None, max_length=1024)
    max_pages: int | None = Field(default=None, ge=1, le=100_000)
    chunk_chars: int = Field(default=2000, ge=100, le=100_000)


@task("process_pdf", timeout=900, max_timeout=6 * 3600)
async def process_pdf(ctx: JobContext, params: PdfParams) -> dict[str, Any]:
    """Page count, metadata, outline, text per page and chunks of a PDF (pdfium)."""
    source = await input_path(ctx, params.input_uri)
    async with scratch_dir() as tmp:
        result = await asyncio.to_thread(
            extract_pdf,
            source,
            password=params.password,
            max_pages=params.max_pages,
            pages_out=tmp / "pages.jsonl",
            chunks_out=tmp / "chunks.jsonl",
            chunk_chars=params.chunk_chars,
            on_progress=percent_reporter(ctx, 0, 95),
        )
        pages_ref = await ctx.blobs.put_file(tmp / "pages.jsonl")
        chunks_ref = await ctx.blobs.put_file(tmp / "chunks.jsonl")
    summary = result.model_dump(mode="json", exclude={"pages_out", "chunks_out"})
    return {**summary, "pages_ref": pages_ref, "chunks_ref": chunks_ref}


class ReportParams(ReportSpec):
    input_uri: str


@task("generate_report", timeout=900, max_timeout=6 * 3600)
async def generate_report(ctx: JobContext, params: ReportParams) -> dict[str, Any]:
    """Group, aggregate and filter a table (polars lazy frames) into json, csv or parquet."""
    source = await input_path(ctx, params.input_uri)
    spec = ReportSpec.model_validate(params.model_dump(exclude={"input_uri"}))
    await ctx.progress(5, "building report")
    async with scratch_dir() as tmp:
        out = tmp / f"report.{spec.format}"
        result = await asyncio.to_thread(build_report, source, spec, out)
        report_ref = await ctx.blobs.put_file(out)
    return {**result.model_dump(mode="json", exclude={"out_path"}), "report_ref": report_ref}


class ConnectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096)
    format: Literal["csv", "json"] = "csv"
    headers: dict[str, str] = Field(default_factory=dict)


@task("sync_connector", timeout=600)
async def sync_connector(ctx: JobContext, params: ConnectorParams) -> dict[str, Any]:
    """Stream a remote CSV/JSON file into the store; returns its upload:// uri and row count."""
    settings = ctx.settings
    if settings is None:
        raise PermanentError("sync_connector needs worker settings", code="config_error")
    async with scratch_dir() as tmp:
        dest = tmp / f"download.{params.format}"
        await ctx.progress(1, "downloading")
        fetched = await fetch_to_file(
            params.url,
            dest,
            max_bytes=settings.connector_max_bytes,
            timeout=settings.connector_timeout_seconds,
            allow_private=settings.connector_allow_private,
            headers=params.headers,
        )
        await ctx.progress(80, "counting rows")
        rows = await asyncio.to_thread(count_rows, dest, params.format)
        uri = await ctx.blobs.put_file(dest, scheme="upload")
    return {"uri": uri, "rows": rows, **fetched.model_dump(mode="json")}


PIPELINE_TASKS: tuple[Task[Any], ...] = (process_pdf, generate_report, sync_connector)
