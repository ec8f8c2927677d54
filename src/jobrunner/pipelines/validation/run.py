"""validate_csv_file and correct_csv_file: a file streamed through compiled checks and fixes.

Memory stays bounded: the input's bounds are checked first (sniff), the file is read in
batches of about ``BATCH_BYTES`` (so a wide file gets fewer rows a batch), and across batches
only the keys of ``unique`` columns are kept. Row numbers count records with the header as 1
(a record holding a quoted newline still counts once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.validation.checks import columns_read, compile_checks
from jobrunner.pipelines.validation.correct import Corrector
from jobrunner.pipelines.validation.findings import (
    KeyLedger,
    Tally,
    file_errors_of,
    findings_of,
)
from jobrunner.pipelines.validation.reading import (
    EXTRA,
    ROW,
    NotUtf8,
    batches,
    columns_of,
    header_mapping,
    scan,
)
from jobrunner.pipelines.validation.report_file import ReportFile
from jobrunner.pipelines.validation.rules import Ruleset
from jobrunner.pipelines.validation.screen import OK, STAGED, screened
from jobrunner.pipelines.validation.sniff import Sniffed, body_not_utf8, sniff

Progress = Callable[[float, str], None]
BATCH_ROWS = 250_000  # at most, a batch; fewer when rows are wide:
BATCH_BYTES = 64 * 1024 * 1024  # about this much CSV text a batch


class ValidationResult(BaseModel):
    ruleset: str
    total_rows: int
    valid_rows: int
    invalid_rows: int
    error_count: int
    errors_by_code: dict[str, int]
    errors_by_column: dict[str, int]
    sample_errors: list[dict[str, Any]]
    file_errors: list[dict[str, Any]]
    report_path: str
    corrected_path: str | None = None
    changelog_path: str | None = None
    changes: int = 0
    changes_by_column: dict[str, int] = {}
    encoding: str
    delimiter: str
    columns: dict[str, str]
    duration_ms: int


@dataclass(frozen=True)
class Outputs:
    """Where a run writes: the error report, and with auto-fix the corrected file and log;
    ``guard``: formula-like cells in all of them are neutralised (see formulas.py)."""

    report: Path
    corrected: Path | None = None
    changelog: Path | None = None
    guard: bool = True


def validate_csv_file(
    input_path: Path,
    *,
    ruleset: Ruleset,
    report_path: Path,
    category: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    auto_fix: bool = False,
    corrected_path: Path | None = None,
    changelog_path: Path | None = None,
    on_progress: Progress | None = None,
    batch_rows: int | None = None,
    limits: InputLimits | None = None,
    formula_guard: bool = True,
) -> ValidationResult:
    """Check every row of ``input_path`` against ``ruleset``; the full report goes to a CSV.

    With ``auto_fix`` the fixes are applied first (the same code as correct_csv_file), the
    corrected file and change log are written, and the findings describe the corrected rows.
    The input may be gzip, zip or zstd; ``limits`` bound it (see sniff for the error codes).
    """
    if auto_fix and (corrected_path is None or changelog_path is None):
        raise ValueError("auto_fix needs corrected_path and changelog_path")
    outputs = Outputs(
        report_path,
        corrected_path if auto_fix else None,
        changelog_path if auto_fix else None,
        formula_guard,
    )
    started = time.perf_counter()
    work_dir = report_path.parent
    sniffed = sniff(input_path, work_dir, encoding=encoding, delimiter=delimiter, limits=limits)
    rows = batch_rows or min(BATCH_ROWS, max(100, int(BATCH_BYTES / sniffed.row_bytes)))

    def run(sniffed: Sniffed) -> tuple[Tally, dict[str, str], Corrector | None]:
        with ExitStack() as stack:
            return _stream(sniffed, ruleset, category, outputs, rows, on_progress, stack)

    try:
        tally, mapping, corrector = run(sniffed)
    except NotUtf8:  # start over, outputs rewritten; read lossy or transcoded, it cannot again
        if encoding:  # the caller said UTF-8: keep it, bad bytes become U+FFFD
            sniffed = replace(sniffed, lossy=True)
        else:
            sniffed = body_not_utf8(sniffed, sniffed.path, work_dir)
        tally, mapping, corrector = run(sniffed)
    present = set(mapping.values())
    file_errors = file_errors_of(ruleset, present, category) + _row_limit(ruleset, tally.rows)
    return _result(ruleset, tally, file_errors, sniffed, mapping, outputs, corrector, started)


def _stream(
    sniffed: Sniffed,
    ruleset: Ruleset,
    category: str | None,
    outputs: Outputs,
    batch_rows: int,
    on_progress: Progress | None,
    stack: ExitStack,
) -> tuple[Tally, dict[str, str], Corrector | None]:
    lf = scan(sniffed)
    mapping = header_mapping(columns_of(lf), ruleset)
    present = list(mapping.values())
    checks = compile_checks(ruleset, {*present, EXTRA}, category)
    corrector = None
    unique = [c for c in present if c in ruleset.columns and ruleset.columns[c].unique]
    if outputs.corrected is not None and outputs.changelog is not None:
        out = stack.enter_context(outputs.corrected.open("w", encoding="utf-8", newline=""))
        log = stack.enter_context(outputs.changelog.open("w", encoding="utf-8", newline=""))
        corrector = Corrector(ruleset, present, out, log, guard=outputs.guard)
        unique = []  # the corrector drops duplicates instead of reporting them
    keys = KeyLedger(unique)
    handle = stack.enter_context(outputs.report.open("w", encoding="utf-8", newline=""))
    report = ReportFile(outputs.report, handle, guard=outputs.guard)

    def screen(frame: pl.LazyFrame) -> pl.LazyFrame:
        return screened(frame, ruleset, {*present, EXTRA}, category, keys=unique)

    if corrector is None:  # one lazy plan: reading and the screen stream in parallel
        # only the columns the rules read are turned into strings (exports carry many more)
        frame = lf.rename(mapping).select(ROW, EXTRA, *columns_read(ruleset, present, category))
        stream = batches(screen(frame), {}, batch_rows)
    else:  # fixes hold state (duplicates, change log), so the screen follows batch by batch
        stream = (
            screen(corrector.apply(batch).lazy()).collect()
            for batch in batches(lf, mapping, batch_rows)
        )
    estimate = sniffed.estimated_rows
    tally = Tally()
    pending: list[pl.DataFrame] = []  # rows the screen did not clear, not yet checked

    def check_pending() -> None:
        if pending:
            errors = findings_of(pl.concat(pending).lazy(), ruleset, checks)
            report.add(errors)
            tally.add(errors)
            pending.clear()

    for rows in stream:
        pending.append(rows.select(pl.exclude(STAGED)).filter(~pl.col(OK)))
        # the full checks run on many suspects at once: a plan per batch costs more than
        # the checks on a clean file's few bad rows
        if sum(p.height for p in pending) >= batch_rows // 4:
            check_pending()
        keys.add(rows)
        tally.rows += rows.height
        if on_progress is not None:
            on_progress(min(tally.rows / estimate, 1.0), f"{tally.rows} rows checked")
    check_pending()
    duplicates = keys.duplicates()
    tally.add_late(duplicates)
    report.finish(duplicates)
    return tally, mapping, corrector


def _row_limit(ruleset: Ruleset, rows: int) -> list[dict[str, Any]]:
    limit = ruleset.file.max_rows
    if limit is None or rows <= limit:
        return []
    message = f"the file has {rows} rows; at most {limit} are allowed"
    return [
        {"row": 1, "column": "*", "code": "too_many_rows", "message": message, "value": str(rows)}
    ]


def _result(
    ruleset: Ruleset,
    tally: Tally,
    file_errors: list[dict[str, Any]],
    sniffed: Sniffed,
    mapping: dict[str, str],
    outputs: Outputs,
    corrector: Corrector | None,
    started: float,
) -> ValidationResult:
    invalid = tally.rows if file_errors else tally.invalid  # a missing column spoils every row
    for error in file_errors:
        tally.by_code[error["code"]] += 1
        tally.by_column[error["column"]] += 1
    return ValidationResult(
        ruleset=ruleset.name,
        total_rows=tally.rows,
        valid_rows=tally.rows - invalid,
        invalid_rows=invalid,
        error_count=tally.errors + len(file_errors),
        errors_by_code=dict(tally.by_code),
        errors_by_column=dict(tally.by_column),
        sample_errors=tally.samples,
        file_errors=file_errors,
        report_path=str(outputs.report),
        corrected_path=str(outputs.corrected) if corrector else None,
        changelog_path=str(outputs.changelog) if corrector else None,
        changes=sum(corrector.changes.values()) if corrector else 0,
        changes_by_column=dict(corrector.changes) if corrector else {},
        encoding=sniffed.encoding,
        delimiter=sniffed.delimiter,
        columns={k: v for k, v in mapping.items() if k != v},
        duration_ms=int((time.perf_counter() - started) * 1000),
    )


def correct_csv_file(
    input_path: Path,
    *,
    ruleset: Ruleset,
    corrected_path: Path,
    changelog_path: Path,
    report_path: Path,
    category: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    on_progress: Progress | None = None,
    batch_rows: int | None = None,
    limits: InputLimits | None = None,
    formula_guard: bool = True,
) -> ValidationResult:
    """Apply the ruleset's fixes; the result also says what is still wrong afterwards."""
    return validate_csv_file(
        input_path,
        ruleset=ruleset,
        report_path=report_path,
        category=category,
        delimiter=delimiter,
        encoding=encoding,
        auto_fix=True,
        corrected_path=corrected_path,
        changelog_path=changelog_path,
        on_progress=on_progress,
        batch_rows=batch_rows,
        limits=limits,
        formula_guard=formula_guard,
    )
