"""Grouped aggregate reports over a table file, planned on polars lazy frames.

CSV inputs are read as validation reads them (see rows.py and report_columns.py): numbers in
any of the formats validation accepts, and a value that is not one counted per column in
``unparsed_values`` (or, in ``strict`` mode, a ``report_bad_value`` error naming it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobrunner.errors import PermanentError
from jobrunner.pipelines.formulas import guard_frame
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.report_columns import (
    bad,
    fraction_name,
    helpers,
    number_name,
    numbers_of,
    parsed,
    run_query,
    unparsed_name,
)
from jobrunner.pipelines.rows import ROW, Table, TableFormat, open_table
from jobrunner.pipelines.validation.reading import NotUtf8

__all__ = ["Filter", "Metric", "ReportResult", "ReportSpec", "SortKey", "build_report"]

Agg = Literal["sum", "mean", "min", "max", "count", "n_unique"]
Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null"]
OutputFormat = Literal["json", "csv", "parquet"]

_COMPARE = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
}


class Metric(BaseModel):
    """One aggregate column; ``count`` over column ``*`` counts rows."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str
    agg: Agg
    as_: str | None = Field(default=None, alias="as")

    @property
    def name(self) -> str:
        if self.as_:
            return self.as_
        return "count" if self.column == "*" else f"{self.column}_{self.agg}"

    @model_validator(mode="after")
    def _star_only_counts(self) -> Metric:
        if self.column == "*" and self.agg != "count":
            raise ValueError("column '*' is only allowed with agg 'count'")
        return self


class Filter(BaseModel):
    """A row filter applied before grouping."""

    model_config = ConfigDict(extra="forbid")

    column: str
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        if self.op in _COMPARE and (self.value is None or isinstance(self.value, list | dict)):
            raise ValueError(f"op {self.op!r} needs a single non-null value")
        return self


class SortKey(BaseModel):
    """An output column to sort on."""

    model_config = ConfigDict(extra="forbid")

    column: str
    descending: bool = False


class ReportSpec(BaseModel):
    """What to compute: filters, then group keys and metrics, then sort; and the output format."""

    model_config = ConfigDict(extra="forbid")

    group_by: list[str] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)
    filters: list[Filter] = Field(default_factory=list)
    format: OutputFormat = "json"
    sort: list[SortKey] | None = None
    input_format: TableFormat | None = None
    strict: bool = False  # a value that is not a number fails the report (report_bad_value)

    @field_validator("sort", mode="before")
    @classmethod
    def _sort_shorthand(cls, value: Any) -> Any:
        # Let callers write sort=["col"] for the common ascending case.
        if isinstance(value, list):
            return [{"column": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _output_names_unique(self) -> ReportSpec:
        names = [*self.group_by, *(m.name for m in self.metrics)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"output column names repeat: {', '.join(dupes)}; use 'as'")
        return self

    @property
    def output_columns(self) -> list[str]:
        return [*self.group_by, *(m.name for m in self.metrics)]


class ReportResult(BaseModel):
    """Where the report went, its shape, and per number column the values that did not parse."""

    rows: int
    columns: list[str]
    format: OutputFormat
    out_path: str
    unparsed_values: dict[str, int] = Field(default_factory=dict)


def build_report(
    input_path: Path,
    spec: ReportSpec,
    out_path: Path,
    *,
    limits: InputLimits | None = None,
    formula_guard: bool = True,
) -> ReportResult:
    """Run ``spec`` over ``input_path`` (possibly gzip, zip or zstd) into ``out_path``; work
    files go beside ``out_path``. A CSV output has formula-like cells neutralised unless
    ``formula_guard`` is off.

    Raises PermanentError: ``report_unknown_column`` (names the column and the available
    ones), ``report_bad_value`` (strict mode), ``report_query_failed``, or the input codes of
    :func:`jobrunner.pipelines.rows.open_table`.
    """
    table = open_table(input_path, spec.input_format, out_path.parent, limits)
    _check_input_columns(spec, table.columns())
    try:
        frame, unparsed = _aggregate(table, spec)
    except NotUtf8:  # a byte past the sniffed head: read again with it replaced
        frame, unparsed = _aggregate(table.lossy(), spec)
    frame = frame.sort([k.column for k in _sort_keys(spec)], descending=_descending(spec))
    rows = _write(guard_frame(frame) if formula_guard else frame, spec.format, out_path)
    return ReportResult(
        rows=rows,
        columns=spec.output_columns,
        format=spec.format,
        out_path=str(out_path),
        unparsed_values=unparsed,
    )


def _aggregate(table: Table, spec: ReportSpec) -> tuple[pl.DataFrame, dict[str, int]]:
    """The aggregated frame (number columns typed) and the unparsed counts."""
    metrics = [(m.column, m.agg) for m in spec.metrics if m.column != "*"]
    filters = [(f.column, f.op, f.value) for f in spec.filters]
    numbers = run_query(lambda: numbers_of(table.frame, metrics, filters), table.text)
    lf = table.frame.with_columns(parsed(numbers)) if numbers else table.frame
    if spec.filters:
        lf = lf.filter(*(_filter_expr(f, numbers) for f in spec.filters))
    aggs = [_metric_expr(m, numbers) for m in spec.metrics] + helpers(numbers)
    out = lf.group_by(spec.group_by).agg(aggs) if spec.group_by else lf.select(aggs)
    frame = run_query(lambda: out.collect(engine="streaming"), table.text)
    unparsed = {c: int(frame[unparsed_name(c)].sum()) for c in sorted(numbers)}
    if spec.strict and any(unparsed.values()):
        raise _first_bad_value(lf, table, unparsed)
    return _typed(frame, spec, numbers), {c: n for c, n in unparsed.items() if n}


def _typed(frame: pl.DataFrame, spec: ReportSpec, numbers: set[str]) -> pl.DataFrame:
    """Sums, minima and maxima of number columns whose values were all integers as Int64."""
    integral = {c for c in numbers if frame[fraction_name(c)].sum() == 0}
    casts = [
        pl.col(m.name).cast(pl.Int64)
        for m in spec.metrics
        if m.agg in ("sum", "min", "max") and m.column in integral
    ]
    return frame.with_columns(casts).select(spec.output_columns)


def _first_bad_value(lf: pl.LazyFrame, table: Table, unparsed: dict[str, int]) -> PermanentError:
    column = next(c for c, n in unparsed.items() if n)
    first = run_query(
        lambda: lf.filter(bad(column)).select(ROW, column).head(1).collect(), table.text
    )
    row, value = first.row(0) if first.height else (None, None)
    return PermanentError(
        f"column {column}, row {row}: {value!r} is not a number "
        f"({unparsed[column]} such values in {column}; without strict they are counted)",
        code="report_bad_value",
        column=column,
        row=row,
        value=value,
        count=unparsed[column],
    )


def _sort_keys(spec: ReportSpec) -> list[SortKey]:
    # Without an explicit sort, order by the group keys: group_by output order is arbitrary
    # and reports should be reproducible.
    return spec.sort or [SortKey(column=c) for c in spec.group_by]


def _descending(spec: ReportSpec) -> list[bool]:
    return [k.descending for k in _sort_keys(spec)]


def _check_input_columns(spec: ReportSpec, available: list[str]) -> None:
    for column in spec.group_by:
        _require(column, available, "group_by")
    for metric in spec.metrics:
        if metric.column != "*":
            _require(metric.column, available, "metrics")
    for flt in spec.filters:
        _require(flt.column, available, "filters")
    for key in _sort_keys(spec):
        _require(key.column, spec.output_columns, "sort")


def _require(column: str, available: list[str], where: str) -> None:
    if column not in available:
        raise PermanentError(
            f"unknown column {column!r} in {where}; available: {', '.join(available)}",
            code="report_unknown_column",
            column=column,
            available=available,
        )


def _metric_expr(metric: Metric, numbers: set[str]) -> pl.Expr:
    if metric.column == "*":
        return pl.len().alias(metric.name)
    name = metric.column
    # count and n_unique read the values as written; the others the parsed numbers
    typed = name in numbers and metric.agg not in ("count", "n_unique")
    col = pl.col(number_name(name) if typed else name)
    expr = {
        "sum": col.sum,
        "mean": col.mean,
        "min": col.min,
        "max": col.max,
        "count": col.count,
        "n_unique": col.n_unique,
    }[metric.agg]()
    return expr.alias(metric.name)


def _filter_expr(flt: Filter, numbers: set[str]) -> pl.Expr:
    col = pl.col(number_name(flt.column) if flt.column in numbers else flt.column)
    if flt.op == "is_null":
        return pl.col(flt.column).is_null()
    if flt.op == "not_null":
        return pl.col(flt.column).is_not_null()
    if flt.op == "in":
        return col.is_in(flt.value)
    if flt.op == "not_in":
        return ~col.is_in(flt.value)
    compare: Any = _COMPARE[flt.op]
    result: pl.Expr = compare(col, flt.value)
    return result


def _write(frame: pl.DataFrame, fmt: OutputFormat, out_path: Path) -> int:
    # The aggregate is one row per group, already in memory: written at once.
    if fmt == "json":
        frame.write_json(out_path)
    elif fmt == "csv":
        frame.write_csv(out_path)
    else:
        frame.write_parquet(out_path)
    return frame.height
