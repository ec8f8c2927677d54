"""Corrections a ruleset implies, as polars expressions (one per column, applied together)."""

from __future__ import annotations

import polars as pl

from jobrunner.pipelines.validation.parse import decimal_text, gtin_valid
from jobrunner.pipelines.validation.rules import Column, Ruleset

CURRENCY = r"(R\$|US\$|\$|€|£)"


def column_fix(name: str, column: Column) -> pl.Expr:
    """The corrected value of one column: trimmed, then normalised by its type."""
    c = pl.col(name).str.strip_chars()
    if column.type == "decimal":
        bare = c.str.replace_all(CURRENCY, "").str.strip_chars()
        c = decimal_text(bare)
    elif column.type == "int":
        thousands = c.str.contains(r"^-?\d{1,3}([.,]\d{3})+$")  # 1.000 or 1,000
        c = pl.when(thousands).then(c.str.replace_all(r"[.,]", "")).otherwise(c)
    elif column.type == "gtin":
        digits = c.str.replace_all(r"[\s\-]", "")
        padded = digits.str.zfill(13)
        # Spreadsheets drop leading zeros; left zeros never change a GS1 check digit.
        pad = digits.str.contains(r"^\d{8,12}$") & gtin_valid(padded)
        c = pl.when(pad).then(padded).otherwise(digits)
    elif column.type == "list":
        c = c.str.replace_all(r"\s*[|;,]\s*", ",")
    if column.one_of is not None:
        lowered = c.str.to_lowercase()
        known = lowered.is_in([v.lower() for v in column.one_of])
        c = pl.when(known).then(lowered).otherwise(c)
    return c.alias(name)


def fix_expressions(ruleset: Ruleset, present: list[str]) -> list[pl.Expr]:
    """Every present column gets its fix; columns the ruleset does not know are just trimmed."""
    return [column_fix(name, ruleset.columns.get(name, Column())) for name in present]
