"""Tables from files on disk: CSV read as validation reads it, other formats by polars; rows.

A CSV goes through validation's sniffing (decompression, bounds, encoding, delimiter) and
is read with every column as text, so that reports parse numbers as validation does
(decimal commas included) instead of trusting a schema guessed from the first rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar

import polars as pl

from jobrunner.errors import PermanentError
from jobrunner.pipelines.compressed import decompressed
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.validation.reading import EXTRA, ROW, NotUtf8, read_errors, scan
from jobrunner.pipelines.validation.sniff import Sniffed, body_not_utf8, sniff

__all__ = ["ROW", "Table", "TableFormat", "count_rows", "detect_format", "open_table"]

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


@dataclass(frozen=True)
class Table:
    """A lazy frame with a ``__row`` column (a CSV's record number, the header being 1; a
    1-based row number otherwise). ``sniffed`` is set for CSV, whose columns are all text."""

    frame: pl.LazyFrame
    work_dir: Path
    sniffed: Sniffed | None = None

    @property
    def text(self) -> bool:
        return self.sniffed is not None

    def columns(self) -> list[str]:
        try:
            names = self.frame.collect_schema().names()
        except pl.exceptions.PolarsError as exc:
            raise PermanentError(f"cannot read the input: {exc}", code="input_unreadable") from exc
        return [n for n in names if n not in (ROW, EXTRA)]

    def lossy(self) -> Table:
        """The same CSV read again after a byte past the sniffed head was not UTF-8."""
        if self.sniffed is None:
            raise ValueError("only a CSV table is read as text")
        sniffed = body_not_utf8(self.sniffed, self.sniffed.path, self.work_dir)
        return replace(self, frame=scan(sniffed).drop(EXTRA), sniffed=sniffed)


def open_table(
    path: Path, fmt: TableFormat | None, work_dir: Path, limits: InputLimits | None = None
) -> Table:
    """``path`` (possibly gzip, zip or zstd) as a Table, in ``fmt`` or the one its name says.

    Raises PermanentError ``input_not_found``, ``input_format_unknown``, the bound codes of
    sniff (``input_too_large``, ``line_too_long``, ``too_many_columns``) and ``csv_*``."""
    limits = limits or InputLimits()
    if not path.is_file():
        raise PermanentError(f"no such input file: {path.name}", code="input_not_found")
    plain = decompressed(path, work_dir, max_bytes=limits.max_decompressed_bytes)
    fmt = fmt or detect_format(plain)
    if fmt == "csv":
        sniffed = sniff(plain, work_dir, encoding=None, delimiter=None, limits=limits)
        return Table(scan(sniffed).drop(EXTRA), work_dir, sniffed)
    if fmt == "parquet":
        frame = pl.scan_parquet(plain)
    elif fmt == "json" and _is_json_array(plain):
        # polars has no lazy scanner for a JSON array; it must be read whole anyway.
        frame = _unreadable_guard(lambda: pl.read_json(plain).lazy(), plain)
    else:
        frame = pl.scan_ndjson(plain)
    return Table(frame.with_row_index(ROW, offset=1), work_dir)


def count_rows(
    path: Path,
    format: Literal["csv", "json"],
    *,
    work_dir: Path | None = None,
    limits: InputLimits | None = None,
) -> int:
    """Rows in a CSV file (after its header) or a JSON array / NDJSON file; compressed
    inputs are counted inflated, within ``limits``."""
    if path.is_file() and path.stat().st_size == 0:
        return 0  # polars refuses empty input, but an empty download has simply no rows
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="jobrunner-") as tmp:
            return count_rows(path, format, work_dir=Path(tmp), limits=limits)
    plain = decompressed(path, work_dir, max_bytes=(limits or InputLimits()).max_decompressed_bytes)
    if format == "csv" and _is_blank(plain):
        return 0
    table = open_table(plain, format, work_dir, limits)
    if not table.text:
        return int(_unreadable_guard(lambda: table.frame.select(pl.len()).collect().item(), path))
    try:
        with read_errors():
            return int(table.frame.select(pl.len()).collect().item())
    except NotUtf8:
        with read_errors():
            return int(table.lossy().frame.select(pl.len()).collect().item())


def _is_blank(path: Path) -> bool:
    with path.open("rb") as f:
        return not f.read(4096).strip(b"\xef\xbb\xbf \t\r\n")


def _is_json_array(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _unreadable_guard(read: Callable[[], T], path: Path) -> T:
    try:
        return read()
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_unreadable") from exc
