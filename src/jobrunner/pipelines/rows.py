"""Lazy tables from files on disk: pick the polars scanner for a format, count rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import polars as pl

from jobrunner.errors import PermanentError

__all__ = ["TableFormat", "count_rows", "detect_format", "scan_table"]

TableFormat = Literal["csv", "parquet", "ndjson", "json"]
T = TypeVar("T")

_BY_SUFFIX: dict[str, TableFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
}


def detect_format(path: Path) -> TableFormat:
    """The format a file's extension names; PermanentError ``input_format_unknown`` if none."""
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_BY_SUFFIX))
        raise PermanentError(
            f"cannot tell the format of {path.name}; known extensions: {known}",
            code="input_format_unknown",
        )
    return fmt


def scan_table(path: Path, fmt: TableFormat | None = None) -> pl.LazyFrame:
    """A lazy frame over ``path``; ``json`` means a JSON array or NDJSON, told by its first byte.

    Raises PermanentError ``input_not_found`` when the file is absent.
    """
    if not path.is_file():
        raise PermanentError(f"no such input file: {path.name}", code="input_not_found")
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return pl.scan_csv(path)
    if fmt == "parquet":
        return pl.scan_parquet(path)
    if fmt == "json" and _is_json_array(path):
        # polars has no lazy scanner for a JSON array; it must be read whole anyway.
        return _unreadable_guard(lambda: pl.read_json(path).lazy(), path)
    return pl.scan_ndjson(path)


def count_rows(path: Path, format: Literal["csv", "json"]) -> int:
    """Rows in a CSV file (after its header) or a JSON array / NDJSON file."""
    if path.is_file() and path.stat().st_size == 0:
        return 0  # polars refuses empty input, but an empty download has simply no rows
    lf = scan_table(path, format)
    count = _unreadable_guard(lambda: lf.select(pl.len()).collect().item(), path)
    return int(count)


def _is_json_array(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _unreadable_guard(read: Callable[[], T], path: Path) -> T:
    try:
        return read()
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_unreadable") from exc
