"""Findings of one run: errors per batch as frames, counts, samples and duplicate tracking."""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

import polars as pl

from jobrunner.pipelines.validation.checks import Check, required_columns
from jobrunner.pipelines.validation.parse import empty
from jobrunner.pipelines.validation.reading import ROW
from jobrunner.pipelines.validation.rules import Ruleset

MAX_SAMPLES = 1000
ERROR_SCHEMA = {
    "row": pl.UInt32,
    "column": pl.String,
    "code": pl.String,
    "message": pl.String,
    "value": pl.String,
}


class Tally:
    """Counts and samples gathered batch by batch."""

    def __init__(self) -> None:
        self.rows = 0
        self.invalid = 0
        self.errors = 0
        self.by_code: Counter[str] = Counter()
        self.by_column: Counter[str] = Counter()
        self.samples: list[dict[str, Any]] = []
        self.changes = 0

    def add(self, errors: pl.DataFrame) -> None:
        self.errors += errors.height
        self.invalid += errors["row"].n_unique() if errors.height else 0
        for code, n in errors.group_by("code").len().iter_rows():
            self.by_code[code] += n
        for column, n in errors.group_by("column").len().iter_rows():
            self.by_column[column] += n
        room = MAX_SAMPLES - len(self.samples)
        if room > 0:
            self.samples += errors.head(room).to_dicts()


class UniqueKeys:
    """Keys seen so far in each ``unique`` column, to find duplicates across batches."""

    def __init__(self, columns: list[str]) -> None:
        self.seen = {c: pl.Series(c, [], dtype=pl.String) for c in columns}

    def duplicates(self, batch: pl.DataFrame) -> dict[str, pl.Series]:
        found: dict[str, pl.Series] = {}
        for column, seen in self.seen.items():
            key = batch[column].str.strip_chars()
            filled = ~batch.select(empty(pl.col(column))).to_series()
            found[column] = filled & (~key.is_first_distinct() | key.is_in(seen.implode()))
            self.seen[column] = pl.concat([seen, key.filter(filled).unique()])
        return found


def errors_of(batch: pl.DataFrame, checks: list[Check], dups: dict[str, pl.Series]) -> pl.DataFrame:
    frames = [
        batch.filter(check.bad).select(
            pl.col(ROW).alias("row"),
            pl.lit(check.column).alias("column"),
            pl.lit(check.code).alias("code"),
            pl.lit(check.message).alias("message"),
            pl.col(check.column).alias("value"),
        )
        for check in checks
    ]
    for column, mask in dups.items():
        frames.append(
            batch.filter(mask).select(
                pl.col(ROW).alias("row"),
                pl.lit(column).alias("column"),
                pl.lit("duplicate").alias("code"),
                pl.lit(f"{column} repeats an earlier row").alias("message"),
                pl.col(column).alias("value"),
            )
        )
    schema = {
        "row": pl.UInt32,
        "column": pl.String,
        "code": pl.String,
        "message": pl.String,
        "value": pl.String,
    }
    frames = [f.cast(schema) for f in frames if f.height]  # type: ignore[arg-type]
    return pl.concat(frames).sort("row") if frames else pl.DataFrame(schema=schema)


def file_errors_of(
    ruleset: Ruleset, present: set[str], category: str | None
) -> list[dict[str, Any]]:
    return [
        {
            "row": 1,
            "column": name,
            "code": "missing_column",
            "message": f"required column {name} is missing",
            "value": None,
        }
        for name in required_columns(ruleset, category)
        if name not in present
    ]


def append_csv(handle: IO[str], frame: pl.DataFrame, header: bool) -> None:
    frame.write_csv(handle, include_header=header)
