"""Corrections a ruleset implies, as polars expressions applied in stages.

Stage one computes each column's cleaned text once (trimmed; for decimals without currency
symbols, for GTINs without spaces and dashes), stage two the GTIN's number, stage three the
fixed values from them. Written as one expression per column, the cleaned text would be
computed again for every use (four times for a decimal, a dozen for a GTIN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from jobrunner.pipelines.formulas import live_formula
from jobrunner.pipelines.validation.parse import decimal_text, gs1_check_ok
from jobrunner.pipelines.validation.rules import Column, Ruleset

CURRENCY = r"(R\$|US\$|\$|€|£)"


@dataclass
class FixPlan:
    """Stages of expressions, each stage reading the columns the earlier ones made."""

    stages: list[list[pl.Expr]] = field(default_factory=lambda: [[], [], []])
    helpers: list[str] = field(default_factory=list)  # columns to drop at the end

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        lazy = frame.lazy()
        for stage in self.stages:
            if stage:
                lazy = lazy.with_columns(stage)
        return lazy.drop(self.helpers).collect()


def _clean(name: str) -> str:
    return f"__fx_{name}"


def _number(name: str) -> str:
    return f"__fxn_{name}"


def _add_column_fix(plan: FixPlan, name: str, column: Column) -> None:
    """The corrected value of one column: trimmed, then normalised by its type."""
    trimmed = pl.col(name).str.strip_chars()
    clean = pl.col(_clean(name))  # stage one's text, read by the later stages
    cleaned, fixed = trimmed, clean
    if column.type == "decimal":
        cleaned = trimmed.str.replace_all(CURRENCY, "").str.strip_chars()
        fixed = decimal_text(clean, trimmed=True)
    elif column.type == "int":
        thousands = clean.str.contains(r"^-?\d{1,3}([.,]\d{3})+$")  # 1.000 or 1,000
        fixed = pl.when(thousands).then(clean.str.replace_all(r"[.,]", "")).otherwise(clean)
    elif column.type == "gtin":
        cleaned = trimmed.str.replace_all(r"[\s\-]", "")
        # Spreadsheets drop leading zeros, which never change a GS1 check digit: 8 to 12
        # plain digits whose number checks out get them back (to 13 digits).
        short = clean.str.len_bytes().is_between(8, 12)
        signed = clean.str.starts_with("+") | clean.str.starts_with("-")
        number = pl.when(short & ~signed).then(clean.cast(pl.Int64, strict=False))
        plan.stages[1].append(number.alias(_number(name)))
        plan.helpers.append(_number(name))
        pad = gs1_check_ok(pl.col(_number(name))).fill_null(False)
        fixed = pl.when(pad).then(clean.str.zfill(13)).otherwise(clean)
    elif column.type == "list":
        fixed = clean.str.replace_all(r"\s*[|;,]\s*", ",")
    plan.stages[0].append(cleaned.alias(_clean(name)))
    plan.helpers.append(_clean(name))
    if column.one_of is not None:
        lowered = fixed.str.to_lowercase()
        known = lowered.is_in([v.lower() for v in column.one_of])
        fixed = pl.when(known).then(lowered).otherwise(fixed)
    # Trimming ' =1+1' or a tab before '=HYPERLINK(...)' would make a spreadsheet run it:
    # such a value is left as it was (the report still flags it where the ruleset asks).
    armed = live_formula(fixed) & ~live_formula(pl.col(name))
    plan.stages[2].append(pl.when(armed).then(pl.col(name)).otherwise(fixed).alias(name))


def fix_plan(ruleset: Ruleset, present: list[str]) -> FixPlan:
    """Every present column gets its fix; columns the ruleset does not know are just trimmed."""
    plan = FixPlan()
    for name in present:
        _add_column_fix(plan, name, ruleset.columns.get(name, Column()))
    return plan
