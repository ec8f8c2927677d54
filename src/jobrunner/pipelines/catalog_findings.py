"""Findings: counted per code and column, streamed to the report CSV, sampled for the result.

A batch's masks become findings with one vectorised filter per failing check; only the
findings (not the rows) are materialised, sorted by row, and appended to the report.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import IO, Any

import polars as pl

from jobrunner.pipelines.catalog_compile import Check

__all__ = ["MAX_SAMPLES", "REPORT_SCHEMA", "Tally"]

MAX_SAMPLES = 1000
REPORT_SCHEMA = {
    "row": pl.Int64,
    "column": pl.String,
    "code": pl.String,
    "message": pl.String,
    "value": pl.String,
}


class Tally:
    """Accumulates findings; owns the open report file until :meth:`close`."""

    def __init__(self, report_path: Path | None) -> None:
        self.report_path = report_path
        self._out: IO[bytes] | None = None
        if report_path is not None:
            self._out = report_path.open("wb")
            pl.DataFrame(schema=REPORT_SCHEMA).write_csv(self._out)
        self.total_rows = 0
        self.invalid_rows = 0
        self.by_code: Counter[str] = Counter()
        self.by_column: Counter[str] = Counter()
        self.samples: list[dict[str, Any]] = []

    @property
    def error_count(self) -> int:
        return sum(self.by_code.values())

    def file_finding(self, row: int, column: str, code: str, message: str, value: str) -> None:
        """A finding about the file as a whole (a missing column, too many rows)."""
        self._record(
            pl.DataFrame(
                {"row": [row], "column": [column], "code": [code], "message": [message]},
                schema={k: v for k, v in REPORT_SCHEMA.items() if k != "value"},
            ).with_columns(value=pl.lit(value, dtype=pl.String))
        )

    def add_batch(self, masks: pl.DataFrame, checks: list[Check], line: str) -> None:
        """``masks`` holds ``line``, the row number, then one boolean column per check,
        ``__m<i>``, and the value columns ``__v:<col>`` the checks refer to."""
        self.total_rows += masks.height
        names = [f"__m{i}" for i in range(len(checks))]
        if not names:
            return
        counts = masks.select(
            pl.any_horizontal(names).sum().alias("__any"), *(pl.col(n).sum() for n in names)
        ).row(0)
        self.invalid_rows += int(counts[0] or 0)
        parts = [
            self._findings(masks, check, name, line)
            for check, name, count in zip(checks, names, counts[1:], strict=True)
            if count
        ]
        if parts:
            self._record(pl.concat(parts).sort("row", maintain_order=True))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def _findings(self, masks: pl.DataFrame, check: Check, name: str, line: str) -> pl.DataFrame:
        value = (
            pl.lit(None, dtype=pl.String) if check.column == "*" else pl.col(f"__v:{check.column}")
        )
        return masks.filter(pl.col(name)).select(
            pl.col(line).cast(pl.Int64).alias("row"),
            pl.lit(check.column).alias("column"),
            pl.lit(check.code).alias("code"),
            pl.lit(check.message).alias("message"),
            value.alias("value"),
        )

    def _record(self, found: pl.DataFrame) -> None:
        if self._out is not None:
            found.write_csv(self._out, include_header=False)
        for key, counter in (("code", self.by_code), ("column", self.by_column)):
            for name, count in found.group_by(key).len().iter_rows():
                counter[name] += count
        room = MAX_SAMPLES - len(self.samples)
        if room > 0:
            self.samples.extend(found.head(room).to_dicts())
