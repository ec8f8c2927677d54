"""Automatic corrections as polars expressions, and the change log they leave.

Each fix is conservative: it rewrites a value only into a form the rules accept (a number
that parses, an enum value that exists, a GTIN whose check digit holds), and otherwise
leaves the (trimmed) value for validation to report.
"""

from __future__ import annotations

import polars as pl

from jobrunner.pipelines.catalog_compile import gtin_valid, trimmed
from jobrunner.pipelines.catalog_rules import ColumnRule, Ruleset

__all__ = ["CHANGE_SCHEMA", "apply_fixes", "fix_exprs"]

CHANGE_SCHEMA = {"row": pl.Int64, "column": pl.String, "before": pl.String, "after": pl.String}
_CURRENCY = r"R\$|US\$|\$|€|\s"
_THOUSANDS_POINT = r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$"
_THOUSANDS_COMMA = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"


def fix_exprs(ruleset: Ruleset, columns: list[str], *, decimal_comma: bool) -> list[pl.Expr]:
    """One expression per column of the batch: trim, then the column type's fix."""
    exprs: list[pl.Expr] = []
    for name in columns:
        rule = ruleset.columns.get(name)
        fixed = trimmed(name) if rule is None else _fix(trimmed(name), rule, decimal_comma)
        exprs.append(fixed.alias(name))
    return exprs


def apply_fixes(
    batch: pl.DataFrame, exprs: list[pl.Expr], columns: list[str], line: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The fixed batch and its change log rows (``line`` names the row-number column)."""
    fixed = batch.with_columns(exprs)
    logs = []
    for name in columns:
        before, after = batch[name], fixed[name]
        # ne_missing: a null that stays null is no change, a value that became null is one.
        changed = before.ne_missing(after)
        if changed.any():
            logs.append(
                pl.DataFrame(
                    {
                        "row": batch[line].filter(changed).cast(pl.Int64),
                        "column": pl.repeat(name, int(changed.sum()), eager=True),
                        "before": before.filter(changed),
                        "after": after.filter(changed),
                    }
                )
            )
    log = pl.concat(logs) if logs else pl.DataFrame(schema=CHANGE_SCHEMA)
    return fixed, log.sort("row", maintain_order=True)


def _fix(t: pl.Expr, rule: ColumnRule, decimal_comma: bool) -> pl.Expr:
    if rule.type == "decimal":
        return _fix_decimal(t, decimal_comma)
    if rule.type == "gtin":
        return _fix_gtin(t)
    if rule.one_of is not None:
        return _fix_case(t, rule.one_of)
    return t


def _fix_decimal(t: pl.Expr, decimal_comma: bool) -> pl.Expr:
    bare = t.str.replace_all(_CURRENCY, "")
    if decimal_comma:
        no_thousands = (
            pl.when(bare.str.contains(_THOUSANDS_POINT))
            .then(bare.str.replace_all(".", "", literal=True))
            .otherwise(bare)
        )
        canonical = no_thousands.str.replace(",", ".", literal=True)
    else:
        canonical = (
            pl.when(bare.str.contains(_THOUSANDS_COMMA))
            .then(bare.str.replace_all(",", "", literal=True))
            # "10,50" in a comma-decimal value that slipped into a '.' file
            .when(bare.str.contains(r"^[+-]?\d+,\d{1,2}$"))
            .then(bare.str.replace(",", ".", literal=True))
            .otherwise(bare)
        )
    parses = canonical.cast(pl.Float64, strict=False).is_finite().fill_null(False)
    return pl.when(parses).then(canonical).otherwise(t)


def _fix_gtin(t: pl.Expr) -> pl.Expr:
    # Spreadsheets drop leading zeros; padding keeps the check digit (it is right-aligned),
    # so a short digit string whose check digit holds is the zero-stripped GTIN-13.
    short = t.str.contains(r"^\d{6,12}$")
    padded = t.str.zfill(13)
    return pl.when(short & gtin_valid(padded)).then(padded).otherwise(t)


def _fix_case(t: pl.Expr, one_of: list[str]) -> pl.Expr:
    lowered = {v.casefold(): v for v in one_of}
    if len(lowered) < len(one_of):  # values differing only by case: no safe mapping
        return t
    mapped = t.str.to_lowercase().replace_strict(
        list(lowered), list(lowered.values()), default=None, return_dtype=pl.String
    )
    return pl.when(t.is_in(one_of)).then(t).otherwise(mapped.fill_null(t))
