"""Public entry point: correct a catalog CSV (same fixes as validate with auto_fix).

Writes the corrected CSV (UTF-8, ``,``, canonical column names) and a change log CSV
``row,column,before,after``; the header's renames are logged as row 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from jobrunner.pipelines.catalog_rules import Ruleset
from jobrunner.pipelines.catalog_run import Options, run

__all__ = ["CorrectionResult", "correct_csv_file"]


class CorrectionResult(BaseModel):
    rows: int  # records read (rows removed as duplicates included)
    changes: int
    changes_by_column: dict[str, int]
    corrected_path: str
    changelog_path: str
    duration_ms: int


def correct_csv_file(
    input_path: Path,
    *,
    ruleset: Ruleset,
    category: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    corrected_path: Path,
    changelog_path: Path,
    on_progress: Callable[[float, str], None] | None = None,
    batch_rows: int = 100_000,
) -> CorrectionResult:
    """Apply the ruleset's fixes; raises the same PermanentError codes as validation."""
    opts = Options(
        ruleset=ruleset,
        category=category,
        delimiter=delimiter,
        encoding=encoding,
        fix=True,
        work_dir=corrected_path.parent,
        report_path=None,
        corrected_path=corrected_path,
        changelog_path=changelog_path,
        on_progress=on_progress,
        batch_rows=batch_rows,
    )
    outcome = run(input_path, opts)
    rows = outcome.tally.total_rows + outcome.changes_by_column.get("*", 0)
    if on_progress is not None:
        on_progress(1.0, f"{rows} rows corrected, {outcome.changes} changes")
    return CorrectionResult(
        rows=rows,
        changes=outcome.changes,
        changes_by_column=dict(outcome.changes_by_column),
        corrected_path=str(corrected_path),
        changelog_path=str(changelog_path),
        duration_ms=outcome.duration_ms,
    )
