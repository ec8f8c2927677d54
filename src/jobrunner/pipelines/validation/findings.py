"""Findings of one run: errors per batch as frames, counts, samples and duplicate tracking."""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

import polars as pl

from jobrunner.pipelines.formulas import guard_frame
from jobrunner.pipelines.validation.checks import (
    Check,
    mask_name,
    required_columns,
    with_masks,
)
from jobrunner.pipelines.validation.parse import empty
from jobrunner.pipelines.validation.reading import ROW
from jobrunner.pipelines.validation.rules import Ruleset
from jobrunner.pipelines.validation.screen import key_hash, trimmed

MAX_SAMPLES = 1000
SAMPLE_VALUE_CHARS = (
    256  # a sample's value is cut here: the result stays small, the report is whole
)
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
        self.errors = 0
        self.by_code: Counter[str] = Counter()
        self.by_column: Counter[str] = Counter()
        self.samples: list[dict[str, Any]] = []
        self.error_rows: list[pl.Series] = []  # each row with a finding, once per batch

    def add(self, errors: pl.DataFrame) -> None:
        """Findings of the next batch, in row order."""
        self._count(errors)
        room = MAX_SAMPLES - len(self.samples)
        if room > 0:
            self.samples += _samples(errors.head(room))

    def add_late(self, errors: pl.DataFrame) -> None:
        """Findings known only at the end (duplicates): the samples stay the first by row."""
        self._count(errors)
        merged = self.samples + _samples(errors.head(MAX_SAMPLES))
        self.samples = sorted(merged, key=lambda e: int(e["row"]))[:MAX_SAMPLES]

    def _count(self, errors: pl.DataFrame) -> None:
        if not errors.height:
            return
        self.errors += errors.height
        self.error_rows.append(errors["row"].unique())
        for code, n in errors.group_by("code").len().iter_rows():
            self.by_code[code] += n
        for column, n in errors.group_by("column").len().iter_rows():
            self.by_column[column] += n

    @property
    def invalid(self) -> int:
        if not self.error_rows:
            return 0
        return pl.concat(self.error_rows).n_unique()


def _samples(errors: pl.DataFrame) -> list[dict[str, Any]]:
    return errors.with_columns(pl.col("value").str.slice(0, SAMPLE_VALUE_CHARS)).to_dicts()


class KeyLedger:
    """Every filled key of the ``unique`` columns with its row; duplicates are found at the end.

    Sorting the whole file's key hashes once costs O(n log n), where checking each batch
    against all earlier keys would cost O(n^2 / batch). Keys are kept as trimmed text too: a
    duplicate is confirmed on the text (a hash collision never invents one) and reported with
    its value.
    """

    def __init__(self, columns: list[str]) -> None:
        self.parts: dict[str, list[pl.DataFrame]] = {c: [] for c in columns}

    def add(self, batch: pl.DataFrame) -> None:
        """Keep a screened batch's keys (its columns are shared, not copied)."""
        for column, parts in self.parts.items():
            parts.append(
                batch.select(
                    pl.col(ROW).alias("row"),
                    pl.col(trimmed(column)).alias("value"),
                    pl.col(key_hash(column)).alias("hash"),  # null where there is no key
                )
            )

    def duplicates(self) -> pl.DataFrame:
        """One ``duplicate`` finding per row whose key an earlier row already had."""
        frames = [_duplicates(column, parts) for column, parts in self.parts.items() if parts]
        frames = [f for f in frames if f.height]
        if not frames:
            return pl.DataFrame(schema=ERROR_SCHEMA)
        return pl.concat(frames).sort("row", maintain_order=True)


def _duplicates(column: str, parts: list[pl.DataFrame]) -> pl.DataFrame:
    keys = pl.concat(parts)
    # Sort the hashes alone (cheap); only keys whose hash repeats are compared as text.
    hashes = keys["hash"].drop_nulls().sort()
    repeated = hashes.filter(hashes == hashes.shift(1)).unique()
    if repeated.is_empty():
        return pl.DataFrame(schema=ERROR_SCHEMA)
    same = pl.col("value") == pl.col("value").shift(1)
    return (
        keys.filter(pl.col("hash").is_in(repeated.implode()))
        .sort("value", "row")
        .with_columns(same.fill_null(False).alias("same"))
        .with_columns(pl.when(~pl.col("same")).then(pl.col("row")).forward_fill().alias("first"))
        .filter(pl.col("same"))
        .select(
            pl.col("row").cast(pl.UInt32),
            pl.lit(column, pl.String).alias("column"),
            pl.lit("duplicate", pl.String).alias("code"),
            pl.format("{} repeats row {}", pl.lit(column), pl.col("first")).alias("message"),
            "value",
        )
    )


class UniqueKeys:
    """Keys seen so far in each ``unique`` column, for deciding batch by batch (the corrector
    drops a duplicate as it writes). Only 64-bit hashes of the keys are kept."""

    def __init__(self, columns: list[str]) -> None:
        self.seen = {c: pl.Series(c, [], dtype=pl.UInt64) for c in columns}

    def duplicates(self, batch: pl.DataFrame) -> dict[str, pl.Series]:
        found: dict[str, pl.Series] = {}
        for column, seen in self.seen.items():
            keys = batch.select(
                key=pl.col(column).str.strip_chars().hash(seed=1), filled=~empty(pl.col(column))
            )
            key, filled = keys["key"], keys["filled"]
            first = key.is_first_distinct()
            found[column] = filled & (~first | key.is_in(seen.implode()))
            self.seen[column] = pl.concat([seen, key.filter(filled & first)])
        return found


def findings_of(frame: pl.LazyFrame, ruleset: Ruleset, checks: list[Check]) -> pl.DataFrame:
    """One row per failed rule of every row in ``frame`` (row, column, code, message, value),
    in row order and, within a row, in rule order.

    Where ``frame`` carries the screen's flags, each column's checks run only on the rows its
    flag did not clear: a row with a bad price gets the price checks, not all of them."""
    has = set(frame.collect_schema().names())
    groups: dict[str, dict[int, Check]] = {}
    for index, check in enumerate(checks):
        groups.setdefault(check.flag, {})[index] = check
    parts: list[pl.LazyFrame] = []
    for flag, members in groups.items():
        rows = frame.filter(~pl.col(flag)) if flag in has else frame
        masked = with_masks(rows, ruleset, members)
        parts += [
            masked.filter(pl.col(mask_name(i))).select(
                pl.col(ROW).cast(pl.UInt32).alias("row"),
                pl.lit(i, pl.UInt32).alias("rule"),
                pl.lit(check.column, pl.String).alias("column"),
                pl.lit(check.code, pl.String).alias("code"),
                pl.lit(check.message, pl.String).alias("message"),
                pl.col(check.shows or check.column).cast(pl.String).alias("value"),
            )
            for i, check in members.items()
        ]
    if not parts:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    return pl.concat(parts).sort("row", "rule").drop("rule").collect()


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


def append_csv(handle: IO[str], frame: pl.DataFrame, header: bool, *, guard: bool) -> None:
    """Write ``frame`` to an open CSV; with ``guard``, formula-like cells neutralised."""
    (guard_frame(frame) if guard else frame).write_csv(handle, include_header=header)
