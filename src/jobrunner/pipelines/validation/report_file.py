"""The error report file: every finding in row order, written as few times as possible."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import polars as pl

from jobrunner.pipelines.formulas import guard_frame
from jobrunner.pipelines.validation.findings import ERROR_SCHEMA

HOLD_ROWS = 500_000  # findings kept in memory before they are written (about 50 MB)


class ReportFile:
    """Findings arrive batch by batch in row order; duplicates only at the end.

    Up to ``HOLD_ROWS`` findings are held, so that the late ones are merged in memory and the
    file written once. Past that, findings are written as they come (memory stays bounded) and
    late ones are merged by a streamed rewrite of the file.
    """

    def __init__(self, path: Path, handle: IO[str], *, guard: bool = True) -> None:
        self.path = path
        self.handle = handle
        self.guard = guard  # neutralise formula-like values (see formulas.py)
        self.held: list[pl.DataFrame] = []
        self.held_rows = 0
        self.written = False
        handle.write(",".join(ERROR_SCHEMA) + "\n")

    def add(self, findings: pl.DataFrame) -> None:
        if findings.height:
            self.held.append(guard_frame(findings) if self.guard else findings)
            self.held_rows += findings.height
        if self.held_rows > HOLD_ROWS:
            self._write_held()

    def finish(self, late: pl.DataFrame) -> None:
        """Merge ``late`` findings (any row order) in and close the file."""
        if self.guard and late.height:
            late = guard_frame(late)
        if not self.written:
            frames = [*self.held, late] if late.height else self.held
            if frames:
                merged = pl.concat(frames).sort("row", maintain_order=True)
                merged.write_csv(self.handle, include_header=False)
            self.handle.close()
            return
        self._write_held()
        self.handle.close()
        if late.height:
            _merge_into(self.path, late)

    def _write_held(self) -> None:
        for frame in self.held:
            frame.write_csv(self.handle, include_header=False)
        self.held, self.held_rows, self.written = [], 0, True


def _merge_into(path: Path, late: pl.DataFrame) -> None:
    """Rewrite the report with ``late`` findings in row order."""
    merged = path.with_suffix(".merged.csv")
    written = pl.scan_csv(path, schema=ERROR_SCHEMA)
    pl.concat([written, late.lazy()]).sort("row", maintain_order=True).sink_csv(merged)
    merged.replace(path)
