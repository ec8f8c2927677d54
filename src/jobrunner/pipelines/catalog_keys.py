"""Uniqueness across batches: 64-bit hashes of key values seen so far, nothing else.

Memory is 8 bytes per distinct key, so a file far larger than RAM can still be checked.
Two distinct values colliding on a 64-bit hash would hide one duplicate finding; at 10^8
keys the chance is about 3 in 10^4, accepted for the bounded memory.
"""

from __future__ import annotations

import polars as pl

from jobrunner.pipelines.catalog_compile import DUP, trimmed

__all__ = ["KeyTracker", "dedupe"]


class KeyTracker:
    """Flags, per unique column, the values already seen in this or an earlier batch."""

    def __init__(self, columns: list[str]) -> None:
        self._seen = {c: pl.Series(dtype=pl.UInt64) for c in columns}

    def flag(self, batch: pl.DataFrame) -> pl.DataFrame:
        """``batch`` with a boolean ``__dup:<col>`` per tracked column."""
        flags = [self._flag(batch, column).alias(DUP + column) for column in self._seen]
        return batch.with_columns(flags) if flags else batch

    def _flag(self, batch: pl.DataFrame, column: str) -> pl.Series:
        value = batch.select(trimmed(column)).to_series()
        filled = value.is_not_null() & (value != "")
        hashes = value.hash(seed=0)
        repeat = hashes.is_in(self._seen[column].implode()) | ~hashes.is_first_distinct()
        fresh = hashes.filter(filled).unique()
        self._seen[column] = pl.concat([self._seen[column], fresh])
        return (repeat & filled).fill_null(False)


def dedupe(
    batch: pl.DataFrame, keys: list[str], seen: pl.Series, line: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """Drop rows whose key repeats an earlier row's; returns kept rows, their log, new seen.

    Rows with an empty key part are kept: an incomplete key identifies nothing.
    """
    parts = [trimmed(k) for k in keys]
    key = pl.concat_str(parts, separator="\x1f")
    complete = pl.all_horizontal([p.is_not_null() & (p != "") for p in parts])
    keyed = batch.with_columns(
        key.hash(seed=0).alias("__key"), key.alias("__keytext"), complete.alias("__complete")
    )
    repeat = (
        pl.col("__key").is_in(seen.implode()) | ~pl.col("__key").is_first_distinct()
    ) & pl.col("__complete")
    flagged = keyed.with_columns(repeat.alias("__repeat"))
    dropped = flagged.filter(pl.col("__repeat"))
    log = dropped.select(
        pl.col(line).cast(pl.Int64).alias("row"),
        pl.lit("*").alias("column"),
        pl.col("__keytext").str.replace_all("\x1f", "|", literal=True).alias("before"),
        pl.lit("(row removed: duplicate key)").alias("after"),
    )
    fresh = flagged.filter(pl.col("__complete")).get_column("__key").unique()
    kept = flagged.filter(~pl.col("__repeat")).drop("__key", "__keytext", "__complete", "__repeat")
    return kept, log, pl.concat([seen, fresh])
