"""Findings of one run: errors per batch as frames, counts, samples and duplicate tracking."""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

import polars as pl

from jobrunner.pipelines.validation.checks import (
    ANY_BAD,
    Check,
    key_hash,
    mask_name,
    required_columns,
)
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
    """Keys seen so far in each ``unique`` column, to find duplicates across batches.

    Only 64-bit hashes of the keys are kept (8 bytes a row, whatever the key's length); two
    different keys colliding among a million has odds of about 1 in 30 million.
    """

    def __init__(self, columns: list[str]) -> None:
        self.seen = {c: pl.Series(c, [], dtype=pl.UInt64) for c in columns}

    def duplicates(self, batch: pl.DataFrame) -> dict[str, pl.Series]:
        found: dict[str, pl.Series] = {}
        for column, seen in self.seen.items():
            key, filled = _keys(batch, column)
            first = key.is_first_distinct()
            found[column] = filled & (~first | key.is_in(seen.implode()))
            self.seen[column] = pl.concat([seen, key.filter(filled & first)])
        return found


def _keys(batch: pl.DataFrame, column: str) -> tuple[pl.Series, pl.Series]:
    """Key hashes and which rows have a key: from the lazy plan's columns when present."""
    if key_hash(column) in batch.columns:
        return batch[key_hash(column)], ~batch[f"__e_{column}"]
    keys = batch.select(
        key=pl.col(column).str.strip_chars().hash(seed=1), filled=~empty(pl.col(column))
    )
    return keys["key"], keys["filled"]


def errors_of(batch: pl.DataFrame, checks: list[Check], dups: dict[str, pl.Series]) -> pl.DataFrame:
    """One row per failed rule, from a batch carrying the check masks (see ``with_masks``);
    only the few bad rows are split by rule."""
    named = [(c.column, c.code, c.message, mask_name(i)) for i, c in enumerate(checks)]
    if dups:
        batch = batch.with_columns(
            pl.Series(f"__dup_{column}", mask) for column, mask in dups.items()
        )
        named += [
            (column, "duplicate", f"{column} repeats an earlier row", f"__dup_{column}")
            for column in dups
        ]
    if not named:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    flagged = pl.col(ANY_BAD)
    for column in dups:
        flagged = flagged | pl.col(f"__dup_{column}")
    rows = batch.filter(flagged)
    frames = [
        rows.filter(pl.col(flag)).select(
            pl.col(ROW).cast(pl.UInt32).alias("row"),
            pl.lit(column, pl.String).alias("column"),
            pl.lit(code, pl.String).alias("code"),
            pl.lit(message, pl.String).alias("message"),
            pl.col(column).cast(pl.String).alias("value"),
        )
        for column, code, message, flag in named
    ]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    return pl.concat(frames).sort("row", maintain_order=True)


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
