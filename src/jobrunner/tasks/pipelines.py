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
from jobrunner.pipelines.pdf import close_pdf_pool, extract_pdf
from jobrunner.pipelines.report import ReportSpec, build_report
from jobrunner.pipelines.rows import count_rows
from jobrunner.pipelines.validation.rules import load_ruleset
from jobrunner.pipelines.validation.run import ValidationResult, validate_csv_file
from jobrunner.registry import Task, task
from jobrunner.tasks.fetch import fetch_to_file
from jobrunner.tasks.inputs import in_thread, input_path, percent_reporter, scratch_dir


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
    processes = ctx.settings.pdf_processes if ctx.settings else 0
    async with scratch_dir() as tmp:
        result = await in_thread(
            ctx,
            extract_pdf,
            source,
            password=params.password,
            max_pages=params.max_pages,
            pages_out=tmp / "pages.jsonl",
            chunks_out=tmp / "chunks.jsonl",
            chunk_chars=params.chunk_chars,
            on_progress=percent_reporter(ctx, 0, 95),
            processes=processes,
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


class CsvParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_uri: str
    marketplace: str = Field(default="default", pattern=r"^[a-z0-9_]{1,64}$")
    category: str | None = Field(default=None, max_length=100)
    ruleset: str = Field(default="default", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    encoding: Literal["utf-8", "utf-8-sig", "cp1252", "latin-1"] | None = None


class ValidateParams(CsvParams):
    auto_fix: bool = False


async def _check_csv(ctx: JobContext, params: CsvParams, *, fix: bool) -> dict[str, Any]:
    """Validate (and with ``fix`` correct) in a thread; report files go to the blob store."""
    source = await input_path(ctx, params.input_uri)
    user_dir = ctx.settings.rulesets_dir if ctx.settings else None
    ruleset = await asyncio.to_thread(load_ruleset, params.ruleset, params.marketplace, user_dir)
    async with scratch_dir() as tmp:
        result: ValidationResult = await in_thread(
            ctx,
            validate_csv_file,
            source,
            ruleset=ruleset,
            report_path=tmp / "errors.csv",
            category=params.category,
            delimiter=params.delimiter,
            encoding=params.encoding,
            auto_fix=fix,
            corrected_path=tmp / "corrected.csv",
            changelog_path=tmp / "changes.csv",
            on_progress=percent_reporter(ctx, 0, 95),
        )
        refs = {"report_ref": await ctx.blobs.put_file(tmp / "errors.csv")}
        if fix:
            refs["corrected_ref"] = await ctx.blobs.put_file(tmp / "corrected.csv")
            refs["changelog_ref"] = await ctx.blobs.put_file(tmp / "changes.csv")
    paths = {"report_path", "corrected_path", "changelog_path"}
    return {**result.model_dump(mode="json", exclude=paths), **refs}


@task("validate_csv", timeout=1800, max_timeout=6 * 3600)
async def validate_csv(ctx: JobContext, params: ValidateParams) -> dict[str, Any]:
    """Check a product catalog CSV against a marketplace's rules (optionally fixing it)."""
    return await _check_csv(ctx, params, fix=params.auto_fix)


@task("correct_csv", timeout=1800, max_timeout=6 * 3600)
async def correct_csv(ctx: JobContext, params: CsvParams) -> dict[str, Any]:
    """Apply a ruleset's fixes: a corrected CSV, a change log and what is still wrong."""
    return await _check_csv(ctx, params, fix=True)


PIPELINE_TASKS: tuple[Task[Any], ...] = (
    validate_csv,
    correct_csv,
    process_pdf,
    generate_report,
    sync_connector,
)


async def close_pipeline_resources() -> None:
    """Stop what the pipelines keep between jobs: the PDF process pool (its shutdown waits
    for the processes, so off the event loop)."""
    await asyncio.to_thread(close_pdf_pool)
