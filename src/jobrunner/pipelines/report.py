"""Grouped aggregate reports over a table file, planned on polars lazy frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobrunner.errors import PermanentError
from jobrunner.pipelines.rows import TableFormat, scan_table

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
    """Where the report went and its shape."""

    rows: int
    columns: list[str]
    format: OutputFormat
    out_path: str


def build_report(input_path: Path, spec: ReportSpec, out_path: Path) -> ReportResult:
    """Run ``spec`` over ``input_path`` and write the result to ``out_path``.

    Raises PermanentError: ``report_unknown_column`` (names the column and the available
    ones), ``report_query_failed`` (e.g. a filter value of the wrong type), or the input codes
    of :func:`jobrunner.pipelines.rows.scan_table`.
    """
    lf = scan_table(input_path, spec.input_format)
    available = _input_columns(lf, input_path)
    _check_input_columns(spec, available)
    if spec.filters:
        lf = lf.filter(*(_filter_expr(f) for f in spec.filters))
    aggs = [_metric_expr(m) for m in spec.metrics]
    out = lf.group_by(spec.group_by).agg(aggs) if spec.group_by else lf.select(aggs)
    # Without an explicit sort, order by the group keys: group_by output order is arbitrary
    # and reports should be reproducible.
    keys = spec.sort or [SortKey(column=c) for c in spec.group_by]
    for key in keys:
        _require(key.column, spec.output_columns, "sort")
    if keys:
        out = out.sort([k.column for k in keys], descending=[k.descending for k in keys])
    rows = _write(out, spec.format, out_path)
    return ReportResult(
        rows=rows, columns=spec.output_columns, format=spec.format, out_path=str(out_path)
    )


def _input_columns(lf: pl.LazyFrame, path: Path) -> list[str]:
    try:
        return lf.collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_unreadable") from exc


def _check_input_columns(spec: ReportSpec, available: list[str]) -> None:
    for column in spec.group_by:
        _require(column, available, "group_by")
    for metric in spec.metrics:
        if metric.column != "*":
            _require(metric.column, available, "metrics")
    for flt in spec.filters:
        _require(flt.column, available, "filters")


def _require(column: str, available: list[str], where: str) -> None:
    if column not in available:
        raise PermanentError(
            f"unknown column {column!r} in {where}; available: {', '.join(available)}",
            code="report_unknown_column",
            column=column,
            available=available,
        )


def _metric_expr(metric: Metric) -> pl.Expr:
    if metric.column == "*":
        return pl.len().alias(metric.name)
    col = pl.col(metric.column)
    expr = {
        "sum": col.sum,
        "mean": col.mean,
        "min": col.min,
        "max": col.max,
        "count": col.count,
        "n_unique": col.n_unique,
    }[metric.agg]()
    return expr.alias(metric.name)


def _filter_expr(flt: Filter) -> pl.Expr:
    col = pl.col(flt.column)
    if flt.op == "is_null":
        return col.is_null()
    if flt.op == "not_null":
        return col.is_not_null()
    if flt.op == "in":
        return col.is_in(flt.value)
    if flt.op == "not_in":
        return ~col.is_in(flt.value)
    compare: Any = _COMPARE[flt.op]
    result: pl.Expr = compare(col, flt.value)
    return result


def _write(out: pl.LazyFrame, fmt: OutputFormat, out_path: Path) -> int:
    try:
        if fmt == "json":
            # No lazy sink writes a JSON array; an aggregate is one row per group, so it fits.
            df = out.collect(engine="streaming")
            df.write_json(out_path)
            return df.height
        if fmt == "csv":
            out.sink_csv(out_path)
            written = pl.scan_csv(out_path)
        else:
            out.sink_parquet(out_path)
            written = pl.scan_parquet(out_path)
        return int(written.select(pl.len()).collect().item())
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"report failed: {exc}", code="report_query_failed") from exc
