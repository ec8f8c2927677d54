"""Corrections applied batch by batch: fixed values, duplicate keys dropped, a change log."""

from __future__ import annotations

from collections import Counter
from typing import IO

import polars as pl

from jobrunner.pipelines.validation.findings import UniqueKeys, append_csv
from jobrunner.pipelines.validation.fixes import fix_plan
from jobrunner.pipelines.validation.reading import EXTRA, ROW
from jobrunner.pipelines.validation.rules import Ruleset

CHANGE_SCHEMA = {"row": pl.UInt32, "column": pl.String, "before": pl.String, "after": pl.String}


def _changes(before: pl.DataFrame, after: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    frames = [
        before.select(
            pl.col(ROW).alias("row"),
            pl.lit(c).alias("column"),
            pl.col(c).alias("before"),
            after[c].alias("after"),
        ).filter(~pl.col("before").eq_missing(pl.col("after")))
        for c in columns
    ]
    return pl.concat(frames) if frames else pl.DataFrame()


class Corrector:
    """Applies fixes to each batch, drops duplicate keys, writes corrected rows and a change log."""

    def __init__(
        self, ruleset: Ruleset, columns: list[str], out: IO[str], log: IO[str], *, guard: bool
    ) -> None:
        self.guard = guard  # neutralise formula-like cells in both files (see formulas.py)
        self.fixes = fix_plan(ruleset, columns)
        self.columns = columns
        self.unique = UniqueKeys(
            [c for c in columns if ruleset.columns.get(c) and ruleset.columns[c].unique]
        )
        self.out, self.log = out, log
        self.first = True
        self.changes: Counter[str] = Counter()

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        fixed = self.fixes.apply(batch)
        changed = _changes(batch, fixed, self.columns)
        drop = pl.Series([False] * fixed.height)
        for column, mask in self.unique.duplicates(fixed).items():
            drop = drop | mask
            removed = fixed.filter(mask).select(
                pl.col(ROW).alias("row"),
                pl.lit("*").alias("column"),
                pl.col(column).alias("before"),
                pl.lit("(duplicate row removed)").alias("after"),
            )
            changed = pl.concat([changed, removed]) if changed.height else removed
        kept = fixed.filter(~drop)
        append_csv(self.out, kept.drop(ROW, EXTRA, strict=False), self.first, guard=self.guard)
        log = changed if changed.height else pl.DataFrame(schema=CHANGE_SCHEMA)
        append_csv(self.log, log, self.first, guard=self.guard)
        self.first = False
        for column, n in changed.group_by("column").len().iter_rows() if changed.height else []:
            self.changes[column] += n
        return kept
