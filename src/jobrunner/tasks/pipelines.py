"""Pipeline tasks: thin async adapters over the pure code in ``jobrunner.pipelines``.

Heavy work runs in child processes of a pool that :class:`PipelineTasks` owns (created with
it, ended by its ``close``, which the worker's registry calls at stop), each call under the
job's memory and CPU caps and stopped for real when the job goes (see offload.py). Small
PDFs are read in a thread of the worker, where a child would cost more than the document.
Outputs go to the blob store and the result carries their refs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jobrunner.context import JobContext
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.report import ReportResult, ReportSpec, build_report
from jobrunner.pipelines.rows import count_rows
from jobrunner.pipelines.validation.rules import load_ruleset
from jobrunner.pipelines.validation.run import ValidationResult, validate_csv_file
from jobrunner.registry import Task, task
from jobrunner.settings import Settings
from jobrunner.tasks import pdf_job
from jobrunner.tasks.fetch import fetch_to_file
from jobrunner.tasks.inputs import input_path, scratch_dir
from jobrunner.tasks.offload import Caps, run_in_child
from jobrunner.tasks.pipeline_params import (
    ConnectorParams,
    CsvParams,
    PdfParams,
    ReportParams,
    ValidateParams,
)
from jobrunner.tasks.pool import ProcessPool

__all__ = ["PipelineTasks", "input_limits"]

LONG = 6 * 3600


def input_limits(settings: Settings) -> InputLimits:
    return InputLimits(
        max_decompressed_bytes=settings.input_max_decompressed_bytes,
        max_columns=settings.csv_max_columns,
        max_line_bytes=settings.csv_max_line_bytes,
        pdf_max_pages=settings.pdf_max_pages,
        pdf_max_stream_bytes=settings.pdf_max_stream_bytes,
    )


class PipelineTasks:
    """The pipeline tasks and the child-process pool they share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ProcessPool(settings.pipeline_processes or min(2, os.cpu_count() or 1))
        self.limits = input_limits(settings)

    def tasks(self) -> tuple[Task[Any], ...]:
        return (
            task("validate_csv", timeout=1800, max_timeout=LONG)(self.validate_csv),
            task("correct_csv", timeout=1800, max_timeout=LONG)(self.correct_csv),
            task("process_pdf", timeout=900, max_timeout=LONG)(self.process_pdf),
            task("generate_report", timeout=900, max_timeout=LONG)(self.generate_report),
            task("sync_connector", timeout=600)(self.sync_connector),
        )

    async def close(self) -> None:
        """End the pool's processes (the worker calls this once no job uses them)."""
        await self.pool.close()

    def caps(self, ctx: JobContext) -> Caps:
        s = self.settings
        return Caps.for_job(ctx, s.pipeline_memory_mb, s.pipeline_stop_grace_seconds)

    async def validate_csv(self, ctx: JobContext, params: ValidateParams) -> dict[str, Any]:
        """Check a product catalog CSV against a ruleset's rules (optionally fixing it)."""
        return await self._check_csv(ctx, params, fix=params.auto_fix)

    async def correct_csv(self, ctx: JobContext, params: CsvParams) -> dict[str, Any]:
        """Apply a ruleset's fixes: a corrected CSV, a change log and what is still wrong."""
        return await self._check_csv(ctx, params, fix=True)

    async def _check_csv(self, ctx: JobContext, params: CsvParams, *, fix: bool) -> dict[str, Any]:
        source = await input_path(ctx, params.input_uri)
        user_dir = self.settings.rulesets_dir
        ruleset = await asyncio.to_thread(load_ruleset, params.ruleset_name, None, user_dir)
        async with scratch_dir() as tmp:
            result: ValidationResult = await run_in_child(
                ctx,
                self.pool,
                validate_csv_file,
                self.caps(ctx),
                input_path=source,
                ruleset=ruleset,
                report_path=tmp / "errors.csv",
                category=params.category,
                delimiter=params.delimiter,
                encoding=params.encoding,
                auto_fix=fix,
                corrected_path=tmp / "corrected.csv",
                changelog_path=tmp / "changes.csv",
                limits=self.limits,
                formula_guard=self.settings.csv_formula_guard,
            )
            refs = {"report_ref": await ctx.blobs.put_file(tmp / "errors.csv")}
            if fix:
                refs["corrected_ref"] = await ctx.blobs.put_file(tmp / "corrected.csv")
                refs["changelog_ref"] = await ctx.blobs.put_file(tmp / "changes.csv")
        paths = {"report_path", "corrected_path", "changelog_path"}
        return {**result.model_dump(mode="json", exclude=paths), **refs}

    async def process_pdf(self, ctx: JobContext, params: PdfParams) -> dict[str, Any]:
        """Page count, metadata, outline, text per page and chunks of a PDF (pdfium, and
        pypdf for files pdfium refuses)."""
        source = await input_path(ctx, params.input_uri)
        async with scratch_dir() as tmp:
            job = pdf_job.PdfJob(
                source,
                params.password,
                params.max_pages,
                params.chunk_chars,
                tmp / "pages.jsonl",
                tmp / "chunks.jsonl",
            )
            result = await pdf_job.extract(
                ctx,
                self.pool,
                job,
                caps=self.caps(ctx),
                limits=self.limits,
                processes=self.settings.pdf_processes,
            )
            pages_ref = await ctx.blobs.put_file(tmp / "pages.jsonl")
            chunks_ref = await ctx.blobs.put_file(tmp / "chunks.jsonl")
        summary = result.model_dump(mode="json", exclude={"pages_out", "chunks_out"})
        return {**summary, "pages_ref": pages_ref, "chunks_ref": chunks_ref}

    async def generate_report(self, ctx: JobContext, params: ReportParams) -> dict[str, Any]:
        """Group, aggregate and filter a table (polars lazy frames) into json, csv or parquet;
        CSV inputs are read as validate_csv reads them."""
        source = await input_path(ctx, params.input_uri)
        spec = ReportSpec.model_validate(params.model_dump(exclude={"input_uri"}))
        await ctx.progress(5, "building report")
        async with scratch_dir() as tmp:
            out = tmp / f"report.{spec.format}"
            result: ReportResult = await run_in_child(
                ctx,
                self.pool,
                build_report,
                self.caps(ctx),
                progress=None,
                input_path=source,
                spec=spec,
                out_path=out,
                limits=self.limits,
                formula_guard=self.settings.csv_formula_guard,
            )
            report_ref = await ctx.blobs.put_file(out)
        return {**result.model_dump(mode="json", exclude={"out_path"}), "report_ref": report_ref}

    async def sync_connector(self, ctx: JobContext, params: ConnectorParams) -> dict[str, Any]:
        """Stream a remote CSV/JSON file (plain, gzip, zip or zstd) into the store; returns
        its upload:// uri and row count."""
        settings = ctx.settings or self.settings
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
            rows = await self._count_rows(ctx, dest, params, tmp)
            uri = await ctx.blobs.put_file(dest, scheme="upload")
        return {"uri": uri, "rows": rows, **fetched.model_dump(mode="json")}

    async def _count_rows(
        self, ctx: JobContext, dest: Path, params: ConnectorParams, tmp: Path
    ) -> int:
        work = tmp / "count"
        await asyncio.to_thread(work.mkdir)
        rows: int = await run_in_child(
            ctx,
            self.pool,
            count_rows,
            self.caps(ctx),
            progress=None,
            path=dest,
            format=params.format,
            work_dir=work,
            limits=self.limits,
        )
        return rows
