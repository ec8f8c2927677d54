"""How a report reads its columns: text parsed as validation parses numbers, failures counted.

A CSV is read all as text (see rows.py). Columns that ``sum`` or ``mean`` read are numbers;
``min``/``max`` columns and columns filtered against a number are numbers when most of a
sample of their values are. Numbers are parsed with validation's parser (``1.234,56``,
``12,5`` and ``1,234.56`` alike); a value that does not parse is left out of the aggregate
and counted as an ``unparsed`` finding for its column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from jobrunner.errors import PermanentError
from jobrunner.pipelines.validation.parse import as_decimal, as_int, empty
from jobrunner.pipelines.validation.reading import NotUtf8

__all__ = [
    "SAMPLE_ROWS",
    "bad",
    "fraction_name",
    "helpers",
    "is_number",
    "number_name",
    "numbers_of",
    "parsed",
    "run_query",
    "unparsed_name",
]

SAMPLE_ROWS = 1000
NUMERIC_AGGS = frozenset({"sum", "mean"})
MAYBE_NUMERIC_AGGS = frozenset({"min", "max"})


def number_name(column: str) -> str:
    """The column holding ``column``'s values parsed as numbers (null where they do not)."""
    return f"__num_{column}"


def _int_name(column: str) -> str:
    return f"__int_{column}"


def unparsed_name(column: str) -> str:
    return f"__bad_{column}"


def fraction_name(column: str) -> str:
    return f"__frac_{column}"


def is_number(value: Any) -> bool:
    """A filter value that asks for a numeric comparison (bools are not numbers here)."""
    if isinstance(value, list):
        return bool(value) and all(is_number(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers_of(
    frame: pl.LazyFrame,
    metrics: Sequence[tuple[str, str]],
    filters: Sequence[tuple[str, str, Any]],
) -> set[str]:
    """The text columns to read as numbers, from (column, agg) metrics and (column, op,
    value) filters. PermanentError ``report_query_failed`` for a numeric filter on a column
    that holds text."""
    schema = frame.collect_schema()
    text = {name for name, dtype in schema.items() if dtype == pl.String}
    needed = {c for c, agg in metrics if agg in NUMERIC_AGGS and c in text}
    maybe = {c for c, agg in metrics if agg in MAYBE_NUMERIC_AGGS and c in text}
    numeric_filters = {(c, op) for c, op, value in filters if is_number(value) and c in text}
    maybe |= {c for c, _ in numeric_filters}
    looking = _mostly_numbers(frame, sorted(maybe)) if maybe else set()
    for column, op in sorted(numeric_filters):
        if column not in looking:
            raise PermanentError(
                f"filter {column} {op} compares a number with a column that holds text",
                code="report_query_failed",
                column=column,
            )
    return needed | looking


def _mostly_numbers(frame: pl.LazyFrame, columns: list[str]) -> set[str]:
    """The ``columns`` more than half of whose filled values, in the first rows, are numbers."""
    filled = [(~empty(pl.col(c))).sum().alias(f"filled{i}") for i, c in enumerate(columns)]
    numbers = [
        as_decimal(pl.col(c)).is_not_null().sum().alias(f"numbers{i}")
        for i, c in enumerate(columns)
    ]
    counts = frame.head(SAMPLE_ROWS).select(*filled, *numbers).collect().row(0, named=True)
    return {
        c
        for i, c in enumerate(columns)
        if counts[f"filled{i}"] and 2 * counts[f"numbers{i}"] > counts[f"filled{i}"]
    }


def parsed(numbers: set[str]) -> list[pl.Expr]:
    """The parsed columns (as decimals, and as integers to tell whether all values were)."""
    out: list[pl.Expr] = []
    for column in sorted(numbers):
        out.append(as_decimal(pl.col(column)).alias(number_name(column)))
        out.append(as_int(pl.col(column)).alias(_int_name(column)))
    return out


def bad(column: str) -> pl.Expr:
    """True where ``column`` holds a value that is not a number."""
    return ~empty(pl.col(column)) & pl.col(number_name(column)).is_null()


def helpers(numbers: set[str]) -> list[pl.Expr]:
    """Aggregates counting, per group, each number column's unparsed and non-integer values."""
    out: list[pl.Expr] = []
    for column in sorted(numbers):
        out.append(bad(column).sum().alias(unparsed_name(column)))
        fraction = pl.col(number_name(column)).is_not_null() & pl.col(_int_name(column)).is_null()
        out.append(fraction.sum().alias(fraction_name(column)))
    return out


def run_query(run: Callable[[], Any], text: bool) -> Any:
    """``run()``, with polars' errors made ours: NotUtf8 for a CSV byte that is not UTF-8
    (to read again), else ``report_query_failed``."""
    try:
        return run()
    except pl.exceptions.ComputeError as exc:
        if text and "utf-8" in str(exc).lower():
            raise NotUtf8(str(exc)) from exc
        raise _failed(exc) from exc
    except pl.exceptions.PolarsError as exc:
        raise _failed(exc) from exc


def _failed(exc: Exception) -> PermanentError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return PermanentError(f"the report's query failed: {first_line}", code="report_query_failed")
