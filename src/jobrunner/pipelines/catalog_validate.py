"""Public entry point: validate a marketplace catalog CSV against a ruleset.

Synchronous and CPU-bound (polars); the task adapter runs it in a thread, and
``on_progress`` may therefore be called from that worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobrunner.errors import PermanentError
from jobrunner.pipelines.catalog_rules import Ruleset
from jobrunner.pipelines.catalog_run import Options, Outcome, run

__all__ = ["ValidationResult", "validate_csv_file"]


class ValidationResult(BaseModel):
    """Counts, a sample of findings and where the full report (and fixes) went.

    ``row`` in findings is the line the record starts on, the header being line 1.
    """

    ruleset: str
    encoding: str
    delimiter: str
    decimal_comma: bool
    total_rows: int
    valid_rows: int
    invalid_rows: int
    error_count: int
    errors_by_code: dict[str, int]
    errors_by_column: dict[str, int]
    sample_errors: list[dict[str, Any]]
    report_path: str
    corrected_path: str | None = None
    changelog_path: str | None = None
    changes: int | None = None
    duration_ms: int


def validate_csv_file(
    input_path: Path,
    *,
    ruleset: Ruleset,
    category: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    auto_fix: bool = False,
    report_path: Path,
    corrected_path: Path | None = None,
    changelog_path: Path | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    batch_rows: int = 100_000,
) -> ValidationResult:
    """Check every row; with ``auto_fix`` the checks run on the corrected rows.

    Raises PermanentError: ``csv_empty``, ``csv_not_text``, ``csv_unreadable``,
    ``csv_encoding``, ``unknown_category``, ``fix_needs_output``.
    """
    if auto_fix and corrected_path is None:
        raise PermanentError("auto_fix needs a corrected_path", code="fix_needs_output")
    opts = Options(
        ruleset=ruleset,
        category=category,
        delimiter=delimiter,
        encoding=encoding,
        fix=auto_fix,
        work_dir=report_path.parent,
        report_path=report_path,
        corrected_path=corrected_path if auto_fix else None,
        changelog_path=changelog_path if auto_fix else None,
        on_progress=on_progress,
        batch_rows=batch_rows,
    )
    outcome = run(input_path, opts)
    if on_progress is not None:
        tally = outcome.tally
        on_progress(1.0, f"{tally.total_rows} rows checked, {tally.error_count} findings")
    return _result(outcome, opts)


def _result(outcome: Outcome, opts: Options) -> ValidationResult:
    tally, fixed = outcome.tally, opts.fix
    return ValidationResult(
        ruleset=opts.ruleset.name,
        encoding=outcome.sniffed.encoding,
        delimiter=outcome.sniffed.delimiter,
        decimal_comma=outcome.sniffed.decimal_comma,
        total_rows=tally.total_rows,
        valid_rows=tally.total_rows - tally.invalid_rows,
        invalid_rows=tally.invalid_rows,
        error_count=tally.error_count,
        errors_by_code=dict(tally.by_code),
        errors_by_column=dict(tally.by_column),
        sample_errors=tally.samples,
        report_path=str(opts.report_path),
        corrected_path=str(opts.corrected_path) if fixed else None,
        changelog_path=str(opts.changelog_path) if fixed and opts.changelog_path else None,
        changes=outcome.changes if fixed else None,
        duration_ms=outcome.duration_ms,
    )
