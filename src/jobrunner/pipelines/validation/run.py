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
    """Check every row of ``input_path`` (plain, gzip, zip or zstd; bounded by ``limits``, see
    sniff) against ``ruleset``; the full report goes to a CSV. With ``auto_fix`` the fixes are
    applied first, the corrected file and change log written, and the findings describe the
    corrected rows."""
    if auto_fix and (corrected_path is None or changelog_path is None):
        raise ValueError("auto_fix needs corrected_path and changelog_path")
    fixed = (corrected_path, changelog_path) if auto_fix else (None, None)
    outputs = Outputs(report_path, *fixed, formula_guard)
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
        sniffed = _after_bad_byte(sniffed, encoding, work_dir)
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
    corrector = _corrector(ruleset, present, outputs, stack)
    unique = [c for c in present if c in ruleset.columns and ruleset.columns[c].unique]
    unique = [] if corrector else unique  # the corrector drops duplicates, not reports them
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
        fixed = (corrector.apply(batch).lazy() for batch in batches(lf, mapping, batch_rows))
        stream = (screen(batch).collect() for batch in fixed)
    checker = _Checker(ruleset, checks, report, keys, batch_rows)
    for rows in stream:
        checker.add(rows)
        if on_progress is not None:
            done = checker.tally.rows
            on_progress(min(done / sniffed.estimated_rows, 1.0), f"{done} rows checked")
    tally = checker.finish()
    return tally, mapping, corrector


def _after_bad_byte(sniffed: Sniffed, encoding: str | None, work_dir: Path) -> Sniffed:
    """The caller said UTF-8: keep it, bad bytes become U+FFFD; else decide on the body."""
    if encoding:
        return replace(sniffed, lossy=True)
    return body_not_utf8(sniffed, sniffed.path, work_dir)


class _Checker:
    """Screened batches in; the full checks on the rows the screen did not clear, run on
    many such rows at once (a plan per batch costs more than a clean file's few bad rows)."""

    def __init__(
        self, ruleset: Ruleset, checks: list[Any], report: ReportFile, keys: KeyLedger, rows: int
    ) -> None:
        self.ruleset, self.checks, self.report, self.keys = ruleset, checks, report, keys
        self.threshold = rows // 4
        self.tally = Tally()
        self.pending: list[pl.DataFrame] = []  # rows the screen did not clear, not yet checked

    def add(self, rows: pl.DataFrame) -> None:
        self.pending.append(rows.select(pl.exclude(STAGED)).filter(~pl.col(OK)))
        if sum(p.height for p in self.pending) >= self.threshold:
            self._check_pending()
        self.keys.add(rows)
        self.tally.rows += rows.height

    def finish(self) -> Tally:
        self._check_pending()
        duplicates = self.keys.duplicates()
        self.tally.add_late(duplicates)
        self.report.finish(duplicates)
        return self.tally

    def _check_pending(self) -> None:
        if self.pending:
            errors = findings_of(pl.concat(self.pending).lazy(), self.ruleset, self.checks)
            self.report.add(errors)
            self.tally.add(errors)
            self.pending.clear()


def _corrector(
    ruleset: Ruleset, present: list[str], outputs: Outputs, stack: ExitStack
) -> Corrector | None:
    if outputs.corrected is None or outputs.changelog is None:
        return None
    out = stack.enter_context(outputs.corrected.open("w", encoding="utf-8", newline=""))
    log = stack.enter_context(outputs.changelog.open("w", encoding="utf-8", newline=""))
    return Corrector(ruleset, present, out, log, guard=outputs.guard)


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
